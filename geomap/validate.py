"""Honest validation: random and spatial-block cross-validation side by side.

Field observations are clustered along traverses, so a random k-fold tests each observation
against its neighbours on the same outcrop and flatters the model. Spatial cross-validation holds
out whole square blocks. The block size is chosen so that the distances from held-out samples to
the nearest training sample resemble the distances from the map's pixels to the nearest
observation (the idea of kNNDM, Linnenbrink et al. 2023): the spatial-CV accuracy then estimates
the accuracy of the map where it will be used, not next to the observations.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import wasserstein_distance
from sklearn.base import clone
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    recall_score,
)
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from geomap.errors import ModelError

#: Gap between random and spatial accuracy above which the report warns in words.
OPTIMISM_GAP = 0.05
#: Below this ratio of held-out to map distances the spatial CV cannot stand for the map: the
#: observations cluster in a small part of it (a mapped patch, one valley's traverses).
REACH = 0.5
#: Share of the cross-validated samples that pixels of mapped polygons must reach, beside field
#: points, for the report to say the accuracy figures are mostly theirs.
POLYGON_SHARE = 0.5
#: Share of its unit's samples the model that maps a held-out sample must have been trained on
#: for that sample to test the unit: a unit whose observations lie in one block is held out
#: nearly whole, and a model that hardly knows it can only map it as something else. On 12
#: generated scenes (seeds 200-211) 0.25 changed no listed observation; 0.5 dropped 9 of 106,
#: 3 of them misidentified.
SEEN_SHARE = 0.25
#: Fewest blocks per spatial fold: with one block a fold holds whatever classes that block has,
#: and the group splitter cannot balance the folds by class.
BLOCKS_PER_FOLD = 2
#: Most folds a cross-validation may be asked for: each costs a forest (and one per input
#: outage in the spatial CV), and beyond about ten folds the held-out blocks shrink towards
#: single observations, which is what spatial CV is there to avoid.
MAX_FOLDS = 20
#: Folds of units held out in turn (see :func:`held_out_units`), and the trees of their models:
#: only the entropy of a prediction that is always wrong is used.
UNIT_FOLDS = 5
UNIT_TREES = 50
#: Most samples each tree of a fold's forest is grown on (the map's own forest keeps its cap,
#: :data:`geomap.models.forest.TREE_SAMPLES`). Tens of thousands of a legacy map's pixels are
#: few places seen many times, and a spatial fold fits a forest per input outage besides its
#: own. On a helper's sheet of 12,000 polygon pixels (136 polygons, 6 units, 4 inputs), idle
#: machine: cross-validation 177 s -> 72 s, the run 199 s -> 92 s, the same map (0.973 right);
#: spatial CV 0.9384 -> 0.9379, the map's estimated accuracy 0.967 -> 0.970. Every forest,
#: the map's too, capped at 3,000 mapped 0.970 right; at 1,500, 0.967.
CV_TREE_SAMPLES = 3000


def metrics(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]) -> dict:
    """Accuracy figures of integer-coded predictions, per class by name."""
    labels = np.arange(len(class_names))
    recall = recall_score(y_true, y_pred, labels=labels, average=None, zero_division=0)
    return {
        "overall_accuracy": float(accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)
        ),
        "kappa": float(cohen_kappa_score(y_true, y_pred, labels=labels)),
        "per_class_recall": {n: float(r) for n, r in zip(class_names, recall)},
        "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "confusion_matrix_axes": "rows: observed class, columns: predicted class, in class order",
        "n_samples": int(len(y_true)),
    }


def block_groups(xy: np.ndarray, size: float) -> np.ndarray:
    """Integer id of the square block of side ``size`` that holds each point."""
    cells = np.floor((xy - xy.min(axis=0)) / size).astype("int64")
    _, ids = np.unique(cells, axis=0, return_inverse=True)
    return ids.ravel()


def _held_out_distances(xy: np.ndarray, folds: np.ndarray) -> np.ndarray:
    out = np.empty(len(xy))
    for f in np.unique(folds):
        test = folds == f
        if test.all():
            return np.full(len(xy), np.inf)
        out[test] = cKDTree(xy[~test]).query(xy[test])[0]
    return out


def _fold_ids(splitter, y: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
    folds = np.empty(len(y), int)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*least populated class.*")
        for i, (_, test) in enumerate(splitter.split(np.zeros(len(y)), y, groups)):
            folds[test] = i
    return folds


def choose_block_size(
    xy: np.ndarray,
    y: np.ndarray,
    map_xy: np.ndarray,
    *,
    n_folds: int = 5,
    random_state: int | None = 0,
) -> tuple[float, dict]:
    """Block side whose held-out distances best match the map-to-observation distances.

    Parameters
    ----------
    xy : ndarray (n, 2)
        Sample coordinates.
    y : ndarray (n,)
        Sample classes (for stratified folds).
    map_xy : ndarray (m, 2)
        Coordinates of pixels where the map is predicted (a random sample).

    Block sides that leave fewer than ``BLOCKS_PER_FOLD`` blocks per fold are not chosen unless
    no side leaves enough (then the one with the most blocks is).

    Returns
    -------
    size : float
        The chosen block side in map units.
    details : dict
        Candidates and their distance-distribution mismatch, for the report.
    """
    map_d = cKDTree(xy).query(map_xy)[0]
    extent = float(np.max(np.ptp(xy, axis=0))) or 1.0
    nn = cKDTree(xy).query(xy, k=2)[0][:, 1]
    smallest = max(float(np.median(nn)), extent / 200)
    candidates = np.geomspace(smallest, extent / 2, 12)
    scores, medians = [], []
    for size in candidates:
        groups = block_groups(xy, size)
        if len(np.unique(groups)) < BLOCKS_PER_FOLD * n_folds:
            scores.append(np.inf)
            medians.append(np.nan)
            continue
        splitter = StratifiedGroupKFold(n_folds, shuffle=True, random_state=random_state)
        cv_d = _held_out_distances(xy, _fold_ids(splitter, y, groups))
        scores.append(wasserstein_distance(cv_d, map_d))
        medians.append(float(np.median(cv_d)))
    best = int(np.argmin(scores)) if np.isfinite(scores).any() else 0  # 0: the most blocks
    details = {
        "candidates": [float(c) for c in candidates],
        "distance_mismatch": [float(s) if np.isfinite(s) else None for s in scores],
        "median_map_to_sample_distance": float(np.median(map_d)),
        "median_held_out_distance": None if np.isnan(medians[best]) else medians[best],
    }
    return float(candidates[best]), details


def cross_validate(
    estimator,
    X: np.ndarray,
    y: np.ndarray,
    xy: np.ndarray,
    class_names: Sequence[str],
    *,
    map_xy: np.ndarray,
    X_eval: np.ndarray | None = None,
    outages: Sequence[np.ndarray] = (),
    sample_weight: np.ndarray | None = None,
    n_folds: int = 5,
    random_state: int | None = 0,
    progress: Callable[[int, int], None] | None = None,
    units_out: bool = False,
) -> dict:
    """Random k-fold and spatial-block cross-validation of an estimator, side by side.

    Parameters
    ----------
    estimator : classifier
        Unfitted estimator with the scikit-learn API; cloned for every fold (a forest's trees
        then grow on at most :data:`CV_TREE_SAMPLES` samples each).
    X, y : arrays
        Features and integer class codes (0..n_classes-1).
    xy : ndarray (n, 2)
        Sample coordinates in map units.
    map_xy : ndarray (m, 2)
        Coordinates of a random sample of mapped pixels (to size the spatial blocks).
    X_eval : ndarray (n, k, n_features), optional
        Features of the k pixels around each sample whose probabilities the map averages (its
        smoothing window). Held-out samples are then scored exactly as the map predicts them.
    outages : sequence of int arrays, optional
        Feature columns that go missing together (an input source under a cloud, or left out).
        Each spatial fold's model also predicts its held-out samples with those columns set to
        NaN, as the map predicts pixels where the source has no data:
        ``spatial_outage_oof_proba`` holds one (n, n_classes) array per outage.
    sample_weight : ndarray (n,), optional
        What each sample counts for when a fold's model is fitted (scores count every sample
        once).
    progress : callable, optional
        Called with (models fitted, models in all) before the first fold and after each.
    units_out : bool, default=False
        Also hold whole units out in turn (:func:`held_out_units`): ``unit_folds`` and
        ``unit_oof_proba`` then give each sample's fold of units and its probabilities from a
        model that never saw its unit.

    Returns
    -------
    dict
        ``random`` and ``spatial`` metrics, the spatial block size, a plain sentence on which to
        believe, and what calibration needs: the out-of-fold probabilities of each sample under
        ``random_oof_proba`` and ``spatial_oof_proba`` (n, n_classes; NaN where the sample's
        neighbourhood has no data) and its fold under ``random_folds`` and ``spatial_folds``
        (n,) int; a sample's out-of-fold probabilities come from the model trained without its fold.
    """
    n_folds = int(min(n_folds, np.bincount(y).max()))
    if n_folds < 2:
        raise ModelError(
            "Cross-validation needs at least two observations of one class; every class has one."
        )
    size, details = choose_block_size(xy, y, map_xy, n_folds=n_folds, random_state=random_state)
    n_blocks = len(np.unique(block_groups(xy, size)))
    if n_blocks < 2:
        places = len(np.unique(xy, axis=0))
        raise ModelError(
            f"Spatial cross-validation needs observations in at least two blocks of {size:g} map "
            f"units; all {len(xy)} lie in one, at {places} distinct pixel(s) of the grid. Add "
            "observations elsewhere in the survey area, or give a finer --resolution if the grid "
            "is coarser than meant."
        )
    random_folds = _fold_ids(
        StratifiedKFold(n_folds, shuffle=True, random_state=random_state), y, None
    )
    spatial_folds = _fold_ids(
        StratifiedGroupKFold(min(n_folds, n_blocks), shuffle=True, random_state=random_state),
        y,
        block_groups(xy, size),
    )
    unit_folds = held_out_units(y, random_state) if units_out else None
    estimator = _fold_estimator(estimator)
    out = {}
    total = len(np.unique(random_folds)) + len(np.unique(spatial_folds))
    total += 0 if unit_folds is None else len(np.unique(unit_folds))
    fitted = [0]

    def step() -> None:
        if progress is not None:
            progress(fitted[0], total)
        fitted[0] += 1

    step()
    for name, folds in (("random", random_folds), ("spatial", spatial_folds)):
        lost = outages if name == "spatial" else ()
        proba, *out_lost = _oof_proba(
            estimator, X, y, folds, len(class_names), X_eval, lost, step, sample_weight
        )
        if lost:
            out["spatial_outage_oof_proba"] = out_lost
        pred = np.argmax(np.nan_to_num(proba, nan=-1), axis=1)
        out[name] = metrics(y, pred, class_names)
        out[name]["n_folds"] = int(len(np.unique(folds)))
        out[f"{name}_oof_proba"] = proba
        out[f"{name}_folds"] = folds
    if unit_folds is not None:
        few_trees = _fold_estimator(estimator, UNIT_TREES)
        out["unit_folds"] = unit_folds
        out["unit_oof_proba"] = _oof_proba(
            few_trees, X, y, unit_folds, len(class_names), X_eval, (), step, sample_weight
        )[0]
    out["spatial"]["block_size"] = size
    out["spatial"]["block_size_choice"] = details
    out["summary"] = summary_sentence(
        out["random"]["overall_accuracy"], out["spatial"]["overall_accuracy"], reach(details)
    )
    return out


def _fold_estimator(estimator, trees: int | None = None):
    """A clone for the folds, cheaper where it is a forest.

    Its trees are grown on at most :data:`CV_TREE_SAMPLES` samples each (where it caps them at
    all) and, given ``trees``, there are at most that many.
    """
    model = clone(estimator)
    params = model.get_params(deep=False)
    if "n_estimators" not in params:  # not a forest
        return model
    if params.get("max_samples"):
        model.set_params(max_samples=min(params["max_samples"], CV_TREE_SAMPLES))
    if trees is not None:
        model.set_params(n_estimators=min(params["n_estimators"], trees))
    return model


def held_out_units(y: np.ndarray, random_state: int | None = 0) -> np.ndarray | None:
    """Folds of whole units: each sample's fold, that of its unit (None under three units).

    A model fitted without a fold's units maps their samples as other units, always wrong, as
    the map names a unit that no observation holds: what its pixels look like beside the
    observed units (how dissimilar) teaches the accuracy calibration outside the area of
    applicability. Units go to at most :data:`UNIT_FOLDS` folds at random, so that every fold
    leaves two units or more to train on.
    """
    units = np.unique(y)
    if len(units) < 3:
        return None
    n_folds = min(UNIT_FOLDS, len(units))
    order = np.random.default_rng(random_state).permutation(len(units))
    fold_of = np.empty(len(units), dtype=int)
    fold_of[order] = np.arange(len(units)) % n_folds
    return fold_of[np.searchsorted(units, y)]


def _oof_proba(
    estimator, X, y, folds, n_classes, X_eval=None, outages=(), step=lambda: None, weight=None
) -> list[np.ndarray]:
    """Out-of-fold probabilities, then one array per outage (its columns set to NaN).

    ``step()`` is called after each fold; ``weight`` (optional) is passed to each fit.
    """
    if X_eval is None:
        X_eval = X[:, None, :]
    out = [np.full((len(y), n_classes), np.nan) for _ in range(1 + len(outages))]
    for f in np.unique(folds):
        test = folds == f
        fit = {} if weight is None else {"sample_weight": weight[~test]}
        model = clone(estimator).fit(X[~test], y[~test], **fit)
        for proba, cols in zip(out, [None, *outages]):
            around = X_eval[test]
            if cols is not None:
                around = around.copy()
                around[..., cols] = np.nan
            proba[test] = _window_mean(model, around, n_classes)
        step()
    return out


def _window_mean(model, around: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean probabilities over each sample's window of pixels (n, k, n_features)."""
    flat = around.reshape(-1, around.shape[-1])
    full = np.zeros((flat.shape[0], n_classes))
    full[:, np.asarray(model.classes_, dtype=int)] = model.predict_proba(flat)
    full[np.isnan(flat).all(axis=1)] = np.nan  # pixels with no data, as in the map
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbourhoods stay NaN
        return np.nanmean(full.reshape(around.shape[0], around.shape[1], n_classes), axis=1)


