"""Streamed prediction: windows of the grid -> features -> class probabilities -> GeoTIFF writers.

Memory is bounded by the window size, whatever the size of the scene. Each window is read with the
halo its features need (plus the smoothing radius), so the streamed map equals a whole-image
computation exactly. Reading and feature computation of the next window run in a background thread
while the forest predicts the current one, and writing the previous window (with the layers computed
beside the map) in another.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window
from scipy.ndimage import uniform_filter
from threadpoolctl import threadpool_limits

from geomap.export import CLASS_NODATA, raster_profile, release_freed_memory, style_class_raster
from geomap.features import FeatureRecipe, focal_mean_std
from geomap.kernels import warm_up
from geomap.sources import GDAL_CACHE_BYTES
from geomap.stack import BLOCK_SIZE, RasterStack

UNCERTAINTY_BANDS = ("entropy", "margin", "missing_inputs")
#: Share of the map over which a raster screened out gets a warning of its own.
SCREENED_SOURCE_SHARE = 0.5
log = logging.getLogger("geomap")


@dataclass
class PredictionSummary:
    """Counts and timings of a streamed prediction."""

    class_pixels: np.ndarray
    mapped_pixels: int = 0
    reduced_input_pixels: int = 0
    screened_pixels: int = 0
    nodata_pixels: int = 0
    source_nodata_pixels: list = field(default_factory=list)
    source_screened_pixels: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    #: Sum, sum of squares and count of the DEM's values over the mapped pixels (a recipe with
    #: a DEM band): the training map's and a later map's elevation, compared.
    elevation: list = field(default_factory=lambda: [0.0, 0.0, 0])

    @classmethod
    def empty(cls, n_classes: int, n_sources: int) -> PredictionSummary:
        """Nothing counted yet, for ``n_classes`` classes and ``n_sources`` input rasters."""
        return cls(
            np.zeros(n_classes, "int64"),
            source_nodata_pixels=[0] * n_sources,
            source_screened_pixels=[0] * n_sources,
        )

    def add_elevation(self, values: np.ndarray) -> None:
        """Count the DEM values of mapped pixels (NaN: none there)."""
        v = values[np.isfinite(values)].astype("float64")
        self.elevation[0] += float(v.sum())
        self.elevation[1] += float(np.dot(v, v))
        self.elevation[2] += int(v.size)

    def elevation_stats(self) -> dict | None:
        """Mean and standard deviation of the DEM over the mapped pixels; None without one."""
        total, squares, n = self.elevation
        if n < 2:
            return None
        mean = total / n
        return {"mean": mean, "sd": float(np.sqrt(max(squares / n - mean * mean, 0.0)))}

    def to_dict(self, class_names: Sequence[str]) -> dict:
        """JSON-ready figures; ``source_nodata_fraction`` follows the order of the sources."""
        total = max(self.mapped_pixels + self.nodata_pixels, 1)
        elevation = self.elevation_stats()
        return {
            **({"elevation": elevation} if elevation else {}),
            "mapped_pixels": self.mapped_pixels,
            "nodata_pixels": self.nodata_pixels,
            "reduced_input_pixels": self.reduced_input_pixels,
            "screened_pixels": self.screened_pixels,
            "pixels_per_class": dict(zip(class_names, self.class_pixels.tolist())),
            "source_nodata_fraction": [round(c / total, 6) for c in self.source_nodata_pixels],
            "source_screened_fraction": [round(c / total, 6) for c in self.source_screened_pixels],
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }

    def screen_notes(self, stack) -> list[str]:
        """Warn of rasters the spectral screen left out over most of the map (units, scale)."""
        shares = {
            source.path.name: screened / max(self.mapped_pixels, 1)
            for source, screened in zip(stack.sources, self.source_screened_pixels)
        }
        shares = {name: share for name, share in shares.items() if share >= SCREENED_SOURCE_SHARE}
        if not shares:
            return []
        low, high = f"{min(shares.values()):.0%}", f"{max(shares.values()):.0%}"
        return [
            f"Raster(s) {', '.join(repr(n) for n in shares)}: unlike every training "
            f"observation's spectra on {low if low == high else f'{low} to {high}'} of the map "
            "and left out there, so those pixels are mapped from the other rasters, less "
            "accurately. If the scene is hazy, take another; if its values are in other units "
            "or another scale than at training (reflectance 0-1 against 0-10000), convert them."
        ]


def smooth_probabilities(proba: np.ndarray, size: int) -> np.ndarray:
    """NaN-ignoring focal mean of (classes, H, W) probabilities; output (classes, H-s+1, W-s+1)."""
    mean, _ = focal_mean_std(proba, size)
    r = size // 2
    centre = proba[:, r : proba.shape[1] - r, r : proba.shape[2] - r]
    mean[np.isnan(centre)] = np.nan
    return mean


def uncertainty(proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised entropy (0..1) and margin uncertainty 1 - (p1 - p2) of (classes, ...) arrays."""
    n = proba.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.where(proba > 0, np.log(np.where(proba > 0, proba, 1)), 0)
    entropy = (proba * logs).sum(axis=0) / -np.log(n) + 0.0  # + 0.0: a sure pixel is 0, not -0
    top2 = np.sort(proba, axis=0)[-2:]
    margin = 1 - (top2[1] - top2[0])
    nan = np.isnan(proba).any(axis=0)
    entropy[nan], margin[nan] = np.nan, np.nan
    return entropy.astype("float32"), margin.astype("float32")


