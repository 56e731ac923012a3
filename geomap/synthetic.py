"""Synthetic survey scenes with a known truth, generated window by window.

The geology is a pure function of map coordinates (EPSG:32633 metres) and a seed, so any window
of any size can be computed on its own and windows join exactly. Its physical scale is fixed, not
scaled to the scene: folds of 5-7 km wavelength with 900 m stratigraphic cycles of sandstone,
shale and limestone, faulted every ~7 km; granite plutons of 1.6-2.6 km semi-axis on a 9 km
lattice (the lattice cell at the reference origin always holds one); a basalt dyke swarm every
~2.3 km (40-100 m wide) and basalt flows; alluvium on valley floors of the procedural DEM.
A scene from ~6 km across (200 pixels of 30 m) shows every unit; larger scenes show more of them.

Spatially correlated noise is gradient noise on a hashed integer lattice (integer arithmetic on
lattice coordinates and the seed), pixel noise is a hash of the coordinates, and blurred
geophysics is a Gaussian sum over a fixed 90 m lattice of box-filtered truth: nothing depends on
which window asks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from pyproj import Transformer
from rasterio.features import shapes
from rasterio.transform import Affine
from rasterio.warp import transform_bounds
from rasterio.windows import Window
from shapely.geometry import shape

CLASS_NAMES: tuple[str, ...] = ("alluvium", "basalt", "granite", "limestone", "sandstone", "shale")
ALLUVIUM, BASALT, GRANITE, LIMESTONE, SANDSTONE, SHALE = range(len(CLASS_NAMES))
CRS = "EPSG:32633"
ORIGIN = (500_000.0, 5_200_000.0)  # top-left corner of every reference grid
BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")

_X0, _Y0 = ORIGIN
_CHUNK = 1 << 14  # points per vectorised evaluation: bounds memory whatever the window
_NODE = 90.0  # lattice spacing (m) of the blurred geophysics
_SUB = np.array([-30.0, 0.0, 30.0])  # box-filter offsets inside one lattice cell
_M1, _M2, _M3 = (np.uint64(v) for v in (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB))
_ANGLES = 2 * np.pi * np.arange(16) / 16
_GX, _GY = np.cos(_ANGLES), np.sin(_ANGLES)
_GEOLOGISTS = ("A. Okafor", "B. Lindqvist", "C. Moreau", "D. Tanaka")

# Per-unit tables, rows in CLASS_NAMES order.
_SPECTRA = np.array(
    [  # blue green red nir swir1 swir2, reflectance x 10000
        [760, 1000, 1250, 2250, 2700, 2050],  # alluvium
        [650, 820, 1000, 1700, 2050, 1650],  # basalt
        [900, 1150, 1400, 2250, 2900, 2250],  # granite
        [980, 1250, 1480, 2300, 2950, 2120],  # limestone
        [820, 1100, 1500, 2250, 3000, 2400],  # sandstone
        [760, 980, 1220, 2050, 2700, 2150],  # shale
    ],
    dtype=np.float64,
)
_VEG_SPECTRUM = np.array([350, 650, 450, 3800, 1900, 900], dtype=np.float64)
_CLOUD_SPECTRUM = np.array([6500, 6600, 6700, 7000, 5500, 4500], dtype=np.float64)
_VEG_BIAS = np.array([0.45, 0.2, 0.25, 0.1, 0.2, 0.35])
_TEXTURE = np.array([0.02, 0.14, 0.16, 0.1, 0.07, 0.03])  # amplitude of ~40 m noise
_ALBEDO = np.array([0.12, 0.2, 0.15, 0.2, 0.2, 0.12])
_RADIO = np.array(
    [  # K %, Th ppm, U ppm
        [1.6, 0.5, 3.8, 0.3, 0.9, 2.4],
        [9.0, 2.0, 18.0, 1.5, 5.0, 12.0],
        [2.2, 0.6, 4.5, 2.0, 1.2, 3.0],
    ]
)
_MAGNETIC = np.array([[40.0, 1200.0, 300.0, 0.0, 20.0, 60.0]])  # nT per unit fraction
_RESISTANCE = np.array([[0.2, 0.9, 1.0, 0.55, 0.7, 0.1]])  # relief (0..1) of bedrock units


@dataclass(frozen=True)
class Scene:
    """Paths and class names of a generated scene.

    Attributes
    ----------
    directory : Path
        Folder holding every file.
    rasters : tuple of Path
        ``landsat.tif``, ``radiometrics.tif``, ``magnetics.tif``, ``dem.tif`` in this order.
    points_gpkg, points_csv, polygons_gpkg, truth : Path
        Field observations (GPKG and lon/lat CSV), legacy map polygons and truth codes.
    class_names : tuple of str
        Unit names; a truth code is an index into it.
    label_column : str
        Column holding the unit name in the label files.
    """

    directory: Path
    rasters: tuple[Path, ...]
    points_gpkg: Path
    points_csv: Path
    polygons_gpkg: Path
    truth: Path
    class_names: tuple[str, ...]
    label_column: str = "lithology"


# ---------------------------------------------------------------------------- noise


def _mix(h: np.ndarray) -> np.ndarray:
    """Splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    h = (h ^ (h >> np.uint64(30))) * _M2
    h = (h ^ (h >> np.uint64(27))) * _M3
    return h ^ (h >> np.uint64(31))


