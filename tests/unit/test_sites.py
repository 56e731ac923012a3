import copy

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import LineString

from geomap.applicability import Applicability
from geomap.errors import InputDataError, MissingFileError
from geomap.export import write_points
from geomap.sites import (
    SiteCandidates,
    default_spacing,
    parse_distance,
    read_access,
)

CRS = "EPSG:32633"
BOUNDS = (500_000.0, 5_190_000.0, 510_000.0, 5_200_000.0)  # 10 km square


@pytest.fixture(scope="module")
def app():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    y = (X[:, 0] > 0).astype(int)
    proba = np.column_stack([1 - (y * 0.8 + 0.1), y * 0.8 + 0.1])
    return Applicability().fit(X, y, folds=np.arange(80) % 4, oof_proba=proba)


def _window(app, rng, n=400, x0=BOUNDS[0], y0=BOUNDS[1], side=10_000.0):
    x, y = x0 + rng.uniform(0, side, n), y0 + rng.uniform(0, side, n)
    X = rng.normal(0, 2, (n, 2))
    p = rng.dirichlet([1, 1], n)
    di, aoa, acc = app.transform(X, p)
    return x, y, X, p, di, aoa, acc


def test_sites_keep_the_minimum_spacing_and_are_ranked(app):
    rng = np.random.default_rng(1)
    candidates = SiteCandidates(app, ["a", "b"], 12, 1500.0, CRS)
    for _ in range(4):  # four windows
        candidates.add(*_window(app, rng))
    sites = candidates.select()
    assert len(sites) == 12
    xy = np.column_stack([sites["x"], sites["y"]])
    gaps = np.hypot(*(xy[:, None, :] - xy[None, :, :]).transpose(2, 0, 1))
    assert gaps[~np.eye(12, dtype=bool)].min() >= 1500.0
    assert sites["rank"].tolist() == list(range(1, 13))
    assert (np.diff(sites["score"]) <= 1e-9).all()
    assert set(sites["predicted_class"]) <= {"a", "b"} and sites["reason"].str.len().min() > 20
    assert sites["map_share_alike"].sum() <= 1  # each pixel stands with one site at most


def test_a_site_discounts_candidates_like_it_in_feature_space(app):
    far = np.array([[6.0, 6.0]])  # the same unsampled rock at two places
    other = np.array([[-6.0, 6.0]])  # another unsampled rock
    X = np.vstack([far, far, other])
    proba = np.array([[0.5, 0.5], [0.5, 0.5], [0.6, 0.4]])
    di, aoa, acc = app.transform(X, proba)
    acc = np.array([0.30, 0.31, 0.45], dtype="float32")  # the look-alike scores second
    candidates = SiteCandidates(app, ["a", "b"], 2, 100.0, CRS)
    candidates.add([0.0, 5000.0, 9000.0], [0.0, 0.0, 0.0], X, proba, di, aoa, acc)
    sites = candidates.select()
    assert sites["x"].tolist() == [0.0, 9000.0]  # not the look-alike at 5000
    assert not sites["inside_aoa"].any()
    assert sites["reason"][0].startswith("mapped a but could be b (expected accuracy 0.30) outside")
    # the first stands for its look-alike too, the second for the other rock alone
    assert sites["map_share_alike"].tolist() == [0.6667, 0.3333]  # rounded as written


def test_a_site_where_a_raster_has_no_data_says_so(app):
    X = np.array([[0.1, np.nan], [0.2, 0.1]])  # the first pixel is under a cloud in band 2
    proba = np.array([[0.5, 0.5], [0.55, 0.45]])
    di, aoa, acc = app.transform(X, proba)
    candidates = SiteCandidates(app, ["a", "b"], 2, 100.0, CRS)
    candidates.add([0.0, 5000.0], [0.0, 0.0], X, proba, di, aoa, np.array([0.3, 0.4]))
    reasons = candidates.select().set_index("x")["reason"]
    assert reasons[0.0].endswith(
        "some rasters have no data here (a cloud, a gap), so it is mapped from the others"
    )
    assert "no data here" not in reasons[5000.0]


