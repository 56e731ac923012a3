"""Streamed SOM outputs: every window's best matching units -> clusters, novelty and class maps.

One pass over the grid: each window's features are matched to the map's nodes once (a chunked
matrix search, :func:`geomap.kernels.nearest_rows`) and every output is read off the
nodes: the cluster, the quantization error and its percentile, and, for the semi-supervised model,
the class probabilities and the label distance. Windows go through the pipeline of
:func:`geomap.predict.stream_windows`: the next window's features are computed while the current
one is matched and the previous one written. Memory is bounded by the window size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from geomap.export import CLASS_NODATA, raster_profile, style_class_raster
from geomap.features import FeatureRecipe, feature_groups
from geomap.models import SOMClassifier, SOMClusters
from geomap.predict import (
    UNCERTAINTY_BANDS,
    PredictionSummary,
    stream_windows,
    window_side,
    write_class_window,
)
from geomap.screen import screen_flags
from geomap.sources import GDAL_CACHE_BYTES
from geomap.stack import BLOCK_SIZE, RasterStack

QE_BANDS = ("quantization_error", "percentile", "missing_features")


@dataclass
class SOMSummary:
    """Counts and timings of a streamed SOM pass: of clusters, and of classes for ``som``."""

    clusters: PredictionSummary
    classes: PredictionSummary | None = None
    seconds: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SOMLayers:
    """What a SOM pass writes: the fitted models, names and colours, the file stem of clusters."""

    clusters: SOMClusters
    cluster_names: Sequence[str]
    cluster_colours: Sequence[tuple]
    stem: str = "clusters"
    classifier: SOMClassifier | None = None
    class_names: Sequence[str] = ()
    class_colours: Sequence[tuple] = ()
    #: The observations' value of each class where a legend named them (legend.csv's value).
    class_values: Sequence[str] | None = None
    #: Fitted spectral screens (:mod:`geomap.screen`) of a labelled SOM: the optical features
    #: of pixels unlike every observation's are left out before matching.
    screens: Sequence = ()


def _open_writers(files: ExitStack, layers: SOMLayers, out_dir: Path, grid) -> dict:
    def create(name: str, count: int, dtype: str, nodata, bands: Sequence[str] = ()):
        dst = files.enter_context(
            rasterio.open(out_dir / name, "w", **raster_profile(grid, count, dtype, nodata))
        )
        for i, band in enumerate(bands, start=1):
            dst.set_band_description(i, band)
        return dst

    w = {
        "clusters": create(f"{layers.stem}.stream.tif", 1, "uint8", CLASS_NODATA),
        "qe": create("quantization_error.tif", len(QE_BANDS), "float32", np.nan, QE_BANDS),
    }
    style_class_raster(w["clusters"], layers.cluster_names, layers.cluster_colours)
    if layers.classifier is not None:
        names = layers.class_names
        w["label_distance"] = create("label_distance.tif", 1, "float32", np.nan, ["label_distance"])
        w["lith"] = create("lithology.stream.tif", 1, "uint8", CLASS_NODATA)
        style_class_raster(w["lith"], names, layers.class_colours)
        w["unc"] = create("uncertainty.tif", 3, "float32", np.nan, UNCERTAINTY_BANDS)
        w["prob"] = create("probabilities.tif", len(names), "float32", np.nan, names)
    return w


def stream_som(
    stack: RasterStack,
    recipe: FeatureRecipe,
    layers: SOMLayers,
    out_dir: Path,
    *,
    block_size: int = BLOCK_SIZE,
    within: Callable[[Window], np.ndarray] | None = None,
    progress: Callable[[int, int], None] | None = None,
    hooks: Sequence = (),
) -> SOMSummary:
    """Match every window to the map and write its outputs into ``out_dir``.

    Writes ``<stem>.stream.tif`` (turned into a COG afterwards) and ``quantization_error.tif``;
    with a classifier also ``lithology.stream.tif``, ``uncertainty.tif``, ``probabilities.tif``
    and ``label_distance.tif``.

    Parameters
    ----------
    within : callable, optional
        Given a window, a boolean (height, width) array of the pixels to map; others are nodata.
    progress : callable, optional
        Called with (windows done, windows in all) after each window.
    hooks : sequence, optional
        With a classifier: layers computed beside the map from the raw features and the class
        probabilities (``hook.window(job, proba)``, from the writer thread), as in
        :func:`geomap.predict.predict_stack`.
    """
    summary = SOMSummary(PredictionSummary.empty(layers.clusters.n_clusters_, len(stack.sources)))
    if layers.classifier is not None:
        summary.classes = PredictionSummary.empty(len(layers.class_names), len(stack.sources))
    seconds = {"features": 0.0, "model": 0.0, "write": 0.0}
    som = layers.clusters.som_
    groups = feature_groups(recipe)

    def match(job) -> tuple[np.ndarray, np.ndarray]:
        rows = job.rows
        if within is not None:
            rows = rows[within(job.win).ravel()[rows]]
        if layers.screens:
            screen_rows(job, rows, layers.screens, groups)
        # Without hooks the window's features are not needed afterwards: standardised in place.
        return _match(som, job.X, rows, in_place=not hooks)

    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES), ExitStack() as files:
        writers = _open_writers(files, layers, out_dir, stack.grid)
        for hook in hooks:
            files.enter_context(hook.writing(out_dir, stack.grid))

        def write(job, matched) -> None:
            proba = _write_som_window(job, *matched, layers, writers, summary, stack)
            for hook in hooks if proba is not None else ():
                hook.window(job, proba)

        side = window_side(block_size, len(layers.class_names), recipe.n_features)
        stream_windows(stack, recipe, match, write, side, progress=progress, seconds=seconds)
    summary.seconds = seconds
    return summary


def screen_rows(job, rows: np.ndarray, screens: Sequence, groups: Sequence[int]) -> None:
    """Leave out the optical features of the ``rows`` the spectral screens flag (in ``job.X``).

    As for the forest (:func:`geomap.screen.screen_flags`), a pixel under haze or cloud shadow
    is then matched like one under the cloud, over the other rasters' features, and the
    missing-inputs layer shows it.
    """
    every = len(rows) == len(job.X)  # no copy of the window's features when all have data
    flags = screen_flags(screens, job.X if every else job.X[rows], np.asarray(groups))
    for k, screen in enumerate(screens):
        if flags[:, k].any():
            job.screened(rows[flags[:, k]], screen)


def _match(som, X: np.ndarray, rows: np.ndarray, in_place: bool) -> tuple[np.ndarray, np.ndarray]:
    """BMU of the given rows of a window's features (standardised in place if ``in_place``)."""
    if len(rows) == len(X):  # no copy when every pixel has data
        return som.bmu(X, copy=not in_place)
    bmu = np.full(len(X), -1, dtype="int32")
    dist = np.full(len(X), np.nan, dtype="float32")
    if len(rows):
        bmu[rows], dist[rows] = som.bmu(X[rows], copy=False)  # X[rows] is a copy already
    return bmu, dist


