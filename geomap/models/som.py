"""Self-organizing maps: the structure the data hold, labels from a few examples, and novelty.

:class:`SelfOrganizingMap` trains a SOM (Kohonen) with minisom on standardised features and assigns
each pixel to its best matching unit (BMU) with a chunked matrix search. :class:`SOMClusters`
(in :mod:`geomap.models.som_clusters`) groups the codebook into unsupervised map units;
:class:`SOMClassifier` labels the nodes from the observations that land on them and gives
unlabelled nodes the classes of nearby labelled nodes (semi-supervised). Quantization error
(distance of a pixel to its BMU) and label distance (codebook distance from its BMU to the nearest
labelled node) flag pixels unlike anything trained on or observed.

A fitted map is reused, not retrained, when it is passed wrapped in
:class:`sklearn.frozen.FrozenEstimator`: cross-validation then re-labels the same map on each fold.
"""

from __future__ import annotations

import numpy as np
from minisom import MiniSom
from scipy.spatial.distance import cdist
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from geomap.errors import ModelError
from geomap.kernels import nearest_rows
from geomap.models.base import MostProbableMixin

_QUANTILES = np.linspace(0, 100, 1001)


def default_shape(X: np.ndarray) -> tuple[int, int]:
    """Rows and columns of a SOM for the data: about 5 sqrt(N) nodes, shaped by the data.

    The side ratio is the square root of the ratio of the two largest principal variances (as in
    the SOM Toolbox), at most 3; the node count is at most half the samples.
    """
    n = len(X)
    nodes = int(min(round(5 * np.sqrt(n)), n // 2))
    ratio = 1.0
    if X.shape[1] > 1 and n > 2:
        var = np.sort(np.linalg.eigvalsh(np.cov(X, rowvar=False)))[::-1]
        ratio = float(np.clip(np.sqrt(var[0] / max(var[1], 1e-12)), 1.0, 3.0))
    rows = max(2, int(round(np.sqrt(nodes / ratio))))
    return rows, max(2, int(round(nodes / rows)))


def _unfrozen(som):
    """The fitted map inside a FrozenEstimator, or None if ``som`` is not frozen."""
    inner = getattr(som, "estimator", None)
    return inner if isinstance(inner, SelfOrganizingMap) else None


class SelfOrganizingMap(TransformerMixin, BaseEstimator):
    """A self-organizing map trained with minisom on standardised features.

    Parameters
    ----------
    shape : (int, int), optional
        Rows and columns of nodes. Default: :func:`default_shape` of the training sample.
    n_iterations : int, optional
        Training updates (one sample each). Default: 20 per node, at least 2000.
    sigma : float, optional
        Initial neighbourhood radius in nodes, decreasing linearly to 1. Default: a quarter of the
        longer side, at least 1.5.
    learning_rate : float, default=0.5
        Initial learning rate, decreasing linearly to 0.
    max_samples : int, default=100000
        Most rows trained on; a larger input is subsampled at random.
    random_state : int, optional
        Seed of the subsample and of the training order.

    Attributes
    ----------
    mean_, scale_ : ndarray (n_features,)
        Standardisation of the features.
    codebook_ : ndarray (n_nodes, n_features)
        Node vectors in standardised units, node ``i`` at row ``i // cols``, column ``i % cols``.
    shape_ : (int, int)
        Rows and columns of nodes.
    hits_ : ndarray (n_nodes,)
        Training samples whose BMU is each node.
    quantization_error_ : float
        Mean distance of the training samples to their BMU.
    qe_quantiles_ : ndarray (1001,)
        Quantiles 0, 0.1, ..., 100 % of the training distances, for percentiles.
    n_train_ : int
        Rows trained on.
    n_iterations_, sigma_ : int, float
        Training updates and initial neighbourhood radius used.
    """

    def __init__(
        self,
        shape: tuple[int, int] | None = None,
        n_iterations: int | None = None,
        sigma: float | None = None,
        learning_rate: float = 0.5,
        max_samples: int = 100_000,
        random_state: int | None = None,
    ) -> None:
        self.shape = shape
        self.n_iterations = n_iterations
        self.sigma = sigma
        self.learning_rate = learning_rate
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X, y=None) -> SelfOrganizingMap:
        """Standardise and train on the rows of ``X`` that have every feature.

        Raises
        ------
        ModelError
            If fewer than 4 rows are complete or the map has more nodes than the sample rows.
        """
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype="float32")
        X = X[np.isfinite(X).all(axis=1)]
        rng = np.random.default_rng(self.random_state)
        if len(X) > self.max_samples:
            X = X[np.sort(rng.choice(len(X), self.max_samples, replace=False))]
        if len(X) < 4:
            raise ModelError(
                "A self-organizing map needs at least 4 pixels with every feature; got "
                f"{len(X)} sample(s). "
                "Check the rasters' nodata values or give rasters that overlap more."
            )
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1).astype("float32")
        Z = self.standardise(X)
        rows, cols = self._check_shape(Z)
        self.shape_ = (rows, cols)
        iterations = self.n_iterations or max(2000, 20 * rows * cols)
        sigma = self.sigma if self.sigma is not None else max(1.5, max(rows, cols) / 4)
        self.n_iterations_, self.sigma_ = int(iterations), float(min(sigma, max(rows, cols)))
        self.codebook_ = self._train(Z, rows, cols, rng)
        bmu, dist = nearest_rows(Z, self.codebook_)
        self.hits_ = np.bincount(bmu, minlength=rows * cols)
        self.quantization_error_ = float(dist.mean())
        self.qe_quantiles_ = np.percentile(dist, _QUANTILES).astype("float32")
        self.n_train_ = len(Z)
        return self

    def _check_shape(self, Z: np.ndarray) -> tuple[int, int]:
        if self.shape is None:
            return default_shape(Z)
        rows, cols = (int(v) for v in self.shape)
        if rows < 1 or cols < 1 or rows * cols < 2:
            raise ModelError(f"SOM shape has to be at least 1 x 2 nodes; got {rows} x {cols}.")
        if rows * cols > len(Z):
            raise ModelError(
                f"The SOM of {rows} x {cols} = {rows * cols} nodes is larger than its training "
                f"sample of {len(Z)} pixels with every feature; give a smaller --som-size (at most "
                f"{len(Z)} nodes) or leave it out to size the map from the data."
            )
        return rows, cols

    def _train(self, Z, rows, cols, rng) -> np.ndarray:
        som = MiniSom(
            rows,
            cols,
            Z.shape[1],
            sigma=self.sigma_,
            learning_rate=float(self.learning_rate),
            decay_function="linear_decay_to_zero",
            sigma_decay_function="linear_decay_to_one",
            random_seed=int(rng.integers(2**31 - 1)),
        )
        if Z.shape[1] > 1 and min(rows, cols) > 1:
            som.pca_weights_init(Z)
        else:
            som.random_weights_init(Z)
        som.train(Z, self.n_iterations_, random_order=True)
        return som.get_weights().reshape(rows * cols, Z.shape[1]).astype("float32")

    def standardise(self, X, copy: bool = True) -> np.ndarray:
        """Features in the map's standardised units (NaN kept); in place if not ``copy``."""
        check_is_fitted(self)
        if copy:
            Z = np.subtract(X, self.mean_, dtype="float32")  # one copy, divided in place
        else:
            Z = np.subtract(X, self.mean_, out=X)
        Z /= self.scale_
        return Z

    def bmu(self, X, copy: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """BMU and quantization error of each row; see :func:`geomap.kernels.nearest_rows`.

        With ``copy=False`` a float32 ``X`` is standardised in place (a streamed window's
        features, not needed afterwards), which saves a copy of the window.
        """
        check_is_fitted(self)
        X = validate_data(
            self, X, reset=False, ensure_all_finite="allow-nan", dtype="float32", copy=False
        )
        return nearest_rows(self.standardise(X, copy=copy), self.codebook_)

    def qe_percentile(self, distance: np.ndarray) -> np.ndarray:
        """Percentile (0-100) of distances within the training distribution; NaN kept."""
        check_is_fitted(self)
        out = np.interp(distance, self.qe_quantiles_, _QUANTILES).astype("float32")
        out[np.isnan(distance)] = np.nan
        return out

    def transform(self, X) -> np.ndarray:
        """Distance of each row to every node, (n, n_nodes), over the features it has."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype="float32")
        Z = self.standardise(X)
        finite = np.isfinite(Z)
        Z0 = np.where(finite, Z, 0)
        W = self.codebook_
        sq = (Z0 * Z0).sum(1)[:, None] - 2 * Z0 @ W.T + finite.astype("float32") @ (W * W).T
        with np.errstate(divide="ignore", invalid="ignore"):
            sq *= (W.shape[1] / finite.sum(axis=1))[:, None]
        return np.sqrt(np.maximum(sq, 0)).astype("float32")

    def u_matrix(self) -> np.ndarray:
        """Mean codebook distance of each node to its 4 grid neighbours, (rows, cols)."""
        check_is_fitted(self)
        rows, cols = self.shape_
        W = self.codebook_.reshape(rows, cols, -1)
        total, count = np.zeros((rows, cols)), np.zeros((rows, cols))
        for axis in (0, 1):
            d = np.linalg.norm(np.diff(W, axis=axis), axis=-1)
            lead = [slice(None), slice(None)]
            lead[axis] = slice(1, None)
            trail = [slice(None), slice(None)]
            trail[axis] = slice(None, -1)
            total[tuple(lead)] += d
            total[tuple(trail)] += d
            count[tuple(lead)] += 1
            count[tuple(trail)] += 1
        return total / np.maximum(count, 1)

    def node_spacing(self) -> float:
        """Median codebook distance between grid neighbours: the map's local scale."""
        check_is_fitted(self)
        rows, cols = self.shape_
        W = self.codebook_.reshape(rows, cols, -1)
        d = [np.linalg.norm(np.diff(W, axis=a), axis=-1).ravel() for a in (0, 1)]
        d = np.concatenate(d)
        return float(np.median(d[d > 0])) if (d > 0).any() else 1.0

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = []  # float32 whatever comes in
        return tags


def fitted_som(som, X) -> SelfOrganizingMap:
    """The map to use: the fitted one inside a FrozenEstimator, or a clone fitted on ``X``."""
    frozen = _unfrozen(som)
    if frozen is not None:
        check_is_fitted(frozen)
        return frozen
    return clone(som if som is not None else SelfOrganizingMap()).fit(X)


class SOMClassifier(MostProbableMixin, ClassifierMixin, TransformerMixin, BaseEstimator):
    """Semi-supervised classifier: SOM nodes labelled from the observations that land on them.

    A node hit by labelled samples takes their class frequencies. A node with none takes the
    class probabilities of the labelled nodes weighted by ``exp(-(d^2 - d_min^2) / (2 h^2))``,
    with ``d`` their codebook distance and ``d_min`` that of the nearest one, so labels spread
    about ``h`` into unobserved parts of the map.

    Parameters
    ----------
    som : SelfOrganizingMap or FrozenEstimator, optional
        The map: cloned and fitted on every row of ``X`` (labelled or not), or, wrapped in
        ``FrozenEstimator``, used as fitted. Default: ``SelfOrganizingMap()``.
    bandwidth : float, optional
        ``h``, in standardised feature units. Default: the map's median neighbour spacing.

    Attributes
    ----------
    classes_ : ndarray
        Class labels.
    som_ : SelfOrganizingMap
        The fitted map.
    node_proba_ : ndarray (n_nodes, n_classes)
        Class probabilities of each node.
    node_counts_ : ndarray (n_nodes, n_classes)
        Labelled samples of each class whose BMU is the node.
    label_distance_ : ndarray (n_nodes,)
        Codebook distance from each node to the nearest labelled node (0 for labelled nodes).
    bandwidth_ : float
        ``h`` used.
    """

    def __init__(self, som=None, bandwidth: float | None = None) -> None:
        self.som = som
        self.bandwidth = bandwidth

    def fit(self, X, y, sample_weight=None) -> SOMClassifier:
        """Fit the map (unless frozen) on all rows, then label its nodes from rows with ``y != -1``.

        ``y == -1`` marks unlabelled rows, as in scikit-learn's semi-supervised estimators.
        ``sample_weight`` (default 1 each) is what each labelled row weighs in its node's vote
        (see :func:`geomap.placement.vote_weights`).

        Raises
        ------
        ModelError
            If fewer than two classes are labelled.
        """
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype="float32")
        check_classification_targets(y)
        weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        labelled = y != -1 if y.dtype.kind in "iuf" else np.ones(len(y), bool)
        self.classes_ = np.unique(y[labelled])
        if len(self.classes_) < 2:
            raise ModelError(
                f"Labelling a SOM needs at least two classes; got {len(self.classes_)} class(es). "
                "Add observations of other rock types."
            )
        self.som_ = fitted_som(self.som, X)
        bmu, _ = self.som_.bmu(X[labelled])
        codes = np.searchsorted(self.classes_, y[labelled])
        n_nodes, n_cls = len(self.som_.codebook_), len(self.classes_)
        keep = bmu >= 0
        cell = bmu[keep] * n_cls + codes[keep]
        counts = np.bincount(cell, minlength=n_nodes * n_cls)
        self.node_counts_ = counts.reshape(n_nodes, n_cls)
        votes = np.bincount(cell, weight[labelled][keep], minlength=n_nodes * n_cls)
        self.bandwidth_ = float(self.bandwidth or self.som_.node_spacing())
        self.node_proba_, self.label_distance_ = label_nodes(
            self.som_.codebook_, votes.reshape(n_nodes, n_cls), self.bandwidth_
        )
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities of each row's BMU; NaN for rows with no finite feature."""
        check_is_fitted(self)
        bmu, _ = self.som_.bmu(X)
        return self.proba_of(bmu)

    def proba_of(self, bmu: np.ndarray) -> np.ndarray:
        """Class probabilities of nodes given by index (-1: NaN)."""
        out = self.node_proba_[np.maximum(bmu, 0)].astype("float32")
        out[bmu < 0] = np.nan
        return out

    def transform(self, X) -> np.ndarray:
        """Distance of each row to every node of the map."""
        check_is_fitted(self)
        return self.som_.transform(X)

    def label_distance(self, X) -> np.ndarray:
        """Codebook distance from each row's BMU to the nearest labelled node (NaN: no data)."""
        check_is_fitted(self)
        bmu, _ = self.som_.bmu(X)
        out = self.label_distance_[np.maximum(bmu, 0)].astype("float32")
        out[bmu < 0] = np.nan
        return out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = []  # float32 whatever comes in
        return tags


def label_nodes(
    codebook: np.ndarray, counts: np.ndarray, bandwidth: float
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities and label distance of every node from per-node class votes.

    ``counts`` (n_nodes, n_classes) are the labelled samples on each node, or their weights.

    Returns
    -------
    proba : ndarray (n_nodes, n_classes)
    label_distance : ndarray (n_nodes,)
    """
    total = counts.sum(axis=1)
    hit = total > 0
    proba = np.zeros(counts.shape)
    proba[hit] = counts[hit] / total[hit, None]
    W = codebook.astype("float64")
    d = cdist(W, W[hit])  # (nodes x labelled nodes); a broadcast difference took 300 MB
    nearest = d.min(axis=1)
    weights = np.exp(-(d**2 - nearest[:, None] ** 2) / (2 * bandwidth**2))
    spread = weights @ proba[hit] / weights.sum(axis=1, keepdims=True)
    proba[~hit] = spread[~hit]
    return proba, np.where(hit, 0.0, nearest)
