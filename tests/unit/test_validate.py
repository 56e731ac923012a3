import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from geomap.errors import ModelError
from geomap.models import LithologyForest, SOMClassifier
from geomap.validate import (
    CV_TREE_SAMPLES,
    UNIT_TREES,
    _fold_estimator,
    block_groups,
    choose_block_size,
    cross_validate,
    fold_notes,
    little_seen,
    little_seen_notes,
    metrics,
    score_by_kind,
    summary_sentence,
)


def test_metrics_on_a_hand_example():
    m = metrics(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), ["granite", "shale"])
    assert m["overall_accuracy"] == 0.75
    assert m["balanced_accuracy"] == 0.75
    assert m["per_class_recall"] == {"granite": 0.5, "shale": 1.0}
    assert m["confusion_matrix"] == [[1, 1], [0, 2]]
    assert m["kappa"] == pytest.approx(0.5)


def test_block_groups():
    xy = np.array([[0, 0], [9, 9], [10, 0], [25, 31]], float)
    assert len(set(block_groups(xy, 10).tolist())) == 3
    assert block_groups(xy, 10)[0] == block_groups(xy, 10)[1]


def _clusters(rng, n_clusters=12, per=25, extent=10000.0, spread=100.0):
    centres = rng.uniform(0, extent, (n_clusters, 2))
    xy = np.repeat(centres, per, axis=0) + rng.normal(0, spread, (n_clusters * per, 2))
    return xy, np.repeat(np.arange(n_clusters) % 3, per)


def test_block_size_grows_when_the_map_is_far_from_clustered_samples():
    rng = np.random.default_rng(0)
    xy, y = _clusters(rng)
    map_xy = rng.uniform(0, 10000, (3000, 2))
    size, details = choose_block_size(xy, y, map_xy)
    assert size > 1000  # whole clusters held out
    dense = rng.uniform(0, 10000, (400, 2))
    near = dense + rng.normal(0, 20, dense.shape)  # map pixels right next to samples
    small, _ = choose_block_size(dense, rng.integers(0, 3, 400), near)
    assert small < size
    assert len(details["candidates"]) == len(details["distance_mismatch"])


def test_every_spatial_fold_gets_at_least_two_blocks():
    rng = np.random.default_rng(2)
    xy, y = _clusters(rng, n_clusters=8, per=30, spread=300.0)
    map_xy = rng.uniform(0, 10000, (3000, 2))  # far from the eight clusters
    size, details = choose_block_size(xy, y, map_xy, n_folds=5)
    assert len(np.unique(block_groups(xy, size))) >= 10
    scored = zip(details["candidates"], details["distance_mismatch"])
    finite = [c for c, m in scored if m is not None]
    assert finite
    assert all(len(np.unique(block_groups(xy, c))) >= 10 for c in finite)


def test_spatial_cv_is_less_optimistic_on_clustered_data():
    rng = np.random.default_rng(1)
    xy, _ = _clusters(rng, n_clusters=20, per=20)
    # a class field with spatial structure plus cluster-specific offsets that leak in random CV
    y = (np.sin(xy[:, 0] / 1500) > 0).astype(int) + (xy[:, 1] > 5000)
    cluster = np.repeat(np.arange(20), 20)
    X = np.column_stack(
        [y + rng.normal(0, 1.2, len(y)), rng.normal(0, 1, 20)[cluster] + 0.01 * cluster]
    )
    est = RandomForestClassifier(50, random_state=0)
    out = cross_validate(est, X, y, xy, ["a", "b", "c"], map_xy=rng.uniform(0, 10000, (2000, 2)))
    assert out["random"]["overall_accuracy"] > out["spatial"]["overall_accuracy"]
    assert out["spatial_oof_proba"].shape == (400, 3)


def test_neighbourhood_evaluation_averages_probabilities():
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1], 50)
    X = (y[:, None] + rng.normal(0, 0.8, (100, 1))).astype("float32")
    X_eval = np.repeat(X[:, None, :], 9, axis=1)
    X_eval[:, 1:] = y[:, None, None] + rng.normal(0, 0.8, (100, 8, 1))  # noisy neighbours
    X_eval[0, :] = np.nan  # a sample whose neighbourhood has no data
    xy = rng.uniform(0, 1000, (100, 2))
    est = RandomForestClassifier(30, random_state=0)
    plain = cross_validate(est, X, y, xy, ["a", "b"], map_xy=xy)
    smooth = cross_validate(est, X, y, xy, ["a", "b"], map_xy=xy, X_eval=X_eval)
    assert np.isnan(smooth["random_oof_proba"][0]).all()
    assert smooth["random"]["overall_accuracy"] > plain["random"]["overall_accuracy"]


