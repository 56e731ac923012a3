"""Ground truth: field observations (points) and mapped patches (polygons) -> labelled pixels.

:func:`read_labels` reads GeoPackage, GeoJSON, Shapefile (plain or zipped) and CSV into a
GeoDataFrame with a text ``label`` column. :func:`sample_labels` places the observations on the
stack's grid: points give their pixel, polygons are rasterised block by block with a per-class cap
and a round-robin draw across polygons, so one large polygon does not swamp the others.
:func:`extract_features` computes the features at those pixels.
"""

from __future__ import annotations

import csv
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj.exceptions import CRSError
from rasterio.features import rasterize
from rasterio.windows import Window

from geomap.errors import LabelError, MissingFileError
from geomap.features import FeatureRecipe
from geomap.stack import Grid, RasterStack

#: Coordinate column pairs accepted in CSV files (case-insensitive), in order of preference.
COORD_PAIRS = (
    ("x", "y"),
    ("point_x", "point_y"),  # ArcGIS "Add XY Coordinates"
    ("easting", "northing"),
    ("east", "north"),
    ("lon", "lat"),
    ("long", "lat"),
    ("lng", "lat"),
    ("longitude", "latitude"),
    ("x_wgs84", "y_wgs84"),
)
_GEOGRAPHIC = {"lon", "long", "lng", "longitude", "x_wgs84"}
#: Names of columns that identify an observation (case-insensitive), in order of preference.
SITE_COLUMNS = (
    *("station", "station_id", "site", "site_id", "obs_id", "observation", "sample", "sample_id"),
    *("point_id", "waypoint", "wpt", "id", "name"),
)
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".zip")

_EXTRACT_BLOCK = 64
_RASTERISE_BLOCK = 2048


def read_labels(
    path: str | Path, column: str, *, crs: str | None = None, layer: str | None = None
) -> gpd.GeoDataFrame:
    """Read observations into a GeoDataFrame with columns ``label``, ``source``, ``site``, geometry.

    ``site`` names each observation as the file does (an identifier column such as ``station``
    or ``obs_id``, else "line 14" of a CSV or "fid 13" of a vector file).

    Parameters
    ----------
    path : file path
        GeoPackage, GeoJSON, Shapefile (``.shp`` or zipped), or CSV with coordinate columns.
    column : str
        The column holding the class of each observation (text or integers).
    crs : str, optional
        The CRS of a CSV's coordinates. Default EPSG:4326 for lon/lat columns; required for x/y.
    layer : str, optional
        The layer of a multi-layer file (a project GeoPackage). Default: the file's only layer,
        or the only one with a column ``column``.

    Raises
    ------
    MissingFileError
        If the file does not exist.
    LabelError
        If the file cannot be read, lacks the column or coordinates, has no CRS, holds no usable
        observation or holds geometries other than points and polygons, or holds several layers
        and not exactly one has the column.
    """
    path = Path(path)
    return _tidy(_read_any(path, crs, layer, column), path, column)


def label_columns(
    path: str | Path, *, crs: str | None = None, layer: str | None = None
) -> list[str]:
    """The columns of an observation file that may hold the class, in file order.

    The geometry and, in a CSV, the coordinate columns are left out.

    In a file of several layers and no ``layer``, the columns of every layer.

    Raises
    ------
    MissingFileError, LabelError
        As :func:`read_labels`.
    """
    path = Path(path)
    layers = _layers(path) if layer is None else []
    if len(layers) > 1:
        fields = [str(f) for name in layers for f in pyogrio.read_info(path, layer=name)["fields"]]
        return list(dict.fromkeys(fields))
    frame = _read_any(path, crs, layer)
    lower = {str(c).lower().strip() for c in frame.columns}
    coords = next((p for p in COORD_PAIRS if p[0] in lower and p[1] in lower), ())
    return [
        str(c)
        for c in frame.columns
        if c != frame.geometry.name and str(c).lower().strip() not in coords
    ]


def label_layers(path: str | Path) -> list[str]:
    """The layers of an observation file: more than one only for a GeoPackage that has them."""
    return _layers(Path(path))


