import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from geomap.errors import ModelError
from geomap.models import LithologyForest


@parametrize_with_checks(
    [LithologyForest(n_estimators=5, random_state=0, n_jobs=1)],
    expected_failed_checks=lambda _: {
        "check_sample_weight_equivalence_on_dense_data": "as for scikit-learn's own forests, a "
        "bootstrap draws samples, so a weight is not the same as repeating the sample",
    },
)
def test_scikit_learn_contract(estimator, check):
    check(estimator)


def _data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    a = y[:, None] + rng.normal(0, 0.3, (n, 2))  # group 0 separates the classes
    b = y[:, None] * 0.8 + rng.normal(0, 0.3, (n, 2))  # so does group 1
    return np.hstack([a, b]).astype("float32"), y


def test_pixels_missing_a_group_are_predicted_by_a_fallback():
    X, y = _data()
    X[:40, :2] = np.nan  # a cloud over some training samples in source 0
    model = LithologyForest(n_estimators=30, feature_groups=[0, 0, 1, 1], random_state=0).fit(X, y)
    test, y_test = _data(200, seed=1)
    test[:, :2] = np.nan
    proba = model.predict_proba(test)
    assert np.isfinite(proba).all()
    assert (model.predict(test) == y_test).mean() > 0.8
    assert list(model.fallbacks_) == ["1"]
    test[:5] = np.nan
    proba = model.predict_proba(test)
    assert np.isnan(proba[:5]).all() and np.isfinite(proba[5:]).all()
    with pytest.raises(ModelError, match="no finite feature"):
        model.predict(test)


def test_fallback_is_deterministic():
    X, y = _data()
    test, _ = _data(50, seed=2)
    test[:, 2:] = np.nan
    p1 = LithologyForest(n_estimators=10, feature_groups=[0, 0, 1, 1], random_state=3).fit(X, y)
    p2 = LithologyForest(n_estimators=10, feature_groups=[0, 0, 1, 1], random_state=3).fit(X, y)
    np.testing.assert_array_equal(p1.predict_proba(test), p2.predict_proba(test))


def test_single_class_is_refused():
    X, _ = _data(20)
    with pytest.raises(ModelError, match="got 1 class"):
        LithologyForest(n_estimators=3).fit(X, np.zeros(20, int))


def test_feature_groups_must_match_features():
    X, y = _data(20)
    with pytest.raises(ModelError, match="one group per feature"):
        LithologyForest(n_estimators=3, feature_groups=[0, 1]).fit(X, y)


def test_a_class_seen_only_under_a_cloud_keeps_its_column():
    X, y = _data()
    y[:20] = 3  # a fourth class observed only where group 0 has no data
    X[:20, :2] = np.nan
    model = LithologyForest(n_estimators=10, feature_groups=[0, 0, 1, 1], random_state=0).fit(X, y)
    assert list(model.classes_) == [0, 1, 2, 3] and list(model.forest_.classes_) == [0, 1, 2]
    test, _ = _data(30, seed=4)
    proba = model.predict_proba(test)
    assert proba.shape == (30, 4) and (proba[:, 3] == 0).all()


@pytest.mark.parametrize(
    "options",
    [{}, {"max_leaf_nodes": 12}, {"class_weight": "balanced", "min_samples_leaf": 3}],
    ids=["grown", "best-first", "weighted"],
)
@pytest.mark.parametrize("gaps_in_training", [False, True])
def test_the_compiled_walk_gives_scikit_learns_probabilities(options, gaps_in_training):
    """Missing values at a node that saw some in training take its learnt side (or split from the
    rest, at an infinite threshold), else the larger child's; values equal to a threshold go
    left; a leaf's weights are normalised."""
    from sklearn.ensemble import RandomForestClassifier

    from geomap.kernels import forest_proba

    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 6)).astype("float32")
    y = (X[:, 0] > 0).astype(int) + 2 * (X[:, 1] + X[:, 2] > 0.5) + (X[:, 3] > 1.2)
    if gaps_in_training:
        X[rng.random(X.shape) < 0.15] = np.nan
    forest = RandomForestClassifier(40, random_state=0, n_jobs=2, **options).fit(X, y)
    test = rng.normal(size=(3000, 6)).astype("float32")
    test[rng.random(test.shape) < 0.2] = np.nan
    nodes = forest.estimators_[0].tree_
    split = np.flatnonzero((nodes.children_left != -1) & np.isfinite(nodes.threshold))[:5]
    test[:5, nodes.feature[split]] = np.float32(nodes.threshold[split])  # exactly on a threshold
    test[5] = np.nan
    np.testing.assert_allclose(forest_proba(forest, test), forest.predict_proba(test), atol=1e-13)
    np.testing.assert_allclose(forest_proba(forest, test[:3]), forest.predict_proba(test[:3]))
    assert forest_proba(forest, test[:0]).shape == (0, forest.n_classes_)
    whole = test[~np.isnan(test).any(axis=1)]  # told there is no NaN: walked without the test
    assert len(whole) > 100
    np.testing.assert_allclose(
        forest_proba(forest, whole, complete=True), forest.predict_proba(whole), atol=1e-13
    )


