"""Observations to check: held-out predictions that confidently name another unit."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio

from geomap.placement import Samples
from geomap.recheck import observations_to_check, write_observations_to_check

CRS = "EPSG:32633"
NAMES = ["basalt", "granite", "shale"]


def samples_of(kinds: list[str]) -> Samples:
    n = len(kinds)
    return Samples(
        rows=np.arange(n),
        cols=np.arange(n),
        labels=np.array(["x"] * n),
        kind=np.array(kinds),
        source=np.array(["obs.gpkg"] * n),
        site=np.array([f"station {i + 1}" for i in range(n)]),
        site_key=np.array([str(i + 1) for i in range(n)]),
        counts={"site_key": "station"},
        xy=np.column_stack([500000.0 + 10 * np.arange(n), 5200000.0 - 10 * np.arange(n)]),
        weight=np.ones(n),
    )


def alone(y: np.ndarray) -> np.ndarray:
    """Folds of one sample each: every held-out model saw the rest of each unit."""
    return np.arange(len(y))


def test_points_the_held_out_map_gives_another_unit_are_listed_most_confident_first():
    y = np.array([0, 0, 0, 1, 1, 1, 0, 2, 2, 2])
    proba = np.array(
        [
            [0.9, 0.1, 0.0],  # basalt, held-out basalt: fine
            [0.45, 0.55, 0.0],  # basalt held out as granite, but basalt still likely: not listed
            [0.05, 0.85, 0.1],  # basalt held out as granite, basalt below 0.1: listed
            [0.1, 0.9, 0.0],
            [0.2, 0.8, 0.0],
            [0.09, 0.0, 0.91],  # granite held out as shale: listed
            [0.02, 0.97, 0.01],  # basalt, granite even surer: listed first
            [0.3, 0.3, 0.4],  # shale, held out as shale
            [0.5, 0.45, 0.05],  # shale held out as basalt, shale below 0.1: listed last
            [np.nan, np.nan, np.nan],  # never held out (its class missing from a fold)
        ]
    )
    table = observations_to_check(samples_of(["point"] * 10), y, proba, NAMES, CRS, alone(y))
    assert list(table["site"]) == ["station 7", "station 6", "station 3", "station 9"]
    assert list(table["station"]) == [7, 6, 3, 9]  # the file's own key, to join on
    assert list(table["rank"]) == [1, 2, 3, 4]
    assert list(table["observed"]) == ["basalt", "granite", "basalt", "shale"]
    assert list(table["held_out"]) == ["granite", "shale", "granite", "basalt"]
    assert list(table["p_observed"]) == [0.02, 0.0, 0.05, 0.05]
    assert list(table["p_held_out"]) == [0.97, 0.91, 0.85, 0.5]
    assert table.crs == CRS and table.geometry.iloc[0].x == 500060.0


def test_a_unit_held_out_whole_is_not_listed_to_check():
    """All of a rare unit's points on one traverse, so in one spatial fold: the model that mapped
    them had never seen it, and they were listed as misidentified though right."""
    y = np.array([0] * 5 + [1] * 4 + [2] * 3)
    proba = np.tile([0.0, 0.95, 0.05], (12, 1))  # what a model without basalt gives its points
    folds = np.array([0, 0, 0, 0, 0, 1, 2, 3, 4, 1, 2, 3])  # every basalt point in fold 0
    table = observations_to_check(samples_of(["point"] * 12), y, proba, NAMES, CRS, folds)
    assert list(table["observed"]) == ["shale"] * 3  # granite agrees; no basalt
    folds[4] = 1  # four held out by a model that saw a fifth of the unit, one by one that saw four
    table = observations_to_check(samples_of(["point"] * 12), y, proba, NAMES, CRS, folds)
    assert list(table["observed"]) == ["basalt"] + ["shale"] * 3
    assert list(table["site"])[0] == "station 5"
    folds[3] = 2  # three held out by a model that saw two of the five: enough to judge
    table = observations_to_check(samples_of(["point"] * 12), y, proba, NAMES, CRS, folds)
    assert list(table["observed"]) == ["basalt"] * 5 + ["shale"] * 3


def test_polygon_pixels_are_not_observations_to_check(tmp_path):
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1, 0], [0.05, 0.95, 0], [0.1, 0.9, 0], [0.2, 0.8, 0]])
    polygons = samples_of(["polygon"] * 4)
    assert observations_to_check(polygons, y, proba, NAMES, CRS, alone(y)).empty
    assert write_observations_to_check(tmp_path, polygons, y, proba, NAMES, CRS, alone(y)) is None
    assert not list(tmp_path.iterdir())


def test_the_list_is_written_for_qgis_and_a_gps(tmp_path):
    y = np.array([0, 0, 1, 1])
    proba = np.array([[0.9, 0.1, 0], [0.05, 0.95, 0], [0.1, 0.9, 0], [0.2, 0.8, 0]])
    points = samples_of(["point"] * 4)
    points.counts["site_key"] = "fid"  # no identifier column: the feature ids of the file
    entry = write_observations_to_check(tmp_path, points, y, proba, NAMES, CRS, alone(y))
    assert entry["n_listed"] == 1 and entry["n_points"] == 4
    assert entry["first"][0]["site"] == "station 2"
    layer = gpd.read_file(tmp_path / "observations_to_check.gpkg", layer="observations_to_check")
    assert layer.crs == CRS and list(layer["held_out"]) == ["granite"]
    table = pd.read_csv(tmp_path / "observations_to_check.csv")
    assert list(table.columns[:5]) == ["rank", "lon", "lat", "site", "fid_in_file"]
    assert 14 < table["lon"].iloc[0] < 16 and 46 < table["lat"].iloc[0] < 48
    y_fine = np.array([0, 0, 1, 1])
    proba_fine = np.array([[0.9, 0.1, 0], [0.8, 0.2, 0], [0.1, 0.9, 0], [0.2, 0.8, 0]])
    empty = tmp_path / "none"
    empty.mkdir()
    entry = write_observations_to_check(
        empty, samples_of(["point"] * 4), y_fine, proba_fine, NAMES, CRS, alone(y_fine)
    )
    assert entry["n_listed"] == 0 and not list(empty.iterdir())


@pytest.fixture(scope="module")
def planted(demo_scene, tmp_path_factory):
    """The demo scene's points with three observations deep inside units given a wrong name."""
    points = gpd.read_file(demo_scene.points_gpkg)
    with rasterio.open(demo_scene.truth) as src:
        truth = src.read(1)
        rows, cols = rasterio.transform.rowcol(
            src.transform, points.geometry.x.to_numpy(), points.geometry.y.to_numpy()
        )
    names = np.asarray(demo_scene.class_names)
    inside = [
        i
        for i, (r, c) in enumerate(zip(rows, cols))
        if 3 <= r < truth.shape[0] - 3
        and 3 <= c < truth.shape[1] - 3
        and (truth[r - 3 : r + 4, c - 3 : c + 4] == truth[r, c]).all()
        and points.loc[i, "lithology"] == names[truth[r, c]]
    ]
    rng = np.random.default_rng(5)
    chosen = rng.choice(inside, 3, replace=False)
    for i in chosen:
        right = points.loc[i, "lithology"]
        points.loc[i, "lithology"] = next(n for n in ("granite", "shale", "basalt") if n != right)
    path = tmp_path_factory.mktemp("planted") / "points.gpkg"
    points.to_file(path)
    return path, [f"obs_id {points.loc[i, 'obs_id']}" for i in chosen], len(points)