def test_summary_sentence_warns_only_beyond_the_gap():
    assert "more optimistic" in summary_sentence(0.9, 0.7)
    assert "agree" in summary_sentence(0.80, 0.78)
    higher = summary_sentence(0.20, 0.32)
    assert "higher than random" in higher and "quote the lower, 0.20" in higher


def test_observations_in_a_small_patch_of_the_map_get_a_caution_not_a_figure_to_believe():
    rng = np.random.default_rng(5)
    xy, y = _clusters(rng, n_clusters=10, per=10)
    X = (y[:, None] + rng.normal(0, 0.7, (len(y), 2))).astype("float32")
    est = RandomForestClassifier(n_estimators=20, random_state=0)
    span = np.ptp(xy, axis=0).max()
    wide = rng.uniform(-20 * span, 20 * span, (2000, 2))  # the map reaches far beyond them
    far = cross_validate(est, X, y, xy, ["a", "b", "c"], map_xy=wide)
    choice = far["spatial"]["block_size_choice"]
    assert choice["median_held_out_distance"] < 0.1 * choice["median_map_to_sample_distance"]
    assert "speak only for the surroundings of the observations" in far["summary"]
    assert "Expect lower accuracy away from them." in far["summary"]
    assert "believe" not in far["summary"]
    near = cross_validate(est, X, y, xy, ["a", "b", "c"], map_xy=xy + rng.normal(0, 5, xy.shape))
    assert "speak only" not in near["summary"]
    assert "30 times farther" in summary_sentence(0.98, 0.97, reach=1 / 30)


def _three_units_cv(est, **kwargs) -> tuple[dict, list, np.ndarray, np.ndarray]:
    """cross_validate on 100 samples of 3 units in 10 clusters: output, progress calls, xy, y."""
    rng = np.random.default_rng(3)
    xy, y = _clusters(rng, n_clusters=10, per=10)
    X = (y[:, None] + rng.normal(0, 0.7, (len(y), 2))).astype("float32")
    calls = []
    out = cross_validate(
        est,
        X,
        y,
        xy,
        ["a", "b", "c"],
        map_xy=rng.uniform(0, 10000, (500, 2)),
        progress=lambda done, total: calls.append((done, total)),
        **kwargs,
    )
    return out, calls, xy, y


def test_cross_validate_returns_folds_and_out_of_fold_probabilities_for_calibration():
    out, calls, xy, y = _three_units_cv(RandomForestClassifier(20, random_state=0))
    assert "unit_folds" not in out
    total = out["random"]["n_folds"] + out["spatial"]["n_folds"]
    assert calls == [(done, total) for done in range(total + 1)]  # a stop can come per fold
    for kind in ("random", "spatial"):
        folds, proba = out[f"{kind}_folds"], out[f"{kind}_oof_proba"]
        assert folds.shape == (len(y),) and folds.dtype.kind == "i"
        assert len(np.unique(folds)) == out[kind]["n_folds"]
        pred = np.argmax(proba, axis=1)
        assert (pred == y).mean() == out[kind]["overall_accuracy"]
    blocks = block_groups(xy, out["spatial"]["block_size"])
    for b in np.unique(blocks):  # a spatial block is never split between folds
        assert len(np.unique(out["spatial_folds"][blocks == b])) == 1


def test_units_held_out_in_turn_are_mapped_by_models_that_never_saw_them():
    from geomap.validate import UNIT_FOLDS, held_out_units

    est = RandomForestClassifier(200, random_state=0)
    out, calls, _, y = _three_units_cv(est, units_out=True)
    folds, proba = out["unit_folds"], out["unit_oof_proba"]
    assert [len(np.unique(folds[y == u])) for u in range(3)] == [1, 1, 1]  # a unit in one fold
    assert len(np.unique(folds)) == 3 and calls[-1][1] == 5 + 5 + 3
    assert (proba[np.arange(len(y)), y] == 0).all()  # its own unit: never
    np.testing.assert_allclose(proba.sum(axis=1), 1)
    assert est.n_estimators == 200  # the held-out units' models were grown on 50 trees, a clone
    assert held_out_units(np.array([0, 1, 1, 0])) is None  # two units: one would be left
    many = np.repeat(np.arange(12), 3)
    twelve = held_out_units(many, random_state=1)
    assert len(np.unique(twelve)) == UNIT_FOLDS
    left = [len(np.unique(many[twelve != f])) for f in range(UNIT_FOLDS)]
    assert min(left) >= 9 and np.array_equal(twelve, held_out_units(many, random_state=1))


