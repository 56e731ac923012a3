"""Input rasters as opened: what each file holds, checked before any pixel is warped.

:func:`inspect_raster` opens a raster, checks that GDAL reads it, that it is georeferenced and
that every band holds data (a decimated read), and describes it as a :class:`Source`: CRS,
resolution, footprint, band names, data type and nodata. :mod:`geomap.stack` aligns sources on
one grid.
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pyproj
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Interleaving, MaskFlags
from rasterio.errors import (
    NodataShadowWarning,
    NotGeoreferencedWarning,
    RasterioError,
    RasterioIOError,
)

from geomap.errors import (
    InputDataError,
    MissingFileError,
    NoCRSError,
    RasterError,
    library_reason,
)

#: Longest side, in pixels, of the decimated read used to check a source when it is opened.
_CHECK_SIZE = 256
#: Values this far from zero are no measurement (1e30 in Geosoft grids, float32's extremes):
#: read as no data wherever they are, declared or not.
FILL_MAGNITUDE = 1e20
#: Fill values survey software writes without always declaring them.
DUMMIES = frozenset({-99999.0, -9999.0, -32768.0, -32767.0, -999999.0, -99999.99, -9999.99})
#: Share of a band's pixels holding an undeclared fill (0, or one of :data:`DUMMIES`) above
#: which the raster is named with the --nodata to give.
FILL_SHARE = 0.005
#: ... or on fewer pixels, a value of :data:`DUMMIES` this many times the spread of the band's
#: other values beyond them.
DUMMY_APART = 10.0
#: GDAL block cache, in bytes, wherever geomap reads or writes rasters. GDAL's default (5% of
#: RAM) lets a decimated read of a large file keep every decompressed block in memory.
GDAL_CACHE_BYTES = 64 * 2**20
#: A GDAL subdataset name: the driver, a colon, then the file and what inside it (not "C:\\").
_SUBDATASET = re.compile(r"^[A-Za-z][A-Za-z0-9_]+:")


def crs_units(crs: CRS) -> str:
    """The unit of a CRS's coordinates, for people: "m", "degrees", "ft" or GDAL's name."""
    if crs.is_geographic:
        return "degrees"
    unit = (crs.linear_units or "").lower()
    if unit in ("metre", "meter", "m"):
        return "m"
    if "foot" in unit or "feet" in unit:
        return "ft"
    return unit or "CRS units"


def crs_words(crs: CRS | str) -> str:
    """A CRS in a line of text: its EPSG code, name or PROJ string.

    Not 400 characters of WKT (a MODIS sinusoidal grid's).
    """
    text = crs if isinstance(crs, str) else crs.to_string()
    if text.startswith("EPSG:") or len(text) < 60:
        return text
    crs = pyproj.CRS.from_user_input(text)
    if crs.name and crs.name.lower() not in ("unknown", "unnamed", "undefined"):
        return crs.name
    with warnings.catch_warnings():  # "you will likely lose important projection information"
        warnings.simplefilter("ignore", UserWarning)
        return crs.to_proj4()


@dataclass(frozen=True)
class Source:
    """One input raster as found on disk."""

    path: Path
    band_names: tuple[str, ...]
    crs: CRS
    res: tuple[float, float]
    dtype: str
    nodata: float | None
    width: int
    height: int
    bounds: tuple[float, float, float, float]
    #: Share of each band's pixels that are exactly 0, when 0 may be an undeclared fill value
    #: (no nodata, no negative value); 0 otherwise.
    zero_share: tuple[float, ...] = ()
    #: A nodata value the file declares but GDAL ignores (a VRT's -9999 on integer bands).
    ignored_nodata: str | None = None
    #: An undeclared dummy value its bands hold (-99999, 1e30...) and its largest share.
    dummy: tuple[float, float] | None = None
    #: A --nodata value given for rasters that declare none which its data type cannot hold
    #: (-32768 for a uint16 Landsat band): not applied to it.
    unheld_nodata: float | None = None
    #: ``nodata`` is a value given for it (--nodata), not one its file declares.
    nodata_given: bool = False
    #: That value is the one given for every raster that declares none, not one given for it by
    #: name (--nodata 0 against --nodata dem.tif=-32768).
    nodata_plain: bool = False
    #: The value given for it by name (--nodata FILE=VALUE), applied or not: the model keeps it
    #: for this input.
    named_nodata: float | None = None
    #: The product whose specification makes 0 its fill value, when the file declares none and
    #: none was given (USGS Landsat Collection 2 Level-2, Sentinel-2): read as no data.
    nodata_product: str | None = None
    #: The Sentinel-2 processing baseline ("05.10") of the SAFE folder holding it, from 04.00 on,
    #: when the file declares no offset: ``scale_offset`` is then that baseline's -1000.
    baseline_offset: str | None = None
    #: Share of its pixels holding the given value where that value lies between the band's
    #: other values (0 nT in a magnetic anomaly grid, not the 0 below a band's reflectances), on
    #: the decimated check read: measurements, perhaps, that the value takes as missing.
    given_within: float = 0.0
    #: Each band's declared scale and offset: a value means ``stored * scale + offset``
    #: (Landsat Collection 2 reflectance: 2.75e-05 and -0.2); empty when every band is 1 and 0.
    scale_offset: tuple[tuple[float, float], ...] = ()
    #: What the file declares when ``scale_offset`` was set otherwise: the training input's
    #: way of reading the same product (``geomap predict``, see
    #: :func:`geomap.bundles.match_scaling`); None when it is the file's own.
    declared_scaling: list | None = None
    #: Its first row is the southernmost (an XYZ grid written from south to north): warped, as
    #: its rows run the other way from the grid's.
    south_up: bool = False
    #: The file states no CRS: ``crs`` is the one it was read in (``geomap run --crs``).
    assumed_crs: bool = False
    #: Its alpha band (1-based), read as the others' mask and not as a band; None if none.
    alpha: int | None = None
    #: A stand-in for a training input no raster was given for (``geomap predict``).
    absent: bool = False
    #: A class map (one band with a colour table: an older geological map as an input): read
    #: with nearest resampling, as averaging codes would invent classes at contacts.
    categorical: bool = False
    #: Where every band has data, on the decimated check read (rows, cols) and its transform:
    #: which parts of the map each input leaves without data, before any prediction.
    coverage: np.ndarray | None = field(default=None, repr=False, compare=False)
    coverage_transform: Affine | None = field(default=None, repr=False, compare=False)
    #: Bands (0-based, as in ``band_names``) holding one value wherever they have data, on the
    #: decimated check read, with that value: they tell nothing apart (a broken export).
    constant: tuple[tuple[int, float], ...] = ()
    #: Each band's median on the decimated check read, as stored (no scale applied).
    stored_median: tuple[float, ...] = ()

    def has_data(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether points (in this raster's CRS) fall where every band has data.

        By the decimated check read; True everywhere when there was none.
        """
        if self.coverage is None:
            return np.ones(len(x), bool)
        cols, rows = ~self.coverage_transform @ (np.asarray(x), np.asarray(y))
        cols, rows = np.floor(cols).astype(int), np.floor(rows).astype(int)
        h, w = self.coverage.shape
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        out = np.zeros(len(inside), bool)
        out[inside] = self.coverage[rows[inside], cols[inside]]
        return out

    @property
    def indexes(self) -> list[int]:
        """The 1-based indexes of the bands read (all but the alpha band)."""
        total = self.count + (self.alpha is not None)
        return [i for i in range(1, total + 1) if i != self.alpha]

    @property
    def scaling(self) -> list[list[float]] | None:
        """:attr:`scale_offset` as the report and model bundles keep it: None when there is none."""
        return [list(pair) for pair in self.scale_offset] or None

    @property
    def count(self) -> int:
        """Number of bands."""
        return len(self.band_names)


def source_file(path: Path) -> Path | None:
    """The file on disk that holds a raster, or None when there is none.

    The path itself, or what a GDAL name points into: the archive of ``/vsizip/maps.zip/tmi.tif``
    or the file of a subdataset such as ``netcdf:survey.nc:tmi``.
    """
    text = str(path)
    if path.exists():
        return path
    if text.startswith("/vsi") and text.count("/") >= 2:
        inner = Path(text.split("/", 2)[2])
        inside = (inner, *inner.parents, Path("/", inner), *Path("/", inner).parents)
        return next((p for p in inside if p.is_file() and p != Path("/")), None)
    if _SUBDATASET.match(text):
        quoted = re.search(r'"([^"]+)"', text)  # NETCDF:"C:\survey.nc":tmi
        parts = [quoted.group(1)] if quoted else text.split(":")[1:]
        return next((Path(p) for p in parts if Path(p).is_file()), None)
    return None


def gdal_name(path: Path) -> str:
    """The name to open a raster by: a path, or a GDAL name as GDAL reads it.

    A path object folds the double slash of ``/vsizip//abs/maps.zip/tmi.tif`` into one, which
    GDAL then reads as a relative path: it comes back here.
    """
    text = str(path)
    if text.startswith("/vsi") and text.count("/") >= 2:
        prefix, inner = text.split("/", 2)[1:]
        relative = Path(inner)
        if not any(p.is_file() for p in (relative, *relative.parents)):
            return f"/{prefix}//{inner.lstrip('/')}"
    return text


def raster_stem(path: Path) -> str:
    """A raster's name without folder or extension; a subdataset's own name ("tmi")."""
    text = str(path)
    if _SUBDATASET.match(text) and not path.exists():
        return text.rsplit(":", 1)[-1].strip('"/') or path.stem
    return path.stem


def raster_error(path: Path, what: str, fix: str) -> RasterError:
    """The error of a raster: its path, what is wrong, what to do."""
    return RasterError(f"Raster '{path}': {what} {fix}")


def parse_nodata(values: Sequence[str]) -> tuple[float | None, dict[str, float]]:
    """No-data values as given: ``"0"`` for every raster, ``"dem.tif=-32768"`` for one.

    Returns the value for every raster that declares none (None if not given) and the values
    by raster file name (or path).

    Raises
    ------
    InputDataError
        If a value is not a number (a decimal comma included: "0,5" may be two values), or two
        different values are given for every raster or for one file.
    """
    default, by_name = None, {}
    for text in values:
        name, _, number = text.rpartition("=")
        name, number = name.strip(), number.strip()
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            why = (
                "NaN is read as no data in every raster already"
                if number.lower() == "nan"
                else "write a decimal with a point (0.5), and each value as its own entry"
                if "," in number
                else "give one, e.g. 0, or a raster's file name and its value, e.g. dem.tif=-32768"
            )
            raise InputDataError(f"No-data value '{text}' is not a number: {why}.")
        earlier = by_name.get(name) if name else default
        if earlier is not None and earlier != value:
            raise InputDataError(
                f"Two no-data values for {f'raster {name!r}' if name else 'every raster'} "
                f"({earlier:g} and {value:g}). Give one value for all the rasters that declare "
                "none, and NAME=VALUE for a raster that needs another, e.g. --nodata 0 --nodata "
                "dem.tif=-32768."
            )
        if name:
            by_name[name] = value
        else:
            default = value
    return default, by_name


def nodata_values(
    paths: Sequence[str | Path], default: float | None, by_name: dict[str, float] | None
) -> list[float | None]:
    """The no-data value given for each raster: its own (by file name or path), else ``default``.

    Raises
    ------
    InputDataError
        If a value names no raster.
    """
    by_name = by_name or {}

    def named(name: str, path: str | Path) -> bool:
        return name in (Path(path).name, str(path)) or Path(name).resolve() == Path(path).resolve()

    unknown = [n for n in by_name if not any(named(n, p) for p in paths)]
    if unknown:
        raise InputDataError(
            f"No-data value for '{unknown[0]}': no raster of that name is given (the rasters: "
            f"{', '.join(Path(p).name for p in paths)}). Name it as its file is named."
        )
    return [next((v for n, v in by_name.items() if named(n, p)), default) for p in paths]


def inspect_raster(
    path: str | Path,
    nodata: float | None = None,
    assume_crs: str | CRS | None = None,
    *,
    plain: bool = False,
) -> Source:
    """Open one raster, check it can be used and describe it.

    ``nodata`` is the value taken as no data when the file declares none (Sentinel-2 JPEG2000
    files use 0 without saying so), ``plain`` whether it is the value given for every raster
    rather than for this one; ``assume_crs`` the CRS of a georeferenced file that states none
    (a Surfer grid).

    Raises
    ------
    MissingFileError
        If the file does not exist.
    RasterError
        If GDAL cannot read it, it has no CRS or georeferencing, it is truncated, or a band holds
        no valid value.
    """
    path = Path(path)
    if source_file(path) is None:
        raise MissingFileError(f"Raster '{path}' does not exist; check the path and its spelling.")
    if path.is_file() and path.stat().st_size == 0:
        raise raster_error(path, "the file is empty (0 bytes).", "Copy or export the raster again.")
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        return _inspect(path, nodata, assume_crs, plain)


def _lacking_data_file(path: Path) -> str | None:
    """The data file an ER Mapper header (.ers) names, when it is not beside the header.

    The header's ``DataFile`` entry, else (as ER Mapper writes it) its own name without .ers.
    """
    if path.suffix.lower() != ".ers" or not path.is_file():
        return None
    text = path.read_bytes()[:65536].decode("latin-1")
    named = re.search(r'DataFile\s*=\s*"?([^"\r\n]+)"?', text)
    data = named.group(1).strip() if named else path.stem
    return None if (path.parent / data).is_file() else data


def _inspect(path: Path, nodata: float | None, assume_crs: str | CRS | None, plain: bool) -> Source:
    try:
        with warnings.catch_warnings():  # geomap says what is missing, in its own words
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(gdal_name(path))
    except RasterioIOError as exc:
        if path.is_dir():
            raise raster_error(
                path,
                "it is a folder GDAL does not read as a raster, and it holds no Landsat "
                "Collection 2 scene or Sentinel-2 product whose band files geomap knows "
                "(..._SR_B4.TIF, ..._B04_10m.jp2).",
                "Give its raster files one by one with --raster.",
            ) from None
        lacking = _lacking_data_file(path)
        if lacking is not None:
            raise raster_error(
                path,
                f"it is an ER Mapper header, and its data file '{lacking}' is not beside it: the "
                "grid's values are in that file.",
                "Put the data file beside the header, in the same folder (the web app takes one "
                f"file per raster: give it a GeoTIFF, gdal_translate {path.name} "
                f"{path.stem}.tif).",
            ) from None
        raise raster_error(
            path,
            f"GDAL cannot read it as a raster ({str(exc).rstrip('.')}).",  # GDAL ends with "."
            "Give a GeoTIFF, JPEG2000, VRT or another format GDAL opens.",
        ) from None
    with src:
        _check_readable(path, src, assume_crs)
        product = product_fill(path) if src.nodata is None and nodata is None else None
        if product is not None:
            nodata = 0.0  # the product's own fill value, as its specification states
        unheld, named = None, None if plain else nodata
        if src.nodata is None and nodata is not None and not _holds(src.dtypes[0], str(nodata)):
            unheld, nodata = nodata, None
        zeros, dummy, invalid, transform, constant, within, medians = _check_bands(
            path, src, nodata
        )
        ignored = None
        if src.driver == "VRT" and src.nodata is None:
            ignored = _vrt_nodata(path, src.dtypes[0])
        alpha = _alpha_band(src)
        kept = [i for i in range(src.count) if i + 1 != alpha]
        scale_offset = _scale_offset(src)
        baseline = _s2_baseline(path) if not scale_offset and product == "Sentinel-2" else None
        if baseline is not None:  # ESA adds 1000 from baseline 04.00; band files do not say
            scale_offset = ((1.0, -1000.0),) * src.count
        return Source(
            path=path,
            band_names=_band_names(path, src),
            alpha=alpha,
            crs=src.crs or CRS.from_user_input(assume_crs),
            assumed_crs=src.crs is None,
            res=(abs(src.transform.a), abs(src.transform.e)),
            dtype=src.dtypes[0],
            nodata=src.nodata if src.nodata is not None else nodata,
            width=src.width,
            height=src.height,
            bounds=_north_up_bounds(src.bounds),
            south_up=src.transform.e > 0,
            zero_share=tuple(zeros[i] for i in kept)
            if src.nodata is None and nodata is None and alpha is None  # alpha: no data declared
            else (0.0,) * len(kept),
            ignored_nodata=ignored,
            # a survey dummy other than the value given for it is still named (--nodata 0 left
            # a radiometric grid's -99999 flight-line gap read as measurements, unsaid)
            dummy=dummy
            if src.nodata is None and (nodata is None or dummy is None or dummy[0] != nodata)
            else None,
            unheld_nodata=unheld,
            nodata_given=src.nodata is None and nodata is not None and product is None,
            nodata_plain=plain and src.nodata is None and nodata is not None and product is None,
            nodata_product=product,
            baseline_offset=baseline,
            named_nodata=named,
            given_within=within,
            scale_offset=tuple(scale_offset[i] for i in kept) if scale_offset else (),
            categorical=len(kept) == 1 and src.colorinterp[kept[0]] == ColorInterp.palette,
            coverage=~invalid[kept].any(axis=0),
            coverage_transform=transform,
            constant=tuple((kept.index(i), v) for i, v in constant if i in kept),
            stored_median=tuple(medians[i] for i in kept),
        )


#: File names of products whose specification makes 0 the fill value of every band: USGS
#: Landsat Collection 2 Level-2 surface reflectance and temperature, Sentinel-2 L1C and L2A band
#: files. Their 0 is never a measurement.
_ZERO_FILL_PRODUCTS = (
    (
        "USGS Landsat Collection 2 Level-2",
        re.compile(r"L[CEOT]0\d_L2S[PR]_\d{6}_\d{8}_\d{8}_\d{2}_(T1|T2|RT)_(SR|ST)_B\d{1,2}", re.I),
    ),
    (  # Sen2Cor 2.4 to 2.5 (2017-2018) named its files "L2A_T32TQR_..."
        "Sentinel-2",
        re.compile(r"(L2A_)?T\d{2}[A-Z]{3}_\d{8}T\d{6}_B(0\d|1[0-2]|8A)(_\d{2}m)?", re.I),
    ),
)


def product_fill(path: Path) -> str | None:
    """The product a raster's file name says it is, when that product fills with 0; else None."""
    stem = raster_stem(path)
    return next((name for name, pattern in _ZERO_FILL_PRODUCTS if pattern.fullmatch(stem)), None)


def _s2_baseline(path: Path) -> str | None:
    """The processing baseline, 04.00 or later, of the Sentinel-2 product folder of a band file.

    "05.10" for ``S2B_MSIL2A_20240105T143729_N0510_R096_...SAFE/...``; else None.
    """
    match = re.search(r"_MSIL(?:1C|2A)_\d{8}T\d{6}_N(\d{2})(\d{2})_", str(path), re.I)
    if match is None or int(match.group(1)) < 4:
        return None
    return f"{match.group(1)}.{match.group(2)}"


def _check_readable(path: Path, src: rasterio.DatasetReader, assume_crs) -> None:
    """Refuse what geomap cannot place or read.

    Subdatasets only, no georeferencing, no CRS (unless ``assume_crs``), a rotation, bands of
    different types or no-data values, complex values.
    """
    if src.count == 0:
        names = ", ".join(src.subdatasets[:5]) or "none"
        raise raster_error(
            path,
            "it holds no raster band itself, only subdatasets.",
            f"Give one of them instead (e.g. {names}).",
        )
    if src.crs is None and src.transform == Affine.identity() and not src.gcps[0]:
        raise raster_error(
            path,
            f"it is not georeferenced: GDAL reads it as a {src.driver} image with neither a "
            "coordinate reference system nor a geotransform, a picture rather than a map.",
            "Give the raster exported from a GIS or the survey's software (GeoTIFF, "
            "JPEG2000, ...); a scanned map or a photo needs georeferencing first (QGIS: "
            "Raster > Georeferencer).",
        )
    if src.transform == Affine.identity() and src.gcps[0]:
        raise raster_error(
            path,
            f"it is placed by {len(src.gcps[0])} ground control points (GCPs) only, which geomap "
            "does not read.",
            "Warp it onto a map grid first, e.g. `gdalwarp IN OUT` (it uses the GCPs).",
        )
    if src.crs is None and assume_crs is None:
        raise NoCRSError(
            f"Raster '{path}': it has no coordinate reference system (a grid saved without its "
            ".prj). Give the CRS it is in with --crs (the map is then made in that CRS too), "
            "or export it with its CRS (in QGIS: set the layer's CRS, then Export > Save As).",
            tuple(src.bounds),
        )
    if src.transform == Affine.identity():
        raise raster_error(
            path,
            "it has no georeferencing (identity transform).",
            "Export it with its geotransform.",
        )
    if src.transform.b != 0 or src.transform.d != 0:
        raise raster_error(
            path,
            "it is rotated (its geotransform turns the rows off north), which geomap does "
            "not read.",
            "Warp it north-up first, e.g. `gdalwarp IN OUT`.",
        )
    types = list(dict.fromkeys(src.dtypes))
    fills = list(dict.fromkeys("nan" if v != v else v for v in src.nodatavals if v is not None))
    if len(types) > 1 or len(fills) > 1:  # a VRT stacking files: one type and fill read
        mixed = [f"data types ({', '.join(types)})"] if len(types) > 1 else []
        mixed += [f"no-data values ({', '.join(map(str, fills))})"] if len(fills) > 1 else []
        raise raster_error(
            path,
            f"its bands have different {' and '.join(mixed)}, as a VRT stacking separate files "
            "does; geomap reads one data type and one no-data value per raster.",
            "Give the files it stacks as rasters of their own: geomap aligns them itself.",
        )
    if src.dtypes[0].startswith("complex"):  # complex64, and GDAL's CInt16 of SLC data
        raise raster_error(
            path,
            f"its bands hold complex numbers ({src.dtypes[0]}), as a radar image's phase and "
            "amplitude do; geomap reads real values.",
            "Give the amplitude or intensity (e.g. `gdal_translate -ot Float32` of the "
            "modulus, or the backscatter product) as a raster of real numbers.",
        )


def _alpha_band(src: rasterio.DatasetReader) -> int | None:
    """The 1-based index of the band that says which pixels hold data, if one does.

    It is no measurement: it is read as the mask of the others, not as a band.
    """
    alpha = [i for i, c in enumerate(src.colorinterp, start=1) if c == ColorInterp.alpha]
    return alpha[0] if alpha and src.count > 1 else None


def _north_up_bounds(bounds) -> tuple[float, float, float, float]:
    """(left, bottom, right, top) with bottom below top, whichever way the rows run."""
    left, bottom, right, top = bounds
    return (min(left, right), min(bottom, top), max(left, right), max(bottom, top))


def _scale_offset(src: rasterio.DatasetReader) -> tuple[tuple[float, float], ...]:
    """Each band's (scale, offset) when any band declares other than (1, 0), else ()."""
    pairs = tuple(zip(map(float, src.scales), map(float, src.offsets)))
    return pairs if any(pair != (1.0, 0.0) for pair in pairs) else ()


def _vrt_nodata(path: Path, dtype: str) -> str | None:
    """A ``NoDataValue`` the VRT's XML gives that bands of ``dtype`` cannot hold, if any.

    GDAL drops such a value (-9999 on UInt16) and reports no nodata.
    """
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, OSError):
        return None
    values = [v.text.strip() for v in root.iter("NoDataValue") if v.text and v.text.strip()]
    return next((v for v in values if not _holds(dtype, v)), None)


