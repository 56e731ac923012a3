"""Reference and covering grids, and the window-by-window GeoTIFF writer."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

import numpy as np
import rasterio
from rasterio.transform import Affine
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from geomap.synthetic._constants import _X0, _Y0, CRS


class _Grid(NamedTuple):
    transform: Affine
    width: int
    height: int
    crs: str

    def centres(self, row0: int, nrows: int, col0: int = 0, ncols: int | None = None):
        """Pixel-centre coordinates (two 2-D arrays) of a window."""
        ncols = self.width - col0 if ncols is None else ncols
        t = self.transform
        xs = t.c + (np.arange(col0, col0 + ncols) + 0.5) * t.a
        ys = t.f + (np.arange(row0, row0 + nrows) + 0.5) * t.e
        return np.meshgrid(xs, ys)


def _reference(size: int, pixel_size: float) -> _Grid:
    return _Grid(Affine(pixel_size, 0, _X0, 0, -pixel_size, _Y0), size, size, CRS)


def _covering(size: int, pixel_size: float, res: float, shift: float, margin: int) -> _Grid:
    """UTM grid of ``res`` metres, origin ``shift`` pixels off, covering the reference + margin."""
    left, top = _X0 - (margin + shift) * res, _Y0 + (margin + shift) * res
    extent = size * pixel_size
    width = int(np.ceil((_X0 + extent - left) / res)) + margin
    height = int(np.ceil((top - _Y0 + extent) / res)) + margin
    return _Grid(Affine(res, 0, left, 0, -res, top), width, height, CRS)


def _geographic(size: int, pixel_size: float, margin: int = 5) -> _Grid:
    """EPSG:4326 grid of ~3 reference pixels covering the reference footprint + margin."""
    extent = size * pixel_size
    west, south, east, north = transform_bounds(
        CRS, "EPSG:4326", _X0, _Y0 - extent, _X0 + extent, _Y0, densify_pts=21
    )
    ry = 3 * pixel_size / 111_320.0
    rx = ry / np.cos(np.radians((south + north) / 2))
    width = int(np.ceil((east - west) / rx)) + 2 * margin
    height = int(np.ceil((north - south) / ry)) + 2 * margin
    transform = Affine(rx, 0, west - margin * rx, 0, -ry, north + margin * ry)
    return _Grid(transform, width, height, "EPSG:4326")


class _Output(NamedTuple):
    path: Path
    dtype: str
    nodata: float
    descriptions: tuple[str, ...]
    units: tuple[str, ...]
    tags: dict[str, str]


def _write(grid: _Grid, outputs: list[_Output], fill, block_rows: int) -> None:
    """Write ``fill(x, y)`` (one array per output) window by window, ``block_rows`` at a time."""
    with rasterio.Env(GDAL_CACHEMAX=64), ExitStack() as stack:
        targets = []
        for out in outputs:
            dst = stack.enter_context(
                rasterio.open(
                    out.path,
                    "w",
                    driver="GTiff",
                    width=grid.width,
                    height=grid.height,
                    count=len(out.descriptions),
                    dtype=out.dtype,
                    crs=grid.crs,
                    transform=grid.transform,
                    nodata=out.nodata,
                    tiled=True,
                    blockxsize=256,
                    blockysize=256,
                    compress="deflate",
                    predictor=3 if out.dtype == "float32" else 2,
                )
            )
            dst.descriptions, dst.units = out.descriptions, out.units
            dst.update_tags(SOURCE="synthetic (geomap.synthetic)", **out.tags)
            targets.append(dst)
        for row0 in range(0, grid.height, block_rows):
            nrows = min(block_rows, grid.height - row0)
            window = Window(0, row0, grid.width, nrows)
            for dst, values in zip(targets, fill(*grid.centres(row0, nrows)), strict=True):
                dst.write(values, window=window)
