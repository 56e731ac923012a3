"""Inner loops shared by the features and the models.

The feature kernels are compiled (numba): every output value is summed in a fixed order from its
own neighbourhood only, never from where a window starts, so streamed results equal whole-image
results exactly. :func:`nearest_rows` is the chunked nearest-neighbour search of the SOM and of
the dissimilarity index, :func:`screen_far` the spectral screen's test. :func:`forest_proba` walks
a fitted scikit-learn forest's trees.

numba compiles the kernels on their first call after an install (about 9 s on 2 cores: the demo
ran in 23.0 s with an empty cache, 13.8 s with it) and keeps them
in its disk cache; :func:`warm_up_in_background` lets the web app do that while the user uploads.
"""

from __future__ import annotations

import contextlib
import importlib
import subprocess
import sys
import threading
import weakref
from pathlib import Path

import numba
import numpy as np
from joblib import effective_n_jobs
from numba import njit, prange

#: Elements of the (rows x nodes) distance block computed at once: 4 MB of float32 stays in cache.
_BLOCK_ELEMENTS = 2**20


def _threadsafe_layer() -> bool:
    """Whether numba's threading layer runs parallel kernels from several threads at once.

    numba takes TBB, else OpenMP (the system's libgomp), else its own workqueue, which aborts
    the process when two threads enter a parallel kernel together: two sessions of the web app
    computing features on a machine without libgomp (python:3.11-slim).
    """
    layer = numba.config.THREADING_LAYER
    if layer in ("safe", "threadsafe"):  # thread-safe layers only, by numba's definition
        return True
    order = [layer] if layer in ("workqueue", "omp", "tbb") else []
    for name in order or numba.config.THREADING_LAYER_PRIORITY:  # the first that loads
        if name == "workqueue":
            return False
        try:
            importlib.import_module(f"numba.np.ufunc.{name}pool")
        except (ImportError, OSError):
            continue
        return True
    return False


#: Held around each parallel kernel when the threading layer is not thread-safe.
_parallel = contextlib.nullcontext() if _threadsafe_layer() else threading.Lock()