def test_candidates_stay_bounded_while_streaming(app):
    rng = np.random.default_rng(2)
    candidates = SiteCandidates(app, ["a", "b"], 3, 200.0, CRS, capacity=150)
    for _ in range(10):
        candidates.add(*_window(app, rng, n=2000))
    assert len(candidates._pool["score"]) == 150
    assert candidates.valid_pixels == 20000
    assert len(candidates.select()) == 3


def test_sites_are_written_to_geopackage_and_lon_lat_csv(app, tmp_path):
    rng = np.random.default_rng(3)
    candidates = SiteCandidates(app, ["a", "b"], 5, 1000.0, CRS)
    candidates.add(*_window(app, rng))
    sites = candidates.select()
    write_points(sites, tmp_path / "s.gpkg", tmp_path / "s.csv", "suggested_samples")
    back = gpd.read_file(tmp_path / "s.gpkg", layer="suggested_samples")
    assert back.crs == CRS and len(back) == 5
    assert back["predicted_class"].tolist() == sites["predicted_class"].tolist()
    table = pd.read_csv(tmp_path / "s.csv")
    assert table.columns[:3].tolist() == ["rank", "lon", "lat"]
    lonlat = sites.to_crs("EPSG:4326").geometry
    np.testing.assert_allclose(table["lon"], lonlat.x, atol=1e-6)
    np.testing.assert_allclose(table["lat"], lonlat.y, atol=1e-6)
    assert 14 < table["lon"].min() < 16 and 46 < table["lat"].min() < 47.5  # UTM 33N near 15E


def test_access_layer_keeps_sites_within_walking_distance(app, tmp_path):
    road = gpd.GeoDataFrame(
        geometry=[LineString([(500_000, 5_195_000), (510_000, 5_195_000)])], crs=CRS
    ).to_crs("EPSG:4326")  # any CRS: it is reprojected
    road.to_file(tmp_path / "roads.gpkg")
    access = read_access(tmp_path / "roads.gpkg", CRS, BOUNDS, parse_distance("1km"))
    rng = np.random.default_rng(4)
    candidates = SiteCandidates(app, ["a", "b"], 6, 500.0, CRS, access=access)
    candidates.add(*_window(app, rng, n=3000))
    sites = candidates.select()
    assert len(sites) == 6 and (sites["walk_m"] <= 1000.0).all()
    assert (abs(sites["y"] - 5_195_000) <= 1000.0).all()
    assert candidates.reachable_pixels < candidates.valid_pixels


@pytest.mark.parametrize("crs", ["EPSG:4326", "EPSG:3857"])
def test_walking_distance_is_in_metres_on_degree_and_web_mercator_maps(crs, tmp_path):
    """A road 55 km west of a map in degrees (or at 60 N in Web Mercator) is out of reach."""
    from pyproj import Transformer

    bounds = Transformer.from_crs("EPSG:4326", crs, always_xy=True).transform_bounds(
        15.0, 59.9, 15.2, 60.0
    )
    gpd.GeoDataFrame(geometry=[LineString([(14.0, 59.9), (14.0, 60.0)])], crs="EPSG:4326").to_file(
        tmp_path / "far_road.gpkg"
    )
    with pytest.raises(InputDataError, match="nowhere within 2000 m"):
        read_access(tmp_path / "far_road.gpkg", crs, bounds, 2000.0)
    gpd.GeoDataFrame(geometry=[LineString([(15.1, 59.9), (15.1, 60.0)])], crs="EPSG:4326").to_file(
        tmp_path / "road.gpkg"
    )
    access = read_access(tmp_path / "road.gpkg", crs, bounds, 2000.0)
    to_map = Transformer.from_crs("EPSG:4326", crs, always_xy=True)
    # 0.03 degrees of longitude at 59.95 N: 1675 m; 0.04 degrees: 2234 m
    x, y = to_map.transform(np.array([15.13, 15.14, 15.06]), np.array([59.95] * 3))
    assert access.reachable(x, y).tolist() == [True, False, False]
    np.testing.assert_allclose(access.walk(x, y), [1675, 2234, 2234], rtol=0.01)