def reach(details: dict) -> float | None:
    """Held-out distance over map distance (medians) from :func:`choose_block_size`'s details.

    How far spatial CV held observations out from the others, as a share of how far the map's
    pixels lie from the nearest observation; None when not known.
    """
    held = details.get("median_held_out_distance")
    mapped = details["median_map_to_sample_distance"]
    return None if held is None or mapped <= 0 else held / mapped


def by_kind(cv: dict, y: np.ndarray, kind: np.ndarray) -> dict | None:
    """Random- and spatial-CV overall accuracy of the field points and of the polygon pixels.

    ``cv`` is :func:`cross_validate`'s result, ``kind`` each sample's ``"point"`` or
    ``"polygon"``. None unless the samples hold both.
    """
    out = {}
    for k in ("point", "polygon"):
        mask = kind == k
        if not mask.any():
            return None
        out[k] = {"samples": int(mask.sum())}
        for name in ("random", "spatial"):
            pred = np.argmax(np.nan_to_num(cv[f"{name}_oof_proba"][mask], nan=-1), axis=1)
            out[k][name] = float(accuracy_score(y[mask], pred))
    return out


def score_by_kind(cv: dict, y: np.ndarray, kind: np.ndarray, labels_name: str) -> list[str]:
    """Score the points and the polygon pixels apart; say so when polygon pixels dominate.

    Sets ``cv["by_kind"]`` (:func:`by_kind`). Where pixels of mapped polygons are at least
    :data:`POLYGON_SHARE` of the samples, the figures are mostly theirs: ``cv["summary"]`` gets
    the points' own figure and the returned warning gives both kinds'; else it returns none.
    """
    kinds = cv["by_kind"] = by_kind(cv, y, kind)
    if kinds is None:
        return []
    points, polygons = kinds["point"], kinds["polygon"]
    total = points["samples"] + polygons["samples"]
    share = polygons["samples"] / total
    if share < POLYGON_SHARE:
        return []
    cv["summary"] += (
        f" Polygon pixels are {share:.0%} of these samples; on the {points['samples']:,} field "
        f"points alone spatial CV gives {points['spatial']:.2f}."
    )
    return [
        f"Observations '{labels_name}': {polygons['samples']:,} of the {total:,} samples "
        "cross-validated are pixels of mapped polygons, so the accuracy figures are mostly "
        f"theirs. On the {points['samples']:,} field points alone, spatial CV gives "
        f"{points['spatial']:.2f} (random {points['random']:.2f}); on the polygon pixels "
        f"{polygons['spatial']:.2f} (random {polygons['random']:.2f}). Neighbouring pixels of "
        "a polygon share its unit, which flatters random CV above all: go by the spatial figures."
    ]


