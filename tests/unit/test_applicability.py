import json

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from geomap import distances
from geomap.applicability import (
    AccuracyCalibration,
    Applicability,
    aoa_threshold,
    normalised_entropy,
)
from geomap.distances import mean_pairwise_distance
from geomap.errors import ModelError
from geomap.export import load_model, save_model

# Four training samples on the corners of a square; mean (1, 1), sd 1 in both features, so the
# standardised samples are (+-1, +-1) and, with equal weights 0.5, (+-0.5, +-0.5).
SQUARE = np.array([[0, 0], [2, 0], [0, 2], [2, 2]], float)
SQUARE_Y = np.array([0, 1, 0, 1])
SQUARE_FOLDS = np.array([0, 0, 1, 1])
# Side 1 four times, diagonal sqrt(2) twice: (4 + 2 * 1.41421356) / 6.
SQUARE_MEAN_DISTANCE = 1.13807119


def _fitted(X=SQUARE, y=SQUARE_Y, folds=SQUARE_FOLDS, **kwargs):
    proba = np.eye(2)[y] * 0.8 + 0.1
    return Applicability(**kwargs).fit(X, y, folds=folds, oof_proba=proba)


def test_dissimilarity_index_matches_a_hand_computed_case():
    app = _fitted()
    assert app.mean_distance_ == pytest.approx(SQUARE_MEAN_DISTANCE)
    # (4, 1) -> standardised (3, 0) -> weighted (1.5, 0); nearest corner (0.5, +-0.5) at
    # sqrt(1 + 0.25) = 1.11803399. (1, 1) -> (0, 0), at sqrt(0.5) = 0.70710678 from every corner.
    di, _, _ = app.dissimilarity(np.array([[4, 1], [1, 1], [2, 2]], float))
    assert di == pytest.approx([1.11803399 / 1.13807119, 0.70710678 / 1.13807119, 0.0])


def test_importance_weights_stretch_the_feature_space():
    app = _fitted(weights=[3.0, 1.0])  # weights 0.75, 0.25: corners at (+-0.75, +-0.25)
    # pairs: 2 x 1.5 (along x), 2 x 0.5 (along y), 2 x sqrt(1.5**2 + 0.5**2) = 1.58113883
    expected_mean = (2 * 1.5 + 2 * 0.5 + 2 * 1.58113883) / 6
    assert app.mean_distance_ == pytest.approx(expected_mean)
    di, _, _ = app.dissimilarity(np.array([[4, 1]], float))  # (2.25, 0): 1.5 along x, 0.25 along y
    assert di[0] == pytest.approx(np.hypot(1.5, 0.25) / expected_mean)


def test_threshold_is_the_upper_whisker_and_ignores_an_outlier():
    di = np.array([0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 5.0])
    # q1 0.2, q3 0.35, IQR 0.15: fence 0.575, so the largest value below it, 0.4
    assert aoa_threshold(di) == pytest.approx(0.4)
    assert aoa_threshold(di[:-1]) == pytest.approx(0.4)  # the outlier did not move it
    assert aoa_threshold(np.array([0.5, np.nan, np.inf])) == 0.5
    assert np.isnan(aoa_threshold(np.array([np.nan])))


def test_threshold_from_training_cv_dissimilarity_and_mask():
    app = _fitted()
    # every corner's nearest corner in the other fold is 1.0 away (a side): train DI 1 / 1.138
    assert app.train_di_ == pytest.approx(np.full(4, 1 / SQUARE_MEAN_DISTANCE))
    assert app.threshold_ == pytest.approx(1 / SQUARE_MEAN_DISTANCE)
    proba = np.array([[0.9, 0.1], [0.5, 0.5], [np.nan, np.nan]])
    di, aoa, acc = app.transform(np.array([[1, 1], [9, 9], [1, 1]], float), proba)
    assert aoa[:2].tolist() == [1.0, 0.0]
    assert np.isnan([di[2], aoa[2], acc[2]]).all()  # not mapped: no value
    assert di.dtype == aoa.dtype == acc.dtype == np.float32


def test_missing_feature_group_uses_the_complete_groups():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    X[:5, 2] = np.nan  # five samples miss the second source
    y, folds = np.arange(60) % 2, np.arange(60) % 3
    app = _fitted(X, y, folds, feature_groups=[0, 0, 1])
    assert np.isfinite(app.train_di_).all()
    pixel = np.array([[0.3, -0.2, np.nan], [np.nan, np.nan, np.nan]])
    di, threshold, _ = app.dissimilarity(pixel)
    sub = Applicability().fit(X[:, :2], y, folds=folds, oof_proba=np.full((60, 2), 0.5))
    expected, _, _ = sub.dissimilarity(pixel[:1, :2])
    # same as a model of the first source alone (the weights of its features are equal in both)
    assert di[0] == pytest.approx(expected[0])
    assert threshold[0] == pytest.approx(sub.threshold_)
    assert np.isnan(di[1])
    assert set(app.spaces_) == {"0,1", "0"}


