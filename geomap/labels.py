"""Ground truth files: field observations (points) and mapped patches (polygons) as read.

:func:`read_labels` reads GeoPackage, GeoJSON, Shapefile (plain or zipped), KML, CSV and Excel
sheets (:mod:`geomap.tables`) into a
GeoDataFrame with a text ``label`` column, the observations named as their file names them;
:mod:`geomap.placement` puts them on the stack's grid.
"""

from __future__ import annotations

import re
import unicodedata
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pyproj
import shapely
from pyogrio.errors import DataLayerError, DataSourceError
from pyproj.exceptions import CRSError

from geomap.errors import LabelError, MissingFileError, library_reason, proj_reason
from geomap.grid import Grid, utm_hint
from geomap.tables import (
    COORD_PAIRS,
    GEOGRAPHIC,
    SHEET_SUFFIXES,
    coordinate_name,
    coordinate_pair,
    coordinate_slip,
    decimals,
    read_sheet,
    read_table,
    record_lines,
    sheet_columns,
    sheet_names,
    title_line,
)

#: Names of columns that identify an observation (case-insensitive), in order of preference.
SITE_COLUMNS = (
    *("station", "station_id", "site", "site_id", "obs_id", "observation", "sample", "sample_id"),
    *("point_id", "waypoint", "wpt", "id", "name"),
    # Spanish, Portuguese, French and German field sheets
    *("estacion", "estación", "estação", "punto", "ponto", "muestra", "amostra", "échantillon"),
    *("echantillon", "stationsnummer", "probe", "aufschluss"),
)
#: With this many points or more, a column with a different value at nearly every point is
#: taken for an identifier, not a class.
IDENTIFIER_POINTS = 20
VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".zip", ".kml", ".kmz")