def _key(seed: int, channel: int, octave: int = 0) -> np.uint64:
    """Well-mixed 64-bit key of a seed and a noise channel (each used once in this module)."""
    stream = 64 * channel + octave
    k = np.array([(seed * 0x9E3779B97F4A7C15 + stream * 0xD1B54A32D192ED03) % 2**64], np.uint64)
    return _mix(k)[0]


def _hash(ix: np.ndarray, iy: np.ndarray, key: np.uint64) -> np.ndarray:
    """Hash of integer lattice coordinates (int64 arrays) under a key."""
    h = _mix(np.asarray(ix, np.int64).view(np.uint64) * _M1 + key)
    return _mix(h ^ (np.asarray(iy, np.int64).view(np.uint64) * _M3))


def _unit(h: np.ndarray, part: int = 0) -> np.ndarray:
    """Uniform [0, 1) from 16 bits of a hash; ``part`` 0..3 picks which 16."""
    return ((h >> np.uint64(16 * part)) & np.uint64(0xFFFF)).astype(np.float64) / 65536.0


def _noise(x: np.ndarray, y: np.ndarray, scale: float, key: np.uint64) -> np.ndarray:
    """Gradient (Perlin) noise of feature size ``scale`` metres, roughly in [-1, 1]."""
    gx, gy = x / scale, y / scale
    fx0, fy0 = np.floor(gx), np.floor(gy)
    ax = fx0.astype(np.int64).view(np.uint64) * _M1
    ay = (fy0.astype(np.int64).view(np.uint64) * _M3) ^ key
    hx, hy = (ax, ax + _M1), (ay, ((ay ^ key) + _M3) ^ key)  # lattice terms of x, x+1 and y, y+1
    fx, fy = gx - fx0, gy - fy0

    def corner(dx: int, dy: int) -> np.ndarray:
        h = hx[dx] ^ hy[dy]
        g = (((h ^ (h >> np.uint64(29))) * _M2) >> np.uint64(60)).astype(np.intp)
        return _GX[g] * (fx - dx) + _GY[g] * (fy - dy)

    n00, n10, n01, n11 = corner(0, 0), corner(1, 0), corner(0, 1), corner(1, 1)
    u = fx * fx * fx * (fx * (fx * 6 - 15) + 10)
    v = fy * fy * fy * (fy * (fy * 6 - 15) + 10)
    bottom = n00 + u * (n10 - n00)
    return 1.4 * (bottom + v * (n01 + u * (n11 - n01) - bottom))


def _fbm(x: np.ndarray, y: np.ndarray, scale: float, octaves: int, seed: int, channel: int):
    """Fractal sum of ``octaves`` gradient noises, halving scale and amplitude each time."""
    total, norm = 0.0, 0.0
    for octave in range(octaves):
        amp = 0.5**octave
        total = total + amp * _noise(x, y, scale / 2**octave, _key(seed, channel, octave))
        norm += amp
    return total / norm


def _white(x: np.ndarray, y: np.ndarray, seed: int, channel: int) -> np.ndarray:
    """Unit-variance pixel noise, a hash of the centimetre-rounded coordinates."""
    h = _hash(np.floor(x * 100 + 0.5), np.floor(y * 100 + 0.5), _key(seed, channel))
    return (_unit(h, 0) + _unit(h, 1) + _unit(h, 2) - 1.5) * 2.0


# ---------------------------------------------------------------------------- geology


class _Geology(NamedTuple):
    fold: tuple[float, float]  # unit vector across the fold axes
    wavelength: float
    phase: float
    plunge: float
    offset: float
    fault: tuple[float, float]  # unit vector across the faults
    dyke: tuple[float, float]  # unit vector across the dykes