def test_observations_all_on_one_pixel_are_refused_with_the_count_of_places():
    """A grid far coarser than meant (--resolution 5000 for 5) puts every observation on one."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.repeat([0, 1], 20)
    xy = np.full((40, 2), 2500.0)
    with pytest.raises(ModelError, match=r"all 40 lie in one, at 1 distinct pixel\(s\) of the"):
        cross_validate(RandomForestClassifier(5), X, y, xy, ["a", "b"], map_xy=xy)


def test_outages_are_predicted_by_each_spatial_folds_model_without_their_columns():
    rng = np.random.default_rng(3)
    y = np.repeat([0, 1], 60)
    X = np.column_stack([y + rng.normal(0, 0.3, 120), rng.normal(0, 1, 120)])
    xy = rng.uniform(0, 1000, (120, 2))
    est = RandomForestClassifier(20, random_state=0)  # handles NaN features
    out = cross_validate(est, X, y, xy, ["a", "b"], map_xy=xy, outages=[np.array([0])])
    (lost,) = out["spatial_outage_oof_proba"]
    folds = out["spatial_folds"]
    test = folds == folds[0]
    blind = X[test].copy()
    blind[:, 0] = np.nan
    by_hand = RandomForestClassifier(20, random_state=0).fit(X[~test], y[~test])
    np.testing.assert_allclose(lost[test], by_hand.predict_proba(blind))
    assert (np.argmax(lost, axis=1) == y).mean() < (
        np.argmax(out["spatial_oof_proba"], 1) == y
    ).mean()
    assert "random_outage_oof_proba" not in out


def test_points_and_polygon_pixels_are_scored_apart_and_a_polygon_majority_is_told():
    y = np.array([0, 1, 0, 1, 0, 0, 0, 0, 1, 1])
    kind = np.array(["point"] * 4 + ["polygon"] * 6)
    right = np.eye(2)[y]

    def cv() -> dict:
        out = {"random_oof_proba": right.copy(), "spatial_oof_proba": right.copy()}
        out["spatial_oof_proba"][[0, 1]] = right[[1, 0]]  # two points held out mapped wrong
        out["spatial_oof_proba"][4] = np.nan  # a polygon pixel with no data: scored as class 0
        out["summary"] = "Believe the spatial figure."
        return out

    mixed = cv()
    (note,) = score_by_kind(mixed, y, kind, "map.gpkg")
    assert mixed["by_kind"]["point"] == {"samples": 4, "random": 1.0, "spatial": 0.5}
    assert mixed["by_kind"]["polygon"] == {"samples": 6, "random": 1.0, "spatial": 1.0}
    assert note.startswith("Observations 'map.gpkg': 6 of the 10 samples cross-validated are")
    assert "On the 4 field points alone, spatial CV gives 0.50 (random 1.00)" in note
    assert mixed["summary"] == (
        "Believe the spatial figure. Polygon pixels are 60% of these samples; on the 4 field "
        "points alone spatial CV gives 0.50."
    )
    points = cv()
    assert score_by_kind(points, y, np.array(["point"] * 10), "map.gpkg") == []  # one kind
    assert points["by_kind"] is None and points["summary"] == "Believe the spatial figure."
    fewer = cv()  # polygon pixels under half the samples: scored apart, nothing said
    assert score_by_kind(fewer, y, np.array(["point"] * 6 + ["polygon"] * 4), "map.gpkg") == []
    assert fewer["by_kind"]["polygon"]["samples"] == 4
    assert fewer["summary"] == "Believe the spatial figure."


def test_a_unit_held_out_whole_is_named_as_not_tested():
    """Eight basalt points on one traverse fall in one spatial fold: the model that mapped them had
    never seen basalt, so its recall of 0.00 spoke of the fold, not of the map."""
    y = np.array([0] * 8 + [1] * 10 + [2] * 10)
    folds = np.array([0] * 8 + [0, 1, 2, 3, 4] * 2 + [1, 2, 3, 4, 0] * 2)
    cv = {
        "spatial_folds": folds,
        "spatial": {"per_class_recall": {"basalt": 0.0, "granite": 0.9, "shale": 0.8}},
    }
    flags = little_seen(y, folds)
    assert flags[:8].all() and not flags[8:].any()
    (note,) = little_seen_notes(cv, y, ["basalt", "granite", "shale"], "obs.csv")
    assert note.startswith(
        "Observations 'obs.csv': spatial cross-validation could not test 'basalt'. 8 of its 8 "
        "samples were held out with most of the unit"
    )
    assert "had been trained on less than 25% of its samples. Its spatial-CV recall (0.00)" in note
    assert "says little of the map, and those samples are not listed to check." in note
    som = little_seen_notes(cv, y, ["basalt", "granite", "shale"], "obs.csv", checks=False)
    assert "listed to check" not in som[0]
    folds[:3] = 1  # five held out by a model that saw three of eight: tested
    assert little_seen_notes(cv, y, ["basalt", "granite", "shale"], "obs.csv") == []


def test_a_units_share_seen_is_weighed_as_its_samples_were_in_training():
    """A polygon's 90 pixels held out with one of ten points: by count the model had seen 9 of
    100 samples; as trained (the pixels sharing one observation's worth), 9 of 11."""
    y = np.zeros(100, int)
    y = np.r_[y, np.ones(20, int)]
    folds = np.r_[np.zeros(91, int), np.arange(1, 10), np.arange(20) % 5]
    weight = np.r_[np.full(90, 1 / 90), np.ones(10), np.ones(20)]
    assert little_seen(y, folds)[:91].all()
    assert not little_seen(y, folds, weight)[:91].any()


def test_fold_forests_grow_each_tree_on_fewer_samples_than_the_maps_forest():
    """A legacy map's 12,000 pixels made cross-validation 269 s of a 286 s run."""
    forest = LithologyForest(n_estimators=200, random_state=3)
    folds = _fold_estimator(forest)
    assert folds.max_samples == CV_TREE_SAMPLES < forest.max_samples
    assert folds.n_estimators == 200 and folds.random_state == 3 and folds is not forest
    assert _fold_estimator(forest, UNIT_TREES).n_estimators == UNIT_TREES
    assert _fold_estimator(LithologyForest(max_samples=500)).max_samples == 500
    assert _fold_estimator(RandomForestClassifier()).max_samples is None  # draws every sample
    som = SOMClassifier()
    assert _fold_estimator(som).get_params() == som.get_params()  # not a forest


def test_cross_validation_fits_its_folds_with_the_capped_forest(monkeypatch):
    import geomap.validate as validate

    seen = []
    real = validate._oof_proba

    def spy(estimator, *args, **kwargs):
        seen.append((estimator.max_samples, estimator.n_estimators))
        return real(estimator, *args, **kwargs)

    monkeypatch.setattr(validate, "_oof_proba", spy)
    forest = LithologyForest(n_estimators=20, random_state=0, n_jobs=1)
    _three_units_cv(forest, units_out=True)
    assert seen == [(CV_TREE_SAMPLES, 20)] * 3  # random, spatial and unit folds


def test_fewer_folds_than_asked_are_told_with_the_reason():
    """--cv-folds 500 ran 102 random and 102 spatial folds, and the report said 500."""
    cv = {"random": {"n_folds": 5}, "spatial": {"n_folds": 5, "block_size": 2000.0}}
    assert fold_notes(cv, 5, "obs.gpkg") == []
    cv["spatial"]["n_folds"] = 3
    (note,) = fold_notes(cv, 5, "obs.gpkg")
    assert note.startswith("Observations 'obs.gpkg': cross-validation ran 5 random and 3 spatial")
    assert "not the 5 asked for, as they lie in only 3 blocks of 2000 map units;" in note
    cv = {"random": {"n_folds": 8}, "spatial": {"n_folds": 8, "block_size": 500.0}}
    (note,) = fold_notes(cv, 10, "obs.gpkg")
    assert "not the 10 asked for, as its most observed unit has 8 samples;" in note
