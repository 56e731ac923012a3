"""Compiled inner loops (numba) of the feature computation.

Every output value is summed in a fixed order from its own neighbourhood only, never from where a
window starts, so streamed results equal whole-image results exactly.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def _focal(a, k, mean, std):  # pragma: no cover - compiled
    bands, height, width = a.shape
    h, w = height - k + 1, width - k + 1
    for b in prange(bands):
        rs = np.empty((height, w))
        rq = np.empty((height, w))
        rc = np.empty((height, w))
        for i in range(height):
            for j in range(w):
                s = 0.0
                q = 0.0
                c = 0.0
                for t in range(k):
                    v = np.float64(a[b, i, j + t])
                    if v == v:
                        s += v
                        q += v * v
                        c += 1.0
                rs[i, j] = s
                rq[i, j] = q
                rc[i, j] = c
        for i in range(h):
            for j in range(w):
                s = 0.0
                q = 0.0
                c = 0.0
                for t in range(k):
                    s += rs[i + t, j]
                    q += rq[i + t, j]
                    c += rc[i + t, j]
                if c > 0:
                    m = s / c
                    mean[b, i, j] = m
                    std[b, i, j] = np.sqrt(max(q / c - m * m, 0.0))
                else:
                    mean[b, i, j] = np.nan
                    std[b, i, j] = np.nan


def focal_mean_std(a: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """NaN-ignoring focal mean and standard deviation over k x k windows ('valid' mode).

    ``a`` has shape (bands, H, W); results have shape (bands, H - k + 1, W - k + 1), float32,
    NaN where a window holds no valid value. Sums are taken in float64.
    """
    a = np.ascontiguousarray(a, dtype="float32")
    shape = (a.shape[0], a.shape[1] - k + 1, a.shape[2] - k + 1)
    mean = np.empty(shape, dtype="float32")
    std = np.empty(shape, dtype="float32")
    if min(shape) > 0:
        _focal(a, k, mean, std)
    return mean, std
