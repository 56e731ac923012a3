"""Observations to check: points the spatial cross-validation confidently maps as another unit.

A field observation can be wrong: a misidentified rock, a GPS fix on the wrong side of a contact,
a float block, a unit too small for the rasters to resolve. A held-out prediction does not know
the observation it is compared with, so where the model trained without an observation's
surroundings names another unit with confidence, the observation is worth a second look.

An observation is listed when the held-out map (spatial cross-validation: the model trained
without the observation's block) names another unit there and gives the observed unit less than
:data:`P_OBSERVED_MAX` (one chance in ten). The list is ranked by p_mapped - p_observed, the most
confident disagreement first. Polygons (mapped units) are not listed: their pixels are not
observations. On 19 generated scenes (5,700 points, 2% misidentified) the rule listed 4.1% of
the points; 43% of those were misidentified (21 times the base rate) and they held 88% of the
misidentified points; confident learning's per-class thresholds (Northcutt et al. 2021) listed
3.8%, 37% of them misidentified, 69% found (tuning scenes 0-6 and 100-111;
``benchmarks/recheck.py`` scores the list on others).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
from rasterio.crs import CRS

from geomap.export import write_points
from geomap.placement import Samples
from geomap.validate import little_seen

FILES = ("observations_to_check.gpkg", "observations_to_check.csv")
_COLUMNS = ("file", "observed", "held_out", "p_observed", "p_held_out")
#: Largest held-out probability of the observed unit at a listed observation.
P_OBSERVED_MAX = 0.1
RULE = (
    "points where the held-out (spatial CV) map names another unit and gives the observed one "
    f"a probability below {P_OBSERVED_MAX}"
)


def observations_to_check(
    samples: Samples,
    y: np.ndarray,
    oof_proba: np.ndarray,
    class_names: Sequence[str],
    crs: CRS,
    folds: np.ndarray,
) -> gpd.GeoDataFrame:
    """The point observations to check, ranked, in the map's CRS.

    Parameters
    ----------
    samples : Samples
        The samples cross-validated, in the order of ``y`` and ``oof_proba``.
    y : ndarray of shape (n,)
        Class codes of the samples.
    oof_proba : ndarray of shape (n, n_classes)
        Held-out probabilities of the spatial cross-validation (NaN rows: not held out).
    class_names : sequence of str
        Names of the class codes.
    crs : CRS
        The CRS of ``samples.xy``.
    folds : ndarray of shape (n,)
        The spatial fold of each sample. A sample held out by a model trained on too few of its
        unit's samples (:func:`geomap.validate.little_seen`) is not listed: that model could
        only map it as another unit.

    Returns
    -------
    GeoDataFrame
        ``rank``, ``site``, the file's key (its identifier column by name, e.g. ``obs_id``,
        with the value as written; else ``line`` or ``fid``), ``file``, ``observed``,
        ``held_out`` (the class held-out mapped), ``p_observed``, ``p_held_out`` and the point,
        most confident disagreement first.
    """
    y = np.asarray(y)
    proba = np.asarray(oof_proba, dtype="float64")
    held = np.isfinite(proba).all(axis=1)
    filled = np.where(held[:, None], proba, 0.0)
    best = np.argmax(filled, axis=1)
    p_own = filled[np.arange(len(y)), y]
    listed = held & (samples.kind == "point") & (best != y) & (p_own < P_OBSERVED_MAX)
    listed &= ~little_seen(y, folds, samples.weight)
    idx = np.flatnonzero(listed)
    p_observed, p_other = proba[idx, y[idx]], proba[idx, best[idx]]
    order = np.argsort(-(p_other - p_observed), kind="stable")
    idx, p_observed, p_other = idx[order], p_observed[order], p_other[order]
    names = np.asarray(class_names, dtype=object)
    key = samples.counts.get("site_key") or "fid"
    reserved = ("rank", "site", *_COLUMNS, "geometry", "fid")  # a GeoPackage has its own fid
    key = key if key.casefold() not in reserved else f"{key}_in_file"
    return gpd.GeoDataFrame(
        {
            "rank": np.arange(1, len(idx) + 1),
            "site": samples.site[idx],
            key: _as_written(samples.site_key[idx]),  # the file's own key, for a GIS join
            "file": samples.source[idx],
            "observed": names[y[idx]],
            "held_out": names[best[idx]],
            "p_observed": np.round(p_observed, 3),
            "p_held_out": np.round(p_other, 3),
        },
        geometry=gpd.points_from_xy(samples.xy[idx, 0], samples.xy[idx, 1]),
        crs=crs,
    )


def _as_written(keys: np.ndarray) -> np.ndarray:
    """Keys that are all plain integers as integers (a join needs the same type), else text."""
    if len(keys) and all(re.fullmatch(r"-?[1-9]\d{0,17}|0", k) for k in keys):
        return keys.astype("int64")
    return keys


def write_observations_to_check(
    out_dir: Path,
    samples: Samples,
    y: np.ndarray,
    oof_proba: np.ndarray,
    class_names: Sequence[str],
    crs: CRS,
    folds: np.ndarray,
) -> dict | None:
    """Write :data:`FILES` when some point observation is to be checked; the report's entry.

    None when there are no point observations (a mapped patch only).
    """
    n_points = int((samples.kind == "point").sum())
    if n_points == 0:
        return None
    table = observations_to_check(samples, y, oof_proba, class_names, crs, folds)
    if len(table):
        write_points(table, out_dir / FILES[0], out_dir / FILES[1], "observations_to_check")
    return {
        "n_listed": len(table),
        "n_points": n_points,
        "rule": RULE,
        "first": table.drop(columns="geometry").head(10).to_dict("records"),
    }