def test_a_map_of_fewer_pixels_than_sites_gets_a_site_per_pixel(app):
    """The default 30 sites on a map of 20 coarse pixels: 20 sites, not a failed run."""
    candidates = SiteCandidates(app, ["a", "b"], 30, 0.0, CRS)
    candidates.add(*_window(app, np.random.default_rng(5), n=20))
    assert len(candidates.select()) == 20 == candidates.valid_pixels


def test_site_spacing_is_in_ground_metres_on_a_degree_map(app):
    """At 60 N a degree of longitude is half a degree of latitude: spacing holds both ways."""
    from pyproj import Geod, Transformer

    from geomap.grid import ground_crs

    bounds = (15.0, 59.9, 15.2, 60.0)  # about 11 km x 11 km
    ground = ground_crs("EPSG:4326", bounds)
    to_ground = Transformer.from_crs("EPSG:4326", ground, always_xy=True)
    rng = np.random.default_rng(8)
    x, y = rng.uniform(15.0, 15.2, 4000), rng.uniform(59.9, 60.0, 4000)
    X = rng.normal(0, 2, (4000, 2))
    p = rng.dirichlet([1, 1], 4000)
    candidates = SiteCandidates(app, ["a", "b"], 12, 2000.0, "EPSG:4326", to_ground=to_ground)
    candidates.add(x, y, X, p, *app.transform(X, p))
    sites = candidates.select()
    assert len(sites) == 12
    i, j = np.triu_indices(12, 1)
    gaps = Geod(ellps="WGS84").inv(sites["x"][i], sites["y"][i], sites["x"][j], sites["y"][j])[2]
    assert gaps.min() >= 2000.0 * 0.995  # the projection's distortion over 11 km
    assert gaps.min() < 4000.0  # not 2000 m across the meridians and 4000 m along them


def test_bad_inputs_raise_clear_errors(app, tmp_path):
    for n in (0, -3, 2.5):
        with pytest.raises(InputDataError, match="at least 1"):
            SiteCandidates(app, ["a", "b"], n, 100.0, CRS)
    candidates = SiteCandidates(app, ["a", "b"], 50, 100.0, CRS)
    with pytest.raises(InputDataError, match="no mapped pixel to suggest field sites on"):
        candidates.select()
    far = gpd.GeoDataFrame(geometry=[LineString([(0, 0), (1000, 0)])], crs=CRS)
    far.to_file(tmp_path / "far.gpkg")
    with pytest.raises(InputDataError, match="nowhere within 2000"):
        read_access(tmp_path / "far.gpkg", CRS, BOUNDS, 2000.0)
    with pytest.raises(MissingFileError, match="does not exist"):
        read_access(tmp_path / "missing.gpkg", CRS, BOUNDS, 2000.0)
    for text in ("far", "-2km", "0", "2 miles"):
        with pytest.raises(InputDataError, match="positive distance"):
            parse_distance(text)


def test_no_pixel_within_walking_distance(app, tmp_path):
    road = gpd.GeoDataFrame(
        geometry=[LineString([(500_000, 5_199_990), (500_010, 5_199_990)])], crs=CRS
    )
    road.to_file(tmp_path / "corner.gpkg")
    access = read_access(tmp_path / "corner.gpkg", CRS, BOUNDS, 1.0)
    candidates = SiteCandidates(app, ["a", "b"], 2, 100.0, CRS, access=access)
    x, y, X, p, di, aoa, acc = _window(app, np.random.default_rng(6), n=50, x0=505_000)
    candidates.add(x, y, X, p, di, aoa, acc)
    with pytest.raises(InputDataError, match="within 1 m of"):
        candidates.select()


