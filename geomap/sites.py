"""Where to send the next field crew: ranked field sites, spread in geography and feature space.

A site is worth visiting where the map expects to be wrong and where an observation would test
it over much ground: its score is its own expected error (1 - expected accuracy,
:mod:`geomap.applicability`) times the expected error of the pixels alike it in the rasters,
summed, as a share of the whole map's (uncertainty weighted by the density of what it stands
for, the "information density" of active learning). Alike means within the area of
applicability's reach of it in the feature space: once the site is observed, those pixels would
fall inside the AOA. So a visit to a rock no observation holds, spread over a tenth of the map
and mapped as another with some confidence, outranks one to a single odd pixel whose own
expected error is higher; and N sites are not N pixels of one uncertain contact, nor N pixels of
one unsampled rock. Pixels are alike only where the same inputs have data (under a cloud,
the other rasters'); for the distance, a feature missing at a pixel counts as the training
mean.

Candidates are collected while the map streams, window by window, with bounded memory: each
window keeps its best pixel per cell of half the minimum spacing (the pool keeps at most
``capacity`` of them by expected error), and a uniform sample of the pixels offered
(:data:`MAP_SAMPLE`: the map's, but for its edge and the rims of clouds; chosen by a hash of
their ground coordinates, so any window order gives the same sample) both stands for the map in
the sums and offers candidates of its own.
:meth:`SiteCandidates.select` then picks sites greedily: the best remaining candidate at least
``min_spacing`` from every site already chosen, its sum counting only pixels alike no site
already chosen.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import Transformer
from shapely.geometry import box

from geomap.errors import InputDataError, MissingFileError
from geomap.grid import ground_crs
from geomap.kernels import group_bits, mix64

#: Columns of the sites table, in order (``walk_m`` only with an access layer).
SITE_COLUMNS = (
    "rank",
    "score",
    "predicted_class",
    "runner_up_class",
    "expected_accuracy",
    "dissimilarity",
    "inside_aoa",
    "map_share_alike",
    "reason",
)
#: Pixels of the map kept, at most, as its uniform sample (see the module's docstring).
MAP_SAMPLE = 4000
#: Candidates whose distances to the map's sample are computed at once (bounds the temporaries).
_CHUNK = 1024
_UNITS = {"": 1.0, "m": 1.0, "km": 1000.0}


def parse_distance(text: str | float) -> float:
    """Metres from a distance such as ``"2km"``, ``"500 m"``, ``"1,5km"`` or ``1500``.

    Raises
    ------
    InputDataError
        If the text is not a positive number with an optional unit m or km.
    """
    match = re.fullmatch(r"\s*([0-9]*[.,]?[0-9]+)\s*(m|km)?\s*", str(text).lower())
    number = match.group(1).replace(",", ".") if match else "0"  # "1,5km": a decimal comma
    value = float(number) * _UNITS[match.group(2) or ""] if match else 0.0
    if not value > 0:
        raise InputDataError(
            f"Distance {text!r} is not a positive distance; give metres or kilometres, such as "
            "'2km', '500m' or 1500."
        )
    return value


def check_site_count(n) -> None:
    """Refuse a number of suggested sites that is not a whole number of at least 1."""
    if int(n) != n or n < 1:
        raise InputDataError(
            f"The number of suggested sites has to be an integer of at least 1; got {n!r}."
        )


def default_spacing(area_m2: float, n: int) -> float:
    """Half the side of a square cell of the map's ground area shared among ``n`` sites, in m."""
    return 0.5 * float(np.sqrt(abs(area_m2) / max(int(n), 1)))