def _holds(dtype: str, value: str) -> bool:
    """Whether a band of ``dtype`` can hold ``value`` (else GDAL drops it as nodata)."""
    try:
        number = float(value)
    except ValueError:
        return False
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return number.is_integer() and info.min <= number <= info.max
    return np.isnan(number) or abs(number) <= np.finfo(dtype).max or np.isinf(number)


def band_names_of(path: str | Path) -> tuple[str, ...] | None:
    """A raster's band names from its header alone; None when GDAL cannot open it.

    Cheap (no pixel is read): for matching files to a model's inputs before
    :meth:`RasterStack.open` checks them and says what is wrong with a bad one.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(gdal_name(path)) as src:
                return _band_names(Path(path), src)
    except (RasterioIOError, OSError):
        return None


def _band_names(path: Path, src: rasterio.DatasetReader) -> tuple[str, ...]:
    """A name per band but the alpha band: its description, else the file's (and number)."""
    names = []
    alpha = _alpha_band(src)
    for i, desc in enumerate(src.descriptions, start=1):
        if i == alpha:
            continue
        if desc:
            names.append(desc.strip())
        elif src.count == 1:
            names.append(raster_stem(path))
        else:
            names.append(f"{raster_stem(path)}_b{i}")
    return tuple(names)


#: Valid pixels of the check read from which a band holding one value is said to be constant.
CONSTANT_PIXELS = 100