def little_seen(y: np.ndarray, folds: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Samples held out by a model trained on less than :data:`SEEN_SHARE` of their unit's.

    ``folds`` is each sample's fold (``cross_validate(...)["spatial_folds"]``); ``weight`` is
    what each sample counted for in training (default 1 each; beside points, a polygon's pixels
    share its worth).
    """
    y, folds = np.asarray(y), np.asarray(folds)
    weight = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=float)
    _, fold = np.unique(folds, return_inverse=True)
    held = np.zeros((fold.max() + 1, y.max() + 1))
    np.add.at(held, (fold, y), weight)
    total = held.sum(axis=0)
    return total[y] - held[fold, y] < SEEN_SHARE * total[y]


def fold_notes(cv: dict, asked: int, labels_name: str) -> list[str]:
    """A warning when a cross-validation ran fewer folds than ``asked`` (and why)."""
    ran = {name: cv[name]["n_folds"] for name in ("random", "spatial")}
    if min(ran.values()) >= asked:
        return []
    why = []
    if ran["random"] < asked:
        why.append(f"its most observed unit has {ran['random']} samples")
    if ran["spatial"] < ran["random"]:
        why.append(
            f"they lie in only {ran['spatial']} blocks of {cv['spatial']['block_size']:g} map units"
        )
    return [
        f"Observations '{labels_name}': cross-validation ran {ran['random']} random and "
        f"{ran['spatial']} spatial folds, not the {asked} asked for, as {' and '.join(why)}; "
        "a fold needs a sample of a unit, or a block, of its own."
    ]


def little_seen_notes(
    cv: dict,
    y: np.ndarray,
    class_names: Sequence[str],
    labels_name: str,
    checks: bool = True,
    weight: np.ndarray | None = None,
) -> list[str]:
    """Units the spatial cross-validation could not test.

    Most of their samples were held out by models that had seen less than :data:`SEEN_SHARE` of
    the unit (:func:`little_seen`, with the samples' training ``weight``). ``checks``: the run
    lists observations to check (a forest's).
    """
    flags = little_seen(y, cv["spatial_folds"], weight)
    notes = []
    for code, name in enumerate(class_names):
        mine = y == code
        n, k = int(mine.sum()), int(flags[mine].sum())
        if n < 2 or k < n / 2:  # one observation: told apart (few_sample_notes)
            continue
        recall = cv["spatial"]["per_class_recall"][name]
        notes.append(
            f"Observations '{labels_name}': spatial cross-validation could not test '{name}'. "
            f"{k} of its {n} samples were held out with most of the unit (they lie together, "
            "on one traverse or outcrop), so the model that mapped them had been trained on "
            f"less than {SEEN_SHARE:.0%} of its samples. Its spatial-CV recall ({recall:.2f}) "
            f"says little of the map{', and those samples are not listed to check' * checks}. "
            "Observations of it elsewhere in the area would let the cross-validation test it."
        )
    return notes


def summary_sentence(random_oa: float, spatial_oa: float, reach: float | None = None) -> str:
    """Plain words on which accuracy figure to believe.

    ``reach`` below :data:`REACH` (see :func:`reach`) means no block size could hold the
    observations out as far as the map lies from them: the figures then speak for the
    observations' surroundings only, and the sentence says so.
    """
    if reach is not None and reach < REACH:
        return (
            f"Spatial ({spatial_oa:.2f}) and random ({random_oa:.2f}) cross-validation speak only "
            "for the surroundings of the observations: they cover a small part of the map, whose "
            f"pixels lie {1 / max(reach, 1e-9):.0f} times farther from the nearest observation "
            "than the held-out observations lay from the others (medians). Expect lower accuracy "
            "away from them. The area of applicability shows where the inputs differ from "
            "theirs; observations elsewhere are the remedy."
        )
    gap = random_oa - spatial_oa
    if gap > OPTIMISM_GAP:
        return (
            f"Random cross-validation ({random_oa:.2f}) is {gap:.2f} more optimistic than spatial "
            f"cross-validation ({spatial_oa:.2f}) because nearby observations resemble each other; "
            f"expect about {spatial_oa:.2f} accuracy away from the observations."
        )
    if -gap > OPTIMISM_GAP:
        return (
            f"Spatial cross-validation ({spatial_oa:.2f}) is {-gap:.2f} higher than random "
            f"cross-validation ({random_oa:.2f}), which happens when classes have few observations "
            f"or their names are inconsistent: neither figure is reliable; quote the lower, "
            f"{random_oa:.2f}, and check the class names and counts."
        )
    return (
        f"Random ({random_oa:.2f}) and spatial ({spatial_oa:.2f}) cross-validation agree within "
        f"{OPTIMISM_GAP:.2f}; of the two, believe the spatial figure ({spatial_oa:.2f})."
    )