def _write_som_window(job, bmu, dist, layers: SOMLayers, writers, summary, stack):
    """Write a window's layers; returns its class probabilities (None without a classifier)."""
    shape, win = job.shape, job.win
    mapped = bmu >= 0
    cluster = layers.clusters.cluster_of(bmu)
    codes = np.where(mapped, cluster, CLASS_NODATA).astype("uint8")
    missing = (1 - job.n_finite / job.X.shape[1]).astype("float32")
    missing[~mapped] = np.nan
    percentile = layers.clusters.som_.qe_percentile(dist)
    writers["clusters"].write(codes.reshape(shape), 1, window=win)
    writers["qe"].write(np.stack([dist, percentile, missing]).reshape(3, *shape), window=win)
    counts = summary.clusters
    counts.class_pixels += np.bincount(cluster[mapped], minlength=len(counts.class_pixels))
    counts.mapped_pixels += int(mapped.sum())
    counts.nodata_pixels += int((~mapped).sum())
    counts.reduced_input_pixels += int((missing > 0).sum())
    for s in range(len(stack.sources)):
        counts.source_nodata_pixels[s] += int(job.source_missing[..., s].sum())
    clf = layers.classifier
    if clf is None:
        return None
    distance = np.where(mapped, clf.label_distance_[np.maximum(bmu, 0)], np.nan)
    writers["label_distance"].write(distance.astype("float32").reshape(1, *shape), window=win)
    proba = clf.proba_of(bmu).T.reshape(len(clf.classes_), *shape)
    write_class_window(
        job, proba, (writers["lith"], writers["unc"], writers["prob"]), summary.classes, stack
    )
    return proba