def _layers(path: Path) -> list[str]:
    """Layer names of a vector file; [] where there is nothing to choose or GDAL cannot tell."""
    if path.suffix.lower() not in (".gpkg",) or not path.is_file():
        return []
    try:
        return [str(name) for name, _ in pyogrio.list_layers(path)]
    except (DataSourceError, OSError):
        return []  # reading it says what is wrong


def _choose_layer(path: Path, column: str | None) -> str | None:
    """The layer of a multi-layer file that holds ``column``; None for a one-layer file."""
    layers = _layers(path)
    if len(layers) < 2 or column is None:
        return None
    having = [n for n in layers if column in pyogrio.read_info(path, layer=n)["fields"]]
    if len(having) == 1:
        return having[0]
    which = f"{len(having)} of them ({', '.join(having)})" if having else "none of them"
    raise LabelError(
        f"Labels '{path}' hold {len(layers)} layers ({', '.join(layers)}) and {which} "
        f"have a column '{column}'. Name the layer (--label-layer on the command line), or save "
        "the observations in a file of their own."
    )


def _read_any(
    path: Path, crs: str | None, layer: str | None, column: str | None = None
) -> gpd.GeoDataFrame:
    if not path.exists():
        raise MissingFileError(f"Labels '{path}' do not exist; check the path and its spelling.")
    if path.is_file() and path.stat().st_size == 0:
        raise LabelError(f"Labels '{path}': the file is empty (0 bytes). Export it again.")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, crs)
    if suffix in VECTOR_SUFFIXES:
        return _read_vector(path, layer or _choose_layer(path, column), crs)
    raise LabelError(
        f"Labels '{path}': the format '{suffix or path.name}' is not supported. Give a "
        "GeoPackage, GeoJSON, Shapefile (.shp or zipped) or CSV "
        f"({', '.join(VECTOR_SUFFIXES)}, .csv)."
    )


def _zipped_shapefile(path: Path) -> str | Path:
    """What GDAL should open for a zip: the zip itself, or its one Shapefile inside a folder."""
    try:
        with zipfile.ZipFile(path) as z:
            inner = [
                n
                for n in z.namelist()
                if n.lower().endswith(".shp")
                and not n.startswith("__MACOSX/")  # macOS Finder's resource forks
                and not n.rsplit("/", 1)[-1].startswith("._")
            ]
    except (zipfile.BadZipFile, OSError):
        return path  # GDAL says what is wrong with it
    if len(inner) > 1:
        raise LabelError(
            f"Labels '{path}': the zip holds {len(inner)} Shapefiles ({', '.join(inner[:5])}); "
            "zip one Shapefile (its .shp, .shx, .dbf and .prj) per file."
        )
    if len(inner) == 1 and "/" in inner[0]:
        return f"/vsizip/{path}/{inner[0]}"  # zipped with its folder, as Windows does
    return path


def _read_vector(path: Path, layer: str | None, crs: str | None = None) -> gpd.GeoDataFrame:
    source = _zipped_shapefile(path) if path.suffix.lower() == ".zip" else path
    try:
        frame = gpd.read_file(source, layer=layer, fid_as_index=True)
    except DataLayerError:
        raise LabelError(
            f"Labels '{path}': there is no layer '{layer}'. Its layers are: "
            f"{', '.join(_layers(path)) or '(none found)'}."
        ) from None
    except (DataSourceError, ValueError, OSError) as exc:
        raise LabelError(
            f"Labels '{path}': the file cannot be read as vector data ({exc}). Check that it is a "
            "complete GeoPackage, GeoJSON or zipped Shapefile."
        ) from None
    if frame.crs is not None and frame.crs.is_geographic and not frame.empty:
        left, bottom, right, top = frame.total_bounds
        if max(abs(left), abs(right)) > 360 or max(abs(bottom), abs(top)) > 90:
            if crs is not None:  # GeoJSON says WGS 84 whatever it holds
                return _with_crs(frame, crs, path)
            raise LabelError(
                f"Labels '{path}': the coordinates (x {left:.0f} to {right:.0f}, y {bottom:.0f} "
                f"to {top:.0f}) are not longitudes and latitudes, yet the file says "
                f"{frame.crs.to_string()} (GeoJSON always does). Give their CRS with "
                "--label-crs, e.g. --label-crs EPSG:32633, or save the file as a GeoPackage with "
                "its CRS."
            )
    if frame.crs is None:
        if crs is not None:
            return _with_crs(frame, crs, path)
        raise LabelError(
            f"Labels '{path}': the file has no coordinate reference system. Save it with its CRS "
            "(for a Shapefile, include the .prj file), or give it with --label-crs."
        )
    if crs is not None and _with_crs(frame.iloc[:0], crs, path).crs != frame.crs:
        frame.attrs["ignored_crs"] = [crs, frame.crs.to_string()]  # the file's own CRS wins
    return frame