@lru_cache(maxsize=64)
def _geology(seed: int) -> _Geology:
    rng = np.random.default_rng([seed, 7])
    fold, fault, dyke = rng.uniform(0.2, 1.4), rng.uniform(1.8, 2.6), rng.uniform(2.7, 3.1)
    return _Geology(
        (np.cos(fold), np.sin(fold)),
        rng.uniform(5000, 7000),
        rng.uniform(0, 2 * np.pi),
        rng.choice([-1.0, 1.0]) * rng.uniform(0.25, 0.4),
        rng.uniform(0, 10_000),
        (np.cos(fault), np.sin(fault)),
        (np.cos(dyke), np.sin(dyke)),
    )


def _sediments(x: np.ndarray, y: np.ndarray, seed: int, geo: _Geology) -> np.ndarray:
    """Plunging folds of faulted sandstone-shale-limestone cycles (900 m thick)."""
    dx, dy = x - _X0, y - _Y0
    across = dx * geo.fold[0] + dy * geo.fold[1]
    along = dy * geo.fold[0] - dx * geo.fold[1]
    bend = 0.8 * _fbm(x, y, 15_000, 1, seed, 1)
    s = 1500 * np.cos(2 * np.pi * across / geo.wavelength + geo.phase + bend) + geo.plunge * along
    s = s + 120 * _fbm(x, y, 1800, 3, seed, 2) + geo.offset
    fault = dx * geo.fault[0] + dy * geo.fault[1] + 150 * _fbm(x, y, 5000, 1, seed, 3)
    block = np.floor(fault / 7000.0)
    s = s + 1000 * (_unit(_hash(block, block, _key(seed, 4))) - 0.5)
    cycle = s / 900.0
    k = np.floor(cycle)
    h = _hash(k, k, _key(seed, 5))
    sand = 0.3 + 0.15 * _unit(h, 0)
    shale = sand + 0.25 + 0.2 * _unit(h, 1)
    f = cycle - k
    return np.where(f < sand, SANDSTONE, np.where(f < shale, SHALE, LIMESTONE)).astype(np.uint8)


