"""Map layers for a web map: small RGBA images in Web Mercator, read from overviews.

A web map never needs the full-resolution raster: :func:`class_overlay` and
:func:`continuous_overlay` read a band decimated to at most ``max_size`` pixels a side (GDAL takes
the nearest overview), reproject it to EPSG:3857, which Leaflet stretches image overlays in, and
colour it. The result carries its corners in latitude/longitude, as Leaflet wants them.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from matplotlib import colormaps
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.features import geometry_mask
from rasterio.transform import Affine
from rasterio.warp import calculate_default_transform, reproject, transform_bounds
from rasterio.windows import Window, from_bounds

from geomap.errors import RasterError
from geomap.export import hex_colour
from geomap.legend import read_named

WEB_MERCATOR = CRS.from_epsg(3857)
_FILL = -1.0


@dataclass(frozen=True)
class Overlay:
    """An RGBA image (rows, cols, 4) in Web Mercator and its ((south, west), (north, east)).

    ``value_range`` is the (low, high) of the colour ramp of a continuous layer, ``data_range``
    the (lowest, highest) value shown: beyond the ramp's ends the colours are clipped.
    """

    image: np.ndarray
    bounds: tuple[tuple[float, float], tuple[float, float]]
    value_range: tuple[float, float] | None = None
    data_range: tuple[float, float] | None = None


def _read_decimated(path: Path, band: int, max_size: int, resampling: Resampling):
    """Band ``band`` at most ``max_size`` pixels a side (from overviews), as float with NaN."""
    try:
        src = rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise RasterError(f"Map layer '{path}' cannot be opened ({exc}).") from None
    with src:
        if not 1 <= band <= src.count:
            raise RasterError(f"Map layer '{path}' has {src.count} band(s); band {band} asked.")
        scale = max(src.width / max_size, src.height / max_size, 1.0)
        shape = (max(1, round(src.height / scale)), max(1, round(src.width / scale)))
        data = src.read(band, out_shape=shape, resampling=resampling, masked=True)
        transform = src.transform @ src.transform.scale(src.width / shape[1], src.height / shape[0])
        meta = {
            "crs": src.crs,
            "transform": transform,
            "colormap": _colormap(src),
            "tags": src.tags(),
        }
    return data.astype("float64").filled(np.nan), meta


def _colormap(src) -> dict | None:
    try:
        return src.colormap(1)
    except ValueError:
        return None


def _to_web_mercator(data: np.ndarray, meta: dict, resampling: Resampling):
    """Reproject a (rows, cols) float array with NaN holes; returns the array and lat/lon bounds."""
    rows, cols = data.shape
    left, top = meta["transform"] @ (0, 0)
    right, bottom = meta["transform"] @ (cols, rows)
    dst_transform, width, height = calculate_default_transform(
        meta["crs"], WEB_MERCATOR, cols, rows, left=left, bottom=bottom, right=right, top=top
    )
    out = np.full((height, width), _FILL)
    reproject(
        np.where(np.isnan(data), _FILL, data),
        out,
        src_transform=meta["transform"],
        src_crs=meta["crs"],
        src_nodata=_FILL,
        dst_transform=dst_transform,
        dst_crs=WEB_MERCATOR,
        dst_nodata=_FILL,
        resampling=resampling,
    )
    out[out == _FILL] = np.nan
    x0, y1 = dst_transform @ (0, 0)
    x1, y0 = dst_transform @ (width, height)
    west, south, east, north = transform_bounds(WEB_MERCATOR, "EPSG:4326", x0, y0, x1, y1)
    return out, ((south, west), (north, east))


def class_overlay(path: str | Path, max_size: int = 1024) -> Overlay:
    """The class map at ``path`` coloured with its own colour table (nodata transparent).

    Raises
    ------
    RasterError
        If the file cannot be read or has no colour table.
    """
    path = Path(path)
    data, meta = _read_decimated(path, 1, max_size, Resampling.nearest)
    if meta["colormap"] is None:
        raise RasterError(f"Map layer '{path}' has no colour table; it is not a geomap class map.")
    web, bounds = _to_web_mercator(data, meta, Resampling.nearest)
    lut = np.zeros((256, 4), dtype="uint8")
    for code, rgba in meta["colormap"].items():
        if 0 <= code < 256:
            lut[code] = rgba
    codes = np.where(np.isnan(web), 255, web).astype("uint8")
    image = lut[codes]
    image[np.isnan(web)] = 0
    return Overlay(image, bounds)


def continuous_overlay(
    path: str | Path,
    band: int = 1,
    *,
    cmap: str = "magma",
    vmin: float | None = 0.0,
    vmax: float | None = 1.0,
    max_size: int = 1024,
    clear: float | None = None,
) -> Overlay:
    """Band ``band`` of ``path`` coloured with the matplotlib colour map ``cmap`` over vmin..vmax.

    A ``vmin`` or ``vmax`` of None takes the 2nd or 98th percentile of the displayed values.
    Values at or below ``clear`` are transparent, like no data: a layer that marks where
    something is (inputs missing) leaves the layers under it visible elsewhere.
    """
    data, meta = _read_decimated(Path(path), band, max_size, Resampling.average)
    web, bounds = _to_web_mercator(data, meta, Resampling.bilinear)
    valid = web[np.isfinite(web)]
    if vmin is None:
        vmin = float(np.percentile(valid, 2)) if valid.size else 0.0
    if vmax is None:
        vmax = float(np.percentile(valid, 98)) if valid.size else 1.0
    scaled = np.clip((web - vmin) / max(vmax - vmin, 1e-12), 0, 1)
    image = (colormaps[cmap](np.nan_to_num(scaled)) * 255).astype("uint8")
    image[np.isnan(web)] = 0
    if clear is not None:
        image[web <= clear] = 0
    shown = (float(valid.min()), float(valid.max())) if valid.size else None
    return Overlay(image, bounds, (float(vmin), float(vmax)), shown)


#: How a mask layer shades the pixels it marks: black at 60% (the layers under it stay legible).
MASK_SHADE = (0, 0, 0, 153)


def mask_overlay(path: str | Path, band: int = 1, *, max_size: int = 1024) -> Overlay:
    """A 0/1 band drawn as a shade where it is 0, clear where it is 1 and where no data.

    The area of applicability over the lithology: a white and black layer hid the map under it
    (at the app's default opacity, inside read pale green and outside brown-black); shaded, the
    units outside stay legible and the rest shows as it is.
    """
    data, meta = _read_decimated(Path(path), band, max_size, Resampling.average)
    web, bounds = _to_web_mercator(data, meta, Resampling.bilinear)
    image = np.zeros((*web.shape, 4), dtype="uint8")
    image[web < 0.5] = MASK_SHADE  # NaN compares False: clear
    return Overlay(image, bounds)


def colour_ramp(cmap: str = "magma", steps: int = 8) -> list[str]:
    """Evenly spaced '#rrggbb' colours of a matplotlib colour map, low to high (for colour bars)."""
    colours = colormaps[cmap](np.linspace(0, 1, steps))
    return [hex_colour([round(c * 255) for c in rgba[:3]]) for rgba in colours]


def class_legend(path: str | Path) -> list[tuple[str, str]]:
    """(name, '#rrggbb') of each class of a geomap class map, from its tag and colour table."""
    with rasterio.open(path) as src:
        names = json.loads(src.tags().get("CLASS_NAMES", "[]"))
        table = _colormap(src) or {}
    return [(n, hex_colour(table.get(i, (0, 0, 0)))) for i, n in enumerate(names)]


def zoom_for(bounds: tuple[tuple[float, float], tuple[float, float]], pixels: int = 700) -> int:
    """A Web Mercator zoom level that fits ``bounds`` into about ``pixels`` screen pixels."""
    (south, west), (north, east) = bounds
    span = max(east - west, (north - south) / max(math.cos(math.radians((north + south) / 2)), 0.1))
    return int(max(1, min(18, math.floor(math.log2(360 * pixels / 256 / max(span, 1e-9))))))


def to_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGBA (rows, cols, 4) uint8 image."""
    buffer = io.BytesIO()
    Image.fromarray(image, mode="RGBA").save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def observations_geojson(
    path: str | Path,
    column: str,
    *,
    crs: str | None = None,
    layer: str | None = None,
    legend: str | Path | None = None,
    class_map: str | Path | None = None,
    max_features: int = 5000,
) -> dict:
    """Observations as GeoJSON in longitude/latitude with ``label``, ``source``, ``site``.

    With a ``legend`` the labels are its unit names, as in the run's maps; with a geomap
    ``class_map`` (``lithology.tif``) a ``mapped`` property gives the class the map shows at each
    point (the classes under a polygon), so a popup can say "observed granite, mapped basalt".
    Points at one place (a station entered twice, with two units) are one feature, the first,
    whose ``site`` names the others: a map shows only the top dot's popup. At most
    ``max_features`` are returned (an even draw) so that a browser stays responsive.
    """
    frame = _stacked_as_one(read_named(path, column, legend, crs=crs, layer=layer)[0])
    if len(frame) > max_features:
        frame = frame.iloc[np.linspace(0, len(frame) - 1, max_features).astype(int)].copy()
    if class_map is not None:
        frame["mapped"] = mapped_classes(frame, Path(class_map))
    frame = frame.to_crs("EPSG:4326")
    return json.loads(frame.to_json(drop_id=True))


def _stacked_as_one(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Points at the same place as one: the first, its ``site`` naming the others and their unit."""
    point = (frame.geom_type == "Point").to_numpy()
    if point.sum() < 2:
        return frame
    where = pd.Series(frame.geometry.to_wkb().to_numpy(), index=frame.index).where(point)
    stacked = where.notna() & where.duplicated(keep=False)
    if not stacked.any():
        return frame
    frame = frame.copy()
    for _, rows in frame[stacked].groupby(where[stacked], sort=False):
        others = "; ".join(f"{s}, {u}" for s, u in zip(rows["site"][1:], rows["label"][1:]))
        frame.loc[rows.index[0], "site"] = f"{rows['site'].iloc[0]} (also here: {others})"
    return frame[~(stacked & where.duplicated(keep="first"))]


#: What a popup says is mapped at an observation the map does not cover.
MAPPED_NOTHING = "(nothing: off the map or no data)"
#: A polygon's pixels are counted on a read of at most this many pixels a side (coarser beyond).
POLYGON_READ = 512


def mapped_classes(frame: gpd.GeoDataFrame, class_map: Path) -> list[str]:
    """The class a geomap class map shows at each point of ``frame``, the shares under a polygon.

    A polygon gets the classes that cover most of it, largest first ("granite 82%, shale 10%,
    basalt 5%, 1 other(s) 3%");
    an observation off the map or on its nodata gets :data:`MAPPED_NOTHING`.
    """
    out = [MAPPED_NOTHING] * len(frame)
    with rasterio.open(class_map) as src:
        shapes = frame.to_crs(src.crs)
        names = json.loads(src.tags().get("CLASS_NAMES", "[]"))
        for i in np.flatnonzero((shapes.geom_type != "Point").to_numpy()):
            out[i] = _shares_under(src, names, shapes.geometry.iloc[i])
    where = np.flatnonzero((shapes.geom_type == "Point").to_numpy())
    if len(where):
        at = shapes.geometry.iloc[where]
        shown = classes_at(class_map, at.x, at.y)
        for i, name in zip(where, shown):
            out[i] = MAPPED_NOTHING if name is None else name
    return out


def _shares_under(src, names: Sequence[str], shape) -> str:
    """The classes of the open class map ``src`` under a polygon (or a line's or points' pixels).

    The three largest first, then the others together ("2 other(s) 14%"). Read over the
    polygon's bounds only, decimated to :data:`POLYGON_READ` pixels a side, so a polygon as
    large as the map costs no more than a small one.
    """
    if shape is None or shape.is_empty:
        return MAPPED_NOTHING
    near = from_bounds(*shape.bounds, transform=src.transform)
    col0, row0 = max(0, math.floor(near.col_off)), max(0, math.floor(near.row_off))
    col1 = min(src.width, math.ceil(near.col_off + near.width))
    row1 = min(src.height, math.ceil(near.row_off + near.height))
    if col1 <= col0 or row1 <= row0:  # off the map
        return MAPPED_NOTHING
    window, height, width = Window(col0, row0, col1 - col0, row1 - row0), row1 - row0, col1 - col0
    step = max(1.0, max(height, width) / POLYGON_READ)
    size = (max(1, math.ceil(height / step)), max(1, math.ceil(width / step)))
    codes = src.read(1, window=window, out_shape=size, masked=True)
    transform = src.window_transform(window) * Affine.scale(width / size[1], height / size[0])
    inside = geometry_mask([shape], size, transform, invert=True)
    if not inside.any():  # smaller than a pixel: the pixels it touches
        inside = geometry_mask([shape], size, transform, invert=True, all_touched=True)
    values = codes[inside].compressed()
    counts = np.bincount(values[values < len(names)], minlength=len(names))
    if counts.sum() == 0:
        return MAPPED_NOTHING
    order = np.argsort(-counts, kind="stable")
    shares = [(names[c], 100 * counts[c] / counts.sum()) for c in order[:3] if counts[c]]
    rest = counts[order[3:]]
    if rest.any():  # the shares listed then add up to 100%
        shares.append((f"{np.count_nonzero(rest)} other(s)", 100 * rest.sum() / counts.sum()))
    return ", ".join(
        f"{name} {share:.0f}%" if share >= 0.5 else f"{name} <1%" for name, share in shares
    )


def classes_at(class_map: str | Path, x, y) -> list[str | None]:
    """The class a geomap class map shows at each (x, y) of its CRS; None off it or on nodata.

    One pixel read per point, never the whole map.
    """
    with rasterio.open(class_map) as src:
        names = json.loads(src.tags().get("CLASS_NAMES", "[]"))
        out = []
        for value in src.sample(zip(x, y), indexes=1, masked=True):
            code = None if np.ma.is_masked(value[0]) else int(value[0])
            out.append(names[code] if code is not None and 0 <= code < len(names) else None)
    return out


def vector_geojson(path: str | Path, columns: Sequence[str]) -> dict:
    """The given columns of a vector file (e.g. suggested sites) as GeoJSON in lon/lat."""
    frame = gpd.read_file(path).to_crs("EPSG:4326")
    return json.loads(frame[[*columns, frame.geometry.name]].to_json(drop_id=True))