def _with_crs(frame: gpd.GeoDataFrame, crs: str, path: Path) -> gpd.GeoDataFrame:
    try:
        return frame.set_crs(crs, allow_override=True)
    except CRSError as exc:
        raise LabelError(
            f"Labels '{path}': the CRS '{crs}' given for them is not understood ({exc}). Give "
            "an EPSG code (e.g. EPSG:32633 for UTM zone 33N), a PROJ string or WKT."
        ) from None


def read_table(path: Path, what: str = "Labels", dtype=None) -> pd.DataFrame:
    """A CSV separated by commas, semicolons, tabs or bars, in UTF-8 or (else) Windows-1252.

    ``what`` starts the error messages ("Labels", "Legend"); ``dtype`` as pandas takes it
    (``str``: every cell as written, "01" stays "01").
    """
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            with open(path, encoding=encoding, newline="") as f:
                sample = f.read(65536)
            try:
                sep = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
            except csv.Error:  # one column, or nothing to tell: commas
                sep = ","
            table = pd.read_csv(path, sep=sep, encoding=encoding, dtype=dtype)
            table.attrs["dialect"] = (encoding, sep)
            return table
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
            raise LabelError(f"{what} '{path}': the CSV cannot be parsed ({exc}).") from None
    raise LabelError(f"{what} '{path}': the CSV is neither UTF-8 nor Windows-1252 text.")


def _read_csv(path: Path, crs: str | None) -> gpd.GeoDataFrame:
    """The CSV's points, indexed by the line each row starts on."""
    table = read_table(path)
    table.index = _record_lines(path, *table.attrs["dialect"], len(table))
    table = table.dropna(how="all")  # rows of empty cells (";;;" below a spreadsheet's table)
    lower = {c.lower().strip(): c for c in table.columns}
    pair = next((p for p in COORD_PAIRS if p[0] in lower and p[1] in lower), None)
    if pair is None:
        accepted = ", ".join(f"{a}/{b}" for a, b in COORD_PAIRS)
        raise LabelError(
            f"Labels '{path}': no coordinate columns found among {list(table.columns)}. Name them "
            f"one of {accepted} (any case)."
        )
    x, y = (_decimals(table[lower[name]]) for name in pair)
    bad = np.flatnonzero((x.isna() | y.isna()).to_numpy())
    if len(bad):
        rows = ", ".join(str(table.index[r]) for r in bad[:5])
        first = table.iloc[bad[0]]
        seen = f"'{first[lower[pair[0]]]}', '{first[lower[pair[1]]]}'"
        raise LabelError(
            f"Labels '{path}': {len(bad)} rows have empty or non-numeric coordinates in "
            f"'{lower[pair[0]]}'/'{lower[pair[1]]}' (lines {rows}; the first reads {seen}). "
            "Write each coordinate as one decimal number (a decimal point or comma, no thousands "
            "separators, no degrees-minutes-seconds), or remove those rows."
        )
    if crs is None:
        if pair[0] not in _GEOGRAPHIC:
            degrees = bool(x.abs().le(180).all() and y.abs().le(90).all())
            give = (
                "They look like longitudes and latitudes: give it with --label-crs, e.g. "
                "--label-crs EPSG:4326."
                if degrees
                else "Give it with --label-crs, e.g. --label-crs EPSG:32633."
            )
            raise LabelError(
                f"Labels '{path}': coordinates in columns '{lower[pair[0]]}'/'{lower[pair[1]]}' "
                f"have no stated CRS. {give}"
            )
        crs = "EPSG:4326"
    frame = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(x, y))
    return _with_crs(frame, crs, path)


