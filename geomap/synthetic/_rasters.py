"""The synthetic rasters: Landsat with cloud, radiometrics, magnetics, DEM and the truth."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
from pyproj import Transformer

from geomap.synthetic._constants import _X0, _Y0, BANDS, CLASS_NAMES, CRS
from geomap.synthetic._fields import _blurred
from geomap.synthetic._geology import _bedrock, _chunked, _truth, _valley
from geomap.synthetic._grid import _covering, _geographic, _Grid, _Output, _write
from geomap.synthetic._noise import _fbm, _key, _noise, _white

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


def _truth_output(directory: Path, seed: int) -> _Output:
    return _Output(
        directory / "truth.tif",
        "uint8",
        255,
        ("lithology",),
        ("class code",),
        {"CLASS_NAMES": json.dumps(list(CLASS_NAMES)), "SEED": str(seed)},
    )


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
