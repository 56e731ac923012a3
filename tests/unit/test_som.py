"""SOM estimators: scikit-learn contract, BMU search, node labelling, clustering, novelty."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import normalized_mutual_info_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from geomap.errors import ModelError
from geomap.export import load_model, save_model
from geomap.kernels import nearest_rows
from geomap.models import SelfOrganizingMap, SOMClassifier, SOMClusters
from geomap.models.som import default_shape, label_nodes

FAST = {"n_iterations": 300, "random_state": 0}


@parametrize_with_checks(
    [
        SelfOrganizingMap(**FAST),
        SOMClassifier(som=SelfOrganizingMap(**FAST)),
        SOMClusters(som=SelfOrganizingMap(**FAST), max_clusters=4, random_state=0),
    ],
    expected_failed_checks=lambda est: (
        {
            "check_classifiers_classes": "y == -1 marks unlabelled rows (scikit-learn's "
            "semi-supervised convention), so -1 cannot be a class",
            "check_sample_weight_equivalence_on_dense_data": "a weight counts in the vote of "
            "the sample's node, while the map itself learns every row once, so a repeated row "
            "pulls the map's nodes where a weighed one does not",
        }
        if isinstance(est, SOMClassifier)
        else {}
    ),
)
def test_scikit_learn_contract(estimator, check):
    check(estimator)


def _blobs(n=900, seed=0, k=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centres = np.array([[0, 0, 0], [4, 0, 2], [0, 4, -2], [4, 4, 4]])[:k]
    return (centres[y] + rng.normal(0, 0.4, (n, 3))).astype("float32"), y


def _brute(Z, W):
    d = np.sqrt(((Z[:, None, :] - W[None]) ** 2).sum(-1))
    return d.argmin(1), d.min(1)


def test_bmu_search_matches_brute_force_whatever_the_chunk():
    rng = np.random.default_rng(1)
    Z, W = rng.normal(size=(500, 6)).astype("float32"), rng.normal(size=(37, 6)).astype("float32")
    bmu, dist = nearest_rows(Z, W)
    ref_bmu, ref_dist = _brute(Z, W)
    np.testing.assert_array_equal(bmu, ref_bmu)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4, atol=1e-5)
    small = nearest_rows(Z, W, block_elements=37 * 7)  # chunks of 7 rows
    np.testing.assert_array_equal(small[0], bmu)
    np.testing.assert_array_equal(small[1], dist)


def test_rows_missing_features_are_matched_over_the_features_they_have():
    rng = np.random.default_rng(2)
    Z, W = rng.normal(size=(200, 4)).astype("float32"), rng.normal(size=(20, 4)).astype("float32")
    Z[:50, 1] = np.nan
    Z[50] = np.nan
    bmu, dist = nearest_rows(Z, W)
    ref_bmu, ref_dist = _brute(Z[:50][:, [0, 2, 3]], W[:, [0, 2, 3]])
    np.testing.assert_array_equal(bmu[:50], ref_bmu)
    np.testing.assert_allclose(dist[:50], ref_dist * np.sqrt(4 / 3), rtol=1e-4)
    assert bmu[50] == -1 and np.isnan(dist[50])
    np.testing.assert_array_equal(bmu[51:], _brute(Z[51:], W)[0])


def test_training_sizes_the_map_from_the_data_and_is_reproducible():
    X, _ = _blobs()
    som = SelfOrganizingMap(random_state=0).fit(X)
    rows, cols = som.shape_
    assert abs(rows * cols - 5 * np.sqrt(len(X))) <= max(rows, cols)
    assert som.hits_.sum() == len(X) and som.codebook_.shape == (rows * cols, 3)
    again = SelfOrganizingMap(random_state=0).fit(X)
    np.testing.assert_array_equal(som.codebook_, again.codebook_)
    # a trained map is much closer to the data than the spread of the data
    assert som.quantization_error_ < 0.5 * np.linalg.norm(som.standardise(X), axis=1).mean()
    assert default_shape(X[:10]) == (2, 2)  # never more nodes than half the samples


def test_quantization_error_percentiles_follow_the_training_distribution():
    X, _ = _blobs()
    som = SelfOrganizingMap(**FAST).fit(X)
    _, dist = som.bmu(X)
    pct = som.qe_percentile(dist)
    assert abs(np.median(pct) - 50) < 2
    far = som.qe_percentile(som.bmu(np.full((1, 3), 50, "float32"))[1])
    assert far[0] == 100
    assert np.isnan(som.qe_percentile(np.array([np.nan], "float32")))[0]


def test_a_som_larger_than_its_sample_is_refused():
    X, _ = _blobs(n=30)
    with pytest.raises(ModelError, match="10 x 10 = 100 nodes is larger than its training sample"):
        SelfOrganizingMap(shape=(10, 10)).fit(X)


def test_node_labelling_on_a_hand_made_codebook():
    codebook = np.array([[0.0], [1.0], [2.0], [10.0]])
    counts = np.array([[3, 1], [0, 0], [0, 2], [0, 0]])
    proba, distance = label_nodes(codebook, counts, bandwidth=1.0)
    np.testing.assert_allclose(proba[0], [0.75, 0.25])
    np.testing.assert_allclose(proba[2], [0, 1])
    # node 1 lies halfway: weights exp(0) for both labelled nodes
    np.testing.assert_allclose(proba[1], [0.375, 0.625])
    # node 3 is far from node 0 and 8 from node 2: it takes node 2's class
    np.testing.assert_allclose(proba[3], [0, 1], atol=1e-7)
    np.testing.assert_allclose(distance, [0, 1, 0, 8])


def test_semi_supervised_classifier_labels_nodes_and_flags_unobserved_units():
    X, y = _blobs(k=4)
    rng = np.random.default_rng(3)
    partial = np.where(rng.random(len(y)) < 0.05, y, -1)
    partial[y == 3] = -1  # unit 3 was never observed
    clf = SOMClassifier(som=SelfOrganizingMap(**FAST)).fit(X, partial)
    assert list(clf.classes_) == [0, 1, 2]
    observed = y < 3
    assert (clf.predict(X[observed]) == y[observed]).mean() > 0.95
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1, atol=1e-6)
    distance = clf.label_distance(X)
    assert np.median(distance[y == 3]) > 3 * np.median(distance[observed]) + 0.1


def test_sample_weights_decide_a_nodes_vote_and_counts_stay_samples():
    """Three samples of unit 0 and one of unit 1 on one pixel's node: weighed 1 against 6,
    unit 1 wins the node, as a legacy map's large unit drawn as sparsely as a small one should."""
    X, _ = _blobs(k=2)
    som = FrozenEstimator(SelfOrganizingMap(**FAST).fit(X))
    X_obs, y_obs = X[[0, 0, 0, 0]], np.array([0, 0, 0, 1])
    plain = SOMClassifier(som=som).fit(X_obs, y_obs)
    weighed = SOMClassifier(som=som).fit(X_obs, y_obs, sample_weight=[1, 1, 1, 6])
    node = plain.som_.bmu(X_obs[:1])[0][0]
    np.testing.assert_allclose(plain.node_proba_[node], [0.75, 0.25])
    np.testing.assert_allclose(weighed.node_proba_[node], [1 / 3, 2 / 3])
    assert (weighed.node_counts_ == plain.node_counts_).all()