class _Window:
    """Everything the forest needs for one window, prepared in the background."""

    def __init__(self, stack: RasterStack, recipe: FeatureRecipe, win: Window, pad: int) -> None:
        t0 = time.perf_counter()
        block = stack.read(win, halo=recipe.halo + pad)
        self.win, self.pad, self.halo = win, pad, recipe.halo
        self.shape = (block.shape[1] - 2 * recipe.halo, block.shape[2] - 2 * recipe.halo)
        h = recipe.halo + pad
        source = np.asarray(recipe.band_source)
        self._gaps = np.stack(  # (sources, rows, cols) of the block, its halo included
            [np.isnan(block[source == s]).any(axis=0) for s in range(len(stack.sources))]
        )
        self._inner = (slice(h, block.shape[1] - h), slice(h, block.shape[2] - h))
        self.source_missing = np.moveaxis(self._gaps[:, self._inner[0], self._inner[1]], 0, -1)
        self.source_screened = np.zeros_like(self.source_missing)
        self.X = recipe.compute_pixels(block)
        self.n_finite = np.count_nonzero(np.isfinite(self.X), axis=1)  # features with data
        self.rows = np.flatnonzero(self.n_finite)
        self.seconds = time.perf_counter() - t0

    def lost(self) -> np.ndarray:
        """(rows, cols, sources): where each source has no data or a spectral screen left it out."""
        return self.source_missing | self.source_screened

    def lost_share_nearby(self) -> np.ndarray:
        """(rows, cols, sources): the share of the features' reach where each source is lost.

        0 far from any hole, 1 deep inside one, between on the rim of a cloud, a hole or the
        grid's edge, where the features mix ground with what is missing (holes count within
        the halo read too, the screen's flags within the window).
        """
        size = 2 * self.halo + 1
        gaps = uniform_filter(self._gaps.astype("float32"), size=(1, size, size), mode="nearest")
        gaps = np.moveaxis(gaps[:, self._inner[0], self._inner[1]], 0, -1)
        screened = uniform_filter(
            self.source_screened.astype("float32"), size=(size, size, 1), mode="nearest"
        )
        return np.minimum(gaps + screened, 1.0)

    def screened(self, rows: np.ndarray, screen) -> None:
        """Rows a :class:`geomap.screen.SpectralScreen` flagged: its features, sources missing."""
        self.X[np.ix_(rows, np.asarray(screen.drop, dtype=int))] = np.nan
        flagged = np.zeros(len(self.X), dtype=bool)
        flagged[rows] = True
        p = self.pad
        inner = flagged.reshape(self.shape)[p : self.shape[0] - p, p : self.shape[1] - p]
        self.source_screened[..., list(screen.sources)] |= inner[..., None]


#: Classes above which the windows shrink, so that a window's class probabilities (and their
#: copies in the model and the writers) stay near those of a default window of 16 classes.
WINDOW_CLASSES = 16
#: Features above which the windows shrink likewise (a 12-band survey has 120; a hyperspectral
#: cube of 200 bands 1400, whose 256-pixel window took 367 MB for its feature table alone).
WINDOW_FEATURES = 160


def window_side(block_size: int, n_classes: int = 0, n_features: int = 0) -> int:
    """The window side for ``n_classes`` and ``n_features``: ``block_size``, or less for many.

    A legacy map of 100 units makes each window's probabilities 6 times those of 16 units; the
    side shrinks by the square root of the larger such ratio, in multiples of 16 pixels and to
    64 at least.
    """
    ratio = max(n_classes / WINDOW_CLASSES, n_features / WINDOW_FEATURES)
    if ratio <= 1:
        return block_size
    side = int(BLOCK_SIZE / ratio**0.5) // 16 * 16
    return min(block_size, max(64, side))