def test_a_run_lists_observations_given_the_wrong_unit(demo_scene, planted, tmp_path):
    from geomap.workflow import RunConfig, run

    path, wrong, n_points = planted
    out = tmp_path / "map"
    report = run(
        RunConfig(
            rasters=list(demo_scene.rasters),
            labels=path,
            label_column="lithology",
            out=out,
            trees=60,
            applicability=False,
        )
    )
    listed = pd.read_csv(out / "observations_to_check.csv")
    # the rule finds about 9 in 10 misidentified points (benchmarks/recheck.py)
    assert len(set(wrong) & set(listed["site"])) >= 2, (wrong, listed.to_string())
    assert (listed["site"] == "obs_id " + listed["obs_id"].astype(str)).all()  # joins on obs_id
    layer = gpd.read_file(out / "observations_to_check.gpkg")
    assert layer["obs_id"].dtype == "int64"  # the type of the field file's obs_id
    assert len(listed) < 0.1 * n_points  # a short list to revisit, not every hard point
    entry = report["observations_to_check"]
    assert entry["n_listed"] == len(listed) and entry["n_points"] == n_points
    assert "Observations to check" in (out / "report.html").read_text()


def test_keys_written_with_leading_zeros_stay_text():
    from geomap.recheck import _as_written

    assert _as_written(np.array(["12", "7"])).tolist() == [12, 7]
    assert _as_written(np.array(["007", "12"])).tolist() == ["007", "12"]
    assert _as_written(np.array(["GM-1", "12"])).tolist() == ["GM-1", "12"]
    assert _as_written(np.array(["12", ""])).tolist() == ["12", ""]  # a blank id: text