def _record_lines(path: Path, encoding: str, sep: str, n_rows: int) -> pd.Index:
    """The line each data row of a CSV starts on (blank lines and cells over lines counted)."""
    starts, line = [], 1
    with open(path, encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter=sep)
        for row in reader:
            if row:  # pandas skips blank lines
                starts.append(line)
            line = reader.line_num + 1
    if len(starts) - 1 != n_rows:  # a dialect the two parsers read differently
        return pd.RangeIndex(2, n_rows + 2)
    return pd.Index(starts[1:])


def _decimals(column: pd.Series) -> pd.Series:
    """Numbers of a coordinate column, written with a decimal point or a decimal comma."""
    if not pd.api.types.is_numeric_dtype(column):
        text = column.astype(str).str.strip()
        if text.str.fullmatch(r"-?\d+,\d*").any() and not text.str.contains(r"\.").any():
            column = text.str.replace(",", ".", regex=False)
    return pd.to_numeric(column, errors="coerce")


def _tidy(frame: gpd.GeoDataFrame, path: Path, column: str) -> gpd.GeoDataFrame:
    column = _label_column(frame, path, column)
    placed = frame.geometry.notna() & ~frame.geometry.is_empty
    unset = int((placed & frame[column].isna()).sum())  # empty cells, NULLs: blank classes
    frame = frame[placed & frame[column].notna()]
    if frame.empty:
        raise LabelError(
            f"Labels '{path}': the file holds no observation with both a geometry and a value in "
            f"'{column}'."
        )
    kinds = set(frame.geom_type.str.replace("Multi", ""))
    if not kinds <= {"Point", "Polygon"}:
        raise LabelError(
            f"Labels '{path}': geometries of type {sorted(kinds)} found; geomap reads points "
            "(observations) and polygons (mapped units). Buffer lines into polygons first."
        )
    names = frame[column].map(_class_name)
    if (names == "").all():
        raise LabelError(
            f"Labels '{path}': every value in '{column}' is blank; pass the column that holds "
            "the classes with --label-column."
        )
    blank = unset + int((names == "").sum())
    frame, names = frame[names != ""], names[names != ""]  # a blank class is no observation
    sites, key = _site_names(frame, path, column)
    out = gpd.GeoDataFrame(
        {"label": names, "source": path.name, **sites},
        geometry=frame.geometry.values,
        crs=frame.crs,
    ).reset_index(drop=True)
    out.attrs["blank_classes"] = blank
    out.attrs["site_key"] = key
    if "ignored_crs" in frame.attrs:
        out.attrs["ignored_crs"] = frame.attrs["ignored_crs"]
    return out


def _label_column(frame: gpd.GeoDataFrame, path: Path, column: str) -> str:
    """The frame's column named ``column``, blanks around either name ignored ("Rock Type ")."""
    columns = [c for c in frame.columns if c != frame.geometry.name]
    if column in columns:
        return column
    same = [c for c in columns if str(c).strip() == column.strip()]
    if len(same) == 1:
        return same[0]
    if not columns and path.suffix.lower() in (".shp", ".zip"):
        raise LabelError(
            f"Labels '{path}': the Shapefile has no attribute table, so no column '{column}'. A "
            "Shapefile keeps its columns in the .dbf file beside the .shp: put the .shp, .shx, "
            ".dbf and .prj files together (in one zip)."
        )
    alike = [c for c in columns if str(c).strip().casefold() == column.strip().casefold()]
    hint = f" Did you mean '{alike[0]}' (names are case-sensitive)?" if len(alike) == 1 else ""
    names = ", ".join(f"'{c}'" for c in columns) or "(none)"
    raise LabelError(
        f"Labels '{path}': there is no column '{column}'.{hint} The columns are: {names}. Pass "
        "one of them with --label-column."
    )