class AccessLayer:
    """Roads or tracks (any vector file) and the zone within walking distance of them.

    Distances are measured in ground metres: in the map CRS where its units are ground metres,
    else in an azimuthal equidistant projection centred on the map (:func:`geomap.grid.ground_crs`:
    degrees, feet, Web Mercator).

    Parameters
    ----------
    geometry : shapely geometry
        Union of the access features in the CRS distances are measured in.
    max_walk : float
        Walking distance in metres.
    to_ground : pyproj.Transformer, optional
        From map coordinates to those of ``geometry``; None when they are the same.
    """

    def __init__(self, geometry, max_walk: float, to_ground: Transformer | None = None) -> None:
        self.geometry = geometry
        self.max_walk = float(max_walk)
        self.to_ground = to_ground
        self.zone = geometry.buffer(max_walk)
        shapely.prepare(self.zone)

    def _ground(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (x, y) if self.to_ground is None else self.to_ground.transform(x, y)

    def reachable(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """True where a point (map coordinates) lies within walking distance."""
        if not len(x):
            return np.zeros(0, bool)
        return shapely.contains_xy(self.zone, *self._ground(x, y))

    def walk(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Straight-line distance in metres from each point to the nearest access feature."""
        return shapely.distance(self.geometry, shapely.points(*self._ground(x, y)))


def read_access(path: str | Path, crs, bounds: Sequence[float], max_walk: float) -> AccessLayer:
    """Read an access layer (roads.gpkg, tracks.shp, ...) for a map.

    Parameters
    ----------
    path : file path
        Any vector file geopandas reads.
    crs : CRS
        The map's CRS.
    bounds : (left, bottom, right, top)
        The map's bounds in ``crs``.
    max_walk : float
        Largest distance from an access feature to a site, in metres.

    Raises
    ------
    MissingFileError
        If the file does not exist.
    InputDataError
        If it cannot be read, has no CRS or no feature, ``max_walk`` is not positive, or no part
        of it comes within ``max_walk`` of the map.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"Access layer '{path}' does not exist; check the path.")
    if not max_walk > 0:
        raise InputDataError(f"max_walk has to be a positive distance; got {max_walk!r}.")
    layer = _access_layer(path)
    try:
        frame = gpd.read_file(path, layer=layer)
    except Exception as exc:  # pyogrio raises its own errors for files it cannot open
        raise InputDataError(
            f"Access layer '{path}' cannot be read as a vector file ({exc}); give a GeoPackage, "
            "GeoJSON or Shapefile of roads or tracks."
        ) from None
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if frame.crs is None or frame.empty:
        what = "has no CRS" if frame.crs is None else "holds no geometry"
        raise InputDataError(f"Access layer '{path}' {what}; give a file with features and a CRS.")
    ground = ground_crs(crs, bounds)
    to_ground = None if ground is None else Transformer.from_crs(crs, ground, always_xy=True)
    geometry = frame.to_crs(crs if ground is None else ground).geometry.union_all()
    map_box = box(*bounds)
    if to_ground is not None:
        side = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
        edges = map_box.segmentize(side / 16)  # a box's sides curve in most other CRSs
        map_box = shapely.transform(edges, to_ground.transform, interleaved=False)
    if not geometry.intersects(map_box.buffer(max_walk)):
        raise InputDataError(
            f"Access layer '{path}' (bounds {tuple(round(v) for v in frame.total_bounds)} in "
            f"{frame.crs.to_string()}) comes nowhere within {max_walk:g} m of the map "
            f"(bounds {tuple(round(v) for v in bounds)}); check the file or its CRS."
        )
    return AccessLayer(geometry, max_walk, to_ground)


def _access_layer(path: Path) -> str | None:
    """The layer of roads or tracks in a file of several: the only one of lines."""
    layers = pyogrio.list_layers(path)
    if len(layers) < 2:
        return None
    lines = [
        str(name)
        for name, kind in layers
        if "line" in str(kind).lower() and pyogrio.read_info(path, layer=name)["features"]
    ]  # a GPX file lists its routes and tracks even when it holds none
    if len(lines) == 1:
        return lines[0]
    listed = ", ".join(f"'{name}' ({kind})" for name, kind in layers)
    raise InputDataError(
        f"Access layer '{path}' holds {len(layers)} layers, {listed}, and "
        f"{'none' if not lines else len(lines)} of them of lines: geomap cannot tell which holds "
        "the roads or tracks. Save that layer to a file of its own (in QGIS: Export > Save "
        "Features As) and give that file."
    )


class SiteCandidates:
    """Candidate field sites collected window by window, then N chosen, ranked and spread.

    Parameters
    ----------
    applicability : Applicability
        The fitted applicability of the map (its feature space, mean distance and threshold).
    class_names : sequence of str
        Class names, in the order of the probabilities' columns.
    n : int
        Number of sites to suggest (at least 1).
    min_spacing : float
        Least distance between two sites, in ground metres (see :func:`default_spacing`).
    crs : CRS
        The map's CRS, for the returned sites.
    access : AccessLayer, optional
        Keep only pixels within walking distance of it.
    to_ground : pyproj.Transformer, optional
        From map coordinates to a CRS in ground metres (:func:`geomap.grid.ground_crs`), for
        maps whose units are not ground metres; spacing is then measured there.
    capacity : int, optional
        Most candidates kept by expected error at once; default ``max(5000, 100 * n)``. The
        map's sample, up to :data:`MAP_SAMPLE` pixels, adds its own.

    Raises
    ------
    InputDataError
        If ``n`` < 1 or ``min_spacing`` is negative.
    """

    def __init__(
        self,
        applicability,
        class_names: Sequence[str],
        n: int,
        min_spacing: float,
        crs,
        *,
        access: AccessLayer | None = None,
        capacity: int | None = None,
        to_ground: Transformer | None = None,
    ) -> None:
        check_site_count(n)
        if not min_spacing >= 0:
            raise InputDataError(f"min_spacing has to be zero or more; got {min_spacing!r}.")
        self.applicability = applicability
        self.class_names = list(class_names)
        self.n, self.min_spacing, self.crs, self.access = int(n), float(min_spacing), crs, access
        self.to_ground = to_ground
        self.capacity = int(capacity or max(5000, 100 * self.n))
        self.valid_pixels = 0
        self.reachable_pixels = 0
        self._pool: dict[str, np.ndarray] = {}
        self._sample: dict[str, np.ndarray] = {}

    def add(self, x, y, X, proba, di, aoa, expected_accuracy) -> None:
        """Offer a window's pixels (flat arrays, one row per pixel).

        Parameters
        ----------
        x, y : ndarray (n_pixels,)
            Map coordinates of the pixel centres.
        X : ndarray (n_pixels, n_features)
            The pixels' features.
        proba : ndarray (n_pixels, n_classes)
            The map's class probabilities.
        di, aoa, expected_accuracy : ndarray (n_pixels,)
            What :meth:`Applicability.transform` returned for these pixels.
        """
        accuracy = np.asarray(expected_accuracy, dtype="float64").ravel()
        valid = np.isfinite(accuracy)
        self.valid_pixels += int(valid.sum())
        x, y = np.asarray(x, "float64").ravel(), np.asarray(y, "float64").ravel()
        reach = valid.copy()
        if self.access is not None:
            reach[valid] = self.access.reachable(x[valid], y[valid])
        self.reachable_pixels += int(reach.sum())
        gx, gy = (x, y) if self.to_ground is None else self.to_ground.transform(x, y)
        gx, gy = np.asarray(gx, "float64"), np.asarray(gy, "float64")
        hashes = _sample_keys(gx, gy)  # the sample's keys, and the pool's tie-breaks
        columns = (x, y, gx, gy, np.asarray(X), np.asarray(proba), di, aoa, accuracy, reach, hashes)
        rows = self._best_per_cell(gx, gy, 1 - accuracy, reach)
        if len(rows):
            score = -(1 - accuracy[rows])  # the highest expected errors are kept
            self._pool = _keep(self._pool, _rows(self, columns, rows), score, self.capacity)
        rows = np.flatnonzero(valid)
        if len(self._sample.get("key", ())) == MAP_SAMPLE:  # full: only smaller keys get in
            rows = rows[hashes[rows] < self._sample["key"].max()]
        keys = hashes[rows]
        if len(rows) > MAP_SAMPLE:  # the window's own smallest keys: the rest cannot make it
            first = np.argpartition(keys, MAP_SAMPLE - 1)[:MAP_SAMPLE]
            rows, keys = rows[first], keys[first]
        if len(rows):
            window = _rows(self, columns, rows)
            self._sample = _keep(self._sample, window, window["hash"], MAP_SAMPLE)

    def _best_per_cell(self, x, y, score, keep) -> np.ndarray:
        """Rows of the best-scoring kept pixel in each cell of half the spacing (ground metres)."""
        rows = np.flatnonzero(keep)
        if self.min_spacing == 0 or len(rows) == 0:
            return rows
        cell = self.min_spacing / 2
        cx, cy = np.floor(x[rows] / cell).astype("int64"), np.floor(y[rows] / cell).astype("int64")
        rows = rows[np.lexsort((-score[rows], cy, cx))]  # by cell, best first within a cell
        cx, cy = np.floor(x[rows] / cell).astype("int64"), np.floor(y[rows] / cell).astype("int64")
        first = np.ones(len(rows), bool)
        first[1:] = (cx[1:] != cx[:-1]) | (cy[1:] != cy[:-1])
        return rows[first]

    def select(self) -> gpd.GeoDataFrame:
        """The ``n`` sites, ranked by score, at least ``min_spacing`` apart.

        Fewer than ``n`` rows come back when the spacing leaves no room for more, or the map
        has fewer pixels (a map of 28 coarse pixels, with the default 30 sites).

        Raises
        ------
        InputDataError
            If no mapped pixel is within walking distance.
        """
        if not self._pool and (self.access is None or not self.valid_pixels):
            raise InputDataError("The map has no mapped pixel to suggest field sites on.")
        if not self._pool:
            raise InputDataError(
                f"None of the {self.valid_pixels} mapped pixels lies within "
                f"{self.access.max_walk:g} m of the access layer; raise the walking "
                "distance or give another access layer."
            )
        pool = self._candidates()
        chosen, scores, alike = self._greedy(pool)
        return self._table(pool, np.asarray(chosen, int), scores, alike)

    def _candidates(self) -> dict:
        """The pool and the reachable pixels of the map's sample, each place once."""
        reach = self._sample["reach"]
        both = {k: np.concatenate([self._pool[k], self._sample[k][reach]]) for k in self._pool}
        _, first = np.unique(np.column_stack([both["x"], both["y"]]), axis=0, return_index=True)
        return {k: v[first] for k, v in both.items()}  # by place: the same in any window order

    def _greedy(self, pool: dict) -> tuple[list[int], list[float], np.ndarray]:
        """Chosen rows of ``pool``, their scores and the share of the map each newly stands for.

        A site stands for the pixels alike it and alike no site chosen before it: the shares add
        up to the share of the map alike some site.

        Once a site is chosen, the sample pixels alike it count for no later one: the scores of
        the candidates within twice the reach of it (only they can be alike one of those
        pixels) lose those pixels' error. No candidates x sample matrix is kept (416 MB for
        --suggest 1000), only a chunk of it at a time.
        """
        reach = self.applicability.mean_distance_ * self.applicability.threshold_
        own = pool["score"].astype("float64")  # the candidate's own expected error
        n = len(own)
        spread = bool(np.isfinite(reach) and reach > 0)
        if spread:
            by_key = np.argsort(self._sample["key"], kind="stable")  # any window order's
            sample = self._sample["z"][by_key].astype("float64")
            inputs = (pool["inputs"], self._sample["inputs"][by_key])
            centre = sample.mean(axis=0)  # distances near the origin keep float32's digits
            sample = (sample - centre).astype("float32")
            z = (pool["z"].astype("float64") - centre).astype("float32")
            norms = np.einsum("ij,ij->i", z, z)
            error = self._sample["score"][by_key].astype("float64")
            if not error.sum() > 1e-12:  # every pixel expected right: spread by coverage alone
                error, own = np.ones(len(error)), np.ones(n)
            error /= error.sum()
            mass = _mass(z, sample, reach, error, inputs)
            free = np.ones(len(error), bool)  # sample pixels alike no site chosen yet
        else:  # no threshold: the pixel's own expected error, spread by the spacing alone
            mass = np.ones(n)
        allowed = np.ones(n, bool)
        chosen, scores, shares = [], [], []
        while len(chosen) < self.n and allowed.any():
            score = np.where(allowed, own * mass, -np.inf)
            ties = np.flatnonzero(score >= score.max() - 1e-12)  # the pixel's own error decides
            i = int(ties[np.argmax(own[ties])])
            chosen.append(i)
            scores.append(float(score[i]))
            gap = np.hypot(pool["gx"] - pool["gx"][i], pool["gy"] - pool["gy"][i])
            allowed &= gap >= max(self.min_spacing, 1e-9)
            if not spread:
                shares.append(np.nan)
                continue
            newly = _alike(z[i : i + 1], sample, reach, (inputs[0][i : i + 1], inputs[1]))[0]
            newly &= free
            shares.append(np.count_nonzero(newly) / len(free))
            if newly.any():  # the pixels alike this site count for no later one
                near = np.flatnonzero(norms + norms[i] - 2 * (z @ z[i]) <= (2.001 * reach) ** 2)
                mass[near] -= _mass(
                    z[near], sample[newly], reach, error[newly], (inputs[0][near], inputs[1][newly])
                )
                error[newly], free[newly] = 0.0, False
        return chosen, scores, np.asarray(shares, dtype="float64")

    def _table(
        self, pool: dict, chosen: np.ndarray, scores: list[float], alike: np.ndarray
    ) -> gpd.GeoDataFrame:
        pool = {k: v[chosen] for k, v in pool.items() if k not in ("z", "gx", "gy")}
        pool["alike"] = alike
        names = np.asarray(self.class_names, dtype=object)
        frame = pd.DataFrame(
            {
                "rank": np.arange(1, len(chosen) + 1),
                "score": np.round(scores, 6),
                "predicted_class": names[pool["code"]],
                "runner_up_class": np.where(pool["runner_up"] >= 0, names[pool["runner_up"]], ""),
                "expected_accuracy": np.round(pool["accuracy"], 4),
                "dissimilarity": np.round(pool["di"], 4),
                "inside_aoa": pool["aoa"] == 1,
                "map_share_alike": np.round(alike, 4),
                "reason": [self._reason(pool, k) for k in range(len(chosen))],
                "x": pool["x"],
                "y": pool["y"],
            }
        )
        if self.access is not None:
            frame["walk_m"] = np.round(self.access.walk(pool["x"], pool["y"]), 1)
        geometry = gpd.points_from_xy(pool["x"], pool["y"])
        return gpd.GeoDataFrame(frame, geometry=geometry, crs=self.crs)

    def _reason(self, pool: dict, k: int) -> str:
        name, accuracy, di = self.class_names[pool["code"][k]], pool["accuracy"][k], pool["di"][k]
        other = pool["runner_up"][k]
        could = f" but could be {self.class_names[other]}" if other >= 0 else ""
        fewer = (
            "; some rasters have no data here (a cloud, a gap), so it is mapped from the others"
            if pool["fewer"][k]
            else ""
        )
        alike = pool["alike"][k]
        if np.isfinite(alike):  # no threshold: no reach to measure alike pixels with
            share = "under 1%" if alike < 0.005 else f"{alike:.0%}"
            fewer = (
                f"; it stands for {share} of the map (pixels like it in the rasters, like no "
                f"site ranked before){fewer}"
            )
        if pool["aoa"][k] == 1:
            which = "which of the two it is" if other >= 0 else "which unit it is"
            return (
                f"mapped {name}{could} (expected accuracy {accuracy:.2f}); inside "
                f"the area of applicability: an observation settles {which}{fewer}"
            )
        limit = pool["limit"][k]
        unlike = _above(di, limit) if np.isfinite(di) and np.isfinite(limit) else "inputs missing"
        if pool["fewer"][k] and np.isfinite(limit) and limit != self.applicability.threshold_:
            unlike += ", the threshold of the rasters with data here"  # beside the full one
        return (
            f"mapped {name}{could} (expected accuracy {accuracy:.2f}) outside the area of "
            f"applicability ({unlike}): unlike any observation{fewer}"
        )


def _rows(candidates: SiteCandidates, columns: tuple, rows: np.ndarray) -> dict:
    """The candidates' fields of ``rows`` of a window's flat ``columns`` (see ``add``)."""
    x, y, gx, gy, X, proba, di, aoa, accuracy, reach, hashes = columns
    chances = np.nan_to_num(proba[rows], nan=-1.0)
    order = np.argsort(-chances, axis=1)
    second = order[:, min(1, order.shape[1] - 1)]
    likely = np.take_along_axis(chances, second[:, None], axis=1)[:, 0] > 0
    app = candidates.applicability
    embedded = app.embed(X[rows])
    inputs = group_bits(embedded, app.groups_)  # which inputs have data there
    return {
        "x": x[rows],
        "y": y[rows],
        "gx": gx[rows],
        "gy": gy[rows],
        "score": 1 - accuracy[rows],
        "code": order[:, 0],
        "runner_up": np.where(likely & (order.shape[1] > 1), second, -1),  # -1: none
        "accuracy": accuracy[rows],
        "di": np.asarray(di, "float64").ravel()[rows],
        "aoa": np.asarray(aoa, "float64").ravel()[rows],
        "z": np.nan_to_num(embedded),
        "inputs": inputs,
        "fewer": np.isnan(X[rows]).any(axis=1),
        "limit": app.threshold_of(inputs),
        "reach": reach[rows],
        "hash": hashes[rows],
    }


def _keep(kept: dict, window: dict, order: np.ndarray, capacity: int) -> dict:
    """``kept`` and ``window`` together, cut to the ``capacity`` rows lowest in ``order``.

    ``order`` ranks the window's rows (kept with them as "key"); the rows' "hash" breaks ties,
    so the rows kept do not depend on the order the windows came in.
    """
    window = {**window, "key": np.asarray(order)}
    both = window if not kept else {k: np.concatenate([kept[k], window[k]]) for k in window}
    if len(both["key"]) > capacity:
        first = np.lexsort((both["hash"], both["key"]))[:capacity]
        both = {k: v[np.sort(first)] for k, v in both.items()}
    return both


def _sample_keys(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """A well-mixed 64-bit hash of each centimetre-rounded ground coordinate pair."""
    a = np.round(gx * 100).astype("int64").view("uint64")
    b = np.round(gy * 100).astype("int64").view("uint64")
    return mix64(a * np.uint64(0x9E3779B97F4A7C15) ^ (b + np.uint64(0x632BE59BD9B4E019)))


def _alike(z: np.ndarray, sample: np.ndarray, reach: float, inputs: tuple) -> np.ndarray:
    """Booleans (rows of ``z`` x sample): the sample pixel is alike the row.

    Alike: within ``reach`` of it, and with data in the same inputs (``inputs``: the rows' and
    the sample's :func:`geomap.kernels.group_bits`). A missing feature is embedded as the
    training mean, so a pixel under a cloud was alike every pixel whose optical bands lie near
    the mean: a site there stood for twice the map a clear one did.
    """
    norms = np.einsum("ij,ij->i", sample, sample)
    d2 = np.einsum("ij,ij->i", z, z)[:, None] + norms[None, :] - 2 * z @ sample.T
    return (d2 <= reach * reach) & (inputs[0][:, None] == inputs[1][None, :])


def _mass(
    z: np.ndarray, sample: np.ndarray, reach: float, weight: np.ndarray, inputs: tuple
) -> np.ndarray:
    """Each row's sum of ``weight`` over the sample pixels alike it (see :func:`_alike`)."""
    mass = np.empty(len(z))
    for start in range(0, len(z), _CHUNK):
        rows = slice(start, start + _CHUNK)
        mass[rows] = _alike(z[rows], sample, reach, (inputs[0][rows], inputs[1])) @ weight
    return mass


def _above(di: float, limit: float) -> str:
    """The words "dissimilarity 0.52 > 0.48", with the digits that tell the two apart."""
    for digits in range(2, 6):
        if round(di, digits) > round(limit, digits):
            break
    return f"dissimilarity {di:.{digits}f} > {limit:.{digits}f}"