def _check_bands(
    path: Path, src: rasterio.DatasetReader, nodata: float | None = None
) -> tuple[tuple[float, ...], tuple[float, float] | None, np.ndarray, Affine, list, float]:
    """Decimated read of every band: catches truncated files and bands with no valid value.

    Returns the share of each band's valid pixels that are exactly 0 where no value is negative
    (0 then may be a fill value nobody declared; 0.0 for the other bands), the dummy value
    the bands hold, if any, with its largest share: a value of :data:`DUMMIES` that is a band's
    minimum or maximum on at least :data:`FILL_SHARE` of its pixels, or any value of magnitude
    :data:`FILL_MAGNITUDE` or more (read as no data whatever the file says), and where each
    band has no data on the decimated read (with ``nodata`` when the file declares none),
    (bands, rows, cols), with the read's transform, and (band, value) of the bands that hold
    one value on at least :data:`CONSTANT_PIXELS` pixels of the read and no other, and the
    share of the read's pixels that ``nodata`` takes as missing in bands whose other values lie
    on both sides of it (0.0 when the file declares one), and each band's median value as
    stored (no scale applied).
    """
    scale = max(src.width, src.height) / _CHECK_SIZE
    shape = (
        src.count,
        max(1, round(src.height / max(scale, 1))),
        max(1, round(src.width / max(scale, 1))),
    )
    try:
        data = _decimated(src, shape)
    except RasterioError as exc:
        raise raster_error(
            path,
            f"its pixels cannot be read: the file is cut short or damaged (GDAL: "
            f"{library_reason(exc)}).",
            "Copy or download it again.",
        ) from None
    mask = np.ma.getmaskarray(data)
    if np.issubdtype(data.dtype, np.floating):
        mask |= ~np.isfinite(data.filled(0))
    huge = np.abs(data.filled(0).astype("float64")) >= FILL_MAGNITUDE
    unseen = [i + 1 for i in range(src.count) if (mask[i] | huge[i]).all()]
    found = _bands_with_data(src, unseen) if unseen else set()
    empty = [b - 1 for b in unseen if b not in found]
    if empty:
        first = f"band {empty[0] + 1} ({src.descriptions[empty[0]] or f'band {empty[0] + 1}'})"
        what = (
            f"{first} holds"
            if len(empty) == 1
            else f"{len(empty)} bands ({_ranges([i + 1 for i in empty])}; the first is {first}) "
            "hold"
        )
        raise raster_error(
            path,
            f"{what} no valid value: every pixel is NaN, nodata ({src.nodata}) or a dummy of "
            f"magnitude {FILL_MAGNITUDE:g} or more.",
            "Leave this raster out, or fix its nodata value."
            if len(empty) == src.count  # no band to keep: a band's advice would not do
            else f"Remove {'that band' if len(empty) == 1 else 'those bands'} (the water-vapour "
            "bands of a hyperspectral cube are such; gdal_translate with -b for each band to "
            "keep) or fix its nodata value.",
        )
    shares, dummy, constant = [], None, []
    for i, (band, invalid) in enumerate(zip(data, mask)):
        values = np.asarray(band)[~invalid]
        fill = len(values) > 0 and values.min() == 0
        shares.append(float(np.mean(values == 0)) if fill else 0.0)
        if len(values) >= CONSTANT_PIXELS and values.min() == values.max():
            constant.append((i, float(values[0])))
        found = _dummy(values)
        if found is not None and (dummy is None or found[1] > dummy[1]):
            dummy = found
    invalid, within = mask | huge, 0.0
    if src.nodata is None and nodata is not None:
        given = data.filled(0).astype("float32") == np.float32(nodata)  # as the reads do
        rest = np.ma.masked_array(data.astype("float32"), invalid | given)
        low, high = rest.min(axis=(1, 2)), rest.max(axis=(1, 2))
        between = np.ma.filled((low < np.float32(nodata)) & (np.float32(nodata) < high), False)
        within = float(np.mean(given & ~invalid & between[:, None, None]))
        invalid |= given
    transform = src.transform @ Affine.scale(src.width / shape[2], src.height / shape[1])
    stored = data.filled(0).astype("float64")
    medians = tuple(
        float(np.median(band[~out])) if (~out).any() else float("nan")
        for band, out in zip(stored, invalid)
    )
    return tuple(shares), dummy, invalid, transform, constant, within, medians