def mix64(h: np.ndarray) -> np.ndarray:
    """Splitmix64 finaliser on uint64 arrays (wrapping arithmetic): a well-mixed hash."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


def focal_mean_std(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """NaN-ignoring focal mean and standard deviation over k x k windows ('valid' mode).

    ``a`` has shape (bands, H, W); results have shape (bands, H - k + 1, W - k + 1), float32,
    NaN where a window holds no valid value. Sums are taken in float64.
    """
    a = np.ascontiguousarray(a, dtype="float32")
    shape = (a.shape[0], a.shape[1] - k + 1, a.shape[2] - k + 1)
    mean, var, count = (np.empty(shape, dtype="float32") for _ in range(3))
    if min(shape) > 0:
        with _parallel:
            _box_stats(a, k, mean, var, count)
    return mean, np.sqrt(var, out=var)


@njit(parallel=True, cache=True)
def _box_stats(a, q, mean, var, count):  # pragma: no cover - compiled
    bands, height, width = a.shape
    h, w = height - q + 1, width - q + 1
    rs = np.empty((height, w))
    rq = np.empty((height, w))
    rc = np.empty((height, w))
    for b in range(bands):  # one band's float64 row sums at a time, rows in parallel
        for i in prange(height):
            for j in range(w):
                s = 0.0
                ss = 0.0
                c = 0.0
                for t in range(q):
                    v = np.float64(a[b, i, j + t])
                    if v == v:
                        s += v
                        ss += v * v
                        c += 1.0
                rs[i, j] = s
                rq[i, j] = ss
                rc[i, j] = c
        for i in prange(h):
            for j in range(w):
                s = 0.0
                ss = 0.0
                c = 0.0
                for t in range(q):
                    s += rs[i + t, j]
                    ss += rq[i + t, j]
                    c += rc[i + t, j]
                count[b, i, j] = c
                if c > 0:
                    mean[b, i, j] = s / c
                    var[b, i, j] = max((c * ss - s * s) / (c * c), 0.0)  # exact on integers
                else:
                    mean[b, i, j] = np.nan
                    var[b, i, j] = np.nan


@njit(parallel=True, cache=True)
def _pick_squares(a, mean, var, count, q, out):  # pragma: no cover - compiled
    bands = a.shape[0]
    r = q - 1
    h, w = out.shape[1], out.shape[2]
    need = (q * q) // 2 + 1  # a square counts when over half of it has data
    for i in prange(h):
        for j in range(w):
            best = -1
            best_score = np.inf
            best_count = -1.0
            fallback = 0
            for k in range(4):  # top-left, top-right, bottom-left, bottom-right
                qi, qj = i + r * (k // 2), j + r * (k % 2)
                score = 0.0
                least = np.inf
                for b in range(bands):
                    least = min(least, count[b, qi, qj])
                    m = np.float64(mean[b, qi, qj])
                    if bands == 1:
                        score += var[b, qi, qj]
                    elif m * m > 0:
                        score += var[b, qi, qj] / (m * m)
                if least > best_count:
                    best_count = least
                    fallback = k
                if least >= need and score < best_score:
                    best_score = score
                    best = k
            if best < 0:
                best = fallback
            qi, qj = i + r * (best // 2), j + r * (best % 2)
            for b in range(bands):
                centre = a[b, i + r, j + r]
                out[b, i, j] = mean[b, qi, qj] if centre == centre else np.nan


def kuwahara(a: np.ndarray, groups, q: int) -> np.ndarray:
    """Kuwahara filter: each pixel takes the mean of its most uniform q x q square.

    Of the four q x q squares that have the pixel as a corner, the one whose values vary least
    is averaged, so noise is smoothed without blurring across a contact (Kuwahara et al. 1976).
    Bands of one group (``groups``, one id per band) choose their square together: by variance
    for a one-band group, by the sum of squared coefficients of variation (variance over squared
    mean) for several bands, so bright and dark bands count alike. Squares with data in at most
    half their pixels are skipped (the one with most data is used when all are). NaN in, NaN out
    at the pixel.

    ``a`` has shape (bands, H, W); the result (bands, H - 2(q - 1), W - 2(q - 1)), float32.
    """
    a = np.ascontiguousarray(a, dtype="float32")
    groups = np.asarray(groups)
    r = q - 1
    out = np.empty((a.shape[0], a.shape[1] - 2 * r, a.shape[2] - 2 * r), dtype="float32")
    if min(out.shape) <= 0:
        return out
    for g in np.unique(groups):  # one group at a time: memory for its bands only
        members = np.flatnonzero(groups == g)
        part = np.ascontiguousarray(a[members])
        shape = (len(members), a.shape[1] - r, a.shape[2] - r)
        mean, var, count = (np.empty(shape, dtype="float32") for _ in range(3))
        picked = np.empty((len(members), *out.shape[1:]), dtype="float32")
        with _parallel:
            _box_stats(part, q, mean, var, count)
            _pick_squares(part, mean, var, count, q, picked)
        out[members] = picked
    return out


def shares(a: np.ndarray, pairs) -> np.ndarray:
    """Ratio features as shares: x / (x + y) of each pair's bands floored at 0, in one pass.

    ``a`` has shape (bands, H, W) and ``pairs`` holds (x, y) band indexes; the result is
    (pairs, H, W) float32 in [0, 1]: 0.5 where both are at or below 0, NaN where either is.
    """
    a = np.ascontiguousarray(a, dtype="float32")
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    out = np.empty((len(pairs), a.shape[1], a.shape[2]), dtype="float32")
    if out.size:
        with _parallel:
            _shares(a, pairs, out)
    return out


@njit(parallel=True, cache=True)
def _shares(a, pairs, out):  # pragma: no cover - compiled
    for i in prange(a.shape[1]):
        for p in range(pairs.shape[0]):
            for j in range(a.shape[2]):
                x, y = a[pairs[p, 0], i, j], a[pairs[p, 1], i, j]
                if x != x or y != y:
                    out[p, i, j] = np.nan
                    continue
                x, y = max(x, 0.0), max(y, 0.0)
                out[p, i, j] = x / (x + y) if x + y > 0 else 0.5


def nearest_rows(
    Z: np.ndarray, codebook: np.ndarray, block_elements: int = _BLOCK_ELEMENTS
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest row of ``codebook`` (a SOM's best matching unit, a training sample) and its distance.

    Searched in chunked matrix form.

    Squared distances are ``||z||^2 - 2 z.w + ||w||^2``: one matrix product per chunk of rows,
    never a loop over rows. Rows missing some features are matched over the features they have,
    ``||z_a||^2 - 2 z_a.w + m.(w*w)`` with ``m`` the mask of available features, and the distance
    is scaled by ``sqrt(n_features / n_available)`` to stay comparable.

    Parameters
    ----------
    Z : ndarray (n, n_features)
        Standardised features, NaN where missing.
    codebook : ndarray (n_nodes, n_features)
        Node vectors in the same units.

    Returns
    -------
    bmu : ndarray of int32 (n,)
        Index of the best matching node; -1 for rows with no finite feature.
    distance : ndarray of float32 (n,)
        Euclidean distance to that node; NaN for rows with no finite feature.
    """
    Z = np.asarray(Z, dtype="float32")
    W = np.asarray(codebook, dtype="float32")
    bmu = np.full(len(Z), -1, dtype="int32")
    dist = np.full(len(Z), np.nan, dtype="float32")
    complete = np.isfinite(Z.sum(axis=1))  # one pass; NaN in a row makes its sum NaN
    if complete.all():
        _search(Z, None, W, bmu, dist, block_elements)
        return bmu, dist
    rows = np.flatnonzero(complete)
    if len(rows):
        b, d = bmu[rows], dist[rows]
        _search(Z[rows], None, W, b, d, block_elements)
        bmu[rows], dist[rows] = b, d
    rows = np.flatnonzero(~complete)
    finite = np.isfinite(Z[rows])
    rows, finite = rows[finite.any(axis=1)], finite[finite.any(axis=1)]
    if len(rows):
        b, d = bmu[rows], dist[rows]
        _search(np.where(finite, Z[rows], 0), finite, W, b, d, block_elements)
        bmu[rows], dist[rows] = b, d
    return bmu, dist