def test_a_frozen_map_is_relabelled_not_retrained_by_clone():
    X, y = _blobs()
    som = SelfOrganizingMap(**FAST).fit(X)
    clf = clone(SOMClassifier(som=FrozenEstimator(som))).fit(X[:100], y[:100])
    assert clf.som_ is som
    with pytest.raises(ModelError, match="at least two classes; got 1 class"):
        SOMClassifier(som=FrozenEstimator(som)).fit(X[:5], np.zeros(5, int))


def test_clusters_recover_separated_units_and_are_numbered_by_size():
    X, y = _blobs(k=4)
    model = SOMClusters(som=SelfOrganizingMap(**FAST), random_state=0).fit(X)
    assert model.n_clusters_ == 4
    assert normalized_mutual_info_score(y, model.labels_) > 0.95
    assert (np.diff(model.cluster_hits_) <= 0).all()
    assert set(model.scores_) == set(range(2, 13))
    profile = model.cluster_profile_[model.labels_[0]]
    np.testing.assert_allclose(profile, X[model.labels_ == model.labels_[0]].mean(0), rtol=1e-5)
    agglomerative = SOMClusters(
        som=FrozenEstimator(model.som_), n_clusters=4, method="agglomerative"
    )
    assert normalized_mutual_info_score(y, agglomerative.fit(X).labels_) > 0.8


