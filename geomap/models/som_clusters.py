"""Unsupervised map units: a self-organizing map's codebook grouped into clusters.

Clustering the codebook rather than the pixels (Vesanto and Alhoniemi 2000) is cheap whatever the
scene size, and the number of clusters can be chosen by a score of the codebook partition.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.feature_extraction.image import grid_to_graph
from sklearn.metrics import davies_bouldin_score, silhouette_score
from sklearn.utils.validation import check_is_fitted, validate_data
from threadpoolctl import threadpool_limits

from geomap.errors import ModelError
from geomap.models.som import fitted_som

CLUSTER_METHODS = ("kmeans", "agglomerative")
CRITERIA = ("davies-bouldin", "silhouette")
#: Clusters a class map holds: uint8 codes 0..254, 255 being no data.
MAX_CLUSTERS = 255


class SOMClusters(TransformerMixin, ClusterMixin, BaseEstimator):
    """Unsupervised map units: the SOM's codebook grouped into clusters.

    Parameters
    ----------
    som : SelfOrganizingMap or FrozenEstimator, optional
        As for :class:`SOMClassifier`.
    n_clusters : int, optional
        Clusters. Default: the number in 2..``max_clusters`` with the best ``criterion``.
    method : {"kmeans", "agglomerative"}, default="kmeans"
        k-means on node vectors, or Ward clustering joining only neighbouring nodes.
    criterion : {"davies-bouldin", "silhouette"}, default="davies-bouldin"
        Score of the codebook partition used to choose the number of clusters: the lowest
        Davies-Bouldin index (as Vesanto and Alhoniemi 2000) or the highest silhouette.
    max_clusters : int, default=12
        Most clusters tried.
    random_state : int, optional
        Seed of k-means.

    Attributes
    ----------
    som_ : SelfOrganizingMap
    n_clusters_ : int
    node_cluster_ : ndarray (n_nodes,)
        Cluster of each node, 0..K-1, numbered by decreasing training pixels.
    scores_ : dict
        Criterion of each number of clusters tried.
    cluster_hits_ : ndarray (K,)
        Training rows in each cluster.
    cluster_profile_ : ndarray (K, n_features)
        Mean features of each cluster's training rows, in input units.
    labels_ : ndarray (n,)
        Cluster of each row of ``X`` in ``fit`` (-1: no data).
    """

    def __init__(
        self,
        som=None,
        n_clusters: int | None = None,
        method: str = "kmeans",
        criterion: str = "davies-bouldin",
        max_clusters: int = 12,
        random_state: int | None = None,
    ) -> None:
        self.som = som
        self.n_clusters = n_clusters
        self.method = method
        self.criterion = criterion
        self.max_clusters = max_clusters
        self.random_state = random_state

    def fit(self, X, y=None) -> SOMClusters:
        """Fit the map (unless frozen) and cluster its codebook.

        Raises
        ------
        ModelError
            If the method or criterion is unknown, or ``n_clusters`` exceeds the nodes.
        """
        X = validate_data(self, X, ensure_all_finite="allow-nan", dtype="float32")
        for name, value, valid in (
            ("method", self.method, CLUSTER_METHODS),
            ("criterion", self.criterion, CRITERIA),
        ):
            if value not in valid:
                raise ModelError(
                    f"Cluster {name} '{value}' is not supported. Available: {', '.join(valid)}."
                )
        if self.n_clusters is not None and self.n_clusters > MAX_CLUSTERS:
            raise ModelError(
                f"--clusters {self.n_clusters}: a class map holds at most {MAX_CLUSTERS} "
                "classes (uint8 codes, 255 is no data); give fewer clusters."
            )
        self.som_ = fitted_som(self.som, X)
        n_nodes = len(self.som_.codebook_)
        if self.n_clusters is not None and not 1 <= self.n_clusters <= n_nodes:
            raise ModelError(
                f"--clusters {self.n_clusters} does not fit a SOM of {n_nodes} nodes "
                f"({self.som_.shape_[0]} x {self.som_.shape_[1]}); give at most {n_nodes} clusters "
                "or a larger --som-size."
            )
        with threadpool_limits(1):  # a codebook is tiny: threads cost 10 times the work
            labels, self.scores_ = self._choose()
        bmu, _ = self.som_.bmu(X)
        self._number(labels, bmu)
        self.labels_ = self.cluster_of(bmu)
        self.cluster_profile_ = _profiles(X, self.labels_, self.n_clusters_)
        return self

    def _partition(self, k: int) -> np.ndarray:
        W = self.som_.codebook_
        if self.method == "kmeans":  # weighted by hits: empty nodes between units pull no centre
            km = KMeans(k, n_init=10, random_state=self.random_state)
            return km.fit_predict(W, sample_weight=self.som_.hits_ + 1e-3)
        graph = grid_to_graph(*self.som_.shape_)
        return AgglomerativeClustering(k, connectivity=graph, linkage="ward").fit_predict(W)

    def _choose(self) -> tuple[np.ndarray, dict]:
        """Partition with the best criterion, scored on the nodes that hold training pixels."""
        if self.n_clusters is not None:
            return self._partition(self.n_clusters), {}
        W = self.som_.codebook_
        live = self.som_.hits_ > 0
        if live.sum() <= 3:
            live[:] = True
        score = davies_bouldin_score if self.criterion == "davies-bouldin" else silhouette_score
        scores, partitions = {}, {}
        for k in range(2, min(self.max_clusters, int(live.sum()) - 1) + 1):
            labels = self._partition(k)
            if len(np.unique(labels[live])) < 2:
                continue
            scores[k], partitions[k] = float(score(W[live], labels[live])), labels
        if not scores:
            return np.zeros(len(W), int), {}
        pick = min if self.criterion == "davies-bouldin" else max
        return partitions[pick(scores, key=scores.get)], scores

    def _number(self, labels: np.ndarray, bmu: np.ndarray) -> None:
        """Renumber clusters by decreasing training rows so "cluster 1" is the largest."""
        _, labels = np.unique(labels, return_inverse=True)
        k = int(labels.max()) + 1
        hits = np.bincount(labels, weights=self.som_.hits_, minlength=k)
        order = np.argsort(-hits, kind="stable")
        rank = np.empty(k, int)
        rank[order] = np.arange(k)
        self.node_cluster_ = rank[labels].astype("int16")
        self.n_clusters_ = k
        self.cluster_hits_ = np.bincount(self.cluster_of(bmu[bmu >= 0]), minlength=k)

    def cluster_of(self, bmu: np.ndarray) -> np.ndarray:
        """Cluster of nodes given by index (-1 stays -1)."""
        out = self.node_cluster_[np.maximum(bmu, 0)].astype(np.intp)
        out[bmu < 0] = -1
        return out

    def predict(self, X) -> np.ndarray:
        """Cluster (0..K-1) of each row's BMU; -1 for rows with no finite feature."""
        check_is_fitted(self)
        bmu, _ = self.som_.bmu(X)
        return self.cluster_of(bmu)

    def transform(self, X) -> np.ndarray:
        """Distance of each row to every node of the map."""
        check_is_fitted(self)
        return self.som_.transform(X)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = []  # float32 whatever comes in
        return tags


def _profiles(X: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Mean of each feature over the rows of each cluster (NaN ignored)."""
    out = np.full((k, X.shape[1]), np.nan)
    for c in range(k):
        rows = X[labels == c]
        if len(rows):
            finite = np.isfinite(rows)
            out[c] = np.where(finite, rows, 0).sum(0) / np.maximum(finite.sum(0), 1)
    return out