def test_distances_and_default_spacing():
    assert parse_distance("2km") == 2000.0
    assert parse_distance(" 500 m") == 500.0
    assert parse_distance(1500) == 1500.0
    assert parse_distance("1,5km") == 1500.0  # a decimal comma, as the observations take it
    assert default_spacing(10_000.0**2, 25) == pytest.approx(1000.0)  # 10 km / 5 / 2


def test_without_a_threshold_sites_are_spread_by_spacing_alone(app):
    blind = copy.deepcopy(app)
    blind.threshold_ = float("nan")
    rng = np.random.default_rng(7)
    x, y, X, p, di, aoa, acc = _window(app, rng, n=300)
    candidates = SiteCandidates(blind, ["a", "b"], 4, 2000.0, CRS)
    candidates.add(x, y, X, p, di, aoa, acc)
    sites = candidates.select()
    assert len(sites) == 4 and np.isfinite(sites["score"]).all()
    assert sites["score"].iloc[0] == pytest.approx(1 - np.nanmin(acc), abs=1e-4)


def test_a_site_of_a_certain_pixel_names_no_runner_up(app):
    X = np.array([[0.1, 0.2], [0.2, 0.1]])
    proba = np.array([[0.0, 1.0, 0.0], [0.2, 0.7, 0.1]])  # a labelled SOM's node: one class
    di, aoa, _ = app.transform(X[:, :2], proba[:, :2])
    candidates = SiteCandidates(app, ["a", "b", "c"], 2, 100.0, CRS)
    candidates.add([0.0, 5000.0], [0.0, 0.0], X, proba, di, np.ones(2), np.array([0.3, 0.4]))
    sites = candidates.select().set_index("x")
    assert sites.loc[0.0, "runner_up_class"] == "" and sites.loc[5000.0, "runner_up_class"] == "a"
    assert sites.loc[0.0, "reason"].startswith("mapped b (expected accuracy 0.30); inside")
    assert sites.loc[5000.0, "reason"].startswith("mapped b but could be a (expected accuracy")


def test_a_project_file_gives_its_only_layer_of_lines_as_access(tmp_path):
    from shapely.geometry import Point

    project = tmp_path / "project.gpkg"
    gpd.GeoDataFrame(geometry=[Point(500_100, 5_190_100)], crs=CRS).to_file(project, layer="obs")
    road = LineString([(500_000, 5_195_000), (510_000, 5_195_000)])
    gpd.GeoDataFrame(geometry=[road], crs=CRS).to_file(project, layer="roads")
    empty = gpd.GeoDataFrame(geometry=gpd.GeoSeries([], crs=CRS))  # as a GPX's empty routes
    pyogrio.write_dataframe(empty, project, layer="routes", geometry_type="LineString")
    access = read_access(project, CRS, BOUNDS, 500.0)
    assert access.reachable(
        np.array([505_000.0, 505_000.0]), np.array([5_195_400.0, 5_190_100.0])
    ).tolist() == [True, False]
    gpd.GeoDataFrame(geometry=[road], crs=CRS).to_file(project, layer="tracks")
    with pytest.raises(
        InputDataError,
        match=r"holds 4 layers, 'obs' \(Point\), 'roads' \(LineString\), 'routes' "
        r"\(LineString\), 'tracks' \(LineString\), and 2 of them of lines",
    ):
        read_access(project, CRS, BOUNDS, 500.0)