def test_bad_fit_inputs_raise_model_errors():
    with pytest.raises(ModelError, match="two folds"):
        _fitted(folds=np.zeros(4, int))
    with pytest.raises(ModelError, match="n rows"):
        Applicability().fit(SQUARE, SQUARE_Y[:3], folds=SQUARE_FOLDS, oof_proba=np.ones((4, 2)))
    with pytest.raises(ModelError, match="one weight per feature"):
        _fitted(weights=[1.0])
    with pytest.raises(ModelError, match="one group per feature"):
        _fitted(feature_groups=[0])


def test_normalised_entropy():
    p = np.array([[1.0, 0.0], [0.5, 0.5], [np.nan, np.nan]])
    out = normalised_entropy(p)
    assert out[:2] == pytest.approx([0.0, 1.0])
    assert np.isnan(out[2])


def _known_calibration_data(n=4000, seed=0):
    rng = np.random.default_rng(seed)
    entropy, di = rng.uniform(0, 1, n), rng.uniform(0, 2, n)
    truth = 1 / (1 + np.exp(-(3.0 - 4.0 * entropy - 1.5 * di)))
    return entropy, di, rng.uniform(size=n) < truth, truth


def test_calibration_recovers_a_known_accuracy_function():
    entropy, di, right, _ = _known_calibration_data()
    cal = AccuracyCalibration().fit(entropy, di, right)
    grid_e, grid_d = np.meshgrid(np.linspace(0, 1, 5), np.linspace(0, 2, 5))
    truth = 1 / (1 + np.exp(-(3.0 - 4.0 * grid_e - 1.5 * grid_d)))
    assert cal.predict(grid_e.ravel(), grid_d.ravel()) == pytest.approx(truth.ravel(), abs=0.05)
    assert cal.inputs_ == ["entropy", "dissimilarity"]


def test_calibration_is_monotone_and_drops_an_input_that_would_reward_dissimilarity():
    rng = np.random.default_rng(1)
    entropy = rng.uniform(0, 1, 3000)
    di = rng.uniform(0, 2, 3000)
    # accuracy that grows with DI here: an artefact the calibration must not learn
    right = rng.uniform(size=3000) < 1 / (1 + np.exp(-(2.0 - 3.0 * entropy + 1.0 * di)))
    cal = AccuracyCalibration().fit(entropy, di, right)
    assert cal.inputs_ == ["entropy"]
    e = np.linspace(0, 1, 11)
    for d in (0.0, 1.0, 5.0):
        values = cal.predict(e, np.full(11, d))
        assert (np.diff(values) <= 0).all()
    assert cal.predict([0.3, 0.3], [0.1, 9.0])[0] == cal.predict([0.3, 0.3], [0.1, 9.0])[1]


def test_a_few_samples_lacking_an_input_teach_the_calibration_their_lower_accuracy():
    rng = np.random.default_rng(4)
    n, under_cloud = 300, 20  # as on the demo scene: 18 of 300 observations under the cloud
    entropy, di = rng.uniform(0, 0.5, n), rng.uniform(0, 0.5, n)
    missing = np.zeros(n)
    missing[:under_cloud] = 0.4  # the satellite carried 40% of the importance
    right = np.ones(n, bool)
    right[rng.choice(np.arange(under_cloud, n), 28, replace=False)] = False  # 90% right
    right[:5] = False  # 75% right under the cloud
    cal = AccuracyCalibration().fit(entropy, di, right, missing)
    assert "missing_importance" in cal.inputs_
    clear, cloud = cal.predict([0.2, 0.2], [0.2, 0.2], [0.0, 0.4])
    assert cloud < clear - 0.08  # close to the held-out 0.75 vs 0.90, not shrunk away
    assert cal.predict([0.2], [0.2]) == pytest.approx(clear)  # missing defaults to none
    nobody = AccuracyCalibration().fit(entropy, di, right, np.zeros(n))
    assert "missing_importance" not in nobody.inputs_