def test_bad_clustering_options_are_refused():
    X, _ = _blobs(n=200)
    som = SelfOrganizingMap(shape=(3, 3), **FAST).fit(X)
    with pytest.raises(ModelError, match="--clusters 20 does not fit a SOM of 9 nodes"):
        SOMClusters(som=FrozenEstimator(som), n_clusters=20).fit(X)
    with pytest.raises(ModelError, match="Available: kmeans, agglomerative"):
        SOMClusters(som=FrozenEstimator(som), method="dbscan").fit(X)


def test_rows_without_data_get_no_cluster_or_class():
    X, y = _blobs()
    clusters = SOMClusters(som=SelfOrganizingMap(**FAST), n_clusters=3).fit(X)
    clf = SOMClassifier(som=FrozenEstimator(clusters.som_)).fit(X, y)
    gap = X[:3].copy()
    gap[0] = np.nan
    gap[1, 0] = np.nan
    assert clusters.predict(gap)[0] == -1 and clusters.predict(gap)[1] >= 0
    proba = clf.predict_proba(gap)
    assert np.isnan(proba[0]).all() and np.isfinite(proba[1:]).all()
    with pytest.raises(ModelError, match="no finite feature"):
        clf.predict(gap)


def test_models_round_trip_through_a_bundle(tmp_path):
    X, y = _blobs()
    clusters = SOMClusters(som=SelfOrganizingMap(**FAST), n_clusters=3).fit(X)
    clf = SOMClassifier(som=FrozenEstimator(clusters.som_)).fit(X, y)
    save_model(tmp_path / "m.skops", {"format": "geomap-model", "a": clf, "b": clusters})
    back = load_model(tmp_path / "m.skops")
    np.testing.assert_array_equal(back["a"].predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back["b"].predict(X), clusters.predict(X))


def test_the_hit_map_draws_empty_nodes_apart_from_nodes_of_one_hit(tmp_path):
    """Empty nodes were white, and a node of one hit the palest yellow beside them (user pass)."""
    from PIL import Image

    from geomap.som_plots import EMPTY_NODE, plot_hit_map

    X, _ = _blobs(n=300, k=3)
    som = SelfOrganizingMap(shape=(12, 12), **FAST)
    clusters = SOMClusters(som=som, n_clusters=3, random_state=0).fit(X)
    hits = clusters.som_.hits_
    assert (hits == 0).any() and (hits == 1).any()
    png = np.asarray(Image.open(plot_hit_map(clusters, tmp_path / "hits.png", "t")).convert("RGB"))
    grey = tuple(int(EMPTY_NODE[i : i + 2], 16) for i in (1, 3, 5))
    assert (png == grey).all(axis=-1).sum() > 100  # the empty nodes' cells


def test_the_component_planes_say_which_features_they_show():
    """'(30 of 113 features)' did not say how the 30 were picked (user pass)."""
    from geomap.som_plots import plane_order, planes_title

    names = ["red", "red_mean3", "red_std3", "K/Th", "elevation_slope"] * 10
    order = plane_order(names)  # 30 planes: the 30 bands, ratios and terrain of the 50
    assert len(order) == 30 and not any("_mean" in names[i] or "_std" in names[i] for i in order)
    assert planes_title("SOM", 30, 113) == (
        "SOM: component planes, codebook values in feature units (30 of 113 features: the "
        "bands, ratios and terrain first, then focal statistics); clusters outlined as on the "
        "U-matrix"
    )
    assert planes_title("SOM", 12, 12) == (
        "SOM: component planes, codebook values in feature units; clusters outlined as on the "
        "U-matrix"
    )