def test_the_reason_quotes_the_threshold_of_the_inputs_the_pixel_has():
    """Pixels with an input missing are held to their inputs' threshold: the reason said
    'dissimilarity 0.37 > 0.48' quoting the full inputs' one."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 2))
    y = (X[:, 0] > 0).astype(int)
    proba = np.column_stack([1 - (y * 0.8 + 0.1), y * 0.8 + 0.1])
    app = Applicability(feature_groups=[0, 1]).fit(X, y, folds=np.arange(80) % 4, oof_proba=proba)
    rng = np.random.default_rng(5)
    X = np.column_stack([rng.uniform(-8, 8, 300), np.where(rng.random(300) < 0.5, np.nan, 0.0)])
    proba = rng.dirichlet([1, 1], 300)
    di, aoa, acc = app.transform(X, proba)
    candidates = SiteCandidates(app, ["a", "b"], 30, 10.0, CRS)
    candidates.add(np.arange(300) * 100.0, np.zeros(300), X, proba, di, aoa, acc)
    sites = candidates.select()
    outside = sites[~sites["inside_aoa"]]
    stated = outside["reason"].str.extract(r"dissimilarity ([0-9.]+) > ([0-9.]+)").astype(float)
    assert len(stated) > 5 and (stated[0] > stated[1]).all()
    limits = app.threshold_at(X[(outside["x"] / 100).round().astype(int)])
    np.testing.assert_allclose(stated[1], limits, atol=0.006)
    assert len(np.unique(limits.round(4))) == 2  # the full inputs' and band 1's alone
    partial = outside["reason"].str.contains(", the threshold of the rasters with data here")
    assert partial.to_numpy().tolist() == (limits != app.threshold_).tolist()  # told apart


def test_a_dissimilarity_just_above_its_threshold_is_not_written_equal():
    from geomap.sites import _above

    assert _above(0.5234, 0.4812) == "dissimilarity 0.52 > 0.48"
    assert _above(0.4791, 0.4786) == "dissimilarity 0.479 > 0.479".replace(
        "0.479 > 0.479", "0.4791 > 0.4786"
    )


def test_the_csvs_crs_is_named_by_its_code_when_the_file_gave_only_its_wkt(app, tmp_path):
    """An ER Mapper grid's CRS has no EPSG code attached: the CSV took 900 characters of WKT."""
    from pyproj import CRS as ProjCRS

    rng = np.random.default_rng(3)
    candidates = SiteCandidates(app, ["a", "b"], 2, 1000.0, CRS)
    candidates.add(*_window(app, rng))
    sites = candidates.select()
    wkt = ProjCRS.from_epsg(32633).to_wkt("WKT1_ESRI")
    bare = ProjCRS.from_wkt(wkt.replace("WGS_1984_UTM_Zone_33N", "ERMapper_UTM_33"))
    assert bare.to_string() != "EPSG:32633"  # a WKT without its code
    write_points(
        sites.set_crs(bare, allow_override=True), tmp_path / "s.gpkg", tmp_path / "s.csv", "s"
    )
    assert set(pd.read_csv(tmp_path / "s.csv")["xy_crs"]) == {"EPSG:32633"}


def test_a_wide_unsampled_rock_outranks_a_single_odd_pixel(app):
    rng = np.random.default_rng(11)
    rock = np.array([6.0, 6.0]) + rng.normal(0, 0.02, (200, 2))  # one rock over much ground
    X = np.vstack([rock, [[-6.0, 6.0]]])  # and one odd pixel, the map's least certain
    proba = np.tile([0.2, 0.8], (201, 1))
    di, aoa, _ = app.transform(X, proba)
    acc = np.r_[np.full(200, 0.7), 0.1]
    x = np.r_[np.linspace(0, 5000, 200), 9000.0]
    candidates = SiteCandidates(app, ["a", "b"], 1, 100.0, CRS)
    candidates.add(x, np.zeros(201), X, proba, di, aoa, acc)
    site = candidates.select().iloc[0]
    assert site["x"] <= 5000  # one visit there tests 200 pixels the map may have wrong
    assert site["map_share_alike"] == pytest.approx(200 / 201, abs=0.01)
    assert (
        "; it stands for 100% of the map (pixels like it in the rasters, like no site "
        in (site["reason"])
    )