def test_thresholds_are_rounded_down_to_float32_so_float32_values_split_alike():
    from geomap.kernels import _round_down_float32

    t = np.array([0.1, 1 / 3, 3.5, 1e39, -1e39, np.inf, -np.inf, 2.0**-149 / 3])
    down = _round_down_float32(t)
    assert down.dtype == np.float32
    assert (down.astype(np.float64) <= t).all()
    with np.errstate(over="ignore"):  # the next float32 is above the threshold (or infinite)
        up = np.nextafter(down[:5], np.float32(np.inf))
    assert (up.astype(np.float64) > t[:5]).all()
    assert down[2] == 3.5 and down[3] == np.finfo(np.float32).max and down[5] == np.inf


def test_the_compiled_walk_is_the_same_on_any_number_of_threads_and_follows_a_refit():
    from sklearn.ensemble import RandomForestClassifier

    from geomap.kernels import forest_proba

    X, y = _data()
    forest = RandomForestClassifier(30, random_state=0, n_jobs=2).fit(X, y)
    many = np.vstack([X] * 10)
    two = forest_proba(forest, many)
    forest.n_jobs = 1
    np.testing.assert_array_equal(forest_proba(forest, many), two)
    forest.fit(X, (y + 1) % 3)  # the same forest object, new trees: not the old tables
    np.testing.assert_allclose(forest_proba(forest, X), forest.predict_proba(X), atol=1e-13)


def test_trees_of_many_classes_are_capped_so_a_forest_stays_small():
    """100 classes that the features cannot tell apart: unbounded trees grow a leaf per sample."""
    from geomap.models.forest import FOREST_BYTES, leaf_cap

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(100), 40)
    X = rng.normal(size=(len(y), 5)).astype("float32")
    model = LithologyForest(n_estimators=20, random_state=0).fit(X, y)
    cap = leaf_cap(len(y), 100, 20)
    assert cap is not None and cap < len(y)
    trees = [t.tree_ for t in model.forest_.estimators_]
    assert max(t.n_leaves for t in trees) <= cap
    node_bytes = sum(t.value.nbytes + t.node_count * 64 for t in trees)
    assert node_bytes <= FOREST_BYTES
    uncapped = sum(t.tree_.n_leaves for t in LithologyForest(n_estimators=1).fit(X, y).forest_)
    assert uncapped > cap  # the cap did bind here
    assert leaf_cap(300, 6, 200) is None  # a few hundred field points: trees grow as usual


def test_seventy_input_groups_keep_their_fallbacks_and_applicability():
    """Beyond 62 groups the groups' bit masks outgrow int64 (four S2 dates as single files)."""
    from geomap.applicability import Applicability
    from geomap.kernels import group_bits

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    X = (y[:, None] + rng.normal(0, 0.5, (400, 70))).astype("float32")
    groups = np.arange(70)
    bits = group_bits(X[:2], groups)
    assert bits[0] == (1 << 70) - 1
    X[:40, 65] = np.nan  # some samples lack group 65
    assert group_bits(X[:1], groups)[0] == (1 << 70) - 1 - (1 << 65)
    model = LithologyForest(n_estimators=10, feature_groups=groups, random_state=0).fit(X, y)
    test = X[200:260].copy()
    test[:, 65] = np.nan
    proba = model.predict_proba(test)
    assert np.isfinite(proba).all() and list(model.fallbacks_) == [
        ",".join(str(g) for g in groups if g != 65)
    ]
    app = Applicability(feature_groups=groups).fit(
        X, y, folds=np.arange(400) % 4, oof_proba=np.full((400, 3), 1 / 3)
    )
    di, threshold, missing = app.dissimilarity(np.vstack([X[200:230], test[:30]]))
    assert np.isfinite(di).all() and np.isfinite(threshold).all()
    assert (missing[:30] == 0).all() and (missing[30:] > 0).all()


