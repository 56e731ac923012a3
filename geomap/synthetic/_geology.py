"""The synthetic geology: unit codes as a pure function of map coordinates and a seed."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache, partial
from typing import NamedTuple

import numpy as np

from geomap.synthetic._constants import (
    _X0,
    _Y0,
    ALLUVIUM,
    BASALT,
    GRANITE,
    LIMESTONE,
    SANDSTONE,
    SHALE,
)
from geomap.synthetic._noise import _GX, _GY, _fbm, _hash, _key, _noise, _unit

_CHUNK = 1 << 14  # points per vectorised evaluation: bounds memory whatever the window


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