def test_the_map_sample_is_bounded_and_ignores_the_window_order(app, monkeypatch):
    monkeypatch.setattr("geomap.sites.MAP_SAMPLE", 500)
    rng = np.random.default_rng(12)
    windows = [_window(app, rng, n=400) for _ in range(4)]
    picks = []
    for order in (windows, windows[::-1]):
        candidates = SiteCandidates(app, ["a", "b"], 5, 1000.0, CRS)
        for window in order:
            candidates.add(*window)
        assert len(candidates._sample["key"]) == 500
        picks.append(candidates.select()[["x", "y", "score"]])
    pd.testing.assert_frame_equal(*picks)


def test_ties_at_the_pools_capacity_do_not_depend_on_the_window_order(app, monkeypatch):
    """A calibration fallen back to its base rate gives every pixel the same expected error.

    A map sample of 5 leaves the candidates to the pool (as an access layer far from most of
    the sample does).
    """
    monkeypatch.setattr("geomap.sites.MAP_SAMPLE", 5)
    rng = np.random.default_rng(13)
    windows = [list(_window(app, rng, n=300)) for _ in range(3)]
    for window in windows:
        window[6] = np.full(300, 0.8)
    picks = []
    for order in (windows, windows[::-1]):
        candidates = SiteCandidates(app, ["a", "b"], 4, 1000.0, CRS, capacity=200)
        for window in order:
            candidates.add(*window)
        picks.append(candidates.select()[["x", "y"]])
    pd.testing.assert_frame_equal(*picks)


def test_a_map_expected_right_everywhere_still_spreads_its_sites(app):
    """With every expected error 0, every score tied and the sites went to the west edge."""
    rng = np.random.default_rng(14)
    x, y, X, p, di, aoa, _ = _window(app, rng, n=2000)
    candidates = SiteCandidates(app, ["a", "b"], 5, 500.0, CRS)
    candidates.add(x, y, X, p, di, aoa, np.ones(2000))
    sites = candidates.select()
    assert len(sites) == 5 and sites["x"].max() - sites["x"].min() > 3000


def test_choosing_many_sites_keeps_no_candidates_by_sample_matrix(app, monkeypatch):
    """--suggest 1000 held a 104,000 x 4,000 matrix (416 MB); now a chunk at a time."""
    import geomap.sites as sites_module

    shapes = []
    alike = sites_module._alike

    def spy(z, sample, reach, inputs):
        shapes.append(len(z))
        return alike(z, sample, reach, inputs)

    monkeypatch.setattr(sites_module, "_CHUNK", 64)
    monkeypatch.setattr(sites_module, "_alike", spy)
    rng = np.random.default_rng(15)
    candidates = SiteCandidates(app, ["a", "b"], 40, 0.0, CRS)
    for _ in range(3):
        candidates.add(*_window(app, rng, n=400))
    assert len(candidates.select()) == 40
    assert max(shapes) <= 64 and len(shapes) > 1200 / 64


def test_a_pixel_under_a_cloud_stands_only_for_pixels_missing_the_same_input(app):
    """A missing feature is embedded as the training mean: a cloud pixel was alike every clear
    pixel near the mean, and cloud sites came first, each standing for much of the map."""
    rng = np.random.default_rng(16)
    X = np.vstack([[[0.0, np.nan]], rng.normal(0, 0.01, (200, 2))])
    proba = np.tile([0.5, 0.5], (201, 1))
    di, aoa, _ = app.transform(X, proba)
    acc = np.r_[0.3, np.full(200, 0.5)]  # the cloud pixel the least certain
    candidates = SiteCandidates(app, ["a", "b"], 2, 0.0, CRS)
    candidates.add(np.arange(201.0) * 10, np.zeros(201), X, proba, di, aoa, acc)
    sites = candidates.select().set_index("x")
    assert sites.index[0] > 0  # a clear pixel first: it stands for the 200 clear ones
    assert sites["map_share_alike"].to_dict() == {sites.index[0]: 0.995, 0.0: 0.005}