def _site_names(
    frame: gpd.GeoDataFrame, path: Path, column: str
) -> tuple[dict[str, pd.Series], str]:
    """What the geologist calls each observation, to find it in their notes and file.

    ``site``: the name and value of an identifier column ("station GM-023"): the first of
    :data:`SITE_COLUMNS` or ``*_id`` (spaces and hyphens read as underscores) whose values are
    nearly all distinct and are not the classes; a value written twice gets its place too. Else
    its place: "line 14" of a CSV (the header is line 1), "fid 13" of other formats (the
    feature id QGIS shows): ``frame``'s index (see :func:`_read_csv`, :func:`_read_vector`).
    ``site_key``: the identifier's value alone ("GM-023"; "" where blank), else the place's
    number, to join outputs to the file in a GIS. Also returns the key's column name (the
    identifier column's, else "line" or "fid").
    """
    word = "line" if path.suffix.lower() == ".csv" else "fid"
    numbers = pd.Series([str(i) for i in frame.index], index=frame.index)
    place = f"{word} " + numbers
    named = _site_column(frame, column)
    if named is None:
        return {"site": place, "site_key": numbers}, word
    values = frame[named]
    if word == "line":  # cells as written: "007" stays "007"
        text = read_table(path, dtype=str)
        values = text[named].set_axis(_record_lines(path, *text.attrs["dialect"], len(text)))
    names = values.loc[frame.index].map(lambda v: "" if pd.isna(v) else _class_name(v))
    sites = (f"{named} " + names).where(names != "", place)
    twice = names.duplicated(keep=False) & (names != "")
    return {"site": sites.where(~twice, sites + " (" + place + ")"), "site_key": names}, named


def _site_column(frame: gpd.GeoDataFrame, column: str) -> str | None:
    """The column that names the observations, if one does (see :func:`_site_names`)."""
    columns = {}
    for c in frame.columns:
        if c not in (column, frame.geometry.name):
            columns.setdefault(re.sub(r"[\s-]+", "_", str(c).strip().casefold()), c)
    ranked = [columns[n] for n in SITE_COLUMNS if n in columns]
    ranked += [c for n, c in columns.items() if n.endswith("_id") and c not in ranked]
    classes = frame[column].map(_class_name)
    for name in ranked:
        values = frame[name].map(lambda v: "" if pd.isna(v) else _class_name(v))
        given = values[values != ""]
        distinct = len(given) > 0 and given.nunique() >= 0.9 * len(given)
        if distinct and (given != classes[given.index]).mean() > 0.5:
            return name
    return None