def predict_stack(
    stack: RasterStack,
    recipe: FeatureRecipe,
    model,
    class_names: Sequence[str],
    colours: Sequence[tuple],
    out_dir: Path,
    *,
    block_size: int = BLOCK_SIZE,
    smooth: int = 1,
    progress: Callable[[int, int], None] | None = None,
    hooks: Sequence = (),
) -> PredictionSummary:
    """Predict every window of the stack and write the maps into ``out_dir``.

    Writes ``lithology.stream.tif`` (turned into a COG afterwards), ``uncertainty.tif`` and
    ``probabilities.tif``.

    Parameters
    ----------
    smooth : int
        Side of the window over which class probabilities are averaged (1: no smoothing).
    progress : callable, optional
        Called with (windows done, windows in all) after each window.
    hooks : sequence, optional
        Layers computed beside the map (such as :class:`geomap.trust.TrustLayers`): each is
        entered as ``hook.writing(out_dir, grid)`` and called as ``hook.window(job, proba, pad)``
        for every window, in order, from the writer thread of :func:`stream_windows`.
    """
    n_cls, grid = len(class_names), stack.grid
    pad = smooth // 2
    summary = PredictionSummary.empty(n_cls, len(stack.sources))
    seconds = {"features": 0.0, "model": 0.0, "write": 0.0}
    paths = {
        "lithology": out_dir / "lithology.stream.tif",
        "uncertainty": out_dir / "uncertainty.tif",
        "probabilities": out_dir / "probabilities.tif",
    }
    with (
        ExitStack() as extra,
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES),
        rasterio.open(
            paths["lithology"], "w", **raster_profile(grid, 1, "uint8", CLASS_NODATA)
        ) as lith,
        rasterio.open(
            paths["uncertainty"], "w", **raster_profile(grid, 3, "float32", np.nan)
        ) as unc,
        rasterio.open(
            paths["probabilities"], "w", **raster_profile(grid, n_cls, "float32", np.nan)
        ) as prob,
    ):
        style_class_raster(lith, class_names, colours)
        for i, name in enumerate(UNCERTAINTY_BANDS, start=1):
            unc.set_band_description(i, name)
        for i, name in enumerate(class_names, start=1):
            prob.set_band_description(i, name)
        for hook in hooks:
            extra.enter_context(hook.writing(out_dir, grid))

        def write(job: _Window, proba: np.ndarray) -> None:
            write_class_window(job, proba, (lith, unc, prob), summary, stack)
            if recipe.dem_band is not None:
                rows, cols = job.shape
                dem = job.X[:, recipe.dem_band].reshape(job.shape)[
                    pad : rows - pad, pad : cols - pad
                ]
                summary.add_elevation(dem[~np.isnan(proba).any(axis=0)])
            for hook in hooks:
                hook.window(job, proba, pad)

        def compute(job: _Window) -> np.ndarray:
            return window_proba(model, job, n_cls, smooth)

        side = window_side(block_size, n_cls, recipe.n_features)
        stream_windows(stack, recipe, compute, write, side, pad, progress, seconds)
    summary.seconds = seconds
    return summary


def stream_windows(
    stack: RasterStack,
    recipe: FeatureRecipe,
    compute: Callable[[_Window], object],
    write: Callable[[_Window, object], None],
    block_size: int = BLOCK_SIZE,
    pad: int = 0,
    progress: Callable[[int, int], None] | None = None,
    seconds: dict | None = None,
) -> None:
    """Run ``compute`` on every window of the stack and hand each (window, result) to ``write``.

    Three windows are in flight: a background thread reads the next one and computes its
    features, this thread runs ``compute`` (the model) on the current one, and a writer thread
    runs ``write`` on the previous one, so writing and what ``write`` computes (the
    applicability layers) take the cores the model leaves. ``write`` sees the windows in order,
    one at a time; what either raises is raised here. Windows are read ``pad`` pixels wider
    than the features' halo (for probability smoothing). ``progress(done, total)`` is called
    from this thread once a window is written (Streamlit draws only from its script's thread).
    ``seconds`` gets the time spent in "features", "model" and "write". BLAS runs on one thread
    meanwhile (:func:`single_threaded_blas`).
    """
    seconds = {} if seconds is None else seconds
    for key in ("features", "model", "write"):
        seconds.setdefault(key, 0.0)

    def written(job: _Window, result) -> None:
        t0 = time.perf_counter()
        write(job, result)
        del job, result
        release_freed_memory()
        seconds["write"] += time.perf_counter() - t0

    with single_threaded_blas(), ThreadPoolExecutor(max_workers=1) as writer:  # writer ends first
        pending = None
        try:
            for i, n_windows, job in iter_windows(stack, recipe, block_size, pad):
                seconds["features"] += job.seconds
                t0 = time.perf_counter()
                result = compute(job)
                seconds["model"] += time.perf_counter() - t0
                if pending is not None:
                    _wait(pending, progress, i, n_windows)
                pending = writer.submit(written, job, result)
                del job, result
            if pending is not None:
                _wait(pending, progress, n_windows, n_windows)
        except BaseException as error:
            failure = None if pending is None else pending.exception()  # waits for the writer
            if failure is not None and failure is not error:  # else it would be lost
                log.warning("Writing a window failed too: %s: %s", type(failure).__name__, failure)
            raise


