"""Exceptions and warnings raised by geomap.

Every error a user can cause derives from :class:`GeomapError`; leaves also inherit the matching
builtin (``ValueError``, ``OSError``, ...) so callers that already catch those keep working. A
message says what happened, the value seen, the value expected and how to fix it.
"""

import re


class GeomapError(Exception):
    """Root of every error geomap raises on purpose."""


class InputDataError(GeomapError, ValueError):
    """An input file or value cannot be used as it is."""


class RasterError(InputDataError):
    """A raster cannot be read or does not fit the stack."""


class NoCRSError(RasterError):
    """A georeferenced raster states no CRS; ``bounds`` are its corners as numbers."""

    def __init__(self, message: str, bounds: tuple[float, float, float, float]) -> None:
        super().__init__(message)
        self.bounds = bounds


class LabelError(InputDataError):
    """Ground-truth observations cannot be used as they are."""


class EmptySheetError(LabelError):
    """A workbook's sheet holds no cell with a value (a blank Sheet1 beside the observations)."""


class MissingFileError(GeomapError, FileNotFoundError):
    """An input file does not exist."""


class OutputExistsError(GeomapError, FileExistsError):
    """The output folder already holds files and overwriting was not asked for."""


class OutputWriteError(GeomapError, OSError):
    """The outputs could not be written (a full disk, a quota, a limit on file size)."""


class ModelError(GeomapError, ValueError):
    """A model cannot be trained, loaded or applied to these inputs."""


def library_reason(exc: BaseException, limit: int = 200) -> str:
    """What GDAL or SQLite said went wrong, in as few words as it takes.

    The innermost error of the chain (rasterio's "Read failed. See previous exception for
    details." wraps GDAL's own), without the SQL statement a failed query quotes ("sqlite3_...(
    SELECT ...) failed: database disk image is malformed") or the place GDAL gives as -1 read
    unsigned ("at scanline 4294967295"), each reason once, cut at ``limit`` characters.
    """
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    parts: list[str] = []
    # GDAL gives an unknown place as -1 read unsigned: "at row 4294967295, col 4294967295"
    text = re.sub(r" at (?:row|col|scanline) 4294967295(?:, col 4294967295)?", "", str(exc))
    for part in text.split("; "):
        part = part.rsplit(" failed: ", 1)[-1].strip()
        if part and part not in parts:
            parts.append(part)
    text = "; ".join(parts)
    return text if len(text) <= limit else text[: limit - 3].rstrip() + "..."


def proj_reason(exc: BaseException) -> str:
    """PROJ's reason a CRS was refused, without what wraps it.

    "unrecognized format / unknown name", not "Invalid projection: UTM 33N: (Internal Proj
    Error: proj_create: unrecognized format / unknown name)".
    """
    text = str(exc)
    return text.rsplit("proj_create: ", 1)[-1].rstrip(")") if "proj_create: " in text else text
