"""Where the map can be trusted: dissimilarity index, area of applicability, expected accuracy.

The dissimilarity index (DI, Meyer & Pebesma 2021) of a pixel is the distance, in the feature
space standardised with the training mean and standard deviation and weighted by feature
importance, to the nearest training sample, divided by the mean distance between training
samples. The area of applicability (AOA) holds the pixels whose DI does not exceed what the
training samples themselves show under spatial cross-validation: each sample's distance to the
nearest sample outside its own fold, with outliers cut at the upper whisker of the box plot
(75th percentile + 1.5 IQR, as CAST does, with quartiles interpolated linearly where R's
``boxplot.stats`` takes Tukey's hinges; the two differ slightly for a few samples). Above
:data:`MAX_REFERENCE` training samples (the pixels of mapped patches), a random subset of that
many is what pixels, and the samples for the threshold, are measured against.

The expected accuracy of a pixel is the probability that its mapped class is right, learned by a
logistic regression from the spatial cross-validation: for every training sample, whether its
held-out prediction was right, against the entropy of its held-out probabilities and its
cross-validated DI. The regression is kept monotone: more uncertainty or more dissimilarity never
raises the expected accuracy.

Missing data. Like :class:`geomap.models.LithologyForest`, a pixel missing a feature group (a
source with no data there) is handled with the groups it has: its DI is measured in the subspace
of the complete groups, against the training samples complete in them, divided by their mean
distance in that subspace, and compared with the threshold of that subspace. A pixel with no
complete group has no DI (NaN), lies outside the AOA and gets the expected accuracy of the most
dissimilar training sample.

Everything applies per window: :meth:`Applicability.transform` takes the features and class
probabilities of any set of pixels, and :class:`geomap.trust.AccuracyTally` adds the map-wide
estimate up window by window. Nearest neighbours come from :func:`geomap.distances.nearest_distance`
(a k-d tree in few dimensions, a chunked matrix search in many); never from a whole pixel x sample
matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

from geomap.distances import cv_nearest_distance, mean_pairwise_distance, nearest_distance
from geomap.errors import ModelError
from geomap.kernels import group_bits
from geomap.validate import little_seen

#: Training samples a pixel's DI is measured against, at most (see :class:`Applicability`).
MAX_REFERENCE = 2000
#: Pixels whose DI is computed at once (bounds the temporaries of a large window).
ROW_CHUNK = 65536
#: What each sample of a held-out unit weighs in the calibration outside the area of
#: applicability, against 1 for each held-out sample of the spatial cross-validation. On a
#: helper's Kalgoorlie sheet trained on a legacy map's patch alone (41% of the sheet outside
#: the AOA, two units in no observation), the expected accuracy outside the AOA went from 0.81
#: to 0.38 (true 0.43), over the sheet from 0.88 to 0.70 (true 0.72); 0.02 and 0.1 put the
#: sheet at 0.78 and 0.65. Untuned: the demo's legacy map alone (36% outside) went from 0.85
#: to 0.74 (true 0.72); the test scene's patch (78% outside) from 0.39 to 0.30 (true 0.50):
#: there the dissimilarity already lowered it too far. Scenes observed throughout (seeds 0-3,
#: 3% outside) moved by 0.002.
UNSEEN_WEIGHT = 0.05


def normalised_entropy(proba: np.ndarray) -> np.ndarray:
    """Entropy of (n, n_classes) probabilities divided by log(n_classes): 0 sure, 1 uniform."""
    proba = np.asarray(proba, dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(proba > 0, np.log(np.where(proba > 0, proba, 1.0)), 0.0)
    out = -(proba * logs).sum(axis=1) / np.log(max(proba.shape[1], 2))
    out[np.isnan(proba).any(axis=1)] = np.nan
    return out


def aoa_threshold(train_di: np.ndarray, whisker: float = 1.5) -> float:
    """Upper whisker of the box plot of the training samples' cross-validated DI.

    The largest value not above the 75th percentile + ``whisker`` x IQR (``boxplot.stats`` in R,
    as CAST uses), so a few outlying samples do not widen the area of applicability.
    """
    values = np.asarray(train_di, dtype="float64")
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan")
    q1, q3 = np.percentile(values, [25, 75])
    return float(values[values <= q3 + whisker * (q3 - q1)].max())


#: Fewest held-out samples lacking an input for the calibration to learn what that costs.
MIN_LACKING = 10


def _enough_lacking(lacking: np.ndarray, right: np.ndarray) -> bool:
    seen = right[lacking]
    return len(seen) >= MIN_LACKING and 0 < seen.sum() < len(seen)


class AccuracyCalibration(BaseEstimator):
    """P(mapped class right): a monotone logistic function of entropy, DI and missing inputs.

    Fitted on held-out predictions: for each sample, the normalised entropy of its out-of-fold
    probabilities, its cross-validated DI, the share of the model's importance its missing
    inputs carry (a sample under a cloud lacks the satellite's) and whether its out-of-fold class
    was right. The inputs are scaled by their standard deviation before the (L2-penalised)
    regression, so that the penalty does not erase an input that few samples carry, such as the
    missing share of the few observations under a cloud. An input whose fitted coefficient would
    make the accuracy grow with it (more uncertainty, dissimilarity or missing data never makes a
    pixel more likely right) is dropped and the model refitted; with no input left, or when every
    held-out prediction was right (or wrong), the expected accuracy is the held-out accuracy.

    Parameters
    ----------
    C : float, default=1.0
        Inverse L2 regularisation strength of the logistic regression.

    Attributes
    ----------
    inputs_ : list of str
        The inputs kept, among "entropy", "dissimilarity" and "missing_importance".
    model_ : LogisticRegression or None
        The regression on ``inputs_`` divided by ``scale_``; None for a constant.
    scale_ : ndarray
        The standard deviation of each input kept (1 where it does not vary).
    base_rate_ : float
        The share of rows right (weighted): the expected accuracy of a constant calibration.
    """

    def __init__(self, C: float = 1.0) -> None:
        self.C = C

    def fit(
        self, entropy, dissimilarity, right, missing=None, sample_weight=None
    ) -> AccuracyCalibration:
        """Fit on held-out entropy, DI, correctness (booleans) and, optionally, missing inputs.

        ``missing`` is the share of the model's importance each sample lacked (its missing
        inputs); it is used only when at least :data:`MIN_LACKING` samples lacked some, among
        them right and wrong ones (with fewer, one sample would set the whole cloud's accuracy).
        ``sample_weight`` weighs the rows (default 1 each).

        Raises
        ------
        ModelError
            If the arrays differ in length or are empty.
        """
        right = np.asarray(right, dtype=bool)
        inputs = [entropy, dissimilarity]
        if missing is not None and _enough_lacking(np.asarray(missing) > 0, right):
            inputs.append(missing)
        columns = np.column_stack(inputs).astype("float64")
        shape = (len(right), len(inputs))
        if len(right) == 0 or columns.shape != shape or not np.isfinite(columns).all():
            raise ModelError(
                "The accuracy calibration needs finite entropy, dissimilarity (and missing share) "
                f"and a right/wrong flag for each held-out sample; got {columns.shape[0]} rows of "
                f"inputs, {len(right)} flags."
            )
        weight = np.ones(len(right)) if sample_weight is None else np.asarray(sample_weight)
        self.base_rate_ = float(np.average(right, weights=weight))
        spread = columns.std(axis=0)
        scale = np.where(spread > 0, spread, 1.0)
        keep = list(range(len(inputs)))
        self.model_ = None
        while keep and 0 < right.sum() < len(right):
            model = LogisticRegression(C=self.C).fit(
                columns[:, keep] / scale[keep], right, sample_weight=weight
            )
            rising = [k for k, c in zip(keep, model.coef_[0]) if c > 0]
            if not rising:
                self.model_ = model
                break
            keep = [k for k in keep if k not in rising]
        names = ("entropy", "dissimilarity", "missing_importance")
        self.inputs_ = [names[k] for k in keep] if self.model_ is not None else []
        self.scale_ = scale[keep] if self.model_ is not None else np.ones(0)
        return self

    def predict(self, entropy, dissimilarity, missing=None) -> np.ndarray:
        """Expected accuracy of each row (``missing``: share of importance lacked, default 0)."""
        check_is_fitted(self)
        entropy = np.asarray(entropy, dtype="float64")
        if self.model_ is None or entropy.size == 0:  # no rows: a window without data
            return np.full(entropy.shape, self.base_rate_)
        columns = {
            "entropy": entropy,
            "dissimilarity": np.asarray(dissimilarity, "float64"),
            "missing_importance": np.zeros(entropy.shape)
            if missing is None
            else np.asarray(missing, "float64"),
        }
        inputs = np.column_stack([columns[name] for name in self.inputs_])
        scale = getattr(self, "scale_", np.ones(len(self.inputs_)))  # bundles before scaling
        return self.model_.predict_proba(inputs / scale)[:, 1]

    @property
    def coefficients_(self) -> list[float]:
        """The logistic coefficients per unit of each input (not of its scaled value)."""
        if self.model_ is None:
            return []
        scale = getattr(self, "scale_", np.ones(len(self.inputs_)))
        return (self.model_.coef_[0] / scale).tolist()


@dataclass
class _Space:
    """A subspace of complete feature groups: its columns, training rows and their search."""

    cols: np.ndarray
    rows: np.ndarray
    reference: np.ndarray  # which of ``rows`` pixels are measured against
    #: (distance, index among the reference rows) of the nearest reference row
    nearest: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None
    mean_distance: float
    threshold: float
    cv_di: np.ndarray | None = None  # the rows' cross-validated DI, when computed at fit
    reference_rows: np.ndarray | None = None  # the reference rows' features in the subspace


class Applicability(BaseEstimator):
    """Dissimilarity index, area of applicability and expected accuracy of a fitted map model.

    Parameters
    ----------
    weights : array-like of shape (n_features,), optional
        Importance of each feature (e.g. ``model.feature_importances_``); standardised features
        are multiplied by it. Default: equal weights.
    feature_groups : sequence of int, optional
        The group (input source) of each feature, as given to ``LithologyForest``. Default: one
        group.
    whisker : float, default=1.5
        IQR multiple of the outlier cut of the threshold.
    random_state : int, optional
        Seed of the random subsets of large training sets (reference samples, mean distance).
    max_reference : int or None, default=MAX_REFERENCE
        Pixels are measured against at most this many training samples (at least 2), a random
        subset when there are more (None: all), drawn in each subspace of complete groups from
        the samples complete in it, from every fold in proportion. Each DI costs one distance
        per reference sample, so the thousands of pixels a mapped patch gives (up to 2000 per
        unit) would make the layer cost several times the map; the threshold is set the same way
        (each training sample against the reference samples of the other folds), so pixels and
        samples are measured alike. Trained on a 12000-pixel patch, a subset of 2000 put
        99.0% of a 2000 x 2000 map on the same side of the threshold as all 12000 did (98.5%
        inside against 98.7%).

    Attributes
    ----------
    mean_, scale_ : ndarray
        Training mean and standard deviation of each feature.
    weights_ : ndarray
        Feature weights, summing to one.
    mean_distance_, threshold_ : float
        Mean distance between the reference samples and the AOA threshold, with every feature.
    train_di_ : ndarray
        Cross-validated DI of each training sample.
    reference_ : ndarray of bool
        The training samples pixels with every feature are measured against.
    calibration_ : AccuracyCalibration
        P(mapped class right) from the entropy, DI and missing inputs of the held-out
        predictions (and of the simulated outages).
    held_out_accuracy_ : float
        Accuracy of the held-out predictions with every input the samples had.
    outages_ : int
        Number of simulated input outages the calibration learnt from.
    class_counts_ : ndarray of int
        Training samples of each class.
    class_tested_ : ndarray of float
        Held-out samples of each class that tested it: mapped by a fold's model that was
        trained on at least a quarter of the class (:func:`geomap.validate.little_seen`) and
        that have held-out probabilities, each counted with its ``sample_weight``.
    spaces_ : dict
        Mean distance and threshold of each subspace of complete groups ("0,2"), on first need.
    """

    def __init__(
        self,
        weights: Sequence[float] | None = None,
        feature_groups: Sequence[int] | None = None,
        whisker: float = 1.5,
        random_state: int | None = 0,
        max_reference: int | None = MAX_REFERENCE,
    ) -> None:
        self.weights = weights
        self.feature_groups = feature_groups
        self.whisker = whisker
        self.random_state = random_state
        self.max_reference = max_reference

    def fit(
        self, X, y, *, folds, oof_proba, outages=(), units_out=None, sample_weight=None
    ) -> Applicability:
        """Learn the training feature space, the AOA threshold and the accuracy calibration.

        Parameters
        ----------
        X : ndarray of shape (n_samples, n_features)
            Training features (NaN where a source has no data), as given to the model.
        y : ndarray of shape (n_samples,)
            Integer class codes (0..n_classes-1).
        folds : ndarray of shape (n_samples,)
            Spatial cross-validation fold of each sample (``cross_validate(...)["spatial_folds"]``).
        oof_proba : ndarray of shape (n_samples, n_classes)
            Held-out probabilities of each sample (``cross_validate(...)["spatial_oof_proba"]``).
        outages : sequence of (columns, oof_proba), optional
            Simulated outages of an input: the feature columns it gives and the held-out
            probabilities of each sample without them (``cross_validate(..., outages=...)``).
            The calibration learns from them what a missing input costs, beside the few
            observations that lacked one (those under a cloud), and where none did (a cloud
            over unvisited ground, an input left out of ``geomap predict``); all outages
            together weigh as much as the samples.
        units_out : (folds, oof_proba), optional
            Units held out in turn (``cross_validate(..., units_out=True)``: ``unit_folds``,
            ``unit_oof_proba``): their samples, always mapped wrong by a model that never saw
            them, teach the calibration of the pixels outside the area of applicability what a
            unit no observation holds looks like, weighing :data:`UNSEEN_WEIGHT` each.
        sample_weight : ndarray of shape (n_samples,), optional
            What each sample is worth as an observation (beside field points, a polygon's
            pixels share its worth), for ``class_tested_``. Default: 1 each.

        Raises
        ------
        ModelError
            If the shapes disagree or fewer than two folds or samples are given.
        """
        X, y, folds, oof_proba = self._check_fit(X, y, folds, oof_proba)
        self.n_features_in_ = X.shape[1]
        self.mean_ = np.nanmean(X, axis=0)
        scale = np.nanstd(X, axis=0)
        self.scale_ = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        self.mean_ = np.nan_to_num(self.mean_)
        weights = np.ones(X.shape[1]) if self.weights is None else np.asarray(self.weights, float)
        self.weights_ = weights / weights.sum() if weights.sum() > 0 else np.ones(X.shape[1])
        self.groups_ = self._groups(X.shape[1])
        self.train_ = self.embed(X)
        self.folds_ = np.asarray(folds, dtype=int)
        self.seed_ = int(np.random.default_rng(self.random_state).integers(2**31))
        self.spaces_, self._cache = {}, {}
        self.train_di_ = self._train_di()
        full = self._space(self._full_key())
        self.mean_distance_, self.threshold_ = full.mean_distance, full.threshold
        self.reference_ = np.zeros(len(X), bool)
        self.reference_[full.rows[full.reference]] = True
        self._fit_calibration(y, oof_proba, outages, units_out)
        self.class_counts_ = np.bincount(y, minlength=oof_proba.shape[1])
        weight = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
        tested = ~little_seen(y, self.folds_, weight) & np.isfinite(oof_proba).all(axis=1)
        self.class_tested_ = np.bincount(y[tested], weight[tested], minlength=oof_proba.shape[1])
        return self

    def _check_fit(self, X, y, folds, oof_proba):
        X = np.asarray(X, dtype="float64")
        y, folds = np.asarray(y), np.asarray(folds)
        oof_proba = np.asarray(oof_proba, dtype="float64")
        n = X.shape[0] if X.ndim == 2 else -1
        if n < 2 or y.shape != (n,) or folds.shape != (n,) or oof_proba.shape[0] != n:
            raise ModelError(
                "Applicability.fit needs X (n, n_features) with n >= 2 and y, folds and oof_proba "
                f"with n rows; got X {X.shape}, y {y.shape}, folds {folds.shape}, oof_proba "
                f"{oof_proba.shape}."
            )
        if len(np.unique(folds)) < 2:
            raise ModelError(
                f"Applicability.fit needs samples in at least two folds; got "
                f"{len(np.unique(folds))}. Pass cross_validate(...)['spatial_folds']."
            )
        if self.max_reference is not None and self.max_reference < 2:
            raise ModelError(
                f"max_reference has to be at least 2 (or None for every sample); got "
                f"{self.max_reference}."
            )
        if self.weights is not None and np.shape(self.weights) != (X.shape[1],):
            raise ModelError(
                f"weights has to give one weight per feature ({X.shape[1]}); got shape "
                f"{np.shape(self.weights)}."
            )
        return X, y, folds, oof_proba

    def _reference(self, folds: np.ndarray, bits: int) -> np.ndarray:
        """Which of a subspace's samples (given by their folds) pixels are measured against.

        All of them, or :attr:`max_reference` drawn from each fold in proportion (each fold
        keeps at least one), with a seed fixed at fit and the subspace: the same after loading.
        """
        n = len(folds)
        keep = np.ones(n, bool)
        if self.max_reference is None or n <= self.max_reference:
            return keep
        rng = np.random.default_rng([self.seed_, bits])
        keep[:] = False
        for f in np.unique(folds):
            members = np.flatnonzero(folds == f)
            take = min(len(members), max(1, round(self.max_reference * len(members) / n)))
            keep[rng.choice(members, take, replace=False)] = True
        return keep

    def _groups(self, n_features: int) -> np.ndarray:
        if self.feature_groups is None:
            return np.zeros(n_features, int)
        groups = np.asarray(self.feature_groups, dtype=int)
        if groups.shape != (n_features,):
            raise ModelError(
                f"feature_groups has to give one group per feature ({n_features}); got "
                f"{groups.shape[0]}."
            )
        return groups

    def embed(self, X) -> np.ndarray:
        """Features standardised with the training mean and sd and multiplied by the weights.

        Pixels' float32 features stay float32 (the nearest-neighbour search is float32);
        anything else is embedded in float64.
        """
        X = np.asarray(X)
        dtype = np.float32 if X.dtype == np.float32 else np.float64
        factor = self.weights_ / self.scale_
        Z = np.multiply(X, factor.astype(dtype), dtype=dtype)  # one pass
        Z -= (self.mean_ * factor).astype(dtype)
        return Z

    def _full_key(self) -> int:
        return (1 << len(np.unique(self.groups_))) - 1

    def _space(self, bits: int) -> _Space:
        """The subspace of the groups in ``bits``: built on first need, statistics kept."""
        if bits in self._cache:
            return self._cache[bits]
        names = np.unique(self.groups_)
        keep = [g for i, g in enumerate(names) if bits >> i & 1]
        cols = np.flatnonzero(np.isin(self.groups_, keep))
        rows = np.flatnonzero(np.isfinite(self.train_[:, cols]).all(axis=1)) if keep else []
        rows = np.asarray(rows, dtype=int)
        Z = self.train_[np.ix_(rows, cols)]
        reference = self._reference(self.folds_[rows], bits)
        key = ",".join(map(str, keep))
        cv_di = None
        if key not in self.spaces_:
            self.spaces_[key], cv_di = self._space_statistics(Z, self.folds_[rows], reference)
        mean_distance, threshold = self.spaces_[key]
        nearest = None
        if reference.any() and np.isfinite(mean_distance):
            nearest = nearest_distance(Z[reference])
        self._cache[bits] = _Space(
            cols, rows, reference, nearest, mean_distance, threshold, cv_di, Z[reference]
        )
        return self._cache[bits]

    def _space_statistics(
        self, Z: np.ndarray, folds: np.ndarray, reference: np.ndarray
    ) -> tuple[list[float], np.ndarray | None]:
        """[mean distance, AOA threshold] of a subspace, and its rows' cross-validated DI."""
        mean_distance = mean_pairwise_distance(Z[reference], self.random_state)
        if not mean_distance > 0:  # fewer than two samples, or all identical
            return [float("nan"), float("nan")], None
        di = cv_nearest_distance(Z, folds, reference) / mean_distance
        return [mean_distance, aoa_threshold(di, self.whisker)], di

    def _train_di(
        self, bits: np.ndarray | None = None, folds: np.ndarray | None = None
    ) -> np.ndarray:
        """Cross-validated DI of each training sample, in the subspace of its complete groups.

        ``bits``: the groups each sample is taken to have (default: those it has). ``folds``:
        each sample measured against the samples of the other folds (default: the spatial ones).
        """
        bits = group_bits(self.train_, self.groups_) if bits is None else bits
        out = np.full(len(bits), np.nan)
        for b in np.unique(bits[bits > 0]):
            space = self._space(int(b))
            if not np.isfinite(space.mean_distance):
                continue
            di = space.cv_di if folds is None else None  # computed with the threshold at fit
            if di is None:  # other folds, or a model loaded from a file (statistics, no DI)
                Z = self.train_[np.ix_(space.rows, space.cols)]
                held = (self.folds_ if folds is None else folds)[space.rows]
                di = cv_nearest_distance(Z, held, space.reference) / space.mean_distance
            pos = np.searchsorted(space.rows, np.flatnonzero(bits == b))
            out[bits == b] = di[pos]
        out[~np.isfinite(out)] = np.nan
        return out

    def dissimilarity(
        self, X, outside_shares: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """DI of each row of ``X``, its AOA threshold and the importance its missing inputs carry.

        Rows are processed :data:`ROW_CHUNK` at a time, so temporaries stay small whatever the
        window size. ``outside_shares`` (one per feature), when given, is added each row beyond
        its threshold's share of its squared distance to the nearest training sample, feature by
        feature (:meth:`transform`).

        Returns
        -------
        di, threshold, missing : ndarray of shape (n,)
            ``di`` and ``threshold`` are NaN for rows with no complete feature group (or no
            training sample to compare with); ``missing`` is 0 for complete rows.
        """
        check_is_fitted(self)
        X = np.asarray(X)
        di = np.full(len(X), np.nan)
        threshold = np.full(len(X), np.nan)
        missing = np.zeros(len(X))
        for start in range(0, len(X), ROW_CHUNK):
            part = slice(start, start + ROW_CHUNK)
            di[part], threshold[part], missing[part] = self._dissimilarity(X[part], outside_shares)
        return di, threshold, missing

    def threshold_at(self, X) -> np.ndarray:
        """The AOA threshold of each row of ``X``: that of the inputs it has (NaN: none).

        A pixel with an input missing is compared with the training samples in the feature
        space of the inputs it has, whose threshold differs from the full one.
        """
        check_is_fitted(self)
        return self.threshold_of(group_bits(self.embed(np.asarray(X)), self.groups_))

    def threshold_of(self, bits: np.ndarray) -> np.ndarray:
        """The AOA threshold of rows with data in the inputs ``bits`` give (NaN: none).

        ``bits``: :func:`geomap.kernels.group_bits` of the rows' embedded features.
        """
        out = np.full(len(bits), np.nan)
        for b in np.unique(bits[bits > 0]):
            space = self._space(int(b))
            if space.nearest is not None:
                out[bits == b] = space.threshold
        return out

    def missing_importance(self, bits: np.ndarray) -> np.ndarray:
        """Share of the feature weights (importance) in the groups a row lacks.

        ``bits`` are the rows' :func:`geomap.kernels.group_bits`.
        """
        names, inverse = np.unique(self.groups_, return_inverse=True)
        group_weight = np.bincount(inverse, weights=self.weights_, minlength=len(names))
        total = group_weight.sum() or 1.0
        out = np.zeros(len(bits))
        for b in np.unique(bits):
            lacked = [(int(b) >> i & 1) == 0 for i in range(len(names))]
            out[bits == b] = group_weight[lacked].sum() / total
        return out

    def _dissimilarity(
        self, X: np.ndarray, outside_shares: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        Z = self.embed(X)
        bits = group_bits(Z, self.groups_)
        di = np.full(len(Z), np.nan)
        threshold = np.full(len(Z), np.nan)
        for b in np.unique(bits[bits > 0]):
            space, rows = self._space(int(b)), np.flatnonzero(bits == b)
            if space.nearest is None:
                continue
            every_row, every_col = len(rows) == len(Z), len(space.cols) == Z.shape[1]
            sub = Z[rows] if not every_row else Z  # no copy in the common case: all of it
            sub = sub[:, space.cols] if not every_col else sub
            distance, nearest = space.nearest(sub)
            di[rows] = distance / space.mean_distance
            threshold[rows] = space.threshold
            if outside_shares is not None:
                beyond = di[rows] > space.threshold
                if beyond.any():
                    outside_shares[space.cols] += self._shares(space, sub[beyond], nearest[beyond])
        return di, threshold, self.missing_importance(bits)

    @staticmethod
    def _shares(space: _Space, Z: np.ndarray, nearest: np.ndarray) -> np.ndarray:
        """Each feature's share of a row's squared distance to its nearest sample, summed."""
        part = np.square(Z - space.reference_rows[nearest], dtype="float64")
        total = part.sum(axis=1, keepdims=True)
        return (part / np.where(total > 0, total, 1.0)).sum(axis=0)

    def _fit_calibration(
        self, y: np.ndarray, oof_proba: np.ndarray, outages=(), units_out=None
    ) -> None:
        finite = np.isfinite(self.train_di_)
        self.di_cap_ = float(self.train_di_[finite].max()) if finite.any() else 1.0
        cases = [(oof_proba, self.train_di_, group_bits(self.train_, self.groups_), 1.0)]
        for cols, proba in outages:
            Z = self.train_.copy()
            Z[:, np.asarray(cols, dtype=int)] = np.nan
            bits = group_bits(Z, self.groups_)
            cases.append((np.asarray(proba), self._train_di(bits), bits, 1 / len(outages)))
        rows = [self._calibration_rows(y, *case) for case in cases]
        self.held_out_accuracy_ = float(rows[0][2].mean()) if len(rows[0][2]) else float("nan")
        self.outages_ = len(outages)
        self.calibration_ = AccuracyCalibration().fit(*(np.concatenate(c) for c in zip(*rows)))
        self.calibration_outside_ = None
        self.units_held_out_ = 0
        if units_out is not None:  # their rows are never right: the unit was not trained on
            folds = np.asarray(units_out[0], dtype=int)
            di = self._train_di(folds=folds)
            rows.append(self._calibration_rows(y, units_out[1], di, cases[0][2], UNSEEN_WEIGHT))
            self.calibration_outside_ = AccuracyCalibration().fit(
                *(np.concatenate(c) for c in zip(*rows))
            )
            mapped = np.isfinite(np.asarray(units_out[1])).all(axis=1)
            self.units_held_out_ = len(np.unique(y[mapped]))

    def _calibration_rows(self, y, proba, di, bits, weight) -> tuple:
        """Entropy, DI, right or wrong, missing share and weight of the rows with probabilities."""
        proba = np.asarray(proba)
        entropy = normalised_entropy(proba)
        ok = np.isfinite(entropy)
        right = np.argmax(proba[ok], axis=1) == y[ok]
        missing = self.missing_importance(bits)[ok]
        return entropy[ok], self._di_input(di[ok]), right, missing, np.full(ok.sum(), weight)

    def _di_input(self, di: np.ndarray) -> np.ndarray:
        """DI for the calibration: rows without one count as the most dissimilar sample."""
        return np.where(np.isfinite(di), di, self.di_cap_)

    def expected_accuracy(self, proba, di, missing=None, outside=None) -> np.ndarray:
        """P(the mapped class is right); NaN where no data.

        From class probabilities, DI and the share of importance the pixel's missing inputs
        carry (``missing``, default 0). Pixels ``outside`` the area of applicability (booleans,
        default none) take the calibration that also learnt from held-out units, when fitted.
        """
        check_is_fitted(self)
        entropy = normalised_entropy(proba)
        out = np.full(len(entropy), np.nan)
        di = self._di_input(np.asarray(di, dtype="float64"))
        missing = np.zeros(len(entropy)) if missing is None else np.asarray(missing)
        away = np.zeros(len(entropy), bool) if outside is None else np.asarray(outside, bool)
        beyond = getattr(self, "calibration_outside_", None)  # None: bundles before it
        for calibration, rows in ((self.calibration_, ~away), (beyond, away)):
            rows = rows & np.isfinite(entropy)
            if rows.any():
                calibration = calibration or self.calibration_
                out[rows] = calibration.predict(entropy[rows], di[rows], missing[rows])
        return out

    def transform(
        self, X, proba, outside_shares: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """DI, AOA mask and expected accuracy of a window's pixels.

        Parameters
        ----------
        X : ndarray of shape (n_pixels, n_features)
            The pixels' features, computed as for the model (NaN where a source has no data).
        proba : ndarray of shape (n_pixels, n_classes)
            The map's class probabilities of the same pixels (NaN where nothing is mapped).
        outside_shares : ndarray of shape (n_features,), optional
            Each pixel outside the area of applicability adds to it, feature by feature, its
            share of the pixel's squared distance to the nearest training sample: divided by
            the number of such pixels, what each feature makes of their dissimilarity.

        Returns
        -------
        di, aoa, expected_accuracy : ndarray of float32, shape (n_pixels,)
            ``aoa`` is 1 inside the area of applicability and 0 outside; all three are NaN where
            the pixel is not mapped (``proba`` NaN).
        """
        di, threshold, missing = self.dissimilarity(X, outside_shares)
        aoa = (di <= threshold).astype("float32")
        accuracy = self.expected_accuracy(proba, di, missing, outside=di > threshold)
        unmapped = np.isnan(accuracy)
        di[unmapped], aoa[unmapped] = np.nan, np.nan
        return di.astype("float32"), aoa, accuracy.astype("float32")

    def describe(self) -> dict:
        """JSON-ready figures for the report: threshold, distances and the calibration."""
        check_is_fitted(self)
        cal = self.calibration_
        model = cal.model_
        return {
            "method": (
                "dissimilarity index (Meyer & Pebesma 2021): distance in the standardised, "
                "importance-weighted feature space to the nearest training sample / mean distance "
                "between training samples; AOA threshold: upper whisker of the training samples' "
                "spatial-CV dissimilarity; with more than max_reference training samples, a "
                "random subset of that many is the reference of pixels and samples alike"
            ),
            "reference_samples": int(self.reference_.sum()),
            "complete_samples": len(self._space(self._full_key()).rows),
            "training_samples": len(self.reference_),
            "threshold": self.threshold_,
            "mean_training_distance": self.mean_distance_,
            "training_dissimilarity_median": float(np.nanmedian(self.train_di_)),
            "training_outside_aoa": int((self.train_di_ > self.threshold_).sum()),
            "calibration": {
                "model": "logistic" if model is not None else "constant",
                "inputs": list(cal.inputs_),
                "coefficients": cal.coefficients_,
                "intercept": None if model is None else float(model.intercept_[0]),
                "held_out_accuracy": getattr(self, "held_out_accuracy_", cal.base_rate_),
                "simulated_outages": getattr(self, "outages_", 0),
            },
            "calibration_outside_aoa": _calibration_figures(
                getattr(self, "calibration_outside_", None), getattr(self, "units_held_out_", 0)
            ),
        }

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state.pop("_cache", None)  # k-d trees are rebuilt on first need
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if "train_" in state and "reference_" not in state:  # bundles before the subset
            self.max_reference, self.reference_ = None, np.ones(len(self.train_), bool)
        self.__dict__.setdefault("max_reference", None)  # unfitted, from before the subset
        self._cache = {}


def _calibration_figures(calibration: AccuracyCalibration | None, units: int) -> dict | None:
    """The report's figures of the calibration outside the AOA (None: not fitted)."""
    if calibration is None:
        return None
    model = calibration.model_
    return {
        "model": "logistic" if model is not None else "constant",
        "inputs": list(calibration.inputs_),
        "coefficients": calibration.coefficients_,
        "intercept": None if model is None else float(model.intercept_[0]),
        "units_held_out": units,
        "unit_weight": UNSEEN_WEIGHT,
    }