def _search(Z, mask, W, bmu, dist, block_elements) -> None:
    """Fill ``bmu`` and ``dist`` for rows of ``Z`` (zeros where ``mask`` is False).

    Each chunk is one matrix product of the rows augmented with ones (or their mask) and the
    codebook augmented with its squared norms: ``[z, 1] @ [[-2 W^T], [||w||^2]]``, so no pass
    over the (rows x nodes) block is spent adding terms. The distance to the chosen node is then
    computed directly, so it does not depend on how rows were chunked.
    """
    f, n_nodes = W.shape[1], len(W)
    extra = 1 if mask is None else f
    Wa = np.empty((f + extra, n_nodes), dtype="float32")
    Wa[:f] = -2 * W.T
    Wa[f:] = (W * W).sum(axis=1) if mask is None else (W * W).T
    step = max(1, block_elements // max(n_nodes, 1))
    za = np.ones((min(step, len(Z)), f + extra), dtype="float32")
    d = np.empty((min(step, len(Z)), n_nodes), dtype="float32")
    for start in range(0, len(Z), step):
        z = Z[start : start + step]
        m = len(z)
        za[:m, :f] = z
        if mask is not None:
            za[:m, f:] = mask[start : start + step]
        np.matmul(za[:m], Wa, out=d[:m])
        best = np.argmin(d[:m], axis=1)
        diff = z - W[best]  # the distance itself row by row: the same whatever the chunk
        if mask is not None:
            diff *= mask[start : start + step]
        sq = np.einsum("ij,ij->i", diff, diff)
        if mask is not None:
            sq *= f / mask[start : start + step].sum(axis=1)
        bmu[start : start + m] = best
        dist[start : start + m] = np.sqrt(sq)


#: Groups up to which a row's complete groups fit one int64 bit mask; beyond, the masks are
#: Python integers (an object array: slower, only for so many inputs).
INT_GROUPS = 62


#: Rows each task of :func:`screen_far` settles with one hint per level (neighbouring pixels).
SCREEN_CHUNK = 4096


def screen_far(
    X: np.ndarray,
    columns: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    levels: list[tuple[np.ndarray, float]],
    limit: float,
) -> np.ndarray:
    """Rows whose standardised ``columns`` lie beyond ``limit`` of every sample of the last level.

    The spectral screen's test (:class:`geomap.screen.SpectralScreen`). ``levels`` are the
    training samples thinned coarse to fine, each with the radius within which every sample
    lies of a kept one, the last holding every sample (radius 0). Level by level, a row within
    ``limit`` of a kept sample is clear, one beyond ``limit + radius`` of all of them is far,
    and only those in between go on. Each sample's squared distance is summed only until it
    passes ``(limit + radius)^2``, and each task first tries the sample that cleared its
    previous row (the pixel beside it), so a clear pixel mostly costs one distance (79% of them
    on the benchmark scene). 1,048,576 pixels of that scene, 18 features measured against
    265/480/1000 samples, 2 cores: 0.15-0.20 s against 0.52-0.53 s for the matrix search of
    :func:`nearest_rows` level by level, the same flags. Rows missing a measured feature are
    not flagged.
    """
    X = np.ascontiguousarray(X, dtype="float32")
    samples = np.ascontiguousarray(np.vstack([kept for kept, _ in levels]), dtype="float64")
    starts = np.cumsum([0] + [len(kept) for kept, _ in levels]).astype(np.int64)
    radii = np.array([radius for _, radius in levels], dtype="float64")
    out = np.zeros(len(X), dtype=bool)
    if len(X):
        with _parallel:
            _screen_far(
                X,
                np.asarray(columns, dtype=np.int64),
                np.asarray(mean, dtype="float64"),
                np.asarray(scale, dtype="float64"),
                samples,
                starts,
                radii,
                float(limit),
                SCREEN_CHUNK,
                out,
            )
    return out


@njit(parallel=True, cache=True)
def _screen_far(
    X, columns, mean, scale, samples, starts, radii, limit, chunk, out
):  # pragma: no cover - compiled
    n, m, n_levels = X.shape[0], columns.shape[0], radii.shape[0]
    for task in prange((n + chunk - 1) // chunk):
        z = np.empty(m)
        hint = starts[:-1].copy()  # per level: the sample that cleared the last row
        for i in range(task * chunk, min(n, (task + 1) * chunk)):
            complete = True
            for c in range(m):
                z[c] = (X[i, columns[c]] - mean[c]) / scale[c]
                complete &= np.isfinite(z[c])
            if not complete:
                continue
            far = False
            for level in range(n_levels):
                clear2, open2 = limit * limit, (limit + radii[level]) ** 2
                clear, undecided = False, False
                for k in range(starts[level] - 1, starts[level + 1]):
                    j = hint[level] if k < starts[level] else k  # the hint first
                    d = 0.0
                    for c in range(m):
                        d += (z[c] - samples[j, c]) ** 2
                        if d > open2:
                            break
                    if d <= clear2:
                        hint[level], clear = j, True
                        break
                    undecided |= d <= open2
                if not undecided or clear:  # settled (the last level, radius 0, always is)
                    far = not clear
                    break
            out[i] = far


#: Rows each task of :func:`forest_proba` walks through every tree: their features (480 KB at 120
#: features) stay in cache while the nodes of one tree are walked for each of them.
FOREST_CHUNK = 1024
#: Rows walked down a tree side by side, one step each in turn until all are at a leaf: their
#: steps do not wait on each other, so the processor overlaps them. 200 trees, 120 features,
#: 65,536 rows, 20 runs each: 7.8 us a row against 10.1 walking one row to its leaf after
#: another on 1 thread (paired median 1.12 x), 5.9 against 6.5 on 2 (1.09 x); 16 to 64 lanes
#: did alike.
FOREST_LANES = 32
#: Node tables of the forests :func:`forest_proba` has walked, made once per fit of a forest.
_NODE_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def forest_proba(forest, X: np.ndarray, complete: bool | None = None) -> np.ndarray:
    """``forest.predict_proba(X)`` of a fitted scikit-learn random forest, faster.

    scikit-learn walks each tree over every row in turn, reading the whole of ``X`` once per
    tree; here each thread takes :data:`FOREST_CHUNK` rows and walks every tree for them while
    they stay in cache, :data:`FOREST_LANES` rows at a time. The trees are walked as
    scikit-learn's ``apply`` walks them (a value equal to a threshold goes left, a missing value
    takes the side the node learnt, or its larger child), each tree's leaf weights are
    normalised as in ``predict_proba`` and summed in tree order, in float64: the same
    probabilities, and the same on every run and any number of threads. Uses
    ``forest.n_jobs`` threads.

    ``complete``: whether ``X`` holds no NaN, as the caller may know already (None: looked
    for). Rows without NaN are walked without the test for a missing value, 1.2 times faster
    (65,536 rows of 120 features of the benchmark survey, 200 trees: 199k against 162k rows/s
    on 1 thread, 376k against 315k on 2, where scikit-learn's ``predict_proba`` ran 233k).
    """
    X = np.ascontiguousarray(X, dtype="float32")
    missing = bool(np.isnan(X).any()) if complete is None else not complete
    trees = forest.estimators_
    made = _NODE_TABLES.get(forest)
    if made is None or made[0] is not trees or made[1] != len(trees):  # refitted since
        made = _NODE_TABLES[forest] = (trees, len(trees), _node_tables(trees))
    tables = made[2]
    out = np.empty((X.shape[0], tables[-1].shape[1]))
    if not len(X):
        return out
    threads = min(effective_n_jobs(forest.n_jobs), numba.config.NUMBA_NUM_THREADS)
    chunk = int(min(FOREST_CHUNK, max(64, -(-len(X) // threads))))
    before = numba.get_num_threads()
    with _parallel:
        numba.set_num_threads(threads)  # this thread's count, restored for the feature kernels
        try:
            _walk_trees(X, *tables, chunk, FOREST_LANES, missing, out)
        finally:
            numba.set_num_threads(before)
    return out


def _node_tables(trees) -> tuple[np.ndarray, ...]:
    """The nodes of all trees end to end, as arrays for :func:`_walk_trees`.

    Each tree is renumbered so that a node's children are neighbours: the k-th split's children
    are nodes 2k + 1 (left) and 2k + 2 (right) of its tree, so a step is ``child + went_right``
    with no branch to mispredict. A node is one 16-byte record of four int32 (``nodes``), so a
    step reads one cache line, not one per field (1.11 x on 1 thread, 1.16 x on 2 against four
    separate arrays; 200 trees, 262,144 rows): its split feature; its threshold in float32
    (read through the ``thresholds`` view of the same records), rounded down (for a float32
    value ``x``, ``x <= t`` exactly when ``x`` is at most the largest float32 not above ``t``);
    the whole table's index of its left child; 1 when a missing value goes right. Beside them,
    class weights normalised to sum to 1 (as ``predict_proba`` normalises a leaf's). A leaf is
    its own child at an infinite threshold, so a row that reached one stays there while the
    other rows of its lane walk on.
    """
    sizes = [t.tree_.node_count for t in trees]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    total, n_classes = int(starts[-1]), trees[0].tree_.value.shape[2]
    if total >= 2**31:
        raise ValueError(f"forest_proba maps forests of fewer than 2**31 nodes; got {total}")
    nodes = np.zeros((total, 4), np.int32)
    thresholds = nodes.view(np.float32)
    thresholds[:, 1] = np.inf
    nodes[:, 2] = np.arange(total)
    value = np.empty((total, n_classes))
    for start, tree in zip(starts, trees):
        tree_ = tree.tree_
        if tree_.value.shape[1] != 1:
            raise ValueError("forest_proba maps forests of one output only")
        split = np.flatnonzero(tree_.children_left != -1)
        new = np.zeros(tree_.node_count, np.int64)  # the root stays first
        new[tree_.children_left[split]] = 2 * np.arange(len(split)) + 1
        new[tree_.children_right[split]] = 2 * np.arange(len(split)) + 2
        at = start + new[split]
        nodes[at, 0] = tree_.feature[split]
        thresholds[at, 1] = _round_down_float32(tree_.threshold[split])
        nodes[at, 2] = start + new[tree_.children_left[split]]
        nodes[at, 3] = tree_.missing_go_to_left[split] == 0
        weights = tree_.value[:, 0, :].astype(np.float64)
        sums = weights.sum(axis=1, keepdims=True)
        sums[sums == 0] = 1.0
        value[start + new] = weights / sums
    return starts, nodes, thresholds, value


def _round_down_float32(t: np.ndarray) -> np.ndarray:
    """The largest float32 at most each float64 of ``t``."""
    with np.errstate(over="ignore"):  # beyond float32's range: infinite, then its largest
        out = t.astype(np.float32)
    above = out.astype(np.float64) > t
    out[above] = np.nextafter(out[above], np.float32(-np.inf))
    return out


@njit(inline="always")
def _steps_complete(X, lane0, m, node, nodes, thresholds):  # pragma: no cover - compiled
    walking = 1
    while walking:  # one step of every row of the lane; a leaf steps to itself
        walking = 0
        for j in range(m):
            at = node[j]
            step = nodes[at, 2] + (X[lane0 + j, nodes[at, 0]] > thresholds[at, 1])
            walking |= step != at
            node[j] = step


@njit(inline="always")
def _steps_missing(X, lane0, m, node, nodes, thresholds):  # pragma: no cover - compiled
    walking = 1
    while walking:
        walking = 0
        for j in range(m):
            at = node[j]
            x = X[lane0 + j, nodes[at, 0]]
            step = nodes[at, 2] + ((x > thresholds[at, 1]) | ((x != x) & (nodes[at, 3] == 1)))
            walking |= step != at
            node[j] = step


@njit(parallel=True, cache=True)
def _walk_trees(
    X, starts, nodes, thresholds, value, chunk, lanes, missing, out
):  # pragma: no cover - compiled
    n, n_trees, n_classes = X.shape[0], starts.shape[0] - 1, value.shape[1]
    for task in prange((n + chunk - 1) // chunk):
        first, stop = task * chunk, min(n, (task + 1) * chunk)
        total = np.zeros((stop - first, n_classes))
        node = np.empty(lanes, np.int64)
        for t in range(n_trees):  # one tree's nodes stay in cache for the chunk's rows
            for lane0 in range(first, stop, lanes):
                m = min(lanes, stop - lane0)
                for j in range(m):  # (a slice assignment and a bool flag ran 1.5 x slower)
                    node[j] = starts[t]
                if missing:
                    _steps_missing(X, lane0, m, node, nodes, thresholds)
                else:
                    _steps_complete(X, lane0, m, node, nodes, thresholds)
                for j in range(m):
                    for c in range(n_classes):
                        total[lane0 + j - first, c] += value[node[j], c]
        for i in range(first, stop):
            for c in range(n_classes):
                out[i, c] = total[i - first, c] / n_trees


def group_weights(n_groups: int) -> np.ndarray:
    """The bit of each of ``n_groups`` groups: int64 up to :data:`INT_GROUPS`, else Python ints.

    Four Sentinel-2 dates as single-band files with radiometrics and a DEM make 76 groups:
    int64 bits would wrap and a complete row would read as missing every group.
    """
    if n_groups <= INT_GROUPS:
        return np.int64(1) << np.arange(n_groups, dtype=np.int64)
    return np.array([1 << i for i in range(n_groups)], dtype=object)


def group_pattern(bits, n_groups: int) -> np.ndarray:
    """Which of ``n_groups`` groups the bit mask ``bits`` holds (bool per group)."""
    return np.array([(int(bits) >> i) & 1 == 1 for i in range(n_groups)], dtype=bool)


def group_bits(Z: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Bit mask of the complete feature groups of each row of ``Z``: which sources have data.

    Bit i stands for the i-th distinct group in sorted order (see :func:`group_weights`). Rows
    with every feature (most pixels) are found with one sum per row; only the others are checked
    group by group.
    """
    names, inverse = np.unique(groups, return_inverse=True)
    weights = group_weights(len(names))
    bits = np.full(len(Z), weights.sum(), dtype=weights.dtype)
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow only sends a row below
        partial = np.flatnonzero(~np.isfinite(Z.sum(axis=1)))  # NaN anywhere makes it NaN
    if len(partial):
        order = np.argsort(inverse, kind="stable")
        starts = np.searchsorted(inverse[order], np.arange(len(names)))
        finite = np.isfinite(Z[partial][:, order])
        complete = np.logical_and.reduceat(finite, starts, axis=1)
        bits[partial] = complete.astype(weights.dtype) @ weights
    return bits


def warm_up() -> None:
    """Compile the feature kernels, or load them from numba's disk cache, on a tiny array."""
    a = np.zeros((1, 4, 4), dtype="float32")
    focal_mean_std(a, 3)
    kuwahara(a, [0], 2)
    shares(np.zeros((2, 4, 4), dtype="float32"), [(0, 1)])
    leaf = np.zeros((1, 4), np.int32)  # one tree, one leaf: its own child at an infinite threshold
    leaf.view(np.float32)[0, 1] = np.inf
    tables = (np.array([0, 1]), leaf, leaf.view(np.float32), np.ones((1, 1)))
    _walk_trees(np.zeros((1, 1), dtype="float32"), *tables, 1, FOREST_LANES, True, np.empty((1, 1)))
    screen_far(np.zeros((1, 1), dtype="float32"), [0], [0.0], [1.0], [(np.zeros((1, 1)), 0.0)], 1)


def warm_up_in_background() -> threading.Thread:
    """Run :func:`warm_up` in a child process (no GIL shared with the caller); returns its waiter.

    The child fills numba's disk cache, so the caller's first feature computation loads the
    kernels instead of compiling them. Failures are the child's own: the caller compiles on
    first use as it would have anyway.
    """
    command = [sys.executable, "-c", "from geomap.kernels import warm_up; warm_up()"]
    # numba keys its cache on the source file: the child must import this very copy of geomap,
    # not one in the caller's working directory (a source tree beside an installed package).
    here = Path(__file__).resolve().parents[1]
    waiter = threading.Thread(
        target=subprocess.run,
        args=(command,),
        kwargs={
            "cwd": here,
            "stdout": subprocess.DEVNULL,
            "stderr": subprocess.DEVNULL,
            "check": False,
        },
        name="geomap-kernel-warm-up",
        daemon=True,
    )
    waiter.start()
    return waiter
