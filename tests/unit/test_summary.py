import geopandas as gpd
from shapely.geometry import Point

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


def test_describe_inputs_warns_of_one_class_thin_classes_and_points_outside(demo_scene, tmp_path):
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

    frame["lithology"] = "granite"
    frame.to_file(tmp_path / "one.gpkg")
    warnings = describe_inputs(demo_scene.rasters, tmp_path / "one.gpkg", "lithology")["warnings"]
    assert any("needs at least two" in w for w in warnings)
