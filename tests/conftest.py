"""Shared fixtures: small real GeoTIFFs and vector files written in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32633",
    transform: Affine | None = None,
    nodata: float | None = None,
    descriptions: list[str] | None = None,
    driver: str = "GTiff",
    **options,
) -> Path:
    """Write a (bands, rows, cols) array as a raster and return its path."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    transform = transform or Affine(30.0, 0, 500000.0, 0, -30.0, 5200000.0)
    profile = {
        "driver": driver,
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "transform": transform,
        "nodata": nodata,
        **options,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, d)
    return path


@pytest.fixture
def raster_factory(tmp_path):
    """Call with (name, data, **kwargs) to write a raster in tmp_path."""

    def make(name: str, data, **kwargs) -> Path:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        return write_raster(tmp_path / name, data, **kwargs)

    return make


@pytest.fixture(scope="session")
def demo_scene(tmp_path_factory):
    """A small synthetic scene with known truth, made once per test session."""
    from geomap.synthetic import make_scene

    return make_scene(tmp_path_factory.mktemp("scene"), size=160, n_points=220, seed=3)


@pytest.fixture(scope="session")
def demo_run(demo_scene, tmp_path_factory):
    """``geomap run`` on the demo scene with its defaults (60 trees, 12 sites): (out, report)."""
    from geomap.workflow import RunConfig, run

    out = tmp_path_factory.mktemp("run") / "map"
    config = RunConfig(
        rasters=list(demo_scene.rasters),
        labels=demo_scene.points_gpkg,
        label_column="lithology",
        out=out,
        trees=60,
        block_size=64,
        suggest=12,
    )
    return out, run(config)