def _wait(pending, progress, done: int, n_windows: int) -> None:
    pending.result()  # raises what the writer raised
    if progress is not None:
        progress(done, n_windows)


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit = None


@contextmanager
def single_threaded_blas() -> Iterator[None]:
    """One BLAS thread while streaming, restored after the last stream of the process ends.

    The forest predicts on every core while the writer thread runs the hooks' matrix products
    (the applicability's nearest-sample search): a multi-threaded BLAS there would compete with
    the forest's threads (its threads also spin while waiting). Counted, so that streams running
    side by side (sessions of the app) restore the setting only when the last one ends. The
    setting is the process's: while a stream runs, other BLAS work of the process (another
    session's SOM training) runs on one thread too.
    """
    global _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            _blas_limit = threadpool_limits(1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None


def window_proba(model, job: _Window, n_classes: int, smooth: int = 1) -> np.ndarray:
    """Class probabilities (classes, rows, cols) of a window; NaN where no source has data.

    ``model`` is a :class:`geomap.models.LithologyForest`; what its spectral screens flag is
    marked on the window (missing features and sources).
    """
    proba = np.full((job.X.shape[0], n_classes), np.nan, dtype="float32")
    every = len(job.rows) == len(job.X)  # no copy when every pixel has data
    if len(job.rows):
        proba[job.rows], flags = model.screened_proba(job.X if every else job.X[job.rows])
        for screen, flagged in zip(model.screens_, flags.T):
            if flagged.any():
                job.screened(job.rows[flagged], screen)
    proba = proba.T.reshape(n_classes, *job.shape)
    if smooth > 1:
        proba = smooth_probabilities(proba, smooth)
    return proba


def iter_windows(
    stack: RasterStack, recipe: FeatureRecipe, block_size: int, pad: int = 0
) -> Iterator[tuple[int, int, _Window]]:
    """Yield (index, number of windows, prepared window) over the grid, row by row.

    Reading and feature computation of the next window run in a background thread while the
    caller works on the current one.
    """
    windows = list(stack.grid.windows(block_size))
    # numba's parallel kernels first called from the background thread ran the whole stream
    # slower (features 29.3 s against 15.8 s, wall 36.7 s against 28.2 s on a 2000^2 survey):
    # start them in this thread.
    warm_up()
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_Window, stack, recipe, windows[0], pad)
        for i in range(len(windows)):
            job = pending.result()
            if i + 1 < len(windows):
                pending = pool.submit(_Window, stack, recipe, windows[i + 1], pad)
            yield i, len(windows), job
            del job


def write_class_window(job: _Window, proba: np.ndarray, writers, summary, stack) -> None:
    """Write the class codes, uncertainty and probabilities of a window; update the summary."""
    lith, unc, prob = writers
    nodata = np.isnan(proba).any(axis=0)
    codes = np.argmax(np.nan_to_num(proba, nan=-1.0), axis=0).astype("uint8")
    codes[nodata] = CLASS_NODATA
    entropy, margin = uncertainty(proba)
    missing = job.lost().mean(axis=-1).astype("float32")
    missing[nodata] = np.nan
    lith.write(codes, 1, window=job.win)
    unc.write(np.stack([entropy, margin, missing]), window=job.win)
    prob.write(proba.astype("float32"), window=job.win)
    summary.class_pixels += np.bincount(codes[~nodata], minlength=len(summary.class_pixels))
    summary.mapped_pixels += int((~nodata).sum())
    summary.nodata_pixels += int(nodata.sum())
    summary.reduced_input_pixels += int(((missing > 0) & ~nodata).sum())
    summary.screened_pixels += int((job.source_screened.any(axis=-1) & ~nodata).sum())
    for s in range(len(stack.sources)):
        summary.source_nodata_pixels[s] += int(job.source_missing[..., s].sum())
        summary.source_screened_pixels[s] += int((job.source_screened[..., s] & ~nodata).sum())
