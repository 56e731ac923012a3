import re
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform
from rasterio.windows import Window
from shapely.geometry import LineString, MultiPoint, Point, Polygon, box

from geomap.errors import LabelError, MissingFileError
from geomap.features import FeatureRecipe
from geomap.grid import Grid
from geomap.labels import (
    class_name_notes,
    class_order,
    label_columns,
    label_layers,
    observation_layer,
    read_labels,
)
from geomap.placement import (
    _slip_text,
    extract_features,
    observation_weights,
    placement_notes,
    sample_labels,
    vote_weights,
)
from geomap.stack import RasterStack

X0, Y0 = 500000.0, 5200000.0  # grid origin of the conftest rasters (30 m pixels)
CRS = "EPSG:32633"


@pytest.fixture
def stack(raster_factory):
    data = np.random.default_rng(0).random((2, 100, 100)).astype("float32")
    data[:, 90:, 90:] = np.nan
    path = raster_factory("bands.tif", data, descriptions=["red", "nir"])
    with RasterStack.open([path]) as s:
        yield s


def points(n=4, crs="EPSG:32633", labels=None):
    geoms = [Point(X0 + 45 + 300 * i, Y0 - 45 - 300 * i) for i in range(n)]
    labels = labels or ["granite", "basalt"] * (n // 2)
    return gpd.GeoDataFrame({"lithology": labels, "note": "x"}, geometry=geoms, crs=crs)


def test_multipoints_are_counted_point_by_point(tmp_path, stack):
    inside = [Point(X0 + 45 + 300 * i, Y0 - 45 - 300 * i) for i in range(4)]
    outside = [Point(X0 - 5000, Y0 + 5000 + 30 * i) for i in range(3)]
    frame = gpd.GeoDataFrame(
        {"lithology": ["granite", "basalt"]},
        geometry=[MultiPoint(inside[:2] + outside), MultiPoint(inside[2:])],
        crs=CRS,
    )
    p = tmp_path / "multi.geojson"
    frame.to_file(p, driver="GeoJSON")
    counts = sample_labels(read_labels(p, "lithology"), stack.grid).counts
    assert counts["observations"] == 2 and counts["points"] == 7
    assert counts["points_outside_grid"] == 3
    (note,) = placement_notes(p, counts)
    assert note.startswith("3 of 7 points")


def test_a_spanish_field_sheets_station_column_names_the_observations(tmp_path):
    """'estacion' (AN-001...) was not taken for the identifier: points were listed as fids."""
    p = tmp_path / "estaciones.csv"
    p.write_text(
        "Estación;lat;lon;litologia\nAN-001;-31.95;-70.85;Granito\nAN-002;-31.96;-70.86;Lutita\n",
        encoding="utf-8",
    )
    assert list(read_labels(p, "litologia")["site"]) == ["Estación AN-001", "Estación AN-002"]


def test_beside_points_a_polygons_pixels_share_its_worth():
    """50 points on a 100 x 100 grid: 200 map pixels per point. A 400-pixel polygon counts as
    3 x 400 / 200 = 6 observations, a 4-pixel one as 1 (at least one), whatever their samples."""
    grid = Grid(rasterio.crs.CRS.from_epsg(32633), Affine(30, 0, X0, 0, -30, Y0), 100, 100)
    kind = np.array(["point"] * 50 + ["polygon"] * 130)
    idx = np.r_[np.arange(50), np.full(120, 50), np.full(10, 51)]
    area = np.r_[np.zeros(50), 400 * 900.0, 4 * 900.0]
    weight = observation_weights(kind, idx, area, grid)
    assert (weight[:50] == 1).all()
    assert weight[50:170].sum() == pytest.approx(6) and weight[170:].sum() == pytest.approx(1)
    assert (observation_weights(kind[50:], idx[50:], area, grid) == 1).all()  # polygons alone


def test_a_som_nodes_vote_weighs_a_legacy_maps_units_by_their_mapped_area(tmp_path):
    """Two units drawn 40 pixels each, one covering 10 times the other's area: in a SOM node's
    vote each pixel of the large one weighs 10 times one of the small one; the polygons weigh
    what they weigh in training altogether, and points keep their weight."""
    grid = Grid(rasterio.crs.CRS.from_epsg(32633), Affine(30, 0, X0, 0, -30, Y0), 100, 100)
    big = box(X0, Y0 - 30 * 50, X0 + 30 * 100, Y0)  # 5000 pixels
    small = box(X0, Y0 - 30 * 100, X0 + 30 * 10, Y0 - 30 * 50)  # 500 pixels
    frame = gpd.GeoDataFrame({"rock": ["shale", "granite"]}, geometry=[big, small], crs=CRS)
    p = tmp_path / "legacy.gpkg"
    frame.to_file(p)
    samples = sample_labels(read_labels(p, "rock"), grid, max_per_class=40)
    assert samples.counts["polygon_area_pixels"] == {"granite": 500, "shale": 5000}
    vote = vote_weights(samples.kind, samples.labels, samples.weight, samples.counts[
        "polygon_area_pixels"])  # fmt: skip
    shale, granite = vote[samples.labels == "shale"], vote[samples.labels == "granite"]
    assert len(shale) == len(granite) == 40
    np.testing.assert_allclose(shale / granite[0], 10.0)
    assert vote.sum() == pytest.approx(samples.weight.sum())
    # a unit drawn as a background under another holds only what is left of it
    under = box(X0, Y0 - 30 * 100, X0 + 30 * 100, Y0)  # the whole sheet, 10,000 pixels
    frame = gpd.GeoDataFrame({"rock": ["shale", "granite"]}, geometry=[under, big], crs=CRS)
    frame.to_file(p)
    held = sample_labels(read_labels(p, "rock"), grid, max_per_class=40).counts
    assert held["polygon_area_pixels"] == {"granite": 5000, "shale": 5000}
    kind = np.r_[samples.kind, ["point"] * 3]
    labels, weight = np.r_[samples.labels, ["granite"] * 3], np.r_[samples.weight * 0.1, [1.0] * 3]
    mixed = vote_weights(kind, labels, weight, samples.counts["polygon_area_pixels"])
    assert (mixed[-3:] == 1).all() and mixed[:-3].sum() == pytest.approx(weight[:-3].sum())


def test_points_off_the_grid_are_named_and_gps_nulls_told(tmp_path, stack):
    """'13 of 343 points fall outside the grid' named none of them, and three were GPS nulls."""
    lon, lat = transform(CRS, "EPSG:4326", [X0 + 45 + 300 * i for i in range(4)], [Y0 - 45] * 4)
    table = pd.DataFrame({"station": ["GM-1", "GM-2", "GM-3", "GM-4"], "lon": lon, "lat": lat})
    table.loc[1, ["lon", "lat"]] = 0.0, 0.0
    table.loc[3, "lon"] += 1.0  # a slip of one degree
    table.loc[4] = "GM-5", 0.0, 0.0  # a second null of the same unit is no repeated entry
    p = tmp_path / "obs.csv"
    table.assign(lithology=["granite", "basalt"] * 2 + ["basalt"]).to_csv(p, index=False)
    counts = sample_labels(read_labels(p, "lithology"), stack.grid).counts
    assert counts["points_outside_grid"] == 3 and counts["repeated_rows"]["count"] == 0
    (note,) = [n for n in placement_notes(p, counts) if "outside the grid" in n]
    assert note == (
        "3 of 5 points in 'obs.csv' fall outside the grid (the rasters' common footprint, in "
        "whole pixels of the grid) and are not used (station GM-2, station GM-4, station GM-5). "
        "2 of them lie at 0, 0: a position never recorded (a GPS without a fix)."
    )
    assert not [n for n in placement_notes(p, counts) if "repeat" in n]


def test_points_off_the_grid_by_a_typing_slip_are_named_with_the_slip(tmp_path, stack):
    """A field book's lost minus signs and swapped columns were just 'outside the grid'."""
    xs = [X0 + 45 + 300 * i for i in range(9)]
    lon, lat = transform(CRS, "EPSG:4326", xs, [Y0 - 45 - 200 * i for i in range(9)])
    table = pd.DataFrame({"station": [f"GM-{i + 1}" for i in range(9)], "lon": lon, "lat": lat})
    table.loc[[2, 5], ["lon", "lat"]] = table.loc[[2, 5], ["lat", "lon"]].to_numpy()
    table.loc[[3, 6, 7], "lat"] *= -1
    table.loc[8, ["lon", "lat"]] *= -1
    table.loc[9] = "GM-10", lon[0] + 2.0, lat[0]  # off by two degrees: no slip to name
    p = tmp_path / "obs.csv"
    table.assign(lithology=["granite", "basalt"] * 5).to_csv(p, index=False)
    counts = sample_labels(read_labels(p, "lithology"), stack.grid).counts
    assert counts["points_outside_grid"] == 7
    (note,) = [n for n in placement_notes(p, counts) if "outside the grid" in n]
    assert note.endswith(
        "are not used (e.g. station GM-3, station GM-4, station GM-6). 2 of them fall on the "
        "rasters with their two coordinates swapped (station GM-3, station GM-6): check which "
        "column holds which in those rows. 3 of them fall on the rasters with the sign of their "
        "latitude changed (station GM-4, station GM-7, station GM-8): check the latitude's sign "
        "(a minus sign, or S and N) in those rows. 1 of them falls on the rasters with the signs "
        "of their longitude and latitude changed (station GM-9): check both signs (minus signs, "
        "or the hemisphere letters) in that row."
    )


def test_eastings_and_northings_swapped_in_some_rows_are_named(tmp_path, stack):
    frame = points(4)
    frame.loc[3, "geometry"] = Point(frame.geometry[3].y, frame.geometry[3].x)
    p = tmp_path / "obs.gpkg"
    frame.to_file(p)
    counts = sample_labels(read_labels(p, "lithology"), stack.grid).counts
    assert counts["outside_slips"] == {"swapped": {"count": 1, "example": ["fid 4"]}}


def test_points_naming_different_units_in_one_pixel_are_noted(tmp_path, stack):
    frame = points(4)
    twin = frame.iloc[[1]].assign(lithology="shale")  # a second entry for the same station
    frame = pd.concat([frame, twin, frame.iloc[[2]]], ignore_index=True)  # and a true duplicate
    p = tmp_path / "obs.gpkg"
    frame.to_file(p)
    counts = sample_labels(read_labels(p, "lithology"), stack.grid).counts
    assert counts["conflicting_pixels"] == {
        "pixels": 1,
        "example": ["fid 2 (basalt)", "fid 5 (shale)"],
    }
    note, repeat = placement_notes(p, counts)
    assert note.startswith("1 pixel(s) of the grid hold points of 'obs.gpkg' that name different")
    assert repeat.startswith(  # kept silently, it counted twice in random CV
        "1 row(s) of 'obs.gpkg' repeat an earlier row exactly, the same place and unit (e.g. fid "
        "6 repeats fid 3): an entry made twice. Each is used once"
    )
    assert counts["observations"] == 6 and counts["points"] == 6  # as the file holds them


def test_geopackage_points_keep_text_names(tmp_path, stack):
    p = tmp_path / "obs.gpkg"
    points().to_file(p)
    labels = read_labels(p, "lithology")
    assert list(labels["label"]) == ["granite", "basalt", "granite", "basalt"]
    s = sample_labels(labels, stack.grid)
    assert list(s.rows) == [1, 11, 21, 31] and list(s.cols) == [1, 11, 21, 31]
    assert set(s.source) == {"obs.gpkg"}
    assert list(s.site) == ["fid 1", "fid 2", "fid 3", "fid 4"]
    kept = s.subset(np.array([False, True, False, True]))
    assert list(kept.site) == ["fid 2", "fid 4"] and kept.xy.shape == (2, 2)


def test_samples_keep_where_each_point_was_observed_not_its_pixel_centre(stack):
    frame = points().assign(site=["a", "b", "c", "d"], source="obs.gpkg")
    frame = frame.rename(columns={"lithology": "label"})
    frame.geometry = frame.geometry.translate(-8.0, 11.0)  # off the pixel centres
    s = sample_labels(frame, stack.grid)
    assert list(s.rows) == [1, 11, 21, 31]
    np.testing.assert_allclose(s.xy[:, 0], X0 + 37 + 300 * np.arange(4))
    np.testing.assert_allclose(s.xy[:, 1], Y0 - 34 - 300 * np.arange(4))


def test_a_project_geopackage_of_several_layers(tmp_path, stack):
    p = tmp_path / "project.gpkg"
    faults = gpd.GeoDataFrame(
        {"throw_m": [10.0]}, geometry=[LineString([(X0, Y0), (X0 + 900, Y0 - 900)])], crs=CRS
    )
    faults.to_file(p, layer="faults")
    points().to_file(p, layer="observations")
    assert len(read_labels(p, "lithology")) == 4  # the only layer with the column
    assert len(read_labels(p, "lithology ")) == 4  # blanks ignored, as in a file of one layer
    assert label_columns(p) == ["throw_m", "lithology", "note"]
    points(labels=["x", "y", "x", "y"]).to_file(p, layer="old_observations")
    with pytest.raises(LabelError, match="hold 3 layers .*2 of them .*--label-layer"):
        read_labels(p, "lithology")
    assert set(read_labels(p, "lithology", layer="old_observations")["label"]) == {"x", "y"}


def test_points_in_another_crs_are_reprojected(tmp_path, stack):
    p = tmp_path / "obs.geojson"
    points().to_crs("EPSG:4326").to_file(p)
    s = sample_labels(read_labels(p, "lithology"), stack.grid)
    assert list(s.rows) == [1, 11, 21, 31]


def test_zipped_shapefile(tmp_path, stack):
    points().to_file(tmp_path / "obs.shp")
    z = tmp_path / "obs.zip"
    with zipfile.ZipFile(z, "w") as f:
        for ext in ("shp", "shx", "dbf", "prj", "cpg"):
            f.write(tmp_path / f"obs.{ext}", f"obs.{ext}")
    assert len(read_labels(z, "lithology")) == 4


def _zip(tmp_path, name, members):
    z = tmp_path / name
    with zipfile.ZipFile(z, "w") as f:
        for stem, inner in members:
            for ext in ("shp", "shx", "dbf", "prj", "cpg"):
                f.write(tmp_path / f"{stem}.{ext}", f"{inner}.{ext}")
    return z


def test_zipped_shapefile_inside_its_folder(tmp_path, stack):
    points().to_file(tmp_path / "obs.shp")
    z = _zip(tmp_path, "obs.zip", [("obs", "legacy map/obs")])  # "Send to > Compressed folder"
    assert len(read_labels(z, "lithology")) == 4
    two = _zip(tmp_path, "two.zip", [("obs", "a/obs"), ("obs", "b/obs")])
    with pytest.raises(LabelError, match="holds 2 Shapefiles in 2 folders.*one Shapefile"):
        read_labels(two, "lithology")


@pytest.mark.parametrize("folder", ["", "delivery/"])
def test_a_zip_of_several_shapefiles_reads_the_one_with_the_column_or_the_layer_named(
    tmp_path, folder
):
    """A delivery zipped with its faults: refused, even with --label-layer naming the map."""
    points().to_file(tmp_path / "geology.shp")
    faults = points().assign(lithology="fault")
    faults.rename(columns={"lithology": "kind"}).to_file(tmp_path / "faults.shp")
    z = _zip(tmp_path, "d.zip", [("geology", f"{folder}geology"), ("faults", f"{folder}faults")])
    assert sorted(label_layers(z)) == ["faults", "geology"]
    assert len(read_labels(z, "lithology")) == 4  # the only layer with that column
    assert set(read_labels(z, "kind", layer="faults")["label"]) == {"fault"}
    with pytest.raises(LabelError, match="hold 2 layers .* none of them have a column 'rock'"):
        read_labels(z, "rock")


def test_a_zips_faults_as_lines_are_not_offered_first_and_name_the_other_layer(tmp_path):
    """Faults (lines) zipped first beside the map: the app took them and said to buffer lines."""
    lines = [LineString([(X0, Y0 - 30 * i), (X0 + 900, Y0 - 30 * i)]) for i in range(1, 4)]
    gpd.GeoDataFrame({"kind": ["fault"] * 3}, geometry=lines, crs=CRS).to_file(
        tmp_path / "aaa_faults.shp"
    )
    points().to_file(tmp_path / "geology.shp")
    z = _zip(tmp_path, "d.zip", [("aaa_faults", "aaa_faults"), ("geology", "geology")])
    assert label_layers(z)[0] == "aaa_faults" and observation_layer(z) == "geology"
    with pytest.raises(LabelError, match=r"If another of its layers holds them \(geology\)"):
        read_labels(z, "kind", layer="aaa_faults")


def test_a_zip_from_a_mac_with_its_resource_forks(tmp_path, stack):
    points().to_file(tmp_path / "obs.shp")
    z = _zip(tmp_path, "mac.zip", [("obs", "field/obs")])
    with zipfile.ZipFile(z, "a") as f:
        f.writestr("__MACOSX/field/._obs.shp", b"\x00\x05\x16\x07")
    assert len(read_labels(z, "lithology")) == 4


def test_a_layer_that_is_not_there_lists_those_that_are(tmp_path):
    p = tmp_path / "project.gpkg"
    points().to_file(p, layer="observations")
    with pytest.raises(LabelError, match="no layer 'obs2024'. Its layers are: observations"):
        read_labels(p, "lithology", layer="obs2024")


def test_a_csv_of_one_column_is_read_as_one_column(tmp_path):
    p = tmp_path / "units.csv"
    p.write_text("unit\ngranite\nbasalt\n")
    with pytest.raises(LabelError, match=r"no coordinate columns found among \['unit'\]"):
        read_labels(p, "unit")


def test_blank_classes_are_not_observations(tmp_path, stack):
    p = tmp_path / "obs.gpkg"
    points(labels=["granite", " ", "basalt", ""]).to_file(p)
    labels = read_labels(p, "lithology")
    assert list(labels["label"]) == ["granite", "basalt"]
    (note,) = placement_notes(p, sample_labels(labels, stack.grid).counts)
    assert note == "2 observations in 'obs.gpkg' have a blank class and are not used."
    g = points().to_crs("EPSG:4326")
    csv_path = tmp_path / "obs.csv"
    rock = ["granite", None, " ", "basalt"]  # an empty cell and a space
    pd.DataFrame({"lon": g.geometry.x, "lat": g.geometry.y, "rock": rock}).to_csv(csv_path)
    counts = sample_labels(read_labels(csv_path, "rock"), stack.grid).counts
    assert counts["blank_classes"] == 2
    points(labels=[" ", "", "  ", ""]).to_file(p)
    with pytest.raises(LabelError, match="every value in 'lithology' is blank"):
        read_labels(p, "lithology")


def test_observations_without_a_geometry_are_counted_and_a_class_they_hold_named(tmp_path, stack):
    """Lost GPS fixes: the rows are read with a NULL shape; every 'dolerite' was one."""
    p = tmp_path / "obs.gpkg"
    frame = points(n=6, labels=["granite", "basalt", "granite", "dolerite", "basalt", "dolerite"])
    frame.loc[[2, 3, 5], "geometry"] = None
    frame.to_file(p)
    labels = read_labels(p, "lithology")
    assert list(labels["label"]) == ["granite", "basalt", "basalt"]
    notes = placement_notes(p, sample_labels(labels, stack.grid).counts)
    assert notes == [
        "3 observations in 'obs.gpkg' have no geometry (no point or polygon: a lost GPS fix, a "
        "row never placed) and are not used; give them coordinates.",
        "Class(es) 'dolerite' of 'obs.gpkg' have observations only without a geometry, so the "
        "map cannot show them. Give them coordinates.",
    ]


def test_a_geometry_collection_is_read_as_its_areas(tmp_path, stack):
    """A polygon with a stray line, as QGIS's "Fix geometries" leaves it; lines alone: refused."""
    from shapely.geometry import GeometryCollection

    area = box(X0 + 300, Y0 - 900, X0 + 900, Y0 - 300)
    stray = LineString([(X0 + 900, Y0 - 300), (X0 + 1500, Y0 - 300)])
    frame = points(n=2)
    frame.loc[2] = ["shale", "x", GeometryCollection([area, stray])]
    frame.to_file(tmp_path / "fixed.gpkg")
    labels = read_labels(tmp_path / "fixed.gpkg", "lithology")
    assert labels.geometry.iloc[2].equals(area)
    frame.loc[2, "geometry"] = GeometryCollection([stray])
    frame.to_file(tmp_path / "lines.gpkg")
    with pytest.raises(LabelError, match=r"does not read \(1 GeometryCollection of lines\); "):
        read_labels(tmp_path / "lines.gpkg", "lithology")


def test_each_observation_is_named_as_the_geologist_finds_it_in_the_file(tmp_path, stack):
    p = tmp_path / "obs.gpkg"
    frame = points(labels=["granite", "", "basalt", "granite"])
    frame["Station ID"] = ["GM-01", "GM-02", None, "GM-04"]
    frame.to_file(p)
    # the id column's name and value; without a value, the feature id (the blank one is dropped)
    labels = read_labels(p, "lithology")
    assert list(labels["site"]) == ["Station ID GM-01", "fid 3", "Station ID GM-04"]
    assert list(labels["site_key"]) == ["GM-01", "", "GM-04"]  # to join outputs on Station ID
    assert labels.attrs["site_key"] == "Station ID"
    assert sample_labels(labels, stack.grid).counts["site_key"] == "Station ID"
    frame.drop(columns="Station ID").assign(sample_id=[7.0, 8.0, 9.0, 10.0]).to_file(p)
    assert list(read_labels(p, "lithology")["site"]) == [
        "sample_id 7",
        "sample_id 9",
        "sample_id 10",
    ]
    frame.drop(columns="Station ID").to_file(p)  # no identifier: the feature id QGIS shows
    assert list(read_labels(p, "lithology")["site"]) == ["fid 1", "fid 3", "fid 4"]


def test_columns_of_codes_or_unit_names_do_not_name_observations(tmp_path):
    p = tmp_path / "obs.gpkg"
    frame = points(labels=["granite", "basalt", "granite", "basalt"])
    frame["lith_id"] = [1, 2, 1, 2]  # a code per unit, not per observation
    frame["name"] = ["Granite", "Basalt", "Granite", "Basalt"]
    frame.to_file(p)
    assert list(read_labels(p, "lithology")["site"]) == ["fid 1", "fid 2", "fid 3", "fid 4"]
    frame["name"] = ["granite", "basalt", "granite2", "basalt2"]  # distinct, yet the classes
    frame.drop(columns="lith_id").to_file(p)
    assert read_labels(p, "lithology")["site"].iloc[0] == "fid 1"
    visits = points(n=10)  # a station visited twice among ten: told apart by place
    visits["station"] = ["A", "B", "A", *"CDEFGHI"]
    visits.to_file(p)
    assert list(read_labels(p, "lithology")["site"])[:4] == [
        "station A (fid 1)",
        "station B",
        "station A (fid 3)",
        "station C",
    ]


def test_csv_observations_are_named_by_their_line_and_their_ids_as_written(tmp_path):
    csv_path = tmp_path / "obs.csv"
    csv_path.write_text("lon,lat,rock\n15.0,46.9,granite\n15.1,46.9,\n15.2,46.9,basalt\n")
    assert list(read_labels(csv_path, "rock")["site"]) == ["line 2", "line 4"]
    # a blank line and a note over two lines: the lines of the file, as an editor numbers them
    csv_path.write_text(
        'lon,lat,rock,note\n15.0,46.9,granite,"weathered,\nred"\n\n15.2,46.9,basalt,fresh\n'
    )
    assert list(read_labels(csv_path, "rock")["site"]) == ["line 2", "line 5"]
    csv_path.write_text("lon,lat,rock,Station\n15.0,46.9,granite,007\n15.1,46.9,basalt,1e3\n")
    labels = read_labels(csv_path, "rock")
    assert list(labels["site"]) == ["Station 007", "Station 1e3"]
    assert list(labels["site_key"]) == ["007", "1e3"]
    csv_path.write_text("lon,lat,rock\n15.0,46.9,granite\n")
    labels = read_labels(csv_path, "rock")
    assert (list(labels["site_key"]), labels.attrs["site_key"]) == (["2"], "line")
    # the class column is never the identifier, even when named like one
    csv_path.write_text("lon,lat,id\n15.0,46.9,granite\n")
    assert list(read_labels(csv_path, "id")["site"]) == ["line 2"]
    csv_path.write_text("lon,lat,rock\n15.0,46.9,granite\n\n15.1,x,basalt\n")
    with pytest.raises(LabelError, match=r"\(line 4; the first reads .15\.1., .x.\)"):
        read_labels(csv_path, "rock")


def test_google_earth_kml_is_read_and_a_description_column_told(tmp_path, stack):
    """Placemarks named by station, their rock type in the HTML description Google Earth keeps."""
    frame = points(4).to_crs("EPSG:4326")
    frame["Name"] = ["GM-1", "GM-2", "GM-3", "GM-4"]
    frame["Description"] = [f"Rock type: {r}<br>Outcrop, fresh" for r in frame["lithology"]]
    p = tmp_path / "field_stations_2024.kml"
    frame[["Name", "Description", "lithology", "geometry"]].to_file(p, driver="KML")
    labels = read_labels(p, "lithology")
    assert list(labels["label"]) == list(frame["lithology"]) and labels.crs.to_epsg() == 4326
    assert list(labels["site"]) == ["Name GM-1", "Name GM-2", "Name GM-3", "Name GM-4"]
    assert sample_labels(labels, stack.grid).counts["points"] == 4
    described = read_labels(p, "description")  # as GDAL names it
    (note,) = class_name_notes(sorted(set(described["label"])), p)
    assert note.startswith(
        "2 of the 2 classes in 'field_stations_2024.kml' hold HTML markup (e.g. 'Rock type: basalt"
    )


def test_class_names_that_differ_in_capitals_or_spaces_are_flagged(tmp_path):
    names = np.array(["Granite", "granite", "basalt", "Old  Red", "old red"])  # numpy strings
    (note,) = class_name_notes(names, tmp_path)  # one note, one legend for every group
    assert "('Granite', 'granite'; 'Old  Red', 'old red')" in note
    assert note.endswith(
        "'value,name', then the rows 'Granite,granite' 'granite,granite' 'Old  Red,old red' "
        "'old red,old red'."
    )
    assert class_name_notes(["granite", "basalt"], tmp_path) == []
    # accents, and the spelling of most observations proposed (not the first in order)
    (note,) = class_name_notes(["Aluvion", "Aluvión"], tmp_path, {"Aluvion": 1, "Aluvión": 61})
    assert "in capitals, accents, spaces in" in note
    assert note.endswith("the rows 'Aluvion,Aluvión' 'Aluvión,Aluvión'.")
    (note,) = class_name_notes(["basalt?", "basalt", "shale"], tmp_path)  # an uncertain call
    assert "in capitals, accents, spaces or a question mark in" in note
    assert "('basalt', 'basalt?')" in note
    assert "the rows 'basalt,basalt' 'basalt?,basalt'. A name ending in '?' is an" in note


def test_capitals_and_a_misspelling_get_one_legend_that_merges_both(tmp_path):
    """Each note's legend once left out what the other merged: 'granit' or the capitals."""
    counts = {"granite": 40, "Granite": 10, "granit": 1, "shale": 30, "Shale": 3, "basalt": 20}
    notes = class_name_notes(list(counts), tmp_path / "obs.csv", counts)
    assert len(notes) == 2 and "only in capitals" in notes[0] and "one letter" in notes[1]
    rows = (
        "the rows 'granit,granite' 'granite,granite' 'Granite,granite' 'Shale,shale' 'shale,shale'."
    )
    assert all(rows in note for note in notes)
    assert "(--legend)" in notes[0]
    # misspelt in two ways, 7 in all: the group is no rare slip, and its two names go together
    counts = {"granite": 100, "granit": 5, "Granit": 2}
    (note,) = class_name_notes(list(counts), tmp_path / "obs.csv", counts)
    assert note.endswith("the rows 'Granit,granit' 'granit,granit'.")


def test_a_rare_name_one_letter_from_a_common_one_is_asked_about(tmp_path):
    counts = {"Caliza": 61, "Calisa": 1, "Lutita": 40, "Lutitas": 2, "Unit A": 50, "Unit B": 2}
    counts |= {"Kg1": 30, "Kg2": 1, "shale": 40, "slate": 3, "Granite": 30, "granite": 1}
    (note,) = class_name_notes(list(counts)[:6], tmp_path / "obs.csv", counts)
    assert "'Calisa' (1 observation) beside 'Caliza' (61); 'Lutitas' (2 observations)" in note
    assert "the rows 'Calisa,Caliza' 'Caliza,Caliza' 'Lutitas,Lutita' 'Lutita,Lutita'." in note
    assert "Unit" not in note  # a one-letter word: units A and B, not a typo
    # digits are unit codes; two letters apart is another rock; capitals are told apart already
    assert class_name_notes(["Kg1", "Kg2", "shale", "slate"], tmp_path, counts) == []
    (lookalike,) = class_name_notes(["Granite", "granite"], tmp_path, counts)
    assert "one letter" not in lookalike
    swapped = {"Andesita": 30, "Andesiat": 1}
    assert len(class_name_notes(list(swapped), tmp_path, swapped)) == 1
    common = {"Caliza": 20, "Calisa": 5}  # both well observed: two units, not asked about
    assert class_name_notes(list(common), tmp_path, common) == []
    assert class_name_notes(["Caliza", "Calisa"], tmp_path) == []  # counts unknown


def test_observations_off_the_rasters_or_on_nodata_are_reported(tmp_path, stack):
    far = points(6)
    far.geometry = [*far.geometry[:4], Point(X0 - 1000, Y0), Point(X0 + 2985, Y0 - 2985)]
    far.to_file(tmp_path / "obs.gpkg")
    s = sample_labels(read_labels(tmp_path / "obs.gpkg", "lithology"), stack.grid)
    notes = placement_notes(tmp_path / "obs.gpkg", {**s.counts, "on_nodata": 1})
    assert notes[0].startswith("1 of 6 points in 'obs.gpkg' fall outside")
    assert notes[1].startswith("1 points of 'obs.gpkg' fall where no raster has data")
    polygons = {**s.counts, "on_nodata": 1, "polygon_pixels": 9}
    assert placement_notes(tmp_path / "obs.gpkg", polygons)[1].startswith(
        "1 samples (points or polygon pixels) of 'obs.gpkg' fall where no raster has data"
    )
    assert len(notes) == 2
    far["lithology"] = ["granite"] * 4 + ["dolerite", "granite"]  # dolerite: off the grid
    far.to_file(tmp_path / "obs.gpkg")
    s = sample_labels(read_labels(tmp_path / "obs.gpkg", "lithology"), stack.grid)
    counts = {**s.counts, "classes_on_nodata": ["gneiss"]}
    assert placement_notes(tmp_path / "obs.gpkg", counts)[-1].startswith(
        "Class(es) 'dolerite', 'gneiss' of 'obs.gpkg' have no observation where the rasters"
    )


def test_csv_with_lon_lat_defaults_to_wgs84(tmp_path, stack):
    g = points().to_crs("EPSG:4326")
    p = tmp_path / "obs.csv"
    pd.DataFrame({"Lon": g.geometry.x, "LAT": g.geometry.y, "rock": g["lithology"]}).to_csv(p)
    s = sample_labels(read_labels(p, "rock"), stack.grid)
    assert list(s.cols) == [1, 11, 21, 31]


def test_csv_unit_codes_are_read_as_written(tmp_path):
    """Codes 2.1 and 2.10 (the Kings Park and Leederville formations) were read as numbers: both
    2.1, the Leederville points trained as Kings Park, and the legend said no observation held
    Leederville. A float column written out ("3.0") still reads as "3"."""
    p = tmp_path / "obs.csv"
    p.write_text("x,y,unit\n1,1,2.1\n2,2,2.10\n3,3,02\n4,4,3.0\n5,5,2.10\n")
    assert list(read_labels(p, "unit", crs=CRS)["label"]) == ["2.1", "2.10", "02", "3", "2.10"]


@pytest.mark.parametrize(
    "names",
    [("X_COORD", "Y_COORD"), ("Easting (m)", "Northing (m)"), ("x coordinate", "y coordinate")],
)
def test_csv_coordinate_headers_with_units_or_coord_words_are_found(tmp_path, stack, names):
    g = points()
    p = tmp_path / "obs.csv"
    table = {names[0]: g.geometry.x, names[1]: g.geometry.y, "rock": g["lithology"]}
    pd.DataFrame(table).to_csv(p, index=False)
    assert label_columns(p, crs=CRS) == ["rock"]
    s = sample_labels(read_labels(p, "rock", crs=CRS), stack.grid)
    assert list(s.cols) == [1, 11, 21, 31]


def test_csv_with_eastings_needs_label_crs(tmp_path, stack):
    g = points()
    p = tmp_path / "obs.csv"
    pd.DataFrame({"Easting": g.geometry.x, "Northing": g.geometry.y, "rock": 7}).to_csv(p)
    with pytest.raises(LabelError, match="--label-crs"):
        read_labels(p, "rock")
    with pytest.raises(LabelError) as error:  # told the rasters' CRS, on whose grid they fall
        read_labels(p, "rock", grid=stack.grid)
    assert str(error.value).endswith(
        "have no stated CRS. They fall on the rasters' grid read in its CRS, EPSG:32633 (WGS 84 / "
        "UTM zone 33N): if they are in it, or another of the same zone, give it with --label-crs "
        "EPSG:32633."
    )
    far = tmp_path / "far.csv"
    pd.DataFrame({"Easting": [1.0e5, 1.1e5], "Northing": [1.0e6, 1.0e6], "rock": 7}).to_csv(far)
    with pytest.raises(LabelError, match=r"\(the rasters are in EPSG:32633 \(WGS 84 / UTM zone"):
        read_labels(far, "rock", grid=stack.grid)
    labels = read_labels(p, "rock", crs="EPSG:32633")
    assert set(labels["label"]) == {"7"}


def test_a_grid_crs_without_a_code_is_named_by_its_name():
    """No '--label-crs the rasters' CRS (as WKT)' to paste: its name, and what to give."""
    from types import SimpleNamespace

    from rasterio.crs import CRS as RioCRS

    from geomap.labels import _crs_to_give

    local = "+proj=tmerc +lon_0=117.3 +k=0.9996 +x_0=500000 +ellps=GRS80 +units=m +no_defs"
    grid = SimpleNamespace(crs=RioCRS.from_proj4(local), bounds=(0, 0, 10, 10))
    assert grid.crs.to_epsg() is None  # a mine grid's own projection
    said = _crs_to_give(np.array([5.0]), np.array([5.0]), grid)
    assert said == (
        "They fall on the rasters' grid read in its CRS, one of no EPSG code: if they are in "
        "it, or another of the same zone, give it with --label-crs and that CRS's WKT or PROJ "
        "string."
    )


def test_european_and_arcgis_csv_exports(tmp_path, stack):
    g = points().to_crs("EPSG:4326")
    text = "Nr;Längengrad;Lithologie;LNG;LAT\n" + "".join(
        f"{i};x;{n};{str(round(x, 8)).replace('.', ',')};{str(round(y, 8)).replace('.', ',')}\n"
        for i, (n, x, y) in enumerate(
            zip(["Gneis", "Glimmerschiefer"] * 2, g.geometry.x, g.geometry.y)
        )
    )
    p = tmp_path / "excel.csv"
    p.write_bytes(text.encode("cp1252"))  # Excel's "CSV (semicolon)" in a German Windows
    labels = read_labels(p, "Lithologie")
    assert list(labels["label"][:2]) == ["Gneis", "Glimmerschiefer"]
    assert list(sample_labels(labels, stack.grid).cols) == [1, 11, 21, 31]
    q = tmp_path / "arcgis.csv"
    e = points()
    pd.DataFrame({"POINT_X": e.geometry.x, "POINT_Y": e.geometry.y, "unit": 1}).to_csv(q)
    assert len(read_labels(q, "unit", crs="EPSG:32633")) == 4


def test_geojson_holding_projected_coordinates_needs_their_crs(tmp_path, stack):
    p = tmp_path / "utm.geojson"
    text = points().set_crs(None, allow_override=True).to_json()  # GeoJSON says nothing: WGS 84
    p.write_text(text)
    with pytest.raises(LabelError, match="not longitudes and latitudes.*--label-crs"):
        read_labels(p, "lithology")
    s = sample_labels(read_labels(p, "lithology", crs="EPSG:32633"), stack.grid)
    assert list(s.cols) == [1, 11, 21, 31]


def test_label_crs_gives_a_vector_file_its_missing_crs(tmp_path, stack):
    points().to_file(tmp_path / "obs.shp")
    (tmp_path / "obs.prj").unlink()
    with pytest.raises(LabelError, match="no coordinate reference system.*--label-crs") as info:
        read_labels(tmp_path / "obs.shp", "lithology", grid=stack.grid)
    assert "They fall on the rasters' grid read in its CRS, EPSG:32633" in str(info.value)
    points().to_crs("EPSG:4326").to_file(tmp_path / "deg.shp")  # a legacy map in degrees
    (tmp_path / "deg.prj").unlink()
    with pytest.raises(LabelError, match="look like longitudes and latitudes: --label-crs EPSG"):
        read_labels(tmp_path / "deg.shp", "lithology", grid=stack.grid)
    # a mine's local grid in metres from 0: its numbers look like degrees, but lie on the grid
    local = Grid(stack.grid.crs, Affine(1, 0, 0, 0, -1, 100), 100, 100)
    gpd.GeoDataFrame(geometry=[Point(10, 20), Point(60, 80)]).assign(lithology="x").to_file(
        tmp_path / "mine.shp"
    )
    with pytest.raises(LabelError, match="They fall on the rasters' grid read in its CRS"):
        read_labels(tmp_path / "mine.shp", "lithology", grid=local)
    labels = read_labels(tmp_path / "obs.shp", "lithology", crs="EPSG:32633")
    samples = sample_labels(labels, stack.grid)
    assert list(samples.rows) == [1, 11, 21, 31]
    # said: the app's box kept the CRS typed for the file before, a CSV in another CRS
    assert placement_notes(tmp_path / "obs.shp", samples.counts) == [
        "'obs.shp' states no CRS: its coordinates are read in EPSG:32633, as given with "
        "--label-crs. If they are in another, give that one."
    ]


@pytest.mark.parametrize("name", ["obs.csv", "obs.shp"])
def test_a_label_crs_that_is_not_a_crs_is_named_in_the_message(tmp_path, name):
    g = points()
    if name == "obs.csv":
        pd.DataFrame({"x": g.geometry.x, "y": g.geometry.y, "lithology": 1}).to_csv(tmp_path / name)
    else:
        g.to_file(tmp_path / name)
        (tmp_path / "obs.prj").unlink()
    expected = re.escape(f"'{tmp_path / name}'") + ".*'UTM 33N'.*EPSG:32633"
    with pytest.raises(LabelError, match=expected) as info:
        read_labels(tmp_path / name, "lithology", crs="UTM 33N")
    assert "(PROJ: unrecognized format / unknown name)" in str(info.value)
    assert "Internal Proj Error" not in str(info.value)
    assert str(info.value).endswith(
        "If it means UTM zone 33N on WGS 84, give EPSG:32633 (on another datum, that datum's "
        "code for the zone)."
    )


def test_a_label_crs_a_file_overrides_with_its_own_is_noted(tmp_path, stack):
    points().to_file(tmp_path / "obs.shp")  # with its .prj: EPSG:32633
    labels = read_labels(tmp_path / "obs.shp", "lithology", crs="EPSG:4326")
    notes = placement_notes(tmp_path / "obs.shp", sample_labels(labels, stack.grid).counts)
    assert notes == [
        "The CRS given for 'obs.shp' (EPSG:4326) is not used: the file states its own, "
        "EPSG:32633. Clear --label-crs, or correct the file's CRS if that one is wrong."
    ]
    same = read_labels(tmp_path / "obs.shp", "lithology", crs="EPSG:32633")
    assert placement_notes(tmp_path / "obs.shp", sample_labels(same, stack.grid).counts) == []
    with pytest.raises(LabelError, match="'foo' given for them is not understood"):
        read_labels(tmp_path / "obs.shp", "lithology", crs="foo")


def test_csv_without_coordinates_lists_accepted_names(tmp_path):
    p = tmp_path / "obs.csv"
    pd.DataFrame({"a": [1], "b": [2], "rock": ["x"]}).to_csv(p, index=False)
    with pytest.raises(LabelError, match="lon/lat") as info:
        read_labels(p, "rock")
    assert "['a', 'b', 'rock']" in str(info.value)


def test_missing_column_lists_the_columns(tmp_path):
    p = tmp_path / "obs.gpkg"
    points().to_file(p)
    with pytest.raises(LabelError, match="no column 'rocktype'. The columns are: 'lithology', "):
        read_labels(p, "rocktype")
    with pytest.raises(LabelError, match="'Lithology'. Did you mean 'lithology' "):
        read_labels(p, "Lithology")


def test_a_column_named_with_a_trailing_blank_is_found(tmp_path):
    p = tmp_path / "obs.csv"
    g = points().to_crs("EPSG:4326")
    pd.DataFrame({"lon": g.geometry.x, "lat": g.geometry.y, "Rock Type ": "granite"}).to_csv(p)
    assert set(read_labels(p, "Rock Type")["label"]) == {"granite"}


@pytest.mark.parametrize("zipped", [False, True])
def test_a_shapefile_without_its_dbf_is_named_as_such(tmp_path, zipped):
    points().to_file(tmp_path / "obs.shp")
    (tmp_path / "obs.dbf").unlink()
    path = tmp_path / "obs.shp"
    if zipped:
        path = tmp_path / "obs.zip"
        with zipfile.ZipFile(path, "w") as z:
            for part in ("obs.shp", "obs.shx", "obs.prj"):
                z.write(tmp_path / part, part)
    with pytest.raises(LabelError, match="no attribute table.*the .dbf file beside the .shp"):
        read_labels(path, "lithology")


def test_label_columns_leave_out_geometry_and_coordinates(tmp_path):
    gpkg = tmp_path / "obs.gpkg"
    points().to_file(gpkg)
    assert label_columns(gpkg) == ["lithology", "note"]
    csv = tmp_path / "obs.csv"
    g = points().to_crs("EPSG:4326")
    table = pd.DataFrame({"id": [1, 2, 3, 4], "LON": g.geometry.x, "Lat": g.geometry.y})
    table.assign(rock=g["lithology"].values).to_csv(csv, index=False)
    assert label_columns(csv) == ["id", "rock"]
    with pytest.raises(LabelError, match="empty"):
        (tmp_path / "empty.gpkg").write_bytes(b"")
        label_columns(tmp_path / "empty.gpkg")


def test_label_columns_are_listed_without_reading_the_features(tmp_path, monkeypatch):
    """A regional map of thousands of polygons: its columns come from the layer's field list."""
    frame = points()
    gpkg, geojson, shp = tmp_path / "obs.gpkg", tmp_path / "obs.geojson", tmp_path / "obs.shp"
    frame.to_file(gpkg, layer="field")
    frame.assign(extra=1).to_file(gpkg, layer="other")
    frame.to_file(geojson)
    frame.to_file(shp)
    zipped = tmp_path / "obs.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for part in shp.parent.glob("obs.*"):
            if part.suffix in (".shp", ".shx", ".dbf", ".prj"):
                z.write(part, part.name)

    def no_read(*args, **kwargs):
        raise AssertionError("the features were read")

    monkeypatch.setattr("geomap.labels.gpd.read_file", no_read)
    for path in (geojson, zipped):
        assert label_columns(path) == ["lithology", "note"]
    assert label_columns(gpkg, layer="other") == ["lithology", "note", "extra"]
    assert label_columns(gpkg) == ["lithology", "note", "extra"]  # every layer's


def test_missing_and_empty_and_unreadable_files(tmp_path):
    with pytest.raises(MissingFileError):
        read_labels(tmp_path / "nope.gpkg", "x")
    (tmp_path / "empty.gpkg").touch()
    with pytest.raises(LabelError, match="empty"):
        read_labels(tmp_path / "empty.gpkg", "x")
    (tmp_path / "junk.gpkg").write_text("junk")
    with pytest.raises(LabelError, match="cannot be read"):
        read_labels(tmp_path / "junk.gpkg", "x")
    (tmp_path / "obs.dbf").write_text("junk")
    with pytest.raises(LabelError, match="not supported"):
        read_labels(tmp_path / "obs.dbf", "x")


def test_a_geopackage_cut_short_or_damaged_is_named_so_without_sqlites_query(demo_scene, tmp_path):
    """A damaged GeoPackage quoted SQLite's whole query, up to 1,400 characters (user pass)."""
    data = Path(demo_scene.points_gpkg).read_bytes()
    (tmp_path / "cut.gpkg").write_bytes(data[: len(data) // 2])
    damaged = bytearray(data)
    damaged[20000:40000:7] = bytes(b ^ 0x5A for b in damaged[20000:40000:7])
    (tmp_path / "damaged.gpkg").write_bytes(bytes(damaged))
    for name in ("cut.gpkg", "damaged.gpkg"):
        with pytest.raises(LabelError) as info:
            read_labels(tmp_path / name, "lithology")
        assert str(info.value) == (
            f"Labels '{tmp_path / name}': the file is damaged or cut short (SQLite: database disk "
            "image is malformed). If it was copied or downloaded, do that again."
        )


def test_lines_are_refused(tmp_path):
    p = tmp_path / "lines.gpkg"
    gpd.GeoDataFrame({"r": ["a"]}, geometry=[LineString([(0, 0), (1, 1)])], crs=32633).to_file(p)
    with pytest.raises(LabelError, match="Buffer lines"):
        read_labels(p, "r")


def test_integer_classes_sort_numerically_and_ties_are_stable():
    assert class_order(["10", "2", "1", "2"]) == ["1", "2", "10"]
    assert class_order(["shale", "Basalt", "granite"]) == ["Basalt", "granite", "shale"]
    assert (
        class_order(["basalt", "Basalt"])
        == class_order(["Basalt", "basalt"])
        == ["Basalt", "basalt"]
    )
    assert class_order(["5²", "unit 10", "unit 9"]) == ["5²", "unit 9", "unit 10"]


def test_csv_with_unreadable_coordinates_names_the_lines(tmp_path):
    p = tmp_path / "obs.csv"
    p.write_text(
        'lon,lat,rock\n15.1,47.2,granite\n"5.192.876,6","47,2",basalt\n,47.3,shale\n,,\n,,\n'
    )
    with pytest.raises(LabelError) as info:
        read_labels(p, "rock")
    message = str(info.value)
    assert "2 rows have empty or non-numeric coordinates in 'lon'/'lat' (lines 3, 4;" in message
    assert "the first reads '5.192.876,6', '47,2'" in message  # the blank rows are not counted
    assert "no thousands separators) or as degrees, minutes and seconds" in message


def test_csv_coordinates_in_degrees_minutes_and_seconds_are_read(tmp_path):
    """A field book's DMS, as a GPS or a geologist writes it; before, refused as non-numeric."""
    p = tmp_path / "stations.csv"
    p.write_text(
        "Station;Lat;Long;Lithology\n"
        "GM-1;31°57'08\"S;115°51'04,92\"E;granite\n"  # a decimal comma in the seconds
        "GM-2;31 57 08.5 S;115 51 05 E;basalt\n"
        "GM-3;S31°57.142';E115°51.082';shale\n"
        "GM-4;-31.952;115.851;shale\n",  # decimal degrees beside them
        encoding="utf-8",
    )
    frame = read_labels(p, "Lithology")
    np.testing.assert_allclose(
        np.column_stack([frame.geometry.x, frame.geometry.y]),
        [
            [115 + 51 / 60 + 4.92 / 3600, -(31 + 57 / 60 + 8 / 3600)],
            [115 + 51 / 60 + 5 / 3600, -(31 + 57 / 60 + 8.5 / 3600)],
            [115 + 51.082 / 60, -(31 + 57.142 / 60)],
            [115.851, -31.952],
        ],
    )
    p.write_text("Lat;Long;Lithology\n31°61'08\"S;115°51'04\"E;granite\n", encoding="utf-8")
    with pytest.raises(LabelError, match="non-numeric coordinates"):  # 61 minutes
        read_labels(p, "Lithology")


def test_dms_with_a_phones_curly_marks_is_read_and_slips_are_named(tmp_path):
    """’ and “ as a phone or a word processor types them; 61 minutes and an O for a zero."""
    p = tmp_path / "stations.csv"
    p.write_text(
        "Station;Lat;Long;Lithology\n"
        'A;31°54’25.3"S;115°51′04″E;granite\n'
        'B;31°54´25"S;115°06’18“E;shale\n',
        encoding="utf-8",
    )
    frame = read_labels(p, "Lithology")
    west = tmp_path / "estaciones.csv"  # O: oeste (Spanish, Portuguese), ouest (French)
    west.write_text(
        "Estación;Latitud;Longitud;Litología\n"
        "A;24°11'05\"S;69°04'12\"O;andesita\n"
        "B;24°11’05” Sur;69°04’12” Oeste;andesita\n",
        encoding="utf-8",
    )
    frame = read_labels(west, "Litología")  # a Spanish field book's column names
    np.testing.assert_allclose(frame.geometry.x, -(69 + 4 / 60 + 12 / 3600))
    np.testing.assert_allclose(frame.geometry.y, -(24 + 11 / 60 + 5 / 3600))
    frame = read_labels(p, "Lithology")
    np.testing.assert_allclose(
        frame.geometry.y, [-(31 + 54 / 60 + 25.3 / 3600), -(31 + 54 / 60 + 25 / 3600)]
    )
    np.testing.assert_allclose(
        frame.geometry.x, [115 + 51 / 60 + 4 / 3600, 115 + 6 / 60 + 18 / 3600]
    )
    p.write_text(
        "Station;Lat;Long;Lithology\n"
        "A;31°61'08\"S;115°51'04\"E;granite\n"
        "B;31°54'25\"S;115°O6'18.7\"E;shale\n"
        "C;31°54'25\"S;115°06'18\"E;shale\n",
        encoding="utf-8",
    )
    with pytest.raises(LabelError) as error:
        read_labels(p, "Lithology")
    assert (
        "non-numeric coordinates in 'Lat'/'Long' (lines 2, 3; the first reads '31°61'08\"S' "
        "(minutes or seconds of 60 or more), '115°51'04\"E'; line 3 reads '31°54'25\"S', "
        "'115°O6'18.7\"E' (the letter O where a zero belongs))"
    ) in str(error.value)


def test_csv_of_degrees_in_x_y_columns_is_told_its_likely_crs(tmp_path):
    g = points().to_crs("EPSG:4326")
    p = tmp_path / "obs.csv"
    pd.DataFrame({"X": g.geometry.x, "Y": g.geometry.y, "rock": "granite"}).to_csv(p)
    with pytest.raises(LabelError, match="look like longitudes and latitudes.*EPSG:4326"):
        read_labels(p, "rock")


def test_polygons_smaller_than_a_pixel_give_their_point(stack):
    tiny = gpd.GeoDataFrame(
        {"label": ["a", "b"], "source": "map.gpkg", "site": ["record 1", "record 2"]},
        geometry=[box(X0 + 1, Y0 - 9, X0 + 4, Y0 - 6), box(X0 + 301, Y0 - 309, X0 + 304, Y0 - 306)],
        crs=32633,
    )
    s = sample_labels(tiny, stack.grid)
    assert list(s.rows) == [0, 10] and list(s.labels) == ["a", "b"]


def test_labels_outside_the_stack_name_both_extents(tmp_path, stack):
    far = gpd.GeoDataFrame(
        {"label": ["a"], "source": "far.gpkg", "site": "record 1"},
        geometry=[Point(X0 + 1e6, Y0)],
        crs=32633,
    )
    with pytest.raises(LabelError, match="cover no pixel") as info:
        sample_labels(far, stack.grid)
    assert "EPSG:32633" in str(info.value) and "x 1,500,000 to 1,500,000" in str(info.value)


def test_utm_coordinates_given_the_other_hemispheres_zone_are_pointed_out(tmp_path, stack):
    """Zone 33 south given for zone 33 north: the labels spanned northings 10,000,000 m off the
    rasters, and the message did not say why."""
    south = points().set_crs("EPSG:32733", allow_override=True)
    with pytest.raises(LabelError, match="cover no pixel") as info:
        sample_labels(south.assign(label=south["lithology"], source="obs.gpkg"), stack.grid)
    assert (
        "In EPSG:32633, the same UTM zone's other hemisphere, they fall on the rasters: their "
        "northings are 10,000,000 m off. Give EPSG:32633 as their CRS (a file that states its "
        "own: correct it there)."
    ) in str(info.value)
    elsewhere = points().set_crs("EPSG:32734", allow_override=True)  # another zone: not said
    with pytest.raises(LabelError) as info:
        sample_labels(elsewhere.assign(label="a", source="obs.gpkg"), stack.grid)
    assert "hemisphere" not in str(info.value)
    assert (
        "Read in the rasters' CRS, EPSG:32633, they fall on the rasters: they are likely in it."
    ) in str(info.value)


def test_longitudes_and_latitudes_in_swapped_columns_are_pointed_out(tmp_path, stack):
    g = points().to_crs("EPSG:4326")
    p = tmp_path / "obs.csv"
    pd.DataFrame({"lat": g.geometry.x, "lon": g.geometry.y, "rock": g["lithology"]}).to_csv(p)
    with pytest.raises(LabelError, match="cover no pixel.*With longitude and latitude swapped"):
        sample_labels(read_labels(p, "rock"), stack.grid)
    far = gpd.GeoDataFrame({"label": ["a"], "source": "far.gpkg"}, geometry=[Point(0, 0)], crs=4326)
    with pytest.raises(LabelError) as info:
        sample_labels(far, stack.grid)
    assert "swapped" not in str(info.value)


def test_polygons_are_capped_and_shared_across_polygons(stack):
    big = box(X0, Y0 - 30 * 80, X0 + 30 * 80, Y0)  # 6400 pixels
    small = box(X0 + 30 * 85, Y0 - 30 * 10, X0 + 30 * 95, Y0)  # 100 pixels
    other = box(X0 + 30 * 85, Y0 - 30 * 40, X0 + 30 * 95, Y0 - 30 * 20)  # 200 pixels
    frame = gpd.GeoDataFrame(
        {"label": ["granite", "granite", "shale"], "source": "map.gpkg", "site": "record 1"},
        geometry=[big, small, other],
        crs=32633,
    )
    s = sample_labels(frame, stack.grid, max_per_class=120, random_state=1)
    np.testing.assert_allclose(s.xy, np.column_stack(stack.grid.xy(s.rows, s.cols)))
    granite = s.labels == "granite"
    assert granite.sum() == 120 and (~granite).sum() == 120
    from_small = (s.cols[granite] >= 85).sum()
    assert from_small == 60  # the small polygon gets its share, not 120 * 100 / 6500
    assert len(set(zip(s.rows, s.cols))) == len(s)


def test_extract_features_equals_whole_image(stack):
    recipe = FeatureRecipe.build(stack.band_names, stack.band_source, 30.0, "default")
    rows = np.array([0, 5, 63, 64, 99, 50])
    cols = np.array([0, 99, 63, 64, 99, 10])
    got = extract_features(stack, recipe, rows, cols)
    whole = recipe.compute(stack.read(Window(0, 0, 100, 100), halo=recipe.halo))
    np.testing.assert_array_equal(got, whole[:, rows, cols].T)
    assert np.isnan(got[4]).all()


def test_a_multipoint_observation_keeps_each_part_where_it_was(stack):
    from shapely.geometry import MultiPoint

    frame = gpd.GeoDataFrame(
        {"label": ["granite"], "source": "obs.gpkg"},  # no site: named by its feature
        geometry=[MultiPoint([(X0 + 37, Y0 - 34), (X0 + 337, Y0 - 334)])],
        crs=CRS,
    )
    s = sample_labels(frame, stack.grid)
    np.testing.assert_allclose(s.xy, [[X0 + 37, Y0 - 34], [X0 + 337, Y0 - 334]])
    assert list(s.site) == ["fid 1", "fid 1"] and list(s.kind) == ["point", "point"]


def test_overlapping_polygons_give_the_smallest_unit_and_a_note(stack):
    regional = box(X0 - 3e5, Y0 - 3e5, X0 + 3e5, Y0 + 3e5)  # far beyond the 100 x 100 grid
    dyke = box(X0 + 30 * 40, Y0 - 30 * 100, X0 + 30 * 44, Y0)  # 400 pixels
    for order in ([regional, dyke], [dyke, regional]):
        frame = gpd.GeoDataFrame(
            {"label": ["limestone", "basalt"][:: 1 if order[0] is regional else -1]},
            geometry=order,
            crs=32633,
        ).assign(source="map.gpkg")
        s = sample_labels(frame, stack.grid, max_per_class=20000, random_state=0)
        inside = (s.cols >= 40) & (s.cols < 44)
        assert set(s.labels[inside]) == {"basalt"}  # listed first or last
        assert (s.labels == "limestone").sum() == 100 * 96  # its area on the grid, not its own
        overlap = s.counts["overlapping_polygons"]
        assert overlap["pixels"] == 400
        (note,) = [n for n in placement_notes(Path("map.gpkg"), s.counts) if "overlap" in n]
        assert note.startswith(
            "Polygons of different units in 'map.gpkg' overlap over about 400 pixel(s) of the grid"
        )
        assert "(limestone)" in note and "(basalt)" in note


def test_a_polygon_larger_than_the_grid_is_capped_by_its_part_on_the_grid(stack):
    frame = gpd.GeoDataFrame(
        {"label": ["granite", "shale"], "source": "map.gpkg"},
        geometry=[
            box(X0 - 1e5, Y0 - 1e5, X0 + 30 * 50, Y0 + 1e5),
            box(X0 + 30 * 60, Y0 - 900, X0 + 30 * 90, Y0),
        ],
        crs=32633,
    )
    s = sample_labels(frame, stack.grid, max_per_class=2000, random_state=0)
    assert (s.labels == "granite").sum() == 2000  # of its 5000 pixels on the grid
    assert s.counts["overlapping_polygons"] == {"pixels": 0}


def test_a_column_naming_each_observation_is_refused_as_the_class(tmp_path):
    g = points(24, labels=["granite", "basalt"] * 12).assign(
        station=[f"GM-{i:03d}" for i in range(24)]
    )
    g.to_file(tmp_path / "obs.gpkg")
    with pytest.raises(LabelError) as info:
        read_labels(tmp_path / "obs.gpkg", "station")
    assert str(info.value).startswith(
        f"Labels '{tmp_path / 'obs.gpkg'}': column 'station' holds 24 different values among 24 "
        "observations, so it names each observation rather than its rock type."
    )
    assert "(the others: 'lithology', 'note')" in str(info.value)
    assert len(read_labels(tmp_path / "obs.gpkg", "lithology")) == 24
    table = g.assign(lon=g.geometry.x, lat=g.geometry.y).drop(columns="geometry")
    table.to_csv(tmp_path / "obs.csv", index=False)  # its coordinates were offered as classes
    with pytest.raises(LabelError, match=r"\(the others: 'lithology', 'note'\)\.$"):
        read_labels(tmp_path / "obs.csv", "station", crs="EPSG:32633")
    few = points(4).assign(station=["a", "b", "c", "d"])  # too few points to tell
    few.to_file(tmp_path / "few.gpkg")
    assert len(read_labels(tmp_path / "few.gpkg", "station")) == 4


def test_points_on_the_grids_right_and_bottom_edges_take_the_last_pixel(stack):
    edge = gpd.GeoDataFrame(
        {"label": ["a", "b", "c"], "source": "obs.gpkg"},
        geometry=[Point(X0 + 3000, Y0 - 45), Point(X0 + 45, Y0 - 3000), Point(X0 + 3031, Y0)],
        crs=32633,
    )
    s = sample_labels(edge, stack.grid)
    assert list(zip(s.rows, s.cols)) == [(1, 99), (99, 1)]  # the third lies beyond the edge
    assert s.counts["points_outside_grid"] == 1


def test_classes_written_as_lists_are_refused(tmp_path):
    p = tmp_path / "obs.geojson"
    p.write_text(
        '{"type": "FeatureCollection", "features": ['
        '{"type": "Feature", "properties": {"rock": ["basalt"]}, '
        '"geometry": {"type": "Point", "coordinates": [15.0, 47.0]}}, '
        '{"type": "Feature", "properties": {"rock": "granite"}, '
        '"geometry": {"type": "Point", "coordinates": [15.1, 47.0]}}]}'
    )
    with pytest.raises(LabelError, match=r"2 values in 'rock' are lists.*reads \['basalt'\]"):
        read_labels(p, "rock")


def test_a_polygon_that_crosses_itself_is_mapped_as_drawn(stack):
    from shapely.geometry import Polygon

    x, y = X0 + 300, Y0 - 300  # a bowtie: two triangles of 100 pixels, left and right
    bowtie = Polygon([(x, y), (x + 600, y - 600), (x + 600, y), (x, y - 600)])
    frame = gpd.GeoDataFrame(
        {"label": ["granite", "shale"], "source": "map.gpkg"},
        geometry=[bowtie, box(x, y - 600, x + 120, y)],
        crs=32633,
    )
    s = sample_labels(frame, stack.grid, max_per_class=5000, random_state=0)
    assert s.counts["overlapping_polygons"]["pixels"] == 64  # the box over the left triangle
    assert 120 < (s.labels == "granite").sum() < 140  # 200 pixels less the box's 64
    assert s.counts["repaired_polygons"] == {"count": 1, "example": ["fid 1"]}
    (note,) = [n for n in placement_notes(Path("map.gpkg"), s.counts) if "not valid" in n]
    assert note.startswith(  # it was repaired silently, and only the overlap was told
        "1 polygon(s) of 'map.gpkg' are not valid shapes: their outlines cross or touch "
        "themselves (fid 1). geomap repaired them"
    )


def test_many_rock_names_are_not_taken_for_identifiers(tmp_path):
    rocks = [f"rock{c}" for c in "abcdefghijklmnopqr"]  # 18 different units at 20 points
    names = ["basalt", "dacite", *[r.replace("rock", "tonalite ") for r in rocks]]
    g = points(20, labels=names)
    g.to_file(tmp_path / "obs.gpkg")
    assert len(read_labels(tmp_path / "obs.gpkg", "lithology")) == 20
    g.assign(sample_id=[f"{i}" for i in range(20)]).to_file(tmp_path / "ids.gpkg")
    with pytest.raises(LabelError, match="names each observation"):
        read_labels(tmp_path / "ids.gpkg", "sample_id")


def test_small_polygons_beside_a_big_one_do_not_starve_its_class(stack):
    big = box(X0, Y0 - 30 * 80, X0 + 30 * 80, Y0)  # 6400 pixels
    dots = [
        box(X0 + 30 * (85 + i % 10), Y0 - 30 * (2 + i), X0 + 30 * (86 + i % 10), Y0 - 30 * (1 + i))
        for i in range(19)
    ]
    frame = gpd.GeoDataFrame(
        {"label": ["granite"] * 20, "source": "map.gpkg"}, geometry=[big, *dots], crs=32633
    )
    s = sample_labels(frame, stack.grid, max_per_class=2000, random_state=0)
    assert len(s) == 2000  # 1044 when each polygon kept 4 x 2000 / 20 of its pixels


def test_observations_moved_by_a_ballpark_datum_shift_are_warned_about(stack):
    """UTM 33N on the International ellipsoid without its datum (ED50's): PROJ guesses."""
    from geomap.placement import placement_notes

    ellipsoid_only = "+proj=utm +zone=33 +ellps=intl +units=m +no_defs"
    for crs, warned in ((ellipsoid_only, True), ("EPSG:23033", False), ("EPSG:32633", False)):
        pts = gpd.GeoDataFrame(
            {"label": ["a", "b"], "source": "obs.csv"},
            geometry=[Point(X0 + 500, Y0 - 500), Point(X0 + 900, Y0 - 900)],
            crs=crs,
        )
        notes = placement_notes(Path("obs.csv"), sample_labels(pts, stack.grid).counts)
        said = [n for n in notes if "ballpark" in n]
        assert bool(said) == warned, (crs, notes)
    from geomap.placement import _ballpark

    sinusoidal = "+proj=sinu +R=6371007.181 +units=m"
    assert not _ballpark("EPSG:4326", sinusoidal)  # MODIS' sphere: the grid has no datum
    assert not _ballpark("EPSG:32633", "+proj=utm +zone=33 +ellps=WGS84")  # the raster lacks it
    assert not _ballpark("+proj=utm +zone=33 +ellps=WGS84", "EPSG:32633")  # one ellipsoid


def test_classes_with_few_samples_are_named_alike_by_the_data_page_and_the_run():
    from geomap.labels import few_sample_notes

    notes = few_sample_notes({"granite": 40, "gabbro": 4, "dyke": 1})
    assert [n.split("'")[1] for n in notes] == ["gabbro", "dyke"]
    assert "vanish from cross-validation folds" in notes[0]
    (note,) = few_sample_notes({"granite": 40} | {f"unit {i}": 2 for i in range(150)})
    assert note.startswith("150 of 151 classes have fewer than 5 samples: 'unit 0' (2), ")
    assert "'unit 19' (2) and 130 more. Their accuracy figures" in note


def test_every_folder_of_a_google_earth_kml_is_read(tmp_path, stack):
    """A field season's KML of "Day 1" and "Day 2": only the first folder was read (3 of 7
    observations, one class), with pyogrio's warning on the terminal only."""
    g = points(n=7, labels=["granite"] * 3 + ["basalt"] * 4).to_crs("EPSG:4326")

    def placemarks(rows):
        return "".join(
            f"<Placemark><name>GM-{i}</name><ExtendedData><Data name='rock'><value>{r.lithology}"
            f"</value></Data></ExtendedData><Point><coordinates>{r.geometry.x},{r.geometry.y}"
            "</coordinates></Point></Placemark>"
            for i, r in rows.iterrows()
        )

    p = tmp_path / "season.kml"
    p.write_text(
        '<?xml version="1.0" encoding="UTF-8"?><kml xmlns="http://www.opengis.net/kml/2.2">'
        f"<Document><Folder><name>Day 1</name>{placemarks(g.iloc[:3])}</Folder>"
        f"<Folder><name>Day 2</name>{placemarks(g.iloc[3:])}</Folder></Document></kml>"
    )
    assert label_layers(p) == []  # nothing to choose
    frame = read_labels(p, "rock")
    assert sorted(frame["site"]) == sorted(f"Name GM-{i}" for i in range(7))
    assert list(frame["label"]) == ["granite"] * 3 + ["basalt"] * 4
    counts = sample_labels(frame, stack.grid).counts
    assert (
        "'season.kml': its 2 folders (Day 1, Day 2) are read together as one set of observations."
        in placement_notes(p, counts)
    )


def test_a_table_without_geometry_is_refused_with_what_to_give(tmp_path):
    """A zip of a CSV, or of a Shapefile's .dbf alone, read as a table: AttributeError."""
    p = tmp_path / "obs.csv"
    pd.DataFrame({"lon": [15.1], "lat": [60.1], "rock": ["granite"]}).to_csv(p, index=False)
    z = tmp_path / "obs.zip"
    with zipfile.ZipFile(z, "w") as f:
        f.write(p, "obs.csv")
    with pytest.raises(LabelError, match="holds a table without geometry .columns lon, lat, rock"):
        read_labels(z, "rock")


def test_a_polygon_collapsed_onto_a_line_gives_no_pixels(stack):
    """Drawn back and forth along a line, its repair is a line: it was burnt as 91 pixels of its
    unit while the note said it was dropped; one that left nothing crashed (NaN bounds)."""
    flat = Polygon([(X0 + 5, Y0 - 505), (X0 + 905, Y0 - 505), (X0 + 505, Y0 - 505)])
    dot = Polygon([(X0 + 700, Y0 - 700)] * 4)
    frame = points(n=4)
    frame = pd.concat(
        [frame, gpd.GeoDataFrame({"lithology": ["sliver", "dot"]}, geometry=[flat, dot], crs=CRS)],
        ignore_index=True,
    )
    samples = sample_labels(frame.assign(label=frame["lithology"], source="t.gpkg"), stack.grid)
    assert set(samples.labels) == {"granite", "basalt"}
    assert samples.counts["classes_off_grid"] == []  # they are on the grid: said as flat
    notes = placement_notes(Path("t.gpkg"), samples.counts)
    assert (
        "2 polygon(s) of 't.gpkg' have no area once repaired (drawn along a line or onto a point: "
        "fid 5, fid 6) and are not used; unit(s) 'dot', 'sliver' are left with no observation."
    ) in notes
    alone = gpd.GeoDataFrame({"label": ["sliver"], "source": "t.gpkg"}, geometry=[flat], crs=CRS)
    with pytest.raises(LabelError, match="every polygon has no area once repaired"):
        sample_labels(alone, stack.grid)  # said NaN bounds: coordinates invalid in their CRS


def test_csv_quirks_of_spreadsheets_and_templates(tmp_path):
    """A title above the header; Excel's UTF-16 "Unicode text"; empty X/Y columns of a template
    beside filled Lon/Lat: each was refused with a message that did not say why."""
    title = tmp_path / "title.csv"
    title.write_text("Field observations 2023\nstation,lon,lat,rock\nGM-1,15.1,60.1,granite\n")
    with pytest.raises(LabelError, match=r"line 1 \('Field observations 2023'\) looks like"):
        read_labels(title, "rock")
    wide = tmp_path / "title_commas.csv"
    wide.write_text(",Field observations 2023,,\nstation,lon,lat,rock\nGM-1,15.1,60.1,granite\n")
    with pytest.raises(LabelError, match=r"\('Field observations 2023'\) looks like a title above"):
        read_labels(wide, "rock")
    utf16 = tmp_path / "unicode.csv"
    utf16.write_text("station\tlon\tlat\trock\nGM-1\t15.1\t60.1\tgneiss\n", encoding="utf-16")
    assert list(read_labels(utf16, "rock")["label"]) == ["gneiss"]
    template = tmp_path / "template.csv"
    template.write_text("X,Y,Lon,Lat,rock\n,,15.1,60.1,granite\n,,15.2,60.2,basalt\n")
    frame = read_labels(template, "rock")
    assert frame.crs.to_epsg() == 4326 and frame.geometry.x.tolist() == [15.1, 15.2]


def test_a_longitude_sign_slip_names_the_letters_a_spanish_or_french_book_uses():
    text = _slip_text({"longitude_sign": {"count": 1, "example": ["station GM-2"]}})
    assert "check the longitude's sign (a minus sign, or W, O and E) in that row" in text
