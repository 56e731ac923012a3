"""Tests of the synthetic scene generator: real files in tmp_path, read back."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import Affine, rowcol
from rasterio.warp import transform_bounds
from scipy import ndimage
from scipy.spatial import cKDTree
from sklearn.ensemble import RandomForestClassifier

from geomap.synthetic import (
    CLASS_NAMES,
    ORIGIN,
    Scene,
    check_points,
    make_scene,
    truth_at,
    write_benchmark_stack,
)

SIZE = 200
PIXEL = 30.0
EXTENT = SIZE * PIXEL
FOOTPRINT = (ORIGIN[0], ORIGIN[1] - EXTENT, ORIGIN[0] + EXTENT, ORIGIN[1])
EXPECTED = {  # crs, dtype, nodata, band descriptions
    "landsat": ("EPSG:32633", "uint16", 0, ("blue", "green", "red", "nir", "swir1", "swir2")),
    "radiometrics": ("EPSG:4326", "float32", -9999, ("K", "Th", "U")),
    "magnetics": ("EPSG:32633", "float32", -99999, ("tmi",)),
    "dem": ("EPSG:32633", "int16", -32768, ("elevation",)),
    "truth": ("EPSG:32633", "uint8", 255, ("lithology",)),
}


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Scene:
    return make_scene(tmp_path_factory.mktemp("scene"), size=SIZE, seed=0)


@pytest.fixture(scope="module")
def windowed(tmp_path_factory) -> Scene:
    return make_scene(tmp_path_factory.mktemp("windowed"), size=SIZE, seed=0, block_rows=64)


@pytest.fixture(scope="module")
def reseeded(tmp_path_factory) -> Scene:
    return make_scene(tmp_path_factory.mktemp("reseeded"), size=SIZE, seed=1)


def read(path) -> np.ndarray:
    with rasterio.open(path) as src:
        return src.read()


def point_xy(scene: Scene) -> np.ndarray:
    points = gpd.read_file(scene.points_gpkg)
    return np.column_stack([points.geometry.x, points.geometry.y])


def test_scene_lists_its_files_in_order(scene):
    assert [p.stem for p in scene.rasters] == ["landsat", "radiometrics", "magnetics", "dem"]
    files = (*scene.rasters, scene.points_gpkg, scene.points_csv, scene.polygons_gpkg, scene.truth)
    assert all(p.is_file() and p.parent == scene.directory for p in files)
    assert scene.class_names == CLASS_NAMES == tuple(sorted(CLASS_NAMES))
    assert scene.label_column == "lithology"


@pytest.mark.parametrize("stem", EXPECTED)
def test_raster_metadata(scene, stem):
    crs, dtype, nodata, descriptions = EXPECTED[stem]
    with rasterio.open(scene.directory / f"{stem}.tif") as src:
        assert src.crs.to_string() == crs
        assert src.dtypes == (dtype,) * len(descriptions)
        assert src.nodata == nodata
        assert src.descriptions == descriptions
        assert src.block_shapes[0] == (256, 256)
        assert src.compression.name == "deflate"


def test_landsat_is_exactly_on_the_reference_grid(scene):
    with rasterio.open(scene.rasters[0]) as src:
        assert src.transform == Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1])
        assert (src.width, src.height) == (SIZE, SIZE)


@pytest.mark.parametrize("index", [1, 2, 3])
def test_other_rasters_cover_the_footprint_with_a_margin(scene, index):
    with rasterio.open(scene.rasters[index]) as src:
        left, bottom, right, top = transform_bounds(
            "EPSG:32633", src.crs, *FOOTPRINT, densify_pts=21
        )
        rx, ry = src.res
        assert src.bounds.left <= left - 3 * rx and src.bounds.right >= right + 3 * rx
        assert src.bounds.bottom <= bottom - 3 * ry and src.bounds.top >= top + 3 * ry


def test_grids_differ_from_the_reference(scene):
    with rasterio.open(scene.rasters[1]) as radio:
        assert 2.5 * PIXEL < radio.res[1] * 111_320 < 3.5 * PIXEL
    with rasterio.open(scene.rasters[2]) as mag:
        assert mag.res == (2 * PIXEL, 2 * PIXEL)
        offset = ((mag.transform.c - ORIGIN[0]) / mag.res[0]) % 1
        assert 0.05 < offset < 0.95 and abs(offset - 0.5) > 0.05
    with rasterio.open(scene.rasters[3]) as dem:
        assert dem.res == (PIXEL, PIXEL)
        assert ((dem.transform.c - ORIGIN[0]) / PIXEL) % 1 == pytest.approx(0.5)
        assert ((dem.transform.f - ORIGIN[1]) / PIXEL) % 1 == pytest.approx(0.5)


def test_radiometric_gaps_lie_outside_the_footprint(scene):
    with rasterio.open(scene.rasters[1]) as src:
        data, t = src.read(), src.transform
    missing = data == -9999
    assert missing.any() and np.array_equal(missing.any(axis=0), missing.all(axis=0))
    rows, cols = np.nonzero(missing[0])
    west, east = t.c + cols * t.a, t.c + (cols + 1) * t.a
    north, south = t.f + rows * t.e, t.f + (rows + 1) * t.e
    left, bottom, right, top = transform_bounds(
        "EPSG:32633", "EPSG:4326", *FOOTPRINT, densify_pts=21
    )
    assert np.all((east < left) | (west > right) | (north < bottom) | (south > top))
    assert np.all(data[~missing] >= 0)


def test_cloud_is_one_nodata_blob_in_every_band(scene):
    empty = read(scene.rasters[0]) == 0
    assert np.array_equal(empty.any(axis=0), empty.all(axis=0))
    assert 0.01 < empty[0].mean() < 0.08
    labels, count = ndimage.label(empty[0])
    assert np.bincount(labels.ravel())[1:].max() > 0.9 * empty[0].sum()


def test_without_cloud_landsat_has_no_nodata(tmp_path):
    small = make_scene(tmp_path, size=64, n_points=20, cloud=False)
    assert np.all(read(small.rasters[0]) > 0)


def test_truth_has_every_class_and_names_them(scene):
    with rasterio.open(scene.truth) as src:
        codes, names = src.read(1), json.loads(src.tags()["CLASS_NAMES"])
    assert tuple(names) == CLASS_NAMES
    assert np.array_equal(np.unique(codes), np.arange(len(CLASS_NAMES)))


def test_truth_at_reproduces_truth_tif(scene):
    with rasterio.open(scene.truth) as src:
        codes = src.read(1)
    offsets = (np.arange(SIZE) + 0.5) * PIXEL
    centres = ORIGIN[0] + offsets, ORIGIN[1] - offsets
    x, y = np.meshgrid(*centres)
    assert np.array_equal(truth_at(x, y, seed=0), codes)
    rows, cols = rowcol(Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1]), *point_xy(scene).T)
    rows, cols = np.asarray(rows), np.asarray(cols)
    at_points = truth_at(centres[0][cols], centres[1][rows], seed=0)
    assert np.array_equal(at_points, codes[rows, cols])


def test_truth_at_broadcasts_and_returns_codes():
    codes = truth_at(np.linspace(500_000, 506_000, 7)[:, None], 5_197_000.0, seed=3)
    assert codes.shape == (7, 1) and codes.dtype == np.uint8 and codes.max() < len(CLASS_NAMES)


def test_points_match_the_truth_with_a_few_mislabelled(scene):
    points = gpd.read_file(scene.points_gpkg)
    assert points.crs.to_epsg() == 32633 and len(points) == 300
    assert list(points["obs_id"]) == list(range(1, 301))
    assert points["geologist"].nunique() > 1
    truth = np.asarray(CLASS_NAMES)[truth_at(points.geometry.x, points.geometry.y, seed=0)]
    assert 0.95 <= np.mean(points["lithology"] == truth) < 1.0


def test_check_points_are_spread_and_labelled_like_the_field_points(scene):
    check = check_points(scene, 1000)
    assert len(check) == 1000 and check.crs.to_epsg() == 32633
    xy = np.column_stack([check.geometry.x, check.geometry.y])
    assert np.all((xy > FOOTPRINT[:2]) & (xy < FOOTPRINT[2:]))
    # spread: each quarter of the footprint holds about a quarter of them
    centre = (np.asarray(FOOTPRINT[:2]) + FOOTPRINT[2:]) / 2
    quarters = np.bincount(((xy > centre) * [1, 2]).sum(axis=1), minlength=4)
    assert quarters.min() > 200
    truth = np.asarray(CLASS_NAMES)[truth_at(xy[:, 0], xy[:, 1], seed=0)]
    assert np.mean(check["lithology"] != truth) == 0.02  # mislabelled, like the field points
    assert check.equals(check_points(scene, 1000))


def test_points_are_clustered_inside_the_footprint(scene):
    xy = point_xy(scene)
    assert np.all((xy > FOOTPRINT[:2]) & (xy < FOOTPRINT[2:]))
    uniform = np.random.default_rng(0).uniform(FOOTPRINT[:2], FOOTPRINT[2:], xy.shape)

    def mean_nn(a: np.ndarray) -> float:
        return cKDTree(a).query(a, k=2)[0][:, 1].mean()

    assert mean_nn(xy) < 0.5 * mean_nn(uniform)


def test_a_few_points_fall_in_the_cloud(scene):
    landsat = read(scene.rasters[0])[0]
    rows, cols = rowcol(Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1]), *point_xy(scene).T)
    clouded = landsat[np.asarray(rows), np.asarray(cols)] == 0
    assert 1 <= clouded.sum() <= 0.1 * clouded.size


def test_csv_reprojects_onto_the_gpkg_points(scene):
    table = pd.read_csv(scene.points_csv)
    points = gpd.read_file(scene.points_gpkg)
    assert list(table.columns) == ["obs_id", "lon", "lat", "lithology"]
    x, y = Transformer.from_crs("EPSG:4326", "EPSG:32633", always_xy=True).transform(
        table["lon"], table["lat"]
    )
    np.testing.assert_allclose(np.column_stack([x, y]), point_xy(scene), atol=0.01)
    assert table["lithology"].tolist() == points["lithology"].tolist()
    assert table["obs_id"].tolist() == points["obs_id"].tolist()


def test_legacy_map_is_a_dissolved_patch_away_from_traverses(scene):
    polygons = gpd.read_file(scene.polygons_gpkg)
    assert polygons.crs.to_epsg() == 32633
    assert polygons["lithology"].is_unique and set(polygons["lithology"]) <= set(CLASS_NAMES)
    left, bottom, right, top = polygons.total_bounds
    assert right - left == pytest.approx(0.15 * EXTENT) == top - bottom
    assert polygons.area.sum() == pytest.approx((0.15 * EXTENT) ** 2)
    assert FOOTPRINT[0] <= left and right <= FOOTPRINT[2]
    assert FOOTPRINT[1] <= bottom and top <= FOOTPRINT[3]
    xy = point_xy(scene)
    inside = (xy[:, 0] > left) & (xy[:, 0] < right) & (xy[:, 1] > bottom) & (xy[:, 1] < top)
    assert inside.mean() < 0.1


def test_windowed_generation_is_exact_and_seeded(scene, windowed, reseeded):
    files = [(*s.rasters, s.truth) for s in (scene, windowed, reseeded)]
    for ours, theirs, other in zip(*files, strict=True):
        assert np.array_equal(read(ours), read(theirs))
        assert not np.array_equal(read(ours), read(other))
    assert gpd.read_file(scene.points_gpkg).equals(gpd.read_file(windowed.points_gpkg))
    assert not np.array_equal(point_xy(scene), point_xy(reseeded))
    assert gpd.read_file(scene.polygons_gpkg).equals(gpd.read_file(windowed.polygons_gpkg))


def test_per_pixel_random_forest_is_moderately_hard(scene):
    bands, truth = read(scene.rasters[0]), read(scene.truth)[0]
    points = gpd.read_file(scene.points_gpkg)
    rows, cols = rowcol(Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1]), *point_xy(scene).T)
    features = bands[:, np.asarray(rows), np.asarray(cols)].T
    seen = features[:, 0] > 0
    model = RandomForestClassifier(n_estimators=100, random_state=0)
    model.fit(features[seen], points["lithology"][seen])
    valid = bands[0] > 0
    predicted = model.predict(bands[:, valid].T)
    accuracy = np.mean(predicted == np.asarray(CLASS_NAMES)[truth[valid]])
    assert 0.45 < accuracy < 0.9


def test_benchmark_stack_is_windowed_and_on_the_reference_grid(tmp_path):
    paths, points, truth = write_benchmark_stack(
        tmp_path / "a", size=96, n_bands=3, block_rows=40, n_points=50
    )
    again, _, truth_again = write_benchmark_stack(tmp_path / "b", size=96, n_bands=3, n_points=50)
    assert [p.name for p in paths] == ["band_01.tif", "band_02.tif", "band_03.tif"]
    for path, other in zip([*paths, truth], [*again, truth_again], strict=True):
        with rasterio.open(path) as src:
            assert src.transform == Affine(PIXEL, 0, ORIGIN[0], 0, -PIXEL, ORIGIN[1])
            assert src.count == 1 and src.crs.to_epsg() == 32633
        assert np.array_equal(read(path), read(other))
    assert read(paths[0]).dtype == np.float32
    assert len(gpd.read_file(points)) == 50
    named, _, _ = write_benchmark_stack(
        tmp_path / "c", size=32, n_bands=2, n_points=10, names=["blue", "K"]
    )
    with rasterio.open(named[0]) as a, rasterio.open(named[1]) as b:
        assert (a.descriptions, b.descriptions) == (("blue",), ("K",))
    with pytest.raises(ValueError, match="2 band names"):
        write_benchmark_stack(tmp_path / "d", size=32, n_bands=2, names=["blue"])


@pytest.mark.parametrize(
    "kwargs", [{"size": 4}, {"n_points": 0}, {"pixel_size": 0.0}, {"block_rows": 0}, {"size": 64.5}]
)
def test_invalid_arguments_are_refused(tmp_path, kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_scene(tmp_path, **kwargs)
