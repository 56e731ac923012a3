"""Satellite products given whole: a Landsat Collection 2 scene or a Sentinel-2 SAFE product.

As delivered (USGS's scene folder or ``.tar``, Copernicus's ``.SAFE`` folder or ``.zip``), a
product holds its band files beside many that are no measurement of the ground: Landsat's
surface-temperature intermediates (``ST_ATRAN``, ``ST_CDIST``, the distance to the nearest
cloud), saturation flags and aerosol layers, Sentinel-2's 60 m atmospheric bands (B01, B09),
true-colour previews and the same bands resampled to 20 and 60 m. :func:`expand_rasters` takes
from a product the files a geologist maps from, each at its own resolution: the reflective
bands, Landsat's thermal band, and the product's cloud mask (:mod:`geomap.masks`).
"""

from __future__ import annotations

import re
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

from geomap.masks import named_product


def _landsat(sensors: str) -> str:
    """A Landsat Collection 2 product ID; ``at`` its path/row, ``day`` its acquisition date."""
    return (
        rf"L{sensors}_L[12][A-Z]{{2}}_(?P<at>\d{{6}})_(?P<day>\d{{8}})_\d{{8}}_\d{{2}}_(?:T1|T2|RT)"
    )


_OLI, _TM = _landsat("[CO]0[89]"), _landsat("[TE]0[457]")  # Landsat 8-9; Landsat 4-7
#: A Sentinel-2 band file's tile (``at``) and sensing time (``day`` its date).
_TILE = r"T(?P<at>\d\d[A-Z]{3})_(?P<day>\d{8})T\d{6}"
#: Band files taken from a product, by their whole name (case ignored): the reflective bands
#: but the atmosphere's (Landsat 8-9's coastal B1 and cirrus B9, Sentinel-2's B01, B09, B10)
#: and Landsat 8-9's 15 m panchromatic B8; Level-2 surface temperature; the cloud masks.
_TAKEN = (
    re.compile(rf"{_OLI}_(SR_B[2-7]|ST_B10|B[2-7]|B10|QA_PIXEL)\.tif", re.I),
    re.compile(rf"{_TM}_(SR_B[1-57]|ST_B6|B[1-57]|QA_PIXEL)\.tif", re.I),
    # Sentinel-2 Level-2A, each band at its own resolution, and its scene classification (files
    # of products made by Sen2Cor 2.4 to 2.5, 2017-2018, start "L2A_").
    re.compile(
        rf"(?:L2A_)?{_TILE}_(B0[2348]_10m|B0[567]_20m|B8A_20m|B1[12]_20m|SCL_20m)\.jp2", re.I
    ),
    # Level-1C: no resolution in the names.
    re.compile(rf"{_TILE}_(B0[2-8]|B8A|B1[12])\.jp2", re.I),
)
_ARCHIVES = (".zip", ".tar", ".tgz", ".gz")


#: Where and when a satellite scene was taken, by its file names: a Landsat product ID, a
#: Sentinel-2 product's name (its sensing date, then its tile; the processing time comes last),
#: a Sentinel-2 band file's tile and sensing time.
_ACQUISITION = (
    ("path/row", re.compile(_landsat(r"[COTE]0\d"), re.I)),
    (
        "tile",
        re.compile(r"MSIL\d[AC]_(?P<day>\d{8})T\d{6}_N\d{4}_R\d{3}_T(?P<at>\d\d[A-Z]{3})", re.I),
    ),
    ("tile", re.compile(_TILE, re.I)),
)


def acquisition(name: str) -> tuple[str, str, str] | None:
    """(what the place is, the place, the date as YYYY-MM-DD) a file's name gives; else None."""
    for what, pattern in _ACQUISITION:
        match = pattern.search(name)
        if match:
            day = match["day"]
            return what, match["at"].upper(), f"{day[:4]}-{day[4:6]}-{day[6:]}"
    return None


#: A band file's band, once its product ID, or tile and sensing time, are set aside.
_BANDS = tuple(
    re.compile(rf"{product}_(?P<band>\w+)\.(?:tif|jp2)", re.I)
    for product in (_OLI, _TM, rf"(?:L2A_)?{_TILE}")
)


def band_code(name: str) -> str | None:
    """The band a product's file name gives ("b01_60m", "sr_b1"), in lower case; else None."""
    for pattern in _BANDS:
        match = pattern.fullmatch(Path(name).name)
        if match:
            return match["band"].lower()
    return None


def taken_from_product(name: str | Path) -> bool:
    """Whether a file of a product is one of the band files :data:`_TAKEN` names."""
    return any(t.fullmatch(Path(name).name) for t in _TAKEN)


def expand_rasters(paths: Sequence[str | Path], wanted: Sequence[str] = ()) -> list[Path]:
    """The rasters given, with each product folder or archive replaced by its band files.

    Files and GDAL names pass unchanged. From a folder, a ``.zip`` or a ``.tar`` holding a
    Landsat Collection 2 scene or a Sentinel-2 product, the band files :data:`_TAKEN` names come
    in name order (a file inside an archive as its GDAL name, ``/vsitar/...``), and those of the
    bands of the file names ``wanted`` (:func:`band_code`: a model's training inputs, another
    tile's B01 and B09 given as files); a folder or archive holding none passes unchanged, for
    GDAL to read (an ArcInfo grid is a folder) or :func:`geomap.sources.inspect_raster` to
    refuse.
    """
    codes = {band_code(name) for name in wanted} - {None}
    out: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            members = [str(p.relative_to(path)) for p in sorted(path.rglob("*")) if p.is_file()]
            prefix = f"{path}/"
        elif path.is_file() and path.name.lower().endswith(_ARCHIVES):
            members, prefix = _archive(path)
        else:
            out.append(path)
            continue
        taken = sorted(m for m in members if taken_from_product(m) or band_code(m) in codes)
        if not taken:  # GDAL's to read, or to refuse: an ArcInfo grid is a folder
            out.append(path)
            continue
        masks = [m for m in taken if named_product(m) is not None]  # last, after their bands
        out += [Path(prefix + m) for m in [*(m for m in taken if m not in masks), *masks]]
    return out


def _archive(path: Path) -> tuple[list[str], str]:
    """(member names, GDAL prefix) of a zip or tar archive; none for anything else."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return [n for n in z.namelist() if not n.endswith("/")], f"/vsizip/{path.resolve()}/"
    if tarfile.is_tarfile(path):
        with tarfile.open(path) as t:
            return [m.name for m in t.getmembers() if m.isfile()], f"/vsitar/{path.resolve()}/"
    return [], ""