def _granite(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Irregular elliptical plutons, at most one per 9 km lattice cell."""
    cell = 9000.0
    gx, gy = (x - _X0) / cell, (_Y0 - y) / cell
    cx, cy = np.floor(gx), np.floor(gy)
    edge = 1 + 0.16 * _fbm(x, y, 700, 2, seed, 10)
    inside = np.zeros(x.shape, bool)
    for i in (cx, cx + np.where(gx - cx < 0.5, -1, 1)):  # only the nearer neighbours can reach
        for j in (cy, cy + np.where(gy - cy < 0.5, -1, 1)):
            h1, h2 = _hash(i, j, _key(seed, 11)), _hash(i, j, _key(seed, 12))
            anchor = (i == 0) & (j == 0)
            lo, span = np.where(anchor, 0.25, 0.2), np.where(anchor, 0.2, 0.6)
            px = (x - _X0) / cell - (i + lo + span * _unit(h1, 0))
            py = (_Y0 - y) / cell - (j + lo + span * _unit(h1, 1))
            a = (1600 + 1000 * _unit(h1, 2)) / cell
            b = a * (0.55 + 0.3 * _unit(h1, 3))
            g = (h2 & np.uint64(15)).astype(np.intp)
            u, v = px * _GX[g] + py * _GY[g], py * _GX[g] - px * _GY[g]
            exists = anchor | (_unit(h2, 1) < 0.5)
            inside |= exists & ((u / a) ** 2 + (v / b) ** 2 < edge**2)
    return inside


def _basalt(x: np.ndarray, y: np.ndarray, seed: int, geo: _Geology) -> np.ndarray:
    """Segmented dykes 40-100 m wide every ~2.3 km, plus flows on the highs of a noise field."""
    spacing = 2300.0
    dx, dy = x - _X0, y - _Y0
    across = dx * geo.dyke[0] + dy * geo.dyke[1] + 120 * _fbm(x, y, 6000, 1, seed, 20)
    along = dy * geo.dyke[0] - dx * geo.dyke[1]
    k = np.floor(across / spacing + 0.5)
    h = _hash(k, k, _key(seed, 21))
    centre = (k + 0.35 * (_unit(h, 0) - 0.5)) * spacing
    dyke = np.abs(across - centre) < 20 + 30 * _unit(h, 1)
    dyke &= _noise(k * 7919.0, along, 5000, _key(seed, 22)) > -0.3
    return dyke | (_fbm(x, y, 5000, 2, seed, 23) > 0.36)


def _valley(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Valley profile in (0, 1], 1 on the channels (zero lines of a noise field)."""
    r = np.abs(_fbm(x, y, 7000, 3, seed, 30))
    width = 0.035 * (1 + 0.6 * _fbm(x, y, 4000, 1, seed, 31))
    return np.exp(-((r / width) ** 2))


def _bedrock(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    geo = _geology(seed)
    codes = _sediments(x, y, seed, geo)
    codes[_granite(x, y, seed)] = GRANITE
    codes[_basalt(x, y, seed, geo)] = BASALT
    return codes


def _truth(x: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    codes = _bedrock(x, y, seed)
    codes[_valley(x, y, seed) > 0.5] = ALLUVIUM  # valley floors of the DEM
    return codes


def _chunked(fn: Callable[..., np.ndarray], x: np.ndarray, y: np.ndarray, *extra) -> np.ndarray:
    """Apply ``fn`` point-wise in chunks of ``_CHUNK``; result shape ``(..., *x.shape)``."""
    flat = [np.ravel(a) for a in (x, y, *extra)]
    first = fn(*(a[:_CHUNK] for a in flat))
    out = np.empty(first.shape[:-1] + (flat[0].size,), first.dtype)
    out[..., :_CHUNK] = first
    for i in range(_CHUNK, flat[0].size, _CHUNK):
        out[..., i : i + _CHUNK] = fn(*(a[i : i + _CHUNK] for a in flat))
    return out.reshape(out.shape[:-1] + np.shape(x))


def truth_at(x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """Class codes of the procedural geology at map coordinates.

    Parameters
    ----------
    x, y : array_like
        Easting and northing in EPSG:32633 metres, broadcastable to one shape.
    seed : int
        Geology seed, as given to :func:`make_scene`.

    Returns
    -------
    numpy.ndarray
        uint8 codes (indices into :data:`CLASS_NAMES`) of the broadcast shape.
    """
    x, y = np.broadcast_arrays(np.asarray(x, np.float64), np.asarray(y, np.float64))
    return _chunked(partial(_truth, seed=seed), x, y)


# ---------------------------------------------------------------------------- blurred fields


def _lattice(x: np.ndarray, y: np.ndarray, fn, table: np.ndarray, pad: int):
    """Box-filtered ``table[:, fn(x, y)]`` on the 90 m lattice around the points.

    Returns the lattice indices of the first node and the values, shaped (properties, ny, nx).
    """
    ix0, iy0 = int(np.floor(x.min() / _NODE)) - pad, int(np.floor(y.min() / _NODE)) - pad
    ix1, iy1 = int(np.floor(x.max() / _NODE)) + pad, int(np.floor(y.max() / _NODE)) + pad
    nx, ny = np.meshgrid(np.arange(ix0, ix1 + 1) * _NODE, np.arange(iy0, iy1 + 1) * _NODE)
    total = 0.0
    for ox in _SUB:
        for oy in _SUB:
            total = total + table[:, _chunked(fn, nx + ox, ny + oy)]
    return ix0, iy0, total / _SUB.size**2


def _blurred(x, y, fn, table: np.ndarray, sigma: float, asym: float = 0.0) -> np.ndarray:
    """Gaussian blur (sigma metres) of per-unit ``table`` values of ``fn`` codes.

    ``asym`` > 0 weights sources north of a point up and those far south negative, as induced
    magnetisation does in the northern hemisphere: anomalies lie south of their sources.
    """
    reach = int(np.ceil(3 * sigma / _NODE))
    ix0, iy0, lattice = _lattice(x, y, fn, table, reach + 1)
    offsets = range(1 - reach, reach + 1)

    def blur(px: np.ndarray, py: np.ndarray) -> np.ndarray:
        bx, by = np.floor(px / _NODE).astype(np.int64), np.floor(py / _NODE).astype(np.int64)
        wx = [np.exp(-0.5 * (((bx + o) * _NODE - px) / sigma) ** 2) for o in offsets]
        dys = [((by + o) * _NODE - py) / sigma for o in offsets]
        values = lattice.reshape(len(table), -1)
        total, norm = 0.0, 0.0
        for oy, dy in zip(offsets, dys, strict=True):
            wy = np.exp(-0.5 * dy**2)
            row = (by + oy - iy0) * lattice.shape[2] - ix0
            for ox, w in zip(offsets, wx, strict=True):
                total = total + w * wy * (1 + asym * dy) * values[:, row + bx + ox]
                norm = norm + w * wy
        return total / norm

    return _chunked(blur, x, y)


# ---------------------------------------------------------------------------- grids and writing


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


# ---------------------------------------------------------------------------- rasters


class _Cloud(NamedTuple):
    centre: tuple[float, float]
    axes: tuple[float, float]
    direction: tuple[float, float]
    shadow: tuple[float, float]  # offset of the cloud's shadow


def _cloud(size: int, pixel_size: float, seed: int) -> _Cloud:
    rng = np.random.default_rng([seed, 13])
    extent = size * pixel_size
    centre = (_X0 + extent * rng.uniform(0.3, 0.7), _Y0 - extent * rng.uniform(0.3, 0.7))
    angle = rng.uniform(0, np.pi)
    return _Cloud(
        centre,
        (0.12 * extent, 0.08 * extent),
        (np.cos(angle), np.sin(angle)),
        (0.07 * extent, -0.05 * extent),
    )


def _cloud_radius(x, y, cloud: _Cloud, seed: int, shift=(0.0, 0.0)) -> np.ndarray:
    """Normalised radius: below 1 inside the (noise-perturbed) cloud ellipse."""
    dx, dy = x - cloud.centre[0] - shift[0], y - cloud.centre[1] - shift[1]
    (c, s), (a, b) = cloud.direction, cloud.axes
    r = np.sqrt(((dx * c + dy * s) / a) ** 2 + ((dy * c - dx * s) / b) ** 2)
    return r / (1 + 0.25 * _fbm(x, y, 0.4 * b, 2, seed, 40))


def _landsat(x, y, codes, seed: int, cloud: _Cloud | None) -> np.ndarray:
    """Six uint16 bands: rock spectra, vegetation, albedo and texture noise, a cloud."""
    veg = np.clip(_VEG_BIAS[codes] + 0.4 * _fbm(x, y, 900, 3, seed, 50), 0, 0.85)
    rock = _SPECTRA[codes].T * (
        1
        + _ALBEDO[codes] * _fbm(x, y, 350, 2, seed, 51)
        + _TEXTURE[codes] * _noise(x, y, 40, _key(seed, 52))
    )
    for b in range(len(BANDS)):
        rock[b] *= 1 + 0.12 * _fbm(x, y, 600, 2, seed, 53 + b)
        rock[b] *= 1 + 0.09 * _white(x, y, seed, 60 + b)
    values = (1 - veg) * rock + veg * _VEG_SPECTRUM[:, None]
    values += 40 * np.stack([_white(x, y, seed, 70 + b) for b in range(len(BANDS))])
    inside = np.zeros(x.shape, bool)
    if cloud is not None:
        r = _cloud_radius(x, y, cloud, seed)
        shadow = (_cloud_radius(x, y, cloud, seed, cloud.shadow) < 1) & (r >= 1)
        values *= np.where(shadow, 0.55, 1.0)
        haze = 0.45 * np.clip((1.3 - r) / 0.3, 0, 1)  # the thin margin the mask misses
        values += haze * (_CLOUD_SPECTRUM[:, None] - values)
        inside = r < 1
    out = np.clip(np.rint(values), 1, 10_000).astype(np.uint16)
    out[:, inside] = 0
    return out


def _elevation(x, y, relief, seed: int) -> np.ndarray:
    """Regional slope + hills + blurred bedrock resistance, cut by flat-floored valleys."""
    valley = _valley(x, y, seed)
    base = 300 + 0.004 * (x - _X0) + 150 * _fbm(x, y, 30_000, 2, seed, 100)
    hills = 40 + 40 * _fbm(x, y, 1500, 4, seed, 101) + 100 * relief
    floor = np.clip((valley - 0.02) / 0.48, 0, 1)  # 1 on the alluvium (valley > 0.5)
    return np.rint(base + (1 - floor) * hills - 50 * valley).astype(np.int16)


def _radio_noise(x, y, k, th, u, seed: int) -> np.ndarray:
    cover = 0.9 + 0.1 * _fbm(x, y, 2500, 2, seed, 80)
    sd = np.array([[0.12], [0.8], [0.45]])
    counts = np.stack([_white(x, y, seed, 81 + i) for i in range(3)])
    return np.maximum(np.stack([k, th, u]) * cover + sd * counts, 0.0).astype(np.float32)


def _tmi(x, y, anomaly, seed: int) -> np.ndarray:
    regional = 48_200 + 0.003 * (x - _X0) + 0.002 * (y - _Y0)
    regional = regional + 120 * _fbm(x, y, 40_000, 2, seed, 90) + 1.5 * _white(x, y, seed, 91)
    return (regional + anomaly).astype(np.float32)


def _write_reference(directory: Path, grid: _Grid, seed: int, cloud, block_rows: int) -> None:
    """``landsat.tif`` and ``truth.tif`` in one pass over the reference grid."""
    outputs = [
        _Output(
            directory / "landsat.tif",
            "uint16",
            0,
            BANDS,
            ("reflectance x 10000",) * 6,
            {"SEED": str(seed)},
        ),
        _truth_output(directory, seed),
    ]

    def fill(x, y):
        codes = _chunked(partial(_truth, seed=seed), x, y)
        return _chunked(lambda a, b, c: _landsat(a, b, c, seed, cloud), x, y, codes), codes[None]

    _write(grid, outputs, fill, block_rows)


def _write_geophysics(
    rasters: tuple[Path, ...], size: int, pixel_size: float, seed: int, block_rows: int
) -> None:
    """``radiometrics.tif``, ``magnetics.tif`` and ``dem.tif``, each on its own grid."""
    to_utm = Transformer.from_crs("EPSG:4326", CRS, always_xy=True)
    radio = _geographic(size, pixel_size)

    def radiometrics(lon, lat):
        x, y = to_utm.transform(lon, lat)
        blurred = _blurred(x, y, partial(_truth, seed=seed), _RADIO, sigma=110.0)
        values = _chunked(lambda *a: _radio_noise(*a, seed), x, y, *blurred)
        t = radio.transform
        rows, cols = np.rint((lat - t.f) / t.e - 0.5), np.rint((lon - t.c) / t.a - 0.5)
        gap = (rows < 2) & (cols >= 0.2 * radio.width) & (cols < 0.7 * radio.width)
        gap |= (cols == 0) & (rows % 7 == 3)  # a missing flight line and dropouts, in the margin
        values[:, gap] = -9999.0
        return [values]

    def magnetics(x, y):
        anomaly = _blurred(x, y, partial(_truth, seed=seed), _MAGNETIC, sigma=150.0, asym=0.8)
        return [_chunked(lambda *a: _tmi(*a, seed), x, y, anomaly[0])[None]]

    def dem(x, y):
        relief = _blurred(x, y, partial(_bedrock, seed=seed), _RESISTANCE, sigma=70.0)
        return [_chunked(lambda *a: _elevation(*a, seed), x, y, relief[0])[None]]

    _write(
        radio,
        [_Output(rasters[1], "float32", -9999.0, ("K", "Th", "U"), ("%", "ppm", "ppm"), {})],
        radiometrics,
        block_rows,
    )
    _write(
        _covering(size, pixel_size, 2 * pixel_size, 0.37, 4),
        [_Output(rasters[2], "float32", -99999.0, ("tmi",), ("nT",), {})],
        magnetics,
        block_rows,
    )
    _write(
        _covering(size, pixel_size, pixel_size, 0.5, 8),
        [_Output(rasters[3], "int16", -32768, ("elevation",), ("m",), {})],
        dem,
        block_rows,
    )


# ---------------------------------------------------------------------------- labels


def _reflect(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Fold values into [lo, hi] as if bouncing off its ends."""
    p = np.mod(v - lo, 2 * (hi - lo))
    return lo + np.where(p > hi - lo, 2 * (hi - lo) - p, p)


def _traverse(start, count: int, extent: float, bounds, rng) -> np.ndarray:
    """``count`` stops along a road-like random walk (with momentum) of about ``extent`` long."""
    heading = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.25, 60))
    step = extent / 60 * np.stack([np.cos(heading), np.sin(heading)], axis=1)
    path = np.vstack([start, start + np.cumsum(step, axis=0)])
    arc = np.linspace(0, 60, path.shape[0])
    at = np.sort(rng.uniform(0, 60, count))
    stops = np.stack([np.interp(at, arc, path[:, i]) for i in (0, 1)], axis=1)
    stops += rng.normal(0, extent / 400, stops.shape)  # off the road to the outcrop
    return np.stack([_reflect(stops[:, i], bounds[i], bounds[i + 2]) for i in (0, 1)], axis=1)


def _field_points(n_points: int, size: int, pixel_size: float, seed: int, cloud):
    """Observations clustered along traverses, labelled from the truth, ~2% mislabelled."""
    rng = np.random.default_rng([seed, 11])
    extent, inset = size * pixel_size, pixel_size / 2
    bounds = (_X0 + inset, _Y0 - extent + inset, _X0 + extent - inset, _Y0 - inset)
    inner = ((_X0 + 0.1 * extent, _Y0 - 0.9 * extent), (_X0 + 0.9 * extent, _Y0 - 0.1 * extent))
    n_walks = int(np.clip(n_points // 60, 3, 8))
    counts = np.diff(np.linspace(0, n_points, n_walks + 1).round().astype(int))
    walks, names = [], []
    for walk, count in enumerate(counts):
        start = rng.uniform(*inner)
        start = cloud.centre if (walk == 0 and cloud is not None) else start  # some under it
        walks.append(_traverse(np.asarray(start), count, extent, bounds, rng))
        names += [_GEOLOGISTS[walk % len(_GEOLOGISTS)]] * count
    xy = np.vstack(walks)
    codes = truth_at(xy[:, 0], xy[:, 1], seed=seed)
    wrong = rng.choice(n_points, max(1, round(0.02 * n_points)), replace=False)
    n_classes = len(CLASS_NAMES)
    codes[wrong] = (codes[wrong] + rng.integers(1, n_classes, wrong.size)) % n_classes
    return gpd.GeoDataFrame(
        {
            "obs_id": np.arange(1, n_points + 1),
            "lithology": np.asarray(CLASS_NAMES)[codes],
            "geologist": names,
        },
        geometry=gpd.points_from_xy(xy[:, 0], xy[:, 1]),
        crs=CRS,
    )


def _write_points(points: gpd.GeoDataFrame, gpkg: Path, csv: Path | None) -> None:
    points.to_file(gpkg, driver="GPKG", layer="field_points")
    if csv is not None:
        lonlat = points.to_crs("EPSG:4326")
        table = pd.DataFrame(
            {
                "obs_id": points["obs_id"],
                "lon": lonlat.geometry.x,
                "lat": lonlat.geometry.y,
                "lithology": points["lithology"],
            }
        )
        table.to_csv(csv, index=False, float_format="%.8f")


def _legacy_map(points: gpd.GeoDataFrame, grid: _Grid, seed: int) -> gpd.GeoDataFrame:
    """Dissolved truth polygons in a square patch (15% of the width) holding fewest points."""
    side = max(8, round(0.15 * grid.width))
    cols = np.floor((points.geometry.x - _X0) / grid.transform.a).to_numpy()
    rows = np.floor((_Y0 - points.geometry.y) / grid.transform.a).to_numpy()
    corners = np.linspace(0, grid.width - side, 5).round().astype(int)
    _, row0, col0 = min(
        (int(np.sum((rows >= r) & (rows < r + side) & (cols >= c) & (cols < c + side))), r, c)
        for r in corners
        for c in corners
    )
    codes = truth_at(*grid.centres(row0, side, col0, side), seed=seed)
    t = grid.transform
    transform = Affine(t.a, 0, t.c + col0 * t.a, 0, t.e, t.f + row0 * t.e)
    parts = [(CLASS_NAMES[int(v)], shape(g)) for g, v in shapes(codes, transform=transform)]
    frame = gpd.GeoDataFrame(
        {"lithology": [p[0] for p in parts]}, geometry=[p[1] for p in parts], crs=CRS
    )
    return frame.dissolve(by="lithology", as_index=False)


# ---------------------------------------------------------------------------- public API


def _check(size: int, pixel_size: float, n_points: int, block_rows: int) -> None:
    for name, value, low in (
        ("size", size, 16),
        ("n_points", n_points, 10),
        ("block_rows", block_rows, 1),
    ):
        if int(value) != value or value < low:
            raise ValueError(f"{name} has to be an integer >= {low}; got {value!r}.")
    if not pixel_size > 0:
        raise ValueError(f"pixel_size has to be a positive number of metres; got {pixel_size!r}.")


def _truth_output(directory: Path, seed: int) -> _Output:
    return _Output(
        directory / "truth.tif",
        "uint8",
        255,
        ("lithology",),
        ("class code",),
        {"CLASS_NAMES": json.dumps(list(CLASS_NAMES)), "SEED": str(seed)},
    )


def make_scene(
    directory: str | Path,
    *,
    size: int = 400,
    pixel_size: float = 30.0,
    seed: int = 0,
    n_points: int = 300,
    cloud: bool = True,
    block_rows: int = 1024,
) -> Scene:
    """Write a synthetic survey scene with its known truth.

    The reference grid is EPSG:32633 with its top-left corner at ``ORIGIN``; every raster is
    written window by window (``block_rows`` rows at a time) so memory stays bounded.

    Parameters
    ----------
    directory : str or Path
        Output folder, created if missing; files of the same name are overwritten.
    size : int
        Width and height of the reference grid in pixels (at least 16).
    pixel_size : float
        Reference pixel size in metres; the geology has a fixed physical scale.
    seed : int
        Seed of the geology, the noise and the observations.
    n_points : int
        Number of field observations (at least 10).
    cloud : bool
        Put a cloud (nodata), its hazy margin and its shadow in ``landsat.tif``.
    block_rows : int
        Rows per written window; the output does not depend on it.

    Returns
    -------
    Scene
        Paths of the written files and the class names.

    Raises
    ------
    ValueError
        If a size, count or pixel size is out of range.
    """
    _check(size, pixel_size, n_points, block_rows)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    names = ("landsat.tif", "radiometrics.tif", "magnetics.tif", "dem.tif")
    rasters = tuple(directory / name for name in names)
    grid = _reference(size, pixel_size)
    sky = _cloud(size, pixel_size, seed) if cloud else None
    _write_reference(directory, grid, seed, sky, block_rows)
    _write_geophysics(rasters, size, pixel_size, seed, block_rows)
    scene = Scene(
        directory,
        rasters,
        directory / "field_points.gpkg",
        directory / "field_points.csv",
        directory / "legacy_map.gpkg",
        directory / "truth.tif",
        CLASS_NAMES,
    )
    points = _field_points(n_points, size, pixel_size, seed, sky)
    for path in (scene.points_gpkg, scene.polygons_gpkg):
        path.unlink(missing_ok=True)
    _write_points(points, scene.points_gpkg, scene.points_csv)
    _legacy_map(points, grid, seed).to_file(scene.polygons_gpkg, driver="GPKG", layer="legacy_map")
    return scene


def write_benchmark_stack(
    directory: str | Path,
    *,
    size: int,
    n_bands: int = 12,
    pixel_size: float = 30.0,
    seed: int = 0,
    block_rows: int = 512,
    n_points: int = 1000,
) -> tuple[list[Path], Path, Path]:
    """Write a large single-band float32 stack on the reference grid, for benchmarks.

    Each band is a per-unit mean (random, fixed by ``seed``) plus two shared correlated noise
    fields and pixel noise, over the same geology as :func:`make_scene`. Windows of
    ``block_rows`` rows are computed in chunks, so 8000 x 8000 x 12 stays well under 1 GB.

    Parameters
    ----------
    directory : str or Path
        Output folder, created if missing; files of the same name are overwritten.
    size, pixel_size, seed, block_rows
        As for :func:`make_scene`.
    n_bands : int
        Number of ``band_NN.tif`` files.
    n_points : int
        Number of field observations in ``field_points.gpkg``.

    Returns
    -------
    tuple
        (band paths, points GPKG path, truth GeoTIFF path).

    Raises
    ------
    ValueError
        If a size, count or pixel size is out of range.
    """
    _check(size, pixel_size, n_points, block_rows)
    if n_bands < 1:
        raise ValueError(f"n_bands has to be at least 1; got {n_bands!r}.")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    means = np.random.default_rng([seed, 17]).normal(0, 1, (len(CLASS_NAMES), n_bands))
    weights = np.random.default_rng([seed, 19]).normal(0, 0.8, (2, n_bands))
    paths = [directory / f"band_{b + 1:02d}.tif" for b in range(n_bands)]
    outputs = [_Output(p, "float32", -9999.0, (p.stem,), ("",), {}) for p in paths]
    outputs.append(_truth_output(directory, seed))

    def bands(x, y, codes):
        shared = np.stack([_fbm(x, y, 500, 2, seed, 110), _noise(x, y, 60, _key(seed, 111))])
        values = means[codes].T + weights[0][:, None] * shared[0] + weights[1][:, None] * shared[1]
        values += 0.4 * np.stack([_white(x, y, seed, 120 + b) for b in range(n_bands)])
        return values.astype(np.float32)

    def fill(x, y):
        codes = _chunked(partial(_truth, seed=seed), x, y)
        return [*_chunked(bands, x, y, codes)[:, None], codes[None]]

    _write(_reference(size, pixel_size), outputs, fill, block_rows)
    points_path = directory / "field_points.gpkg"
    points_path.unlink(missing_ok=True)
    _write_points(_field_points(n_points, size, pixel_size, seed, None), points_path, None)
    return paths, points_path, outputs[-1].path