@pytest.mark.parametrize("lacking", [1, 2, 9])
def test_too_few_samples_lacking_an_input_do_not_set_the_clouds_accuracy(lacking):
    rng = np.random.default_rng(5)
    n = 300
    entropy, di = rng.uniform(0, 0.5, n), rng.uniform(0, 0.5, n)
    missing = np.zeros(n)
    missing[:lacking] = 0.4
    right = rng.uniform(size=n) < 0.9
    right[0] = False  # the one observation under the cloud happened to be wrong
    cal = AccuracyCalibration().fit(entropy, di, right, missing)
    assert "missing_importance" not in cal.inputs_
    clear, cloud = cal.predict([0.2, 0.2], [0.2, 0.2], [0.0, 0.4])
    assert cloud == clear  # not 0.02 from one wrong sample


def test_applicability_weighs_missing_inputs_by_their_importance():
    X = np.array([[0, 0, 1], [2, 0, 1], [0, 2, 3], [2, 2, 3]], float)
    app = _fitted(X, weights=[0.5, 0.3, 0.2], feature_groups=[0, 0, 1])
    pixels = np.array([[1, 1, 2], [np.nan, np.nan, 2], [1, 1, np.nan], [np.nan, 1, 2]])
    _, _, missing = app.dissimilarity(pixels)
    assert missing == pytest.approx([0.0, 0.8, 0.2, 0.8])


def test_calibration_without_errors_is_the_held_out_accuracy():
    cal = AccuracyCalibration().fit([0.1, 0.5, 0.9], [0.2, 0.4, 0.1], [True, True, True])
    assert cal.model_ is None and cal.predict([0.2, 0.99], [0, 3]).tolist() == [1.0, 1.0]
    with pytest.raises(ModelError, match="right/wrong flag"):
        AccuracyCalibration().fit([0.1, np.nan], [0.2, 0.3], [True, False])


