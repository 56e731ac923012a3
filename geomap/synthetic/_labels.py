"""Field observations along traverses and a legacy map drawn from them."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from rasterio.features import shapes
from rasterio.transform import Affine
from shapely.geometry import shape

from geomap.synthetic._constants import _X0, _Y0, CLASS_NAMES, CRS
from geomap.synthetic._geology import truth_at
from geomap.synthetic._grid import _Grid

_GEOLOGISTS = ("A. Okafor", "B. Lindqvist", "C. Moreau", "D. Tanaka")


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
    frame = _observed(xy, seed, rng)
    frame["geologist"] = names
    return frame


def _check_points(n_points: int, size: int, pixel_size: float, seed: int) -> gpd.GeoDataFrame:
    """Observations at uniformly random places, labelled like the field points."""
    rng = np.random.default_rng([seed, 23])
    extent = size * pixel_size
    xy = np.column_stack(
        [_X0 + rng.uniform(0, extent, n_points), _Y0 - rng.uniform(0, extent, n_points)]
    )
    return _observed(xy, seed, rng)


def _observed(xy: np.ndarray, seed: int, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Observations at ``xy``: the unit at the exact place, ~2% of them mislabelled."""
    n_points = len(xy)
    codes = truth_at(xy[:, 0], xy[:, 1], seed=seed)
    wrong = rng.choice(n_points, max(1, round(0.02 * n_points)), replace=False)
    n_classes = len(CLASS_NAMES)
    codes[wrong] = (codes[wrong] + rng.integers(1, n_classes, wrong.size)) % n_classes
    return gpd.GeoDataFrame(
        {"obs_id": np.arange(1, n_points + 1), "lithology": np.asarray(CLASS_NAMES)[codes]},
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