def _decimated(src: rasterio.DatasetReader, shape: tuple[int, int, int]) -> np.ma.MaskedArray:
    """Every band at ``shape``, masked where it has no data.

    Where only nodata values mask the bands, the mask is taken from the values: GDAL builds a
    nodata mask band by band, and each band of a pixel-interleaved compressed GeoTIFF
    decompresses every band's blocks (a 200-band cube: 88 s, against 0.5 s for the values).
    """
    if _value_masks(src):
        data = _tile_by_tile(src, shape) if _interleaved(src) else src.read(out_shape=shape)
        return np.ma.MaskedArray(data, _nodata_mask(src, data, range(1, src.count + 1)))
    with warnings.catch_warnings():  # nodata and an alpha band: both are applied
        warnings.simplefilter("ignore", NodataShadowWarning)
        return src.read(out_shape=shape, masked=True)


def _value_masks(src: rasterio.DatasetReader) -> bool:
    """Whether nodata values alone mask the bands (no alpha band or mask band)."""
    return all(set(f) <= {MaskFlags.nodata, MaskFlags.all_valid} for f in src.mask_flag_enums)


def _nodata_mask(src: rasterio.DatasetReader, data: np.ndarray, indexes) -> np.ndarray:
    """Where ``data`` (the bands ``indexes``, 1-based) holds its band's nodata value."""
    mask = np.zeros(data.shape, dtype=bool)
    for i, b in enumerate(indexes):
        value, flags = src.nodatavals[b - 1], src.mask_flag_enums[b - 1]
        if MaskFlags.nodata not in flags or value is None:
            continue
        band = data[i]
        if np.isnan(value):
            mask[i] = np.isnan(band)
        elif np.issubdtype(band.dtype, np.integer):  # a value the type cannot hold masks none
            info = np.iinfo(band.dtype)
            if info.min <= value <= info.max and float(value).is_integer():
                mask[i] = band == int(value)
        else:
            mask[i] = band == np.asarray(value, dtype=band.dtype)
    return mask