def test_each_tree_draws_at_most_max_samples_and_fallbacks_too():
    """Tens of thousands of samples made every forest of a run and its cross-validation slow:
    30,000 observations took 16 minutes to cross-validate."""
    X, y = _data(200)
    X[:40, :2] = np.nan  # a cloud: a fallback forest on the 160 samples with both groups
    model = LithologyForest(
        n_estimators=5, max_samples=100, feature_groups=[0, 0, 1, 1], random_state=0
    ).fit(X, y)
    assert model.forest_.max_samples == 100
    model.predict_proba(X[:50])  # fits the fallback without group 0
    (fallback,) = model.fallbacks_.values()
    assert fallback.max_samples == 100  # 200 samples with group 1
    few = LithologyForest(n_estimators=5, max_samples=500, random_state=0).fit(X[40:], y[40:])
    assert few.forest_.max_samples is None  # no more samples than the cap: a plain bootstrap


def test_sample_weights_count_in_every_forest_and_classes_stay_balanced():
    """A sliver polygon's 200 pixels labelled 'a' where ten 'b' points lie: counted pixel for
    pixel they make the place 'a'; sharing one observation's worth, the points win."""
    rng = np.random.default_rng(0)
    a = rng.normal(0, 0.3, (10, 4))
    b = rng.normal(10, 0.3, (10, 4))
    sliver = rng.normal(10, 0.3, (200, 4))
    X = np.vstack([a, b, sliver]).astype("float32")
    y = np.array([0] * 10 + [1] * 10 + [0] * 200)
    weight = np.r_[np.ones(20), np.full(200, 1 / 200)]
    probe = rng.normal(10, 0.3, (50, 4)).astype("float32")
    kwargs = {"n_estimators": 30, "feature_groups": [0, 0, 1, 1], "random_state": 0}
    plain = LithologyForest(**kwargs).fit(X, y)
    weighted = LithologyForest(**kwargs).fit(X, y, sample_weight=weight)
    assert (plain.predict(probe) == 0).mean() > 0.9
    assert (weighted.predict(probe) == 1).mean() > 0.5
    probe[:, :2] = np.nan  # a fallback forest, trained on first need, weighs them too
    assert (weighted.predict(probe) == 1).mean() > 0.5 and list(weighted.fallbacks_) == ["1"]
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_weight`"):
        LithologyForest(n_estimators=3).fit(X, y, sample_weight=-weight)


def test_named_features_give_the_same_forest_in_any_column_order():
    """Grown over the columns as given, the same rasters in another order made another forest
    (1.5% of the demo's pixels changed); with names, the probabilities are the same to the bit,
    the fallback forests' too, and so are the importances (to rounding: they are normalised by
    their sum), in the order of the columns given."""
    X, y = _data()
    X[:40, :2] = np.nan
    names, groups = ["red", "nir", "K", "Th"], [0, 0, 1, 1]
    test, _ = _data(200, seed=1)
    test[:60, :2] = np.nan  # mapped by the fallback without group 0
    swap = [2, 3, 1, 0]  # the radiometrics first, the satellite's bands swapped
    fitted = {}
    for named in (True, False):
        for order in ([0, 1, 2, 3], swap):
            model = LithologyForest(
                n_estimators=20,
                feature_groups=[groups[i] for i in order],
                feature_names=[names[i] for i in order] if named else None,
                random_state=0,
            ).fit(X[:, order], y)
            back = np.argsort(order)  # the columns of the order given, in the first order
            fitted[named, tuple(order)] = (
                model.predict_proba(test[:, order]),
                model.feature_importances_[back],
            )
    for named in (True, False):
        first, swapped = fitted[named, (0, 1, 2, 3)], fitted[named, tuple(swap)]
        same = np.array_equal(first[0], swapped[0]) and np.allclose(first[1], swapped[1])
        assert same is named  # without names, the order given makes another forest
    model = LithologyForest(n_estimators=20, feature_names=names, random_state=0).fit(
        X[40:], y[40:]
    )
    assert np.array_equal(model.predict_proba(test[60:]), model.forest_.predict_proba(test[60:]))
    with pytest.raises(ModelError, match="one name per feature"):
        LithologyForest(n_estimators=3, feature_names=names[:3]).fit(X, y)