def read_labels(
    path: str | Path,
    column: str,
    *,
    crs: str | None = None,
    layer: str | None = None,
    grid: Grid | None = None,
) -> gpd.GeoDataFrame:
    """Read observations into a GeoDataFrame with columns ``label``, ``source``, ``site``, geometry.

    ``site`` names each observation as the file does (an identifier column such as ``station``
    or ``obs_id``, else "line 14" of a CSV, "row 14" of a sheet or "fid 13" of a vector file).

    Parameters
    ----------
    path : file path
        GeoPackage, GeoJSON, Shapefile (``.shp`` or zipped), KML, or a CSV, Excel workbook
        (``.xlsx``) or OpenDocument spreadsheet (``.ods``) with coordinate columns.
    column : str
        The column holding the class of each observation (text or integers).
    crs : str, optional
        The CRS of a table's coordinates. Default EPSG:4326 for lon/lat columns; required for
        x/y.
    layer : str, optional
        The layer of a multi-layer file (a project GeoPackage), or the sheet of a workbook.
        Default: the file's only layer, or the only one with a column ``column``.
    grid : Grid, optional
        The rasters' grid: a table of x/y with no CRS given is told the grid's CRS when its points
        fall on the grid read in it.

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
    return _tidy(_read_any(path, crs, layer, column, grid), path, column, layer)


def label_columns(
    path: str | Path, *, crs: str | None = None, layer: str | None = None
) -> list[str]:
    """The columns of an observation file that may hold the class, in file order.

    The geometry and, in a table (CSV, sheet), the coordinate columns are left out.

    In a file of several layers (or sheets) and no ``layer``, the columns of every layer.

    Raises
    ------
    MissingFileError, LabelError
        As :func:`read_labels`.
    """
    path = Path(path)
    layers = _layers(path) if layer is None else []
    suffix = path.suffix.lower()
    if len(layers) > 1:
        if suffix in SHEET_SUFFIXES:
            layers = _placed_sheets(path, layers)
        columns = list(dict.fromkeys(str(f) for name in layers for f in _fields(path, name)))
        geometry = None
    elif suffix in (".csv", *SHEET_SUFFIXES) and path.is_file() and path.stat().st_size:
        # no CRS needed to list them: the one to give is told once the rasters' grid is known
        columns, geometry = list(_table(path, layer, None).columns), None
    elif (one := layer or (layers[0] if len(layers) == 1 else None)) and one in (
        layers or _layers(path)
    ):
        # the layer's field list: a regional map's features need not be read to list them
        columns, geometry = [str(f) for f in _fields(path, one)], None
    else:
        frame = _read_any(path, crs, layer)
        columns, geometry = list(frame.columns), frame.geometry.name
    lower = {coordinate_name(c) for c in columns}
    coords = {c for pair in COORD_PAIRS if pair[0] in lower and pair[1] in lower for c in pair}
    return [str(c) for c in columns if c != geometry and coordinate_name(c) not in coords]


#: Formats whose layers are folders of one set of observations (Google Earth's "Day 1", "Day 2"):
#: read together, not chosen between.
FOLDER_SUFFIXES = (".kml", ".kmz")


def label_layers(path: str | Path) -> list[str]:
    """The layers of an observation file that hold geometries (a project GeoPackage's).

    A KML's folders are read together: []. A workbook's sheets that hold cells.

    Raises
    ------
    LabelError
        If a workbook cannot be read.
    """
    path = Path(path)
    return [] if path.suffix.lower() in FOLDER_SUFFIXES else _layers(path)


def observation_layer(path: str | Path) -> str | None:
    """The layer to offer first: of points or polygons, or a sheet with coordinate columns.

    A vector file's first layer of points or polygons (a delivery's faults, lines, may come
    first), a workbook's first sheet with coordinate columns; else the first sheet or layer.
    None for a workbook with no sheet holding cells, or a file GDAL cannot list.
    """
    path = Path(path)
    if path.suffix.lower() in SHEET_SUFFIXES:
        sheets = _layers(path)
        return _placed_sheets(path, sheets)[0] if sheets else None
    kinds = _vector_layers(path)
    areas = [n for n, kind in kinds if "Point" in kind or "Polygon" in kind]
    return (areas or [n for n, _ in kinds] or [None])[0]


def _layers(path: Path) -> list[str]:
    """Names of the layers of a vector file that hold geometries, or a workbook's sheets.

    [] if GDAL cannot tell.

    Raises
    ------
    LabelError
        If a workbook, or one of its sheets, cannot be read: its first sheet may read well, and
        be taken for the observations (a damaged .ods's cover sheet).
    """
    if path.suffix.lower() in SHEET_SUFFIXES and path.is_file():  # an empty Sheet2: none
        return [n for n in sheet_names(path) if sheet_columns(path, n)]
    return [name for name, _ in _vector_layers(path)]


def _vector_layers(path: Path) -> list[tuple[str, str]]:
    """(name, geometry type) of each layer of a vector file that holds geometries.

    [] if GDAL cannot tell, or for a file of another kind.
    """
    if path.suffix.lower() not in VECTOR_SUFFIXES or not path.is_file():
        return []
    try:
        source = _zipped_shapefile(path) if path.suffix.lower() == ".zip" else path
        layers = pyogrio.list_layers(source)
    except (DataSourceError, OSError, LabelError):
        return []  # reading it says what is wrong
    return [(str(name), str(kind)) for name, kind in layers if kind is not None]


def _choose_layer(path: Path, column: str | None) -> str | None:
    """The layer of a multi-layer file that holds ``column``; None for a one-layer file."""
    layers = _layers(path)
    if len(layers) == 1 and path.suffix.lower() in (".gpkg", *SHEET_SUFFIXES):
        return layers[0]  # named: GDAL need not take it first, nor is it a workbook's first sheet
    if len(layers) < 2 or column is None:
        return None
    having = [  # blanks around either name ignored, as for a file of one layer ("Rock Type ")
        n for n in layers if column.strip() in {str(f).strip() for f in _fields(path, n)}
    ]
    if len(having) > 1 and path.suffix.lower() in SHEET_SUFFIXES:
        having = _placed_sheets(path, having)
    if len(having) == 1:
        return having[0]
    which = f"{len(having)} of them ({', '.join(having)})" if having else "none of them"
    kind = "sheets" if path.suffix.lower() in SHEET_SUFFIXES else "layers"
    raise LabelError(
        f"Labels '{path}' hold {len(layers)} {kind} ({', '.join(layers)}) and {which} "
        f"have a column '{column}'. Name the {kind[:-1]} (--label-layer on the command line), "
        "or save the observations in a file of their own."
    )


def _placed_sheets(path: Path, sheets: list[str]) -> list[str]:
    """The sheets with coordinate columns (observations, not a legend's or notes), else all."""
    return [n for n in sheets if coordinate_pair(_fields(path, n))] or sheets


def _fields(path: Path, layer: str) -> list:
    """The columns of a layer, or of a workbook's sheet (none for an empty one)."""
    if path.suffix.lower() in SHEET_SUFFIXES:
        return sheet_columns(path, layer)
    source = _zipped_shapefile(path) if path.suffix.lower() == ".zip" else path
    return list(pyogrio.read_info(source, layer=layer)["fields"])


def _read_any(
    path: Path,
    crs: str | None,
    layer: str | None,
    column: str | None = None,
    grid: Grid | None = None,
) -> gpd.GeoDataFrame:
    if not path.exists():
        raise MissingFileError(f"Labels '{path}' do not exist; check the path and its spelling.")
    if path.is_file() and path.stat().st_size == 0:
        raise LabelError(f"Labels '{path}': the file is empty (0 bytes). Export it again.")
    suffix = path.suffix.lower()
    if suffix in (".csv", *SHEET_SUFFIXES):
        return _read_table(path, crs, grid, _table(path, layer, column))
    if suffix in FOLDER_SUFFIXES and layer is None and len(_layers(path)) > 1:
        return _read_folders(path, _layers(path), column, crs)
    if suffix in VECTOR_SUFFIXES:
        return _read_vector(path, layer or _choose_layer(path, column), crs, grid)
    raise LabelError(
        f"Labels '{path}': the format '{suffix or path.name}' is not supported. Give a "
        "GeoPackage, GeoJSON, Shapefile (.shp or zipped), KML, CSV, Excel workbook or .ods "
        f"({', '.join((*VECTOR_SUFFIXES, '.csv', *SHEET_SUFFIXES))})."
    )


def _read_folders(
    path: Path, folders: list[str], column: str | None, crs: str | None
) -> gpd.GeoDataFrame:
    """The folders of a KML that hold ``column`` (all of them if none does) as one frame.

    Only the first was read: a field day's file of "Day 1" and "Day 2" gave the first day's
    observations alone, with a warning on the terminal only.
    """
    frames = [_read_vector(path, f, crs) for f in folders]
    having = [i for i, f in enumerate(frames) if column is None or column in f.columns]
    having = having or list(range(len(frames)))
    frame = pd.concat([frames[i] for i in having], ignore_index=True)
    frame = gpd.GeoDataFrame(frame, geometry=frames[having[0]].geometry.name, crs=frames[0].crs)
    frame.index = frame.index + 1  # "fid" counts over the folders read, from 1
    frame.attrs["folders"] = [folders[i] for i in having]
    for name in ("ignored_crs", "assumed_crs"):
        if name in frames[0].attrs:
            frame.attrs[name] = frames[0].attrs[name]
    return frame


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
    folders = {n.rpartition("/")[0] for n in inner}
    if len(folders) > 1:
        raise LabelError(
            f"Labels '{path}': the zip holds {len(inner)} Shapefiles in {len(folders)} folders "
            f"({', '.join(inner[:5])}); zip one Shapefile (its .shp, .shx, .dbf and .prj) per "
            "file, or those of one folder."
        )
    if len(inner) == 1 and "/" in inner[0]:
        return f"/vsizip/{path}/{inner[0]}"  # zipped with its folder, as Windows does
    if len(inner) > 1 and folders != {""}:  # several in one folder: its layers, by name
        return f"/vsizip/{path}/{folders.pop()}"
    return path


def _read_vector(
    path: Path, layer: str | None, crs: str | None = None, grid: Grid | None = None
) -> gpd.GeoDataFrame:
    source = _zipped_shapefile(path) if path.suffix.lower() == ".zip" else path
    try:
        frame = gpd.read_file(source, layer=layer, fid_as_index=True)
    except DataLayerError:
        raise LabelError(
            f"Labels '{path}': there is no layer '{layer}'. Its layers are: "
            f"{', '.join(_layers(path)) or '(none found)'}."
        ) from None
    except (DataSourceError, ValueError, OSError) as exc:
        reason = library_reason(exc)
        if "malformed" in reason or "not a database" in reason:  # SQLite: a GeoPackage
            raise LabelError(
                f"Labels '{path}': the file is damaged or cut short (SQLite: {reason}). If it was "
                "copied or downloaded, do that again."
            ) from None
        raise LabelError(
            f"Labels '{path}': the file cannot be read as vector data ({reason}). Check that it "
            "is a complete GeoPackage, GeoJSON or zipped Shapefile."
        ) from None
    if not isinstance(frame, gpd.GeoDataFrame):  # GDAL read a table: no geometry column
        what = f"the layer '{layer}'" if layer else "the file"
        fix = (
            "zip the Shapefile's .shp and .shx with its .dbf and .prj, or unzip a CSV and give it "
            "as it is"
            if path.suffix.lower() == ".zip"
            else "give the layer or file of the observations' points or polygons"
        )
        raise LabelError(
            f"Labels '{path}': {what} holds a table without geometry (columns "
            f"{', '.join(map(str, frame.columns)) or 'none'}), so no observation has a place; "
            f"{fix}."
        )
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
            frame = _with_crs(frame, crs, path)
            frame.attrs["assumed_crs"] = crs  # said: a box kept from the file before reads it
            return frame
        raise LabelError(
            f"Labels '{path}': the file has no coordinate reference system. Save it with its CRS "
            "(for a Shapefile, include the .prj file), or give it with --label-crs."
            + _no_crs_hint(frame, grid)
        )
    if crs is not None and _with_crs(frame.iloc[:0], crs, path).crs != frame.crs:
        frame.attrs["ignored_crs"] = [crs, frame.crs.to_string()]  # the file's own CRS wins
    return frame


def _with_crs(frame: gpd.GeoDataFrame, crs: str, path: Path) -> gpd.GeoDataFrame:
    try:
        return frame.set_crs(crs, allow_override=True)
    except CRSError as exc:
        raise LabelError(
            f"Labels '{path}': the CRS '{crs}' given for them is not understood (PROJ: "
            f"{proj_reason(exc)}). Give an EPSG code (e.g. EPSG:32633 for UTM zone 33N), a PROJ "
            f"string or WKT.{utm_hint(crs)}"
        ) from None


def _no_crs_hint(frame: gpd.GeoDataFrame, grid: Grid | None) -> str:
    """Which CRS a vector file without one is likely in, from its extent (and the grid's)."""
    if frame.empty or not np.isfinite(frame.total_bounds).all():
        return ""
    left, bottom, right, top = frame.total_bounds
    extent = f"x {left:.6g} to {right:.6g}, y {bottom:.6g} to {top:.6g}"
    points = frame.geometry[~frame.geometry.is_empty].representative_point()
    x, y = points.x.to_numpy(), points.y.to_numpy()
    on_grid = grid is not None and _falls_on(x, y, grid)
    if not on_grid and max(abs(left), abs(right)) <= 180 and max(abs(bottom), abs(top)) <= 90:
        return (
            f" Its coordinates ({extent}) look like longitudes and latitudes: --label-crs "
            "EPSG:4326."
        )
    if grid is None:
        return f" Its coordinates: {extent}."
    return f" Its coordinates: {extent}. " + _crs_to_give(x, y, grid)


def _falls_on(x: np.ndarray, y: np.ndarray, grid: Grid) -> bool:
    """Whether at least half the points lie on the grid, read in its CRS."""
    west, south, east, north = grid.bounds
    return bool(np.mean((x >= west) & (x <= east) & (y >= south) & (y <= north)) >= 0.5)


def _crs_to_give(x: np.ndarray, y: np.ndarray, grid: Grid | None) -> str:
    """What to tell a user whose eastings and northings (a CSV, a vector file) state no CRS."""
    if grid is None:
        return "Give it with --label-crs, e.g. --label-crs EPSG:32633."
    where = pyproj.CRS.from_user_input(grid.crs.to_wkt()).name
    code = grid.crs.to_epsg()
    if code:
        crs, option = f"EPSG:{code} ({where})", f"--label-crs EPSG:{code}"
    else:  # a mine grid's own projection
        crs = "one of no EPSG code" + (f" ('{where}')" if where != "unknown" else "")
        option = "--label-crs and that CRS's WKT or PROJ string"
    if _falls_on(x, y, grid):
        return (
            f"They fall on the rasters' grid read in its CRS, {crs}: if they are in it, or "
            f"another of the same zone, give it with {option}."
        )
    return f"Give it with --label-crs (the rasters are in {crs})."


#: A coordinate column's unit, as written in a row below the column names ("m", "[deg]").
_UNIT = re.compile(
    r"[\[(]?\s*(m|metres?|meters?|km|ft|feet|deg|degrees?|°|dd|dms|utm)\s*[\])]?", re.I
)


def _is_unit(cell) -> bool:
    """Whether a table's cell is a coordinate's unit (a units row under a spreadsheet's names)."""
    return isinstance(cell, str) and _UNIT.fullmatch(cell.strip()) is not None


def _reads(cells: pd.Series) -> str:
    """A row's coordinate cells as quoted in a message, with the slip a cell shows, if any."""
    quoted = []
    for value in cells:
        slip = None if pd.isna(value) else coordinate_slip(str(value))
        quoted.append(
            "(empty)" if pd.isna(value) else f"'{value}'" + (f" ({slip})" if slip else "")
        )
    return ", ".join(quoted)


def _bad_coordinates(where: str, table, columns: list, bad: np.ndarray, row_word: str):
    """The error for rows whose coordinates are empty or not numbers, naming the first ones.

    Cells are quoted in the file's column order, as the user sees them in the file.
    """
    columns = sorted(columns, key=list(table.columns).index)
    rows = ", ".join(str(table.index[r]) for r in bad[:5])
    reads = [_reads(table.iloc[r][columns]) for r in bad[:3]]
    dated = any(re.search(r"'\d{4}-\d\d-\d\d(T[\d:]+)?'", text) for text in reads)
    many = len(bad) > 1
    after = "".join(f"; {row_word} {table.index[r]} reads {t}" for r, t in zip(bad[1:], reads[1:]))
    return LabelError(
        f"{where}: {len(bad)} {'rows have' if many else 'row has'} empty or "
        f"non-numeric coordinates in '{columns[0]}'/'{columns[1]}' ({row_word}{'s' * many} "
        f"{rows}; the first reads {reads[0]}{after}). Write each coordinate as "
        "one decimal "
        "number (a decimal point or comma, no thousands separators) or as degrees, minutes and "
        "seconds (31°57'08\"S), or remove those rows."
        + (
            " Excel took a coordinate for a date: format the column as Number (or Text) and "
            "type it again."
            if dated
            else ""
        )
    )


def _table(path: Path, layer: str | None, column: str | None) -> pd.DataFrame:
    """A CSV indexed by the line each row starts on, or a workbook's sheet by row number.

    Every cell is read as written: unit codes "2.1" and "2.10" are two units (read as numbers,
    both were 2.1, and a legend's "2.10" named no observation). ``attrs["row_word"]`` is what
    the file's rows are called: "line" or "row".
    """
    if path.suffix.lower() in SHEET_SUFFIXES:
        table = read_sheet(path, layer or _choose_layer(path, column))
        table.attrs["row_word"] = "row"
        return table
    table = read_table(path, dtype=str)
    table.index = record_lines(path, *table.attrs["dialect"], len(table))
    table.attrs["row_word"] = "line"
    return table


def _read_table(
    path: Path, crs: str | None, grid: Grid | None, table: pd.DataFrame
) -> gpd.GeoDataFrame:
    """The points of a table (:func:`_table`); coordinates as :func:`geomap.tables.decimals`."""
    row_word = table.attrs["row_word"]
    sheet = table.attrs.get("sheet")
    where = f"Labels '{path}'" + (f", sheet '{sheet}'" if sheet is not None else "")
    table = table.dropna(how="all")  # rows of empty cells (";;;" below a spreadsheet's table)
    lower: dict = {}
    for c in table.columns:  # a repeated name: the first column of it
        lower.setdefault(coordinate_name(c), c)
    pairs = [p for p in COORD_PAIRS if p[0] in lower and p[1] in lower]
    # an empty X/Y beside filled Lon/Lat (a template's columns never filled in) is no pair
    filled = [p for p in pairs if all(table[lower[c]].notna().any() for c in p)]
    pair = next(iter(filled or pairs), None)
    if pair is None:
        title = title_line(path, *table.attrs["dialect"]) if row_word == "line" else None
        if title:
            raise LabelError(f"Labels '{path}': {title}")
        accepted = ", ".join(f"{a}/{b}" for a, b in COORD_PAIRS)
        raise LabelError(
            f"{where}: no coordinate columns found among {list(table.columns)}. Name them "
            f"one of {accepted} (any case; a unit such as ' (m)' or a '_coord' ending is fine)."
        )
    numbers = table.attrs.get("numbers")  # a sheet's cells that held numbers
    x, y = (decimals(table[lower[n]], None if numbers is None else numbers[lower[n]]) for n in pair)
    if len(table) and all(_is_unit(table[lower[n]].iloc[0]) for n in pair):
        table, x, y = table.iloc[1:], x.iloc[1:], y.iloc[1:]  # a row of units below the names
    bad = np.flatnonzero((x.isna() | y.isna()).to_numpy())
    if len(bad):
        raise _bad_coordinates(where, table, [lower[n] for n in pair], bad, row_word)
    if crs is None:
        if pair[0] not in GEOGRAPHIC:
            degrees = bool(x.abs().le(180).all() and y.abs().le(90).all())
            give = (
                "They look like longitudes and latitudes: give it with --label-crs, e.g. "
                "--label-crs EPSG:4326."
                if degrees
                else _crs_to_give(x.to_numpy(), y.to_numpy(), grid)
            )
            raise LabelError(
                f"{where}: coordinates in columns '{lower[pair[0]]}'/'{lower[pair[1]]}' "
                f"have no stated CRS. {give}"
            )
        crs = "EPSG:4326"
    frame = gpd.GeoDataFrame(table, geometry=gpd.points_from_xy(x, y))
    return _with_crs(frame, crs, path)


def _tidy(
    frame: gpd.GeoDataFrame, path: Path, column: str, layer: str | None = None
) -> gpd.GeoDataFrame:
    column = _label_column(frame, path, column)
    placed = frame.geometry.notna() & ~frame.geometry.is_empty
    unset = int((placed & frame[column].isna()).sum())  # empty cells, NULLs: blank classes
    unplaced = frame[column][~placed & frame[column].notna()]  # a lost GPS fix, a NULL shape
    unplaced = unplaced[~unplaced.map(lambda v: isinstance(v, (list, tuple, dict, np.ndarray)))]
    unplaced = unplaced.map(class_name)
    unplaced = unplaced[unplaced != ""]
    frame = frame[placed & frame[column].notna()]
    if frame.empty:
        raise LabelError(
            f"Labels '{path}': the file holds no observation with both a geometry and a value in "
            f"'{column}'."
        )
    frame = _collections_as_parts(frame)
    kinds = set(frame.geom_type.str.replace("Multi", ""))
    if not kinds <= {"Point", "Polygon"}:
        kind = frame.geom_type.replace("GeometryCollection", "GeometryCollection of lines")
        other = kind[~kind.str.replace("Multi", "").isin(["Point", "Polygon"])]
        what = ", ".join(f"{n} {t}" for t, n in other.value_counts().sort_index().items())
        others = [n for n in _layers(Path(path)) if n != layer] if layer else []
        raise LabelError(
            f"Labels '{path}': geometries geomap does not read ({what}); it reads points "
            "(observations) and polygons (mapped units). "
            + (
                f"If another of its layers holds them ({', '.join(others[:5])}), choose it "
                "(--label-layer; the Data page's layer box); else buffer lines into polygons."
                if others
                else "Buffer lines into polygons first."
            )
        )
    listed = frame[column].map(lambda v: isinstance(v, (list, tuple, dict, np.ndarray)))
    if listed.any():
        first = [str(v) for v in frame[column][listed].iloc[0]]  # lists: read as arrays
        raise LabelError(
            f"Labels '{path}': {int(listed.sum())} values in '{column}' are lists, not one class "
            f"each (the first reads {first!r}). Give each observation one class, as text or a "
            "number."
        )
    names = frame[column].map(class_name)
    if (names == "").all():
        raise LabelError(
            f"Labels '{path}': every value in '{column}' is blank; pass the column that holds "
            "the classes with --label-column."
        )
    blank = unset + int((names == "").sum())
    frame, names = frame[names != ""], names[names != ""]  # a blank class is no observation
    _refuse_identifiers(frame, names, path, column)
    sites, key = _site_names(frame, path, column)
    out = gpd.GeoDataFrame(
        {"label": names, "source": path.name, **sites},
        geometry=frame.geometry.values,
        crs=frame.crs,
    ).reset_index(drop=True)
    out.attrs["blank_classes"] = blank
    out.attrs["no_geometry"] = int(len(unplaced))
    out.attrs["classes_without_geometry"] = sorted(set(unplaced) - set(names), key=str)
    out.attrs["site_key"] = key
    for name in ("ignored_crs", "assumed_crs", "folders"):
        if name in frame.attrs:
            out.attrs[name] = frame.attrs[name]
    return out


def _collections_as_parts(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Geometry collections as their areas, else their points.

    QGIS's "Fix geometries" can leave a polygon with a stray line in one; a collection of lines
    only stays as it is, and is refused.
    """
    collection = (frame.geom_type == "GeometryCollection").to_numpy()
    if not collection.any():
        return frame
    frame = frame.copy()
    geometry = frame.geometry.to_numpy()
    for i in np.flatnonzero(collection):
        parts = collection_parts(geometry[i], (2, 0))
        geometry[i] = geometry[i] if parts is None else parts
    frame[frame.geometry.name] = gpd.GeoSeries(geometry, index=frame.index, crs=frame.crs)
    return frame


def collection_parts(collection, dimensions: Sequence[int]):
    """The union of a collection's parts of the first of ``dimensions`` it has, or None.

    Dimension 2: its areas; 0: its points.
    """
    parts = shapely.get_parts(collection)
    dims = shapely.get_dimensions(parts)
    for dim in dimensions:
        if (dims == dim).any():
            return shapely.union_all(parts[dims == dim])
    return None


def _refuse_identifiers(frame: gpd.GeoDataFrame, names: pd.Series, path: Path, column: str):
    """Refuse a column that names each observation (a station number) rather than its rock.

    A different value at nearly every point, written with digits or in a column named like an
    identifier. Points only: a legacy map may well hold one polygon per unit.
    """
    points = frame.geom_type.isin(["Point", "MultiPoint"]).to_numpy()
    n = int(points.sum())
    distinct = names[points].nunique()
    numbered = names[points].str.contains(r"\d").mean() >= 0.8  # "GM-023", "117"; not "dacite"
    if is_identifier(column):
        numbered = True
    if n >= IDENTIFIER_POINTS and distinct >= 0.9 * n and numbered:
        coords = {c for pair in COORD_PAIRS for c in pair}  # a table's x/y are no classes
        others = ", ".join(
            f"'{c}'"
            for c in frame.columns
            if c not in (column, frame.geometry.name) and coordinate_name(c) not in coords
        )
        raise LabelError(
            f"Labels '{path}': column '{column}' holds {distinct} different values among {n} "
            "observations, so it names each observation rather than its rock type. Pass the "
            f"column that holds the rock type with --label-column (the others: {others or 'none'})."
        )


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
    its place: "line 14" of a CSV (the header is line 1), "row 14" of a sheet (as the
    spreadsheet numbers it), "fid 13" of other formats (the feature id QGIS shows): ``frame``'s
    index (see :func:`_table`, :func:`_read_vector`). ``site_key``: the identifier's value
    alone ("GM-023"; "" where blank), else the place's number, to join outputs to the file in a
    GIS. Also returns the key's column name (the identifier column's, else "line", "row" or
    "fid").
    """
    suffix = path.suffix.lower()
    word = "line" if suffix == ".csv" else "row" if suffix in SHEET_SUFFIXES else "fid"
    numbers = pd.Series([str(i) for i in frame.index], index=frame.index)
    place = f"{word} " + numbers
    kml = path.suffix.lower() in (".kml", ".kmz")  # its "id" is GDAL's placemark id, not theirs
    named = _site_column(frame.drop(columns="id") if kml and "id" in frame else frame, column)
    if named is None:
        return {"site": place, "site_key": numbers}, word
    values = frame[named]
    if word == "line":  # cells as written: "007" stays "007"
        text = read_table(path, dtype=str)
        values = text[named].set_axis(record_lines(path, *text.attrs["dialect"], len(text)))
    names = values.loc[frame.index].map(lambda v: "" if pd.isna(v) else class_name(v))
    sites = (f"{named} " + names).where(names != "", place)
    twice = names.duplicated(keep=False) & (names != "")
    return {"site": sites.where(~twice, sites + " (" + place + ")"), "site_key": names}, named


def column_key(column) -> str:
    """A column's name as :data:`SITE_COLUMNS` spell it: lower case, "_" for spaces and "-"."""
    return re.sub(r"[\s-]+", "_", str(column).strip().casefold())


def is_identifier(column) -> bool:
    """Whether a column's name is an identifier's ("station", "Sample ID", "obs_id")."""
    key = column_key(column)
    return key in SITE_COLUMNS or key.endswith("_id")


def _site_column(frame: gpd.GeoDataFrame, column: str) -> str | None:
    """The column that names the observations, if one does (see :func:`_site_names`)."""
    columns = {}
    for c in frame.columns:
        if c not in (column, frame.geometry.name):
            columns.setdefault(column_key(c), c)
    ranked = [columns[n] for n in SITE_COLUMNS if n in columns]
    ranked += [c for n, c in columns.items() if n.endswith("_id") and c not in ranked]
    classes = frame[column].map(class_name)
    for name in ranked:
        values = frame[name].map(lambda v: "" if pd.isna(v) else class_name(v))
        given = values[values != ""]
        distinct = len(given) > 0 and given.nunique() >= 0.9 * len(given)
        if distinct and (given != classes[given.index]).mean() > 0.5:
            return name
    return None


def class_name(value) -> str:
    """Text of a class value, as observations and a legend are matched.

    Integral floats (1.0, read from a shapefile) become "1".

    So does text of an integral number with zero decimals ("1.0", "1.00": a float column
    written out as a CSV); other text stays as written ("2.10" is not "2.1", "02" not "2").
    """
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = str(value).strip()
    whole = re.fullmatch(r"(-?\d+)\.0+", text)
    return whole.group(1) if whole else text


def class_name_notes(
    names: Sequence[str], path: Path, counts: Mapping[str, int] | None = None
) -> list[str]:
    """Warnings on class names with HTML markup, alike but for capitals or '?', or misspelt.

    "Granite" and "granite"; "basalt?", an uncertain identification, and "basalt". Google
    Earth's KML keeps a placemark's text as HTML ("Rock type: Granite<br>fresh"): such a
    column is a description, not the unit. With ``counts`` (observations per class), a rare
    name one letter from a common one ("Calisa", 1, beside "Caliza", 61) is asked about.
    """
    marked = [str(n) for n in names if re.search(r"<\s*/?\s*[a-z][^>]*>", str(n), re.I)]
    notes = (
        [
            f"{len(marked)} of the {len(names)} classes in '{path.name}' hold HTML markup (e.g. "
            f"'{marked[0]}'): the column is a description, as Google Earth writes one, not a "
            "unit name. Choose the column that holds the unit, or write the unit alone in it."
        ]
        if marked
        else []
    )
    alike = _lookalikes(names, counts or {})
    grouped: dict[str, int] = {}  # a misspelling is told per group of alike names
    for name in names:
        unit = alike.get(name, name)
        grouped[unit] = grouped.get(unit, 0) + (counts or {}).get(name, 0)
    typos = _typos(list(grouped), grouped if counts else None)
    legend = {}  # "granit" and "Granit" -> "granite", as "Granite": one legend for both notes
    for name in class_order([str(n) for n in names]):
        unit = alike.get(name, name)
        if name in alike or unit in typos:
            legend[name] = typos.get(unit, unit)
            legend.setdefault(typos.get(unit, unit), typos.get(unit, unit))
    rows = " ".join(f"'{name},{unit}'" for name, unit in legend.items())
    return notes + _lookalike_notes(alike, path, rows) + _typo_notes(typos, path, grouped, rows)


#: A name is asked about as a misspelling when it has at most this many observations and at
#: most :data:`TYPO_SHARE` of those of the name it is one letter from.
TYPO_MOST = 3
TYPO_SHARE = 0.1


def _typos(names: Sequence[str], counts: Mapping[str, int] | None) -> dict[str, str]:
    """Rare names one edit from a common one, in a word of 4+ letters, not a number: to it.

    An edit: a letter added, dropped, changed, or two neighbours swapped. "Unit A" and
    "Unit B", "Kg1" and "Kg2" are units of their own, not misspellings.
    """
    found = {}
    for rare in names if counts else ():
        common = max(
            (n for n in names if n != rare and _one_letter_apart(str(rare), str(n))),
            key=lambda n: counts.get(n, 0),
            default=None,
        )
        seen, often = counts.get(rare, 0), counts.get(common, 0)
        if common is not None and 0 < seen <= min(TYPO_MOST, TYPO_SHARE * often):
            found[rare] = common
    return found


def _typo_notes(
    typos: Mapping[str, str], path: Path, counts: Mapping[str, int], rows: str
) -> list[str]:
    if not typos:
        return []
    pairs = [
        f"'{rare}' ({counts[rare]} observation{'s' * (counts[rare] > 1)}) beside '{common}' "
        f"({counts.get(common, 0)})"
        for rare, common in typos.items()
    ]
    return [
        f"Class names in '{path.name}' one letter from a much more observed one: "
        f"{'; '.join(pairs)}. As they are, the map has a unit for each. If a name is misspelt, "
        "correct it in the file, or give a legend CSV (--legend) that "
        f"names them alike: a header 'value,name', then the rows {rows}. If each is "
        "a unit of its own, nothing needs doing."
    ]


def _one_letter_apart(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` differ by one edit in one word of 4+ letters (not digits)."""
    words_a, words_b = _plain(a).split(), _plain(b).split()
    if len(words_a) != len(words_b):
        return False
    differ = [(x, y) for x, y in zip(words_a, words_b) if x != y]
    if len(differ) != 1:
        return False
    x, y = differ[0]
    if min(len(x), len(y)) < 4 or any(c.isdigit() for c in x + y):
        return False
    if len(x) == len(y):
        at = [i for i in range(len(x)) if x[i] != y[i]]
        if len(at) == 1:
            return True
        i = at[0]
        return len(at) == 2 and at[1] == i + 1 and x[i : i + 2] == y[i + 1] + y[i]
    short, long = sorted((x, y), key=len)
    return len(long) == len(short) + 1 and any(
        long[:i] + long[i + 1 :] == short for i in range(len(long))
    )


def _plain(name: str) -> str:
    """``name`` casefolded, without accents, '?' or repeated spaces ("Aluvión" -> "aluvion")."""
    plain = unicodedata.normalize("NFKD", " ".join(name.rstrip(" ?").split()).casefold())
    return "".join(c for c in plain if not unicodedata.combining(c))


def _lookalikes(names: Sequence[str], counts: Mapping[str, int]) -> dict[str, str]:
    """Names alike but for capitals, accents, spaces or '?': each to its group's name.

    The group's name is its most observed, then "granite" over "GRANITE" and "granite?".
    """
    groups: dict[str, list[str]] = {}
    for name in class_order([str(n) for n in names]):
        groups.setdefault(_plain(name), []).append(name)  # "Aluvion", "Aluvión"
    found = {}
    for same in (g for g in groups.values() if len(g) > 1):
        one = min(
            same,
            key=lambda n: (
                -counts.get(n, 0),
                n.rstrip().endswith("?"),
                sum(c.isupper() for c in n),
            ),
        )
        found.update({n: one for n in same})
    return found


def _lookalike_notes(alike: Mapping[str, str], path: Path, rows: str) -> list[str]:
    if not alike:
        return []
    groups: dict[str, list[str]] = {}
    for name, one in alike.items():
        groups.setdefault(one, []).append(name)
    listed = "; ".join(", ".join(repr(n) for n in same) for same in groups.values())
    doubt = any(n.rstrip().endswith("?") for n in alike)
    return [
        f"Classes that differ only in capitals, accents, spaces{' or a question mark' * doubt} in "
        f"'{path.name}' ({listed}) are mapped as different classes. If each group is one unit, "
        "write it one way in the file, or give a legend CSV (--legend) "
        f"that names them alike: a header 'value,name', then the rows {rows}."
        + (
            " A name ending in '?' is an uncertain identification: so named, it counts as the "
            "unit; left a class of its own, it is mapped as one."
            if doubt
            else ""
        )
    ]


#: Most classes a map holds: uint8 codes, 255 for no data.
MAX_CLASSES = 255


def check_class_count(names: Sequence[str], path: Path) -> None:
    """Refuse a single class, and more classes than a map holds (:data:`MAX_CLASSES`).

    ``names`` are the classes of the observations on the rasters.
    """
    if len(names) == 1:
        raise LabelError(
            f"Labels '{path}': every observation on the rasters is of one class "
            f"('{names[0]}'); a map needs at least two. Add observations of other rock types or "
            "check --label-column."
        )
    if len(names) > MAX_CLASSES:
        raise LabelError(
            f"Labels '{path}': {len(names)} classes on the rasters; a map holds at most "
            f"{MAX_CLASSES} (one byte per pixel). Merge units with a legend CSV (several values "
            "under one name), or pick a column of broader units."
        )


#: Samples below which a class is named as having too few for its figures to mean much.
FEW_SAMPLES = 5
#: Classes with too few samples named one note each; more share one note naming the first
#: :data:`FEW_SAMPLE_NAMES`.
FEW_SAMPLE_NOTES = 3
FEW_SAMPLE_NAMES = 20


def few_sample_notes(counts: dict[str, int]) -> list[str]:
    """Warnings on classes with fewer than :data:`FEW_SAMPLES` samples (name -> count).

    One per class for a few of them, else one for all (150 units of 2 points each gave 150).
    """
    few = {name: n for name, n in counts.items() if n < FEW_SAMPLES}
    if len(few) <= FEW_SAMPLE_NOTES:
        return [
            f"Class '{name}' has only {n} sample(s); its accuracy figures mean little and it may "
            "vanish from cross-validation folds. Add observations of it."
            for name, n in few.items()
        ]
    named = ", ".join(f"'{name}' ({n})" for name, n in list(few.items())[:FEW_SAMPLE_NAMES])
    more = f" and {len(few) - FEW_SAMPLE_NAMES} more" if len(few) > FEW_SAMPLE_NAMES else ""
    return [
        f"{len(few)} of {len(counts)} classes have fewer than {FEW_SAMPLES} samples: {named}"
        f"{more}. Their accuracy figures mean little and they may vanish from cross-validation "
        "folds. Add observations of them, or merge units with a legend CSV."
    ]


def class_order(names: Sequence[str]) -> list[str]:
    """Sorted unique class names, numbers in numeric order ("2" before "10")."""

    def key(name: str) -> tuple:
        parts = re.split(r"([0-9]+)", name)  # text at even positions, digits at odd ones
        natural = [int(t) if i % 2 else t.lower() for i, t in enumerate(parts)]
        return (natural, name)  # the raw name breaks ties ("Basalt" / "basalt")

    return sorted(set(names), key=key)
