"""Blurred geophysics: Gaussian sums over a fixed 90 m lattice of box-filtered truth."""

from __future__ import annotations

import numpy as np

from geomap.synthetic._geology import _chunked

_NODE = 90.0  # lattice spacing (m) of the blurred geophysics
_SUB = np.array([-30.0, 0.0, 30.0])  # box-filter offsets inside one lattice cell


def _lattice(x: np.ndarray, y: np.ndarray, fn, table: np.ndarray, pad: int):
    """Box-filtered ``table[:, fn(x, y)]`` on the 90 m lattice around the points.

    Returns the lattice indices of the first node and the values, shaped (properties, ny, nx).
    """
    ix0, iy0 = int(np.floor(x.min() / _NODE)) - pad, int(np.floor(y.min() / _NODE)) - pad
    ix1, iy1 = int(np.floor(x.max() / _NODE)) + pad, int(np.floor(y.max() / _NODE)) + pad
    nx, ny = np.meshgrid(np.arange(ix0, ix1 + 1) * _NODE, np.arange(iy0, iy1 + 1) * _NODE)
    total = 0.0
    for ox in _SUB:
        for oy in _SUB:
            total = total + table[:, _chunked(fn, nx + ox, ny + oy)]
    return ix0, iy0, total / _SUB.size**2


def _blurred(x, y, fn, table: np.ndarray, sigma: float, asym: float = 0.0) -> np.ndarray:
    """Gaussian blur (sigma metres) of per-unit ``table`` values of ``fn`` codes.

    ``asym`` > 0 weights sources north of a point up and those far south negative, as induced
    magnetisation does in the northern hemisphere: anomalies lie south of their sources.
    """
    reach = int(np.ceil(3 * sigma / _NODE))
    ix0, iy0, lattice = _lattice(x, y, fn, table, reach + 1)
    offsets = range(1 - reach, reach + 1)

    def blur(px: np.ndarray, py: np.ndarray) -> np.ndarray:
        bx, by = np.floor(px / _NODE).astype(np.int64), np.floor(py / _NODE).astype(np.int64)
        wx = [np.exp(-0.5 * (((bx + o) * _NODE - px) / sigma) ** 2) for o in offsets]
        dys = [((by + o) * _NODE - py) / sigma for o in offsets]
        values = lattice.reshape(len(table), -1)
        total, norm = 0.0, 0.0
        for oy, dy in zip(offsets, dys, strict=True):
            wy = np.exp(-0.5 * dy**2)
            row = (by + oy - iy0) * lattice.shape[2] - ix0
            for ox, w in zip(offsets, wx, strict=True):
                total = total + w * wy * (1 + asym * dy) * values[:, row + bx + ox]
                norm = norm + w * wy
        return total / norm

    return _chunked(blur, x, y)
