"""Random forest that maps every pixel with data, even where one input source has a gap.

:class:`LithologyForest` trains a scikit-learn random forest on the samples with every feature.
Where a source has no data at a pixel (a cloud in the satellite image), the pixel is predicted by a
fallback forest trained on the same samples with only the feature groups present there; with a
:class:`geomap.screen.SpectralScreen` per optical sensor, pixels whose optical values are unlike
every training sample (haze, cloud shadow) are treated the same way. Fallback
forests are trained on first need from the training data the estimator keeps, deterministically,
so a saved model reproduces the same map.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from geomap.errors import ModelError
from geomap.kernels import forest_proba, group_bits, group_pattern
from geomap.models.base import MostProbableMixin
from geomap.screen import screen_flags

#: Bytes the node tables of a forest's trees may take together: a tree holds a row of class
#: weights per node, so with many classes and many samples (a legacy map of 40 units) unbounded
#: trees ran to gigabytes.
FOREST_BYTES = 64 << 20
#: Most samples each tree is grown on (drawn with replacement, as a bootstrap), so that tens of
#: thousands of legacy observations or polygon pixels do not make every forest of the run and its
#: cross-validation slow. 30,000 observations of a generated scene: fit 37.6 s -> 15.5 s, map
#: accuracy against the truth 0.9634 -> 0.9616; 15,000: 16.3 s -> 12.5 s, 0.9607 -> 0.9608.
TREE_SAMPLES = 10_000


def leaf_cap(n_samples: int, n_classes: int, n_trees: int) -> int | None:
    """Most leaves per tree for a forest's node tables to stay under :data:`FOREST_BYTES`.

    A tree of L leaves has 2L - 1 nodes of ``n_classes`` float64 weights and about 64 bytes
    of split data each. None when ``n_samples`` could not grow a tree that large: the trees then
    grow as usual (200 trees of 6 classes: up to 1497 leaves; of 40 classes: 436).
    """
    leaves = FOREST_BYTES // (max(n_trees, 1) * 2 * (8 * n_classes + 64))
    return int(max(leaves, 2)) if n_samples > leaves else None


def _reading(forest: RandomForestClassifier, columns: np.ndarray) -> RandomForestClassifier:
    """``forest``, grown on ``X[:, columns]``, made to read its features from ``X`` itself.

    Each split's feature number is renumbered through the trees' own state (their pickling
    interface), so scikit-learn's ``predict_proba``, ``feature_importances_`` and
    :func:`geomap.kernels.forest_proba` all take the columns in ``X``'s order.
    """
    if (columns == np.arange(len(columns))).all():
        return forest
    for tree in forest.estimators_:
        state = tree.tree_.__getstate__()
        nodes = state["nodes"]
        split = nodes["left_child"] != -1
        nodes["feature"][split] = columns[nodes["feature"][split]]
        tree.tree_.__setstate__(state)
    return forest


class LithologyForest(MostProbableMixin, ClassifierMixin, BaseEstimator):
    """Random forest classifier with fallback forests for pixels missing a feature group.

    Parameters
    ----------
    n_estimators : int, default=200
        Trees per forest.
    max_features : {"sqrt", "log2"}, int or float, default="sqrt"
        Features considered at each split.
    min_samples_leaf : int, default=1
        Minimum samples in a leaf.
    class_weight : {"balanced", "balanced_subsample"} or None, default="balanced"
        Class weighting, so that rare rock types are not ignored.
    max_samples : int or None, default=TREE_SAMPLES
        Most samples each tree's bootstrap draws; None: as many as there are samples.
    feature_groups : sequence of int, optional
        The group (input source) of each feature. A pixel missing any feature of a group is
        predicted without that group. Default: all features form one group.
    screens : sequence of SpectralScreen, default=()
        Rows a screen flags lose its dropped features before prediction (see
        :mod:`geomap.screen`), one screen per optical sensor.
    feature_names : sequence of str, optional
        Names of the features. Each forest is then grown over them in name order, so that the
        same rasters give the same map whatever the order they were given in (a forest grown
        on the same columns in another order is another forest: 1.5% of the demo's pixels
        changed); its trees still read ``X`` in its own order. Default: in the order given.
    random_state : int, optional
        Seed of every forest.
    n_jobs : int, default=-1
        Threads for fitting and prediction (-1: all cores).

    Attributes
    ----------
    classes_ : ndarray
        The class labels.
    forest_ : RandomForestClassifier
        The forest trained on samples with every feature.
    groups_ : ndarray of int
        The group of each feature.
    fallbacks_ : dict
        Fallback forests keyed by the available groups ("0,2"), filled on first need.
    screens_ : list of SpectralScreen
        The screens fitted on the training samples.
    """

    def __init__(
        self,
        n_estimators: int = 200,
        max_features="sqrt",
        min_samples_leaf: int = 1,
        class_weight="balanced",
        max_samples: int | None = TREE_SAMPLES,
        feature_groups: Sequence[int] | None = None,
        screens: Sequence = (),
        feature_names: Sequence[str] | None = None,
        random_state: int | None = None,
        n_jobs: int = -1,
    ) -> None:
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.class_weight = class_weight
        self.max_samples = max_samples
        self.feature_groups = feature_groups
        self.screens = screens
        self.feature_names = feature_names
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _forest(self, n_samples: int, n_classes: int) -> RandomForestClassifier:
        return RandomForestClassifier(
            n_estimators=self.n_estimators,
            max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf,
            max_leaf_nodes=leaf_cap(n_samples, n_classes, self.n_estimators),
            class_weight=self.class_weight,
            max_samples=self.max_samples
            if self.max_samples is not None and n_samples > self.max_samples
            else None,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )

    def fit(self, X, y, sample_weight=None) -> LithologyForest:
        """Fit the main forest on the samples that have every feature.

        ``sample_weight`` (default 1 each) is what each sample counts for; with
        ``class_weight="balanced"`` every class still weighs the same in all, in each forest.

        Raises
        ------
        ModelError
            If fewer than two classes have samples with every feature.
        """
        X, y = validate_data(self, X, y, ensure_all_finite="allow-nan", dtype="float32")
        check_classification_targets(y)
        self.w_train_ = None
        if sample_weight is not None:  # samples of weight 0 are left out
            weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
            X, y, self.w_train_ = X[weight > 0], y[weight > 0], weight[weight > 0]
        groups = (
            np.zeros(X.shape[1], int)
            if self.feature_groups is None
            else np.asarray(self.feature_groups, dtype=int)
        )
        if groups.shape != (X.shape[1],):
            raise ModelError(
                f"feature_groups has to give one group per feature ({X.shape[1]}); "
                f"got {groups.shape[0]}."
            )
        if self.feature_names is not None and len(self.feature_names) != X.shape[1]:
            raise ModelError(
                f"feature_names has to give one name per feature ({X.shape[1]}); "
                f"got {len(self.feature_names)}."
            )
        self.groups_ = groups
        self.classes_ = np.unique(y)
        if len(self.classes_) < 2:
            raise ModelError(
                f"Training needs at least two classes; got 1 class ({self.classes_[0]!r}). Add "
                "observations of other rock types."
            )
        self.X_train_, self.y_train_ = X, y
        self.screens_ = [clone(screen).fit(X) for screen in self.screens or ()]
        self.fallbacks_ = {}
        self.forest_ = self._fit_subset(tuple(np.unique(groups)))
        return self

    def _fit_subset(self, available: tuple) -> RandomForestClassifier | None:
        """A forest of the feature groups ``available``, reading ``X`` of those groups' columns."""
        cols = np.flatnonzero(np.isin(self.groups_, available))
        rows = np.isfinite(self.X_train_[:, cols]).all(axis=1)
        if len(np.unique(self.y_train_[rows])) < 2:
            if len(available) == len(np.unique(self.groups_)):
                raise ModelError(
                    "Training needs at least two classes among samples where every input has "
                    f"data; got {len(np.unique(self.y_train_[rows]))}. Check the nodata values of "
                    "the rasters under the observations."
                )
            return None
        y = self.y_train_[rows]
        names = self.feature_names
        grown = cols if names is None else cols[np.argsort(np.asarray(names)[cols], kind="stable")]
        X = self.X_train_[rows][:, grown]
        forest = self._forest(len(y), len(np.unique(y)))
        weight = getattr(self, "w_train_", None)  # None in bundles saved before weights
        if weight is None:
            return _reading(forest.fit(X, y), np.searchsorted(cols, grown))
        weight = weight[rows]
        _, inverse = np.unique(y, return_inverse=True)
        totals = np.bincount(inverse, weights=weight)
        if self.class_weight is not None:  # sklearn's balancing counts samples, not weights
            scale = weight.sum() / (len(totals) * totals)
            weight = weight * scale[inverse]
            forest.set_params(class_weight=None)
        else:
            scale = np.ones(len(totals))
        # A leaf holds at least half of what one observation of weight 1 counts for (in its
        # lightest class): grown to single samples, trees gave a pixel that shares a polygon's
        # worth as full a vote as a field point.
        forest.set_params(min_weight_fraction_leaf=0.5 * scale.min() / weight.sum())
        return _reading(forest.fit(X, y, sample_weight=weight), np.searchsorted(cols, grown))

    def _fallback(self, available: tuple) -> RandomForestClassifier | None:
        key = ",".join(map(str, available))
        if key not in self.fallbacks_:
            self.fallbacks_[key] = self._fit_subset(available)
        return self.fallbacks_[key]

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities; rows with no finite feature get NaN.

        Rows with every feature use the main forest; rows missing a feature group use a fallback
        forest trained without it; rows with no complete group use the main forest, whose trees
        send a missing value to the larger child. Rows the screen flags lose its features first.

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
        """
        return self.screened_proba(X)[0]

    def screened_proba(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Class probabilities (see :meth:`predict_proba`) and the rows each screen flagged.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        flags : ndarray of bool, shape (n_samples, n_screens)
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype="float32")
        flags = self._screen_flags(X)
        proba = self._proba(X)  # every row as it is, then the few flagged ones again
        rows = np.flatnonzero(flags.any(axis=1))
        if len(rows):
            proba[rows] = self._proba(self._screened(X[rows], flags[rows]))
        return proba, flags

    def screened_features(self, X) -> tuple[np.ndarray, np.ndarray]:
        """The features the model maps each row from, and the flags of :meth:`screened_proba`.

        A copy of ``X`` with each screen's dropped features missing on the rows it flags.
        """
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, ensure_all_finite="allow-nan", dtype="float32")
        flags = self._screen_flags(X)
        return self._screened(X.copy(), flags), flags

    def _screen_flags(self, X: np.ndarray) -> np.ndarray:
        """Rows each screen flags, (n, n_screens): :func:`geomap.screen.screen_flags`."""
        return screen_flags(getattr(self, "screens_", []), X, self.groups_)

    def _screened(self, X: np.ndarray, flags: np.ndarray) -> np.ndarray:
        """``X`` (changed in place) with each screen's dropped features missing where it flags."""
        for k, screen in enumerate(self.screens_):
            X[np.ix_(np.flatnonzero(flags[:, k]), np.asarray(screen.drop, dtype=int))] = np.nan
        return X

    def _proba(self, X: np.ndarray) -> np.ndarray:
        names = np.unique(self.groups_)
        bits = group_bits(X, self.groups_)
        every = (1 << len(names)) - 1
        complete = self.forest_.classes_.shape == self.classes_.shape
        if complete and (bits == every).all():  # every row, every feature: no NaN
            return forest_proba(self.forest_, X, complete=True)
        out = np.full((X.shape[0], len(self.classes_)), np.nan)
        patterns, first, inverse = np.unique(bits, return_index=True, return_inverse=True)
        for p, row in enumerate(first):
            pattern = group_pattern(bits[row], len(names))
            rows = np.flatnonzero(inverse == p)
            forest, cols, whole = self.forest_, slice(None), pattern.all()
            if pattern.any() and not whole:
                key = tuple(names[pattern].tolist())
                if self._fallback(key) is not None:  # trained on the complete groups only
                    forest, whole = self._fallback(key), True
                    cols = np.flatnonzero(np.isin(self.groups_, key))
            proba = forest_proba(forest, X[rows][:, cols], complete=whole)
            out[rows] = 0.0
            out[np.ix_(rows, np.searchsorted(self.classes_, forest.classes_))] = proba
        none = np.flatnonzero(bits == 0)  # no complete group: perhaps no feature at all
        out[none[~np.isfinite(X[none]).any(axis=1)]] = np.nan
        return out

    def __setstate__(self, state: dict) -> None:
        state.setdefault("max_samples", None)  # saved before the cap: its fallbacks as trained
        state.setdefault("feature_names", None)  # saved before: grown in the order given
        screen = state.pop("screen", None)  # bundles of one screen, or saved before it
        state.setdefault("screens", () if screen is None else (screen,))
        if "forest_" in state:
            fitted = state.pop("screen_", None)
            state.setdefault("screens_", [] if fitted is None else [fitted])
        super().__setstate__(state)

    @property
    def feature_importances_(self) -> np.ndarray:
        """Mean decrease in impurity of each feature, from the main forest."""
        check_is_fitted(self)
        return self.forest_.feature_importances_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