def _scene_like(seed=2, n=300):
    """Two informative features, a noise feature; class boundary at x0 = 0."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    y = (X[:, 0] + rng.normal(0, 0.5, n) > 0).astype(int)
    p1 = 1 / (1 + np.exp(-3 * X[:, 0]))
    return X, y, np.arange(n) % 5, np.column_stack([1 - p1, p1])


def test_expected_accuracy_falls_with_uncertainty_and_dissimilarity():
    X, y, folds, oof = _scene_like()
    app = Applicability(weights=[0.6, 0.3, 0.1]).fit(X, y, folds=folds, oof_proba=oof)
    near, far = np.zeros((1, 3)), np.full((1, 3), 8.0)
    sure, unsure = np.array([[0.98, 0.02]]), np.array([[0.55, 0.45]])
    acc = {
        (p, d): app.transform(x, q)[2][0]
        for p, q in (("sure", sure), ("unsure", unsure))
        for d, x in (("near", near), ("far", far))
    }
    assert acc["sure", "near"] > acc["unsure", "near"]
    assert acc["sure", "near"] >= acc["sure", "far"]
    assert 0 < acc["unsure", "far"] < 1


def test_applicability_round_trips_through_a_model_bundle(tmp_path):
    X, y, folds, oof = _scene_like()
    app = Applicability(feature_groups=[0, 0, 1]).fit(X, y, folds=folds, oof_proba=oof)
    pixels = np.array([[0.1, 0.2, np.nan], [3.0, -1.0, 0.5]])
    proba = np.array([[0.7, 0.3], [0.2, 0.8]])
    before = app.transform(pixels, proba)
    save_model(tmp_path / "m.skops", {"format": "geomap-model", "applicability": app})
    loaded = load_model(tmp_path / "m.skops")["applicability"]
    for a, b in zip(before, loaded.transform(pixels, proba)):
        np.testing.assert_array_equal(a, b)


def test_large_windows_are_computed_in_chunks_with_the_same_result(monkeypatch):
    X, y, folds, oof = _scene_like()
    app = Applicability().fit(X, y, folds=folds, oof_proba=oof)
    pixels = np.random.default_rng(3).normal(size=(1000, 3))
    whole = app.dissimilarity(pixels)
    monkeypatch.setattr("geomap.applicability.ROW_CHUNK", 7)
    for a, b in zip(whole, app.dissimilarity(pixels)):
        np.testing.assert_array_equal(a, b)


def test_describe_is_json_ready():
    X, y, folds, oof = _scene_like()
    out = Applicability().fit(X, y, folds=folds, oof_proba=oof).describe()
    assert json.loads(json.dumps(out))["calibration"]["inputs"]
    assert out["threshold"] > out["training_dissimilarity_median"]


def test_many_features_are_searched_in_matrix_form_with_the_k_d_trees_result(monkeypatch):
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(300, 40)), rng.integers(0, 2, 300)
    folds = rng.integers(0, 5, 300)
    X[:20, 30:] = np.nan  # a subspace of 30 features too
    probe = rng.normal(size=(500, 40)) * 1.5
    probe[:50, 30:] = np.nan
    groups = [0] * 30 + [1] * 10
    matrix = _fitted(X, y, folds, feature_groups=groups).dissimilarity(probe)[0]
    monkeypatch.setattr(distances, "KDTREE_MAX_DIMS", 100)
    tree = _fitted(X, y, folds, feature_groups=groups).dissimilarity(probe)[0]
    assert np.isfinite(matrix).all()
    np.testing.assert_allclose(matrix, tree, rtol=1e-5)


def test_many_training_samples_are_measured_against_a_random_reference_subset():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(300, 3))
    y, folds = (X[:, 0] > 0).astype(int), np.arange(300) % 5
    app = _fitted(X, y, folds, max_reference=40)
    ref, Z = app.reference_, app.embed(X)
    assert ref.sum() == 40
    md = mean_pairwise_distance(Z[ref])
    assert app.mean_distance_ == pytest.approx(md)
    pixels = rng.normal(size=(50, 3))
    di, threshold, _ = app.dissimilarity(pixels)
    assert di == pytest.approx(cdist(app.embed(pixels), Z[ref]).min(axis=1) / md)
    # each training sample against the reference samples of the other folds, for the threshold
    held_out = [cdist(Z[i : i + 1], Z[ref & (folds != folds[i])]).min() / md for i in range(300)]
    assert app.train_di_ == pytest.approx(held_out)
    assert threshold == pytest.approx(np.full(50, aoa_threshold(app.train_di_)))
    described = app.describe()
    assert (described["reference_samples"], described["training_samples"]) == (40, 300)
    assert _fitted(X, y, folds, max_reference=300).reference_.all()  # at the limit: all


def test_a_model_saved_before_the_reference_subset_measures_against_every_sample():
    rng = np.random.default_rng(6)
    X = rng.normal(size=(60, 3))
    y, folds = (X[:, 1] > 0).astype(int), np.arange(60) % 3
    app = _fitted(X, y, folds)
    state = app.__getstate__()
    del state["reference_"], state["max_reference"]
    old = Applicability.__new__(Applicability)
    old.__setstate__(state)
    assert old.reference_.all() and old.max_reference is None
    pixels = rng.normal(size=(20, 3))
    assert old.dissimilarity(pixels)[0] == pytest.approx(app.dissimilarity(pixels)[0])


def test_a_source_few_samples_have_keeps_all_of_them_as_its_reference():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3000, 3))
    X[8:, 2] = np.nan  # the third input (its own group) has data at 8 samples only
    y, folds = (X[:, 0] > 0).astype(int), np.arange(3000) % 4
    kwargs = {"feature_groups": [0, 0, 1]}
    subset = _fitted(X, y, folds, max_reference=200, **kwargs)
    every = _fitted(X, y, folds, max_reference=None, **kwargs)
    pixels = np.column_stack([rng.normal(size=(30, 2)), X[:8, 2].mean() + rng.normal(size=30)])
    di, threshold, _ = subset.dissimilarity(pixels)
    assert np.isfinite(di).all() and np.isfinite(threshold).all()
    assert di == pytest.approx(every.dissimilarity(pixels)[0])  # all 8 are its reference
    assert subset.reference_.sum() == 8
    # pixels without the third input: measured against 200 of the 3000 samples, never closer
    lacking = pixels.copy()
    lacking[:, 2] = np.nan
    near_subset, near_every = subset.dissimilarity(lacking)[0], every.dissimilarity(lacking)[0]
    subspace_distance = near_subset * subset._space(1).mean_distance
    assert (subspace_distance >= near_every * every._space(1).mean_distance - 1e-9).all()
    assert 200 <= subset._space(1).reference.sum() <= 204  # drawn from each of the 4 folds


def test_max_reference_below_two_is_refused():
    with pytest.raises(ModelError, match="max_reference has to be at least 2"):
        _fitted(max_reference=1)


def test_held_out_units_lower_the_expected_accuracy_outside_the_aoa_only():
    """Three units; a map whose far pixels may be a unit that no observation holds."""
    rng = np.random.default_rng(4)
    y = np.repeat([0, 1, 2], 100)
    X = y[:, None] * 2.0 + rng.normal(0, 0.6, (300, 2))
    folds = np.arange(300) % 5
    oof = np.full((300, 3), 0.05)
    oof[np.arange(300), y] = 0.9
    oof[rng.choice(300, 30, replace=False)] = [0.6, 0.3, 0.1]  # a few wrong, less sure
    unseen = np.where(np.arange(3) == (y[:, None] + 1) % 3, 0.9, 0.05)  # a neighbouring unit
    plain = Applicability().fit(X, y, folds=folds, oof_proba=oof)
    taught = Applicability().fit(X, y, folds=folds, oof_proba=oof, units_out=(y, unseen))
    pixels = np.array([[2.0, 2.0], [2.3, 1.8], [14.0, -9.0]])  # two among the samples, one far
    sure = np.tile([0.05, 0.9, 0.05], (3, 1))
    di, aoa, before = plain.transform(pixels, sure)
    after = taught.transform(pixels, sure)[2]
    assert list(aoa) == [1, 1, 0]
    np.testing.assert_array_equal(after[:2], before[:2])  # inside: the spatial CV's evidence
    assert after[2] < before[2] - 0.3 and after[2] < 0.5
    figures = json.loads(json.dumps(taught.describe()))["calibration_outside_aoa"]
    assert figures["units_held_out"] == 3 and "dissimilarity" in figures["inputs"]
    assert plain.describe()["calibration_outside_aoa"] is None
    del taught.calibration_outside_  # a bundle saved before: one calibration everywhere
    np.testing.assert_array_equal(taught.transform(pixels, sure)[2], before)


def test_simulated_outages_teach_what_a_missing_input_costs_where_no_sample_lacked_it():
    """Without its informative input the model is as sure as before and right half the time."""
    X, y, folds, oof = _scene_like()
    rng = np.random.default_rng(7)
    guess = rng.integers(0, 2, len(y))  # the fallback's confident guesses
    blind = np.where(guess[:, None] == np.arange(2), 0.95, 0.05)
    kwargs = dict(weights=[0.6, 0.3, 0.1], feature_groups=[0, 1, 1])
    plain = Applicability(**kwargs).fit(X, y, folds=folds, oof_proba=oof)
    taught = Applicability(**kwargs).fit(
        X, y, folds=folds, oof_proba=oof, outages=[(np.array([0]), blind)]
    )
    pixels = np.array([[1.0, 0.2, 0.1], [np.nan, 0.2, 0.1]])  # the second lacks group 0
    sure = np.array([[0.05, 0.95], [0.05, 0.95]])
    complete, lacking = taught.transform(pixels, sure)[2]
    assert lacking < complete - 0.25  # about the half it got right, not the complete 0.9
    assert lacking < 0.7
    assert "missing_importance" in taught.calibration_.inputs_
    assert plain.transform(pixels, sure)[2][1] > 0.85  # nothing lacked it: no cost learnt
    assert taught.describe()["calibration"]["simulated_outages"] == 1
    held_out = (np.argmax(oof, axis=1) == y).mean()
    assert taught.describe()["calibration"]["held_out_accuracy"] == pytest.approx(held_out)


def test_a_class_held_out_whole_is_not_counted_as_tested():
    """A small polygon's 40 pixels in one block: the fold's model never saw the unit, so its
    held-out predictions say nothing of how often the unit is mapped right."""
    X, y, folds, oof = _scene_like()
    X = np.vstack([X, np.random.default_rng(0).normal(3, 0.1, (40, 3))])
    y, folds = np.r_[y, np.full(40, 2)], np.r_[folds, np.zeros(40, int)]
    oof = np.vstack([np.column_stack([oof, np.zeros(len(oof))]), np.tile([0.5, 0.5, 0], (40, 1))])
    app = Applicability().fit(X, y, folds=folds, oof_proba=oof)
    assert app.class_counts_.tolist() == [*np.bincount(y[:300]).tolist(), 40]
    assert app.class_tested_.tolist() == [*np.bincount(y[:300]).tolist(), 0]
    folds[-12:] = 1  # over a quarter of it in another fold: both parts test it
    weight = np.r_[np.ones(300), np.full(40, 0.1)]  # a polygon's pixels share its worth
    app = Applicability().fit(X, y, folds=folds, oof_proba=oof, sample_weight=weight)
    assert app.class_tested_[2] == pytest.approx(4.0)
    oof[-12:] = np.nan  # no held-out prediction for those: they tested nothing
    app = Applicability().fit(X, y, folds=folds, oof_proba=oof, sample_weight=weight)
    assert app.class_tested_[2] == pytest.approx(2.8)