def _class_name(value) -> str:
    """Text of a class value; integral floats (1.0, read from a shapefile) become "1"."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def lookalike_notes(names: Sequence[str], path: Path) -> list[str]:
    """Warnings on class names that differ only in capitals or spaces ("Granite", "granite")."""
    groups: dict[str, list[str]] = {}
    for name in class_order([str(n) for n in names]):
        groups.setdefault(" ".join(name.split()).casefold(), []).append(name)
    return [
        f"Classes {', '.join(repr(n) for n in same)} in '{path.name}' differ only in capitals or "
        f"spaces; geomap maps them as {len(same)} classes. If they are one unit, write it one "
        "way in the file."
        for same in groups.values()
        if len(same) > 1
    ]


def class_order(names: Sequence[str]) -> list[str]:
    """Sorted unique class names, numbers in numeric order ("2" before "10")."""

    def key(name: str) -> tuple:
        parts = re.split(r"([0-9]+)", name)  # text at even positions, digits at odd ones
        natural = [int(t) if i % 2 else t.lower() for i, t in enumerate(parts)]
        return (natural, name)  # the raw name breaks ties ("Basalt" / "basalt")

    return sorted(set(names), key=key)


@dataclass
class Samples:
    """Labelled pixels of the reference grid.

    ``site`` names each sample's observation as its file does and ``site_key`` is that name's
    value alone (the column it comes from is ``counts["site_key"]``). ``xy`` is where it was
    observed (a point's, or a multipoint part's, own coordinates in the grid's CRS; a polygon
    pixel's centre).
    """

    rows: np.ndarray
    cols: np.ndarray
    labels: np.ndarray
    kind: np.ndarray
    source: np.ndarray
    site: np.ndarray
    site_key: np.ndarray
    xy: np.ndarray
    counts: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, keep: np.ndarray) -> Samples:
        """The samples where ``keep`` is true, with the same counts."""
        return Samples(
            self.rows[keep],
            self.cols[keep],
            self.labels[keep],
            self.kind[keep],
            self.source[keep],
            self.site[keep],
            self.site_key[keep],
            self.xy[keep],
            dict(self.counts),
        )


def sample_labels(
    labels: gpd.GeoDataFrame,
    grid: Grid,
    *,
    max_per_class: int = 2000,
    random_state: int | None = 0,
) -> Samples:
    """Place observations on the grid's pixels.

    Raises
    ------
    LabelError
        If no observation falls on the grid.
    """
    given = labels
    labels = labels.to_crs(grid.crs).reset_index(drop=True)
    rng = np.random.default_rng(random_state)
    is_point = labels.geom_type.isin(["Point", "MultiPoint"]).to_numpy()
    parts = [
        _point_pixels(labels[is_point], grid),
        _polygon_pixels(labels[~is_point], grid, max_per_class, rng),
    ]
    rows, cols, idx, kind, xy = (np.concatenate(p) for p in zip(*parts))
    if len(rows) == 0:
        raise LabelError(_no_overlap_message(labels, grid, given))
    fids = (labels.index + 1).astype(str)
    sites = labels["site"] if "site" in labels else "fid " + fids
    keys = labels["site_key"] if "site_key" in labels else pd.Series(fids)
    samples = Samples(
        rows=rows,
        cols=cols,
        labels=labels["label"].to_numpy()[idx].astype(str),
        kind=kind,
        source=labels["source"].to_numpy()[idx].astype(str),
        site=sites.to_numpy()[idx].astype(str),
        site_key=keys.to_numpy()[idx].astype(str),
        xy=xy,
    )
    samples.counts = {
        "observations": int(len(labels)),
        "points": int(is_point.sum()),
        "polygons": int((~is_point).sum()),
        "points_outside_grid": int(is_point.sum() - (kind == "point").sum()),
        "polygon_pixels": int((kind == "polygon").sum()),
        "blank_classes": int(labels.attrs.get("blank_classes", 0)),
        "site_key": labels.attrs.get("site_key", "fid"),
        "classes_off_grid": class_order(set(labels["label"]) - set(samples.labels)),
    }
    if "ignored_crs" in labels.attrs:
        samples.counts["ignored_crs"] = labels.attrs["ignored_crs"]
    return samples


def placement_notes(path: Path, counts: dict) -> list[str]:
    """Warnings on observations read but not used, and on classes left with none.

    Observations with a blank class, off the rasters or on nodata are not used; a class of the
    file may be left with no observation. ``counts`` is :attr:`Samples.counts`, with
    ``on_nodata`` and ``classes_on_nodata`` once features were extracted.
    """
    notes = []
    if counts.get("ignored_crs"):
        given, own = counts["ignored_crs"]
        notes.append(
            f"The CRS given for '{path.name}' ({given}) is not used: the file states its own, "
            f"{own}. Clear --label-crs, or correct the file's CRS if that one is wrong."
        )
    blank = counts.get("blank_classes", 0)
    if blank:
        notes.append(f"{blank} observations in '{path.name}' have a blank class and are not used.")
    outside = counts.get("points_outside_grid", 0)
    if outside:
        notes.append(
            f"{outside} of {counts.get('points', 0)} points in '{path.name}' fall outside the "
            "rasters' common footprint and are not used."
        )
    nodata = counts.get("on_nodata", 0)
    if nodata:
        what = "samples (points or polygon pixels)" if counts.get("polygon_pixels") else "points"
        notes.append(
            f"{nodata} {what} of '{path.name}' fall where no raster has data and are not used."
        )
    lost = [*counts.get("classes_off_grid", []), *counts.get("classes_on_nodata", [])]
    if lost:
        notes.append(
            f"Class(es) {', '.join(repr(str(c)) for c in lost)} of '{path.name}' have no "
            "observation where the rasters have data, so the map cannot show them. Add "
            "observations of them inside the rasters."
        )
    return notes


def _point_pixels(points: gpd.GeoDataFrame, grid: Grid) -> tuple[np.ndarray, ...]:
    exploded = points.explode(index_parts=False)
    x, y = exploded.geometry.x.to_numpy(), exploded.geometry.y.to_numpy()
    fx, fy = (x - grid.transform.c) / grid.transform.a, (y - grid.transform.f) / grid.transform.e
    placed = np.isfinite(fx) & np.isfinite(fy)  # inf: not valid in their stated CRS
    col = np.floor(np.where(placed, fx, -1)).astype("int64")
    row = np.floor(np.where(placed, fy, -1)).astype("int64")
    inside = (row >= 0) & (row < grid.height) & (col >= 0) & (col < grid.width)
    idx = exploded.index.to_numpy()[inside]
    xy = np.column_stack([x[inside], y[inside]])  # where it was observed, not the pixel centre
    return row[inside], col[inside], idx, np.full(len(idx), "point"), xy


def _polygon_pixels(
    polygons: gpd.GeoDataFrame, grid: Grid, cap: int, rng: np.random.Generator
) -> tuple[np.ndarray, ...]:
    empty = (np.empty(0, "int64"),) * 3 + (np.empty(0, "<U7"), np.empty((0, 2)))
    if polygons.empty:
        return empty
    left, bottom, right, top = polygons.total_bounds
    c0 = max(0, int(np.floor((left - grid.transform.c) / grid.res[0])))
    r0 = max(0, int(np.floor((grid.transform.f - top) / grid.res[1])))
    c1 = min(grid.width, int(np.ceil((right - grid.transform.c) / grid.res[0])))
    r1 = min(grid.height, int(np.ceil((grid.transform.f - bottom) / grid.res[1])))
    if c1 <= c0 or r1 <= r0:
        return empty
    pixel_area = grid.res[0] * grid.res[1]
    expected = np.maximum(polygons.area.to_numpy() / pixel_area, 1.0)
    # Thin big polygons while burning: each keeps about four times its share of its class's cap,
    # so memory is bounded per class, not by the mapped area.
    per_class = polygons["label"].map(polygons["label"].value_counts()).to_numpy()
    p_by_polygon = np.minimum(1.0, 4.0 * np.maximum(cap / per_class, 16) / expected)
    shapes = list(zip(polygons.geometry.values, polygons.index.to_numpy() + 1))
    found = []
    for row in range(r0, r1, _RASTERISE_BLOCK):
        for col in range(c0, c1, _RASTERISE_BLOCK):
            win = Window(col, row, min(_RASTERISE_BLOCK, c1 - col), min(_RASTERISE_BLOCK, r1 - row))
            burnt = rasterize(
                shapes,
                out_shape=(int(win.height), int(win.width)),
                transform=grid.transform @ grid.transform.translation(win.col_off, win.row_off),
                fill=0,
                dtype="int32",
            )
            rr, cc = np.nonzero(burnt)
            ids = burnt[rr, cc] - 1
            keep = rng.random(len(ids)) < p_by_polygon[polygons.index.get_indexer(ids)]
            found.append((rr[keep] + row, cc[keep] + col, ids[keep]))
    rows, cols, ids = (np.concatenate(p) for p in zip(*found))
    rows, cols, ids = _add_unburnt(polygons, grid, rows, cols, ids)
    if len(ids) == 0:
        return empty
    chosen = _round_robin(polygons.loc[ids, "label"].to_numpy(), ids, cap, rng)
    rows, cols = rows[chosen], cols[chosen]
    centres = np.column_stack(grid.xy(rows, cols))
    return rows, cols, ids[chosen], np.full(len(chosen), "polygon"), centres


def _add_unburnt(polygons, grid, rows, cols, ids):
    """Polygons smaller than a pixel centre burn nothing: give each its representative point."""
    missing = np.setdiff1d(polygons.index.to_numpy(), ids)
    if len(missing) == 0:
        return rows, cols, ids
    r, c, idx, *_ = _point_pixels(
        gpd.GeoDataFrame(geometry=polygons.loc[missing].representative_point(), crs=polygons.crs),
        grid,
    )
    return np.r_[rows, r], np.r_[cols, c], np.r_[ids, idx]


def _round_robin(
    classes: np.ndarray, polygon: np.ndarray, cap: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices of at most ``cap`` pixels per class, drawn in turn from each of its polygons."""
    order = rng.permutation(len(polygon))
    order = order[np.argsort(polygon[order], kind="stable")]
    starts = np.r_[0, np.flatnonzero(np.diff(polygon[order])) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    keep = []
    for cls in np.unique(classes):
        members = order[classes[order] == cls]
        ranks = rank[classes[order] == cls]
        keep.append(members[np.lexsort((rng.random(len(ranks)), ranks))][:cap])
    return np.sort(np.concatenate(keep))


def _no_overlap_message(labels: gpd.GeoDataFrame, grid: Grid, given: gpd.GeoDataFrame) -> str:
    lb = ", ".join(f"{v:.1f}" for v in labels.total_bounds)
    gb = ", ".join(f"{v:.1f}" for v in grid.bounds)
    src = labels["source"].iloc[0] if len(labels) else "labels"
    if not np.isfinite(labels.total_bounds).all():  # coordinates impossible in their stated CRS
        left, bottom, right, top = given.total_bounds
        return (
            f"Labels '{src}': the coordinates (x {left:.6g} to {right:.6g}, y {bottom:.6g} to "
            f"{top:.6g}) cannot be placed on the rasters' {grid.crs.to_string()}: they are not "
            f"valid in the CRS given for them, {given.crs.to_string()} (for EPSG:4326, longitudes "
            "within +-180 and latitudes within +-90). Give the CRS they are really in (--label-crs "
            "for a CSV or a file without one)."
        )
    swapped = (
        " With longitude and latitude swapped they fall on the rasters: check which column "
        "holds which."
        if _on_grid_if_swapped(given, grid)
        else ""
    )
    return (
        f"Labels '{src}' cover no pixel of the raster stack: in {grid.crs.to_string()} the labels "
        f"span ({lb}) and the stack spans ({gb}).{swapped} Check the file, its CRS (--label-crs "
        "for a CSV) or the rasters."
    )


def _on_grid_if_swapped(given: gpd.GeoDataFrame, grid: Grid) -> bool:
    """Whether longitude/latitude labels would fall on the grid with their columns swapped."""
    if given.crs is None or not given.crs.is_geographic or given.empty:
        return False
    points = given.geometry.representative_point()[:1000]
    turned = gpd.GeoSeries(gpd.points_from_xy(points.y, points.x), crs=given.crs)
    with np.errstate(all="ignore"):
        moved = turned.to_crs(grid.crs)
    left, bottom, right, top = grid.bounds
    x, y = moved.x.to_numpy(), moved.y.to_numpy()
    return bool(((x >= left) & (x <= right) & (y >= bottom) & (y <= top)).any())


def extract_features(
    stack: RasterStack, recipe: FeatureRecipe, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Features at the given pixels, computed exactly as in a streamed prediction.

    Returns float32 of shape (n_samples, n_features), NaN where a source has no data.
    """
    out = np.full((len(rows), recipe.n_features), np.nan, dtype="float32")
    block = _EXTRACT_BLOCK
    key = (rows // block) * (stack.grid.width // block + 1) + cols // block
    for k in np.unique(key):
        members = np.flatnonzero(key == k)
        r0, c0 = (rows[members[0]] // block) * block, (cols[members[0]] // block) * block
        win = Window(c0, r0, min(block, stack.grid.width - c0), min(block, stack.grid.height - r0))
        feats = recipe.compute(stack.read(win, halo=recipe.halo))
        out[members] = feats[:, rows[members] - r0, cols[members] - c0].T
    return out
