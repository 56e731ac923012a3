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

The public API lives here; the private modules follow the steps: ``_noise`` (hashed lattice
noise), ``_geology`` (unit codes at any point), ``_fields`` (blurred geophysics), ``_grid``
(grids and the windowed writer), ``_rasters`` (the survey rasters) and ``_labels`` (field
observations and the legacy map).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio

from geomap.synthetic._constants import (
    ALLUVIUM,
    BANDS,
    BASALT,
    CLASS_NAMES,
    CRS,
    GRANITE,
    LIMESTONE,
    ORIGIN,
    SANDSTONE,
    SHALE,
)
from geomap.synthetic._geology import _chunked, _truth, truth_at
from geomap.synthetic._grid import _Output, _reference, _write
from geomap.synthetic._labels import _check_points, _field_points, _legacy_map, _write_points
from geomap.synthetic._noise import _fbm, _key, _noise, _white
from geomap.synthetic._rasters import _cloud, _truth_output, _write_geophysics, _write_reference

__all__ = [
    "ALLUVIUM",
    "BANDS",
    "BASALT",
    "CLASS_NAMES",
    "CRS",
    "GRANITE",
    "LIMESTONE",
    "ORIGIN",
    "SANDSTONE",
    "SHALE",
    "Scene",
    "check_points",
    "make_scene",
    "truth_at",
    "write_benchmark_stack",
]


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


def check_points(scene: Scene, n_points: int = 2000) -> gpd.GeoDataFrame:
    """Observations at uniformly random places over a scene, labelled like its field points.

    The unit at the exact place (not the pixel centre), with ~2% of the labels wrong: what a
    geologist checking the map at random places would record. Agreement with them is the
    accuracy that cross-validation on field observations estimates; a 30 m pixel at a contact
    or a misidentified rock makes it lower than the agreement with ``truth.tif``.
    """
    with rasterio.open(scene.truth) as src:
        seed = int(src.tags()["SEED"])
        size, pixel_size = src.width, src.transform.a
    return _check_points(n_points, size, pixel_size, seed)


def write_benchmark_stack(
    directory: str | Path,
    *,
    size: int,
    n_bands: int = 12,
    pixel_size: float = 30.0,
    seed: int = 0,
    block_rows: int = 512,
    n_points: int = 1000,
    names: Sequence[str] | None = None,
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
    names : sequence of str, optional
        Band descriptions (``n_bands`` of them), e.g. a survey's ``blue`` ... ``K`` ... ``tmi``,
        so that geomap derives the features it would for such a survey. Default: the file stems.

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
    if names is not None and len(names) != n_bands:
        raise ValueError(f"names has to give {n_bands} band names; got {len(names)}.")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    means = np.random.default_rng([seed, 17]).normal(0, 1, (len(CLASS_NAMES), n_bands))
    weights = np.random.default_rng([seed, 19]).normal(0, 0.8, (2, n_bands))
    paths = [directory / f"band_{b + 1:02d}.tif" for b in range(n_bands)]
    labels = [p.stem for p in paths] if names is None else list(names)
    outputs = [_Output(p, "float32", -9999.0, (n,), ("",), {}) for p, n in zip(paths, labels)]
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
