import geopandas as gpd
import numpy as np
import pytest
import rasterio
from shapely.geometry import Point

from geomap.errors import LabelError
from geomap.summary import describe_inputs


def test_describe_inputs_gives_grid_sources_and_samples(demo_scene):
    summary = describe_inputs(demo_scene.rasters, demo_scene.points_gpkg, "lithology")
    assert summary["grid"]["crs"] == "EPSG:32633"
    assert [s["path"] for s in summary["sources"]] == [str(p) for p in demo_scene.rasters]
    per_class = summary["samples"]["per_class"]
    assert set(per_class) <= set(demo_scene.class_names)
    assert sum(per_class.values()) == 220
    assert all(isinstance(k, str) for k in per_class)


def test_describe_inputs_without_labels_has_no_samples(demo_scene):
    summary = describe_inputs(demo_scene.rasters[:1])
    assert "samples" not in summary and summary["warnings"] == []


def test_describe_inputs_warns_of_thin_classes_and_points_outside(demo_scene, tmp_path):
    frame = gpd.read_file(demo_scene.points_gpkg)
    frame = frame.iloc[:12].copy()
    frame["lithology"] = ["granite"] * 10 + ["basalt"] * 2
    outside = gpd.GeoDataFrame(
        {"lithology": ["granite"]}, geometry=[Point(0.0, 0.0)], crs=frame.crs
    )
    path = tmp_path / "few.gpkg"
    gpd.GeoDataFrame(frame[["lithology", "geometry"]].to_dict("list"), crs=frame.crs).pipe(
        lambda f: gpd.pd.concat([f, outside])
    ).to_file(path)
    warnings = describe_inputs(demo_scene.rasters, path, "lithology")["warnings"]
    assert any("'basalt' has only 2 sample(s)" in w for w in warnings)
    assert any("1 of 13 points" in w for w in warnings)


def test_describe_inputs_refuses_one_class_as_training_does(demo_scene, tmp_path):
    """The Data page said "Ready: go to Train" under a warning of one class; training failed."""
    frame = gpd.read_file(demo_scene.points_gpkg).iloc[:12]
    frame["lithology"] = "granite"
    frame.to_file(tmp_path / "one.gpkg")
    with pytest.raises(LabelError, match=r"one\.gpkg': every observation on the rasters is of one"):
        describe_inputs(demo_scene.rasters, tmp_path / "one.gpkg", "lithology")


def test_more_classes_than_a_map_holds_are_refused_before_training(demo_scene, tmp_path):
    """260 units: the Data page refuses them as the run would, not a training later."""
    with rasterio.open(demo_scene.truth) as truth:
        left, bottom, right, top = truth.bounds
        crs = truth.crs
    rng = np.random.default_rng(0)
    x, y = rng.uniform(left + 500, right - 500, 520), rng.uniform(bottom + 500, top - 500, 520)
    units = [f"unit {i // 2}" for i in range(520)]
    gpd.GeoDataFrame({"lithology": units}, geometry=gpd.points_from_xy(x, y), crs=crs).to_file(
        tmp_path / "many.gpkg"
    )
    with pytest.raises(LabelError, match=r"260 classes on the rasters; a map holds at most 255"):
        describe_inputs(demo_scene.rasters, tmp_path / "many.gpkg", "lithology")