#: Bands from which a compressed pixel-interleaved file is decimated tile by tile.
_INTERLEAVED_BANDS = 16


def _interleaved(src: rasterio.DatasetReader) -> bool:
    """A compressed file of many bands stored pixel by pixel (a hyperspectral GeoTIFF)."""
    return (
        src.count >= _INTERLEAVED_BANDS
        and src.interleaving == Interleaving.pixel
        and src.compression is not None
    )


def _tile_by_tile(src: rasterio.DatasetReader, shape: tuple[int, int, int]) -> np.ndarray:
    """Nearest decimation of every band to ``shape``, reading each tile once for all bands.

    GDAL decimates band by band, and each band decompresses every band's tiles: a 200-band
    cube's check took 46 s, this 1 s. Memory: one tile of every band.
    """
    rows = np.minimum(
        ((np.arange(shape[1]) + 0.5) * src.height / shape[1]).astype(int), src.height - 1
    )
    cols = np.minimum(
        ((np.arange(shape[2]) + 0.5) * src.width / shape[2]).astype(int), src.width - 1
    )
    out = np.empty(shape, dtype=src.dtypes[0])
    for _, win in src.block_windows(1):
        r = (rows >= win.row_off) & (rows < win.row_off + win.height)
        c = (cols >= win.col_off) & (cols < win.col_off + win.width)
        if r.any() and c.any():
            tile = src.read(window=win)
            out[np.ix_(np.arange(shape[0]), np.flatnonzero(r), np.flatnonzero(c))] = tile[
                np.ix_(np.arange(shape[0]), rows[r] - win.row_off, cols[c] - win.col_off)
            ]
    return out


def _ranges(numbers: Sequence[int]) -> str:
    """'92-114, 141-155, 200' for sorted integers."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else f"{r[0]}" for r in runs)


def _dummy(values: np.ndarray) -> tuple[float, float] | None:
    """The undeclared dummy value among a band's valid values, and its share; None if none."""
    if not len(values):
        return None
    stored = {d: d for d in DUMMIES}  # a float32 -99999.99 is -99999.9921875 in float64
    if np.issubdtype(values.dtype, np.floating):
        stored = {float(np.asarray(d, dtype=values.dtype)): d for d in DUMMIES}
    values = values.astype("float64")
    huge = np.abs(values) >= FILL_MAGNITUDE
    if huge.any():
        kinds, counts = np.unique(values[huge], return_counts=True)
        return float(kinds[np.argmax(counts)]), float(huge.mean())
    for end in (values.min(), values.max()):
        if end not in stored:
            continue
        at_end = values == end
        share = float(np.mean(at_end))
        if share >= FILL_SHARE or _apart(end, values[~at_end]):
            return float(stored[end]), share
    return None


def _apart(end: float, others: np.ndarray) -> bool:
    """Whether ``end`` lies further from the other values than :data:`DUMMY_APART` their spread.

    A radiometric grid's -99999 on a flight-line gap of 0.47% of the pixels, beside values of 0
    to 30: no measurement, however few the pixels.
    """
    if not len(others):
        return False
    low, high = float(others.min()), float(others.max())
    return min(abs(end - low), abs(end - high)) > DUMMY_APART * max(high - low, 1e-12)


def _bands_with_data(src: rasterio.DatasetReader, bands: list[int]) -> set[int]:
    """Which of ``bands`` (1-based) hold a valid pixel, read block by block at full resolution.

    Only called for bands the decimated check read found empty: a small valid patch can fall
    between the decimated samples. All of them at once, block by block (23 empty bands of a
    pixel-interleaved cube took 23 reads of the whole file).
    """
    found: set[int] = set()
    for _, window in src.block_windows(1):
        left = [b for b in bands if b not in found]
        if not left:
            break
        if _value_masks(src):
            data = src.read(left, window=window)
            invalid = _nodata_mask(src, data, left)
        else:
            data = src.read(left, window=window, masked=True)
            invalid, data = np.ma.getmaskarray(data), data.filled(0)
        if np.issubdtype(data.dtype, np.floating):
            invalid |= ~np.isfinite(data) | (np.abs(data) >= FILL_MAGNITUDE)
        found |= {b for b, bad in zip(left, invalid) if not bad.all()}
    return found
