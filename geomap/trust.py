"""Where the map can be trusted and where to sample next, streamed beside the map.

:class:`TrustLayers` is a hook of :func:`geomap.predict.predict_stack`: for every window it writes
the dissimilarity index and the area of applicability (``applicability.tif``) and the expected
accuracy (``expected_accuracy.tif``) of :class:`geomap.applicability.Applicability`, adds the
window to the map-wide accuracy estimate (:class:`AccuracyTally`) and offers its pixels as
candidate field sites. Memory is that of one window plus a bounded pool of candidates.
:func:`geomap.apply.suggest` does the same from a saved model bundle without writing the maps
(``geomap suggest``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio
from pyproj import Transformer

from geomap.applicability import Applicability
from geomap.errors import GeomapError, ModelError, OutputExistsError, OutputWriteError
from geomap.export import add_overviews, raster_profile, write_failed_message, write_points
from geomap.grid import Grid, ground_crs
from geomap.predict import stream_windows, window_proba, window_side
from geomap.sites import (
    SiteCandidates,
    check_site_count,
    default_spacing,
    parse_distance,
    read_access,
)

APPLICABILITY_BANDS = ("dissimilarity_index", "aoa")
#: Share of the map mapped with an input missing below which its accuracy is not told apart:
#: it moves the whole map's figure by less than this.
REDUCED_SHARE_TOLD = 0.005


@dataclass
class SiteRequest:
    """How many field sites to suggest, and optionally within what walk of an access layer."""

    n: int = 30
    access: Path | None = None
    max_walk: str | float = "2km"

    def check(self, grid: Grid) -> None:
        """Refuse a bad site count, walking distance or access layer now, before any training.

        Raises
        ------
        InputDataError, MissingFileError
            As :func:`geomap.sites.check_site_count`, :func:`geomap.sites.parse_distance` and
            :func:`geomap.sites.read_access`.
        """
        check_site_count(self.n)
        max_walk = parse_distance(self.max_walk)
        if self.access:
            read_access(self.access, grid.crs, grid.bounds, max_walk)


class TrustLayers:
    """Applicability, expected accuracy, map-wide estimate and site candidates, window by window.

    Parameters
    ----------
    applicability : Applicability
        Fitted on the training samples and their spatial cross-validation.
    class_names : sequence of str
        In the order of the probabilities.
    grid : Grid
        The map's grid.
    sites : SiteRequest, optional
        Suggest field sites; checked here, before anything is written.
    inputs : sequence of (name, feature columns), optional
        The inputs (:func:`input_units`): the estimate then says what each makes of the
        dissimilarity of the pixels outside the area of applicability.
    write_maps : bool, default True
        Write ``applicability.tif`` and ``expected_accuracy.tif``.

    Raises
    ------
    InputDataError, MissingFileError
        For a bad number of sites, walking distance or access layer.
    """

    def __init__(
        self,
        applicability: Applicability,
        class_names: Sequence[str],
        grid: Grid,
        sites: SiteRequest | None = None,
        *,
        write_maps: bool = True,
        inputs: Sequence[tuple[str, np.ndarray]] | None = None,
    ) -> None:
        self.applicability = applicability
        self.inputs = list(inputs or [])
        self.outside_shares = np.zeros(applicability.n_features_in_) if self.inputs else None
        self.outside_measured = 0  # mapped pixels beyond their threshold: the shares' count
        self.class_names = [str(n) for n in class_names]
        self.grid = grid
        self.write_maps = write_maps
        self.tally = AccuracyTally(
            len(self.class_names),
            unseen_units=getattr(applicability, "calibration_outside_", None) is not None,
            tested=_class_tested(applicability),
        )
        self.seconds = 0.0
        self.candidates = None
        self.request = sites
        if sites is not None:
            max_walk = parse_distance(sites.max_walk)
            access = (
                read_access(sites.access, grid.crs, grid.bounds, max_walk) if sites.access else None
            )
            ground = ground_crs(grid.crs, grid.bounds)
            self.candidates = SiteCandidates(
                applicability,
                self.class_names,
                sites.n,
                default_spacing(grid.width * grid.height * grid.pixel_area_m2, sites.n),
                grid.crs,
                access=access,
                to_ground=None
                if ground is None
                else Transformer.from_crs(grid.crs, ground, always_xy=True),
            )
        self._writers: tuple = ()

    @contextmanager
    def writing(self, out_dir: Path, grid: Grid) -> Iterator[TrustLayers]:
        """Open the two GeoTIFF writers in ``out_dir`` for the duration of the stream."""
        if not self.write_maps:
            yield self
            return
        with ExitStack() as stack:
            app = stack.enter_context(
                rasterio.open(
                    out_dir / "applicability.tif",
                    "w",
                    **raster_profile(grid, 2, "float32", np.nan),
                )
            )
            acc = stack.enter_context(
                rasterio.open(
                    out_dir / "expected_accuracy.tif",
                    "w",
                    **raster_profile(grid, 1, "float32", np.nan),
                )
            )
            for i, name in enumerate(APPLICABILITY_BANDS, start=1):
                app.set_band_description(i, name)
            acc.set_band_description(1, "expected_accuracy")
            self._writers = (app, acc)
            try:
                yield self
            finally:
                self._writers = ()

    def window(self, job, proba: np.ndarray, pad: int = 0) -> None:
        """Compute and write the layers of one window; ``proba`` is (classes, rows, cols)."""
        t0 = time.perf_counter()
        n_cls, h, w = proba.shape
        X = job.X
        if pad:
            X = X.reshape(h + 2 * pad, w + 2 * pad, -1)[pad:-pad, pad:-pad].reshape(h * w, -1)
        P = proba.reshape(n_cls, -1).T
        di, aoa, acc = self.applicability.transform(X, P, self.outside_shares)
        self.outside_measured += int(np.count_nonzero(np.isfinite(di) & (aoa == 0)))
        codes = np.argmax(np.nan_to_num(P, nan=-1.0), axis=1)
        self.tally.add(codes, acc, aoa, job.lost().any(axis=-1))
        if self._writers:
            self._writers[0].write(np.stack([di, aoa]).reshape(2, h, w), window=job.win)
            self._writers[1].write(acc.reshape(1, h, w), window=job.win)
        if self.candidates is not None:
            rows, cols = np.mgrid[
                job.win.row_off : job.win.row_off + h, job.win.col_off : job.win.col_off + w
            ]
            # No site within the features' reach of the map's edge, nor on the rim of a cloud,
            # a hole or haze the screen caught: there the neighbourhood mixes ground with what
            # is missing, and such pixels looked the least certain of the map (9 of 30 sites
            # of a survey sheet lay on its outermost pixels; a user's first four on the rim of
            # a cloud). Deep inside a hole the pixel is mapped from the other rasters alone,
            # and a few scattered voids (a DEM's) leave a pixel's neighbourhood whole enough.
            e, g = job.halo, self.grid
            inner = (rows >= e) & (rows < g.height - e) & (cols >= e) & (cols < g.width - e)
            share = job.lost_share_nearby()
            rim = ((share > RIM_SHARE) & (share < 1 - RIM_SHARE)).any(axis=-1)
            inner = (inner & ~rim).ravel()
            x, y = g.xy(rows.ravel()[inner], cols.ravel()[inner])
            self.candidates.add(x, y, X[inner], P[inner], di[inner], aoa[inner], acc[inner])
        self.seconds += time.perf_counter() - t0

    def finish(self, out_dir: Path) -> dict:
        """Overviews, the suggested sites; returns the report's entries."""
        t0 = time.perf_counter()
        if self.write_maps:
            for name in ("applicability.tif", "expected_accuracy.tif"):
                add_overviews(out_dir / name)
        report = {
            "applicability": self.applicability.describe(),
            "map_accuracy_estimate": self.tally.to_dict(self.class_names),
        }
        outside = self.outside_measured
        if self.inputs and outside:
            shares = {n: float(self.outside_shares[c].sum() / outside) for n, c in self.inputs}
            report["map_accuracy_estimate"]["outside_aoa_dissimilarity_by_input"] = {
                n: round(shares[n], 3) for n in sorted(shares, key=shares.get, reverse=True)
            }
        if self.candidates is not None:
            sites = self.candidates.select()
            write_points(
                sites,
                out_dir / "suggested_samples.gpkg",
                out_dir / "suggested_samples.csv",
                "suggested_samples",
            )
            report["suggested_samples"] = self._sites_report(len(sites))
        self.seconds += time.perf_counter() - t0
        return report

    def _sites_report(self, written: int) -> dict:
        request = self.request
        return {
            "n_requested": request.n,
            "n_written": written,
            "min_spacing_m": self.candidates.min_spacing,
            "access": str(request.access) if request.access else None,
            "max_walk_m": parse_distance(request.max_walk) if request.access else None,
            "reachable_pixels": self.candidates.reachable_pixels,
        }


def _class_tested(applicability: Applicability) -> np.ndarray | None:
    """Held-out samples that tested each class; training samples in bundles saved before it."""
    tested = getattr(applicability, "class_tested_", None)
    return getattr(applicability, "class_counts_", None) if tested is None else tested


def input_units(recipe, source_names: Sequence[str]) -> list[tuple[str, np.ndarray]]:
    """The recipe's inputs as they fail together, named by their files: (name, feature columns).

    A scene of several files is named by what their names share ("LC08_..._SR_* (6 files)").
    A feature computed from two inputs counts for the first.
    """
    out, claimed = [], np.zeros(recipe.n_features, bool)
    for sources, cols in recipe.input_units():
        cols = cols[~claimed[cols]]
        claimed[cols] = True
        name = _files_name([source_names[i] for i in sources])
        if name in {n for n, _ in out}:  # two dem.tif from two folders
            name = f"{name} (raster {sources[0] + 1})"
        out.append((name, cols))
    return out


def _files_name(names: Sequence[str]) -> str:
    if len(names) == 1:
        return names[0]
    stem = os.path.commonprefix(list(names))
    stem = stem[: max(stem.rfind("_"), stem.rfind("-"), stem.rfind(" ")) + 1]
    if len(stem) < 4:
        return ", ".join(names)
    return f"{stem}* ({len(names)} files)"


def bundle_applicability(bundle: dict, model_path: Path) -> Applicability:
    """The applicability a model bundle holds.

    Raises
    ------
    ModelError
        If the bundle has none (a SOM bundle, or one saved before geomap 0.2).
    """
    applicability = bundle.get("applicability")
    if applicability is None:
        raise ModelError(
            f"Model '{model_path}' holds no area of applicability (it is a "
            f"'{bundle.get('kind', 'rf')}' bundle, or older); run `geomap run --model rf` again "
            "to make one that can suggest sites."
        )
    return applicability


def stream_sites(stack, recipe, bundle: dict, trust: TrustLayers, block_size: int) -> None:
    """Run the bundle's model over the stack only to feed ``trust`` (no map is written)."""
    model, n_classes, smooth = bundle["estimator"], len(bundle["class_names"]), bundle["smooth"]
    stream_windows(
        stack,
        recipe,
        lambda job: window_proba(model, job, n_classes, smooth),
        lambda job, proba: trust.window(job, proba, smooth // 2),
        window_side(block_size, n_classes, recipe.n_features),
        smooth // 2,
    )


@contextmanager
def staged_sites(out: Path, overwrite: bool) -> Iterator[Path]:
    """A temporary folder beside ``out``; its sites files replace ``out`` and its .csv at the end.

    Raises
    ------
    OutputExistsError
        If ``out`` or its .csv exists and ``overwrite`` is not set.
    """
    targets = [out, out.with_suffix(".csv")]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{', '.join(existing)} already exist(s); choose another --out or pass --overwrite."
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".geomap-sites-", dir=out.parent))
    try:
        yield tmp
        for name, target in zip(("suggested_samples.gpkg", "suggested_samples.csv"), targets):
            (tmp / name).replace(target)
    except OSError as exc:
        if isinstance(exc, GeomapError):
            raise
        raise OutputWriteError(write_failed_message(out, exc)) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def reduced_input_words(estimate: dict) -> str | None:
    """A sentence on the expected accuracy where an input is missing against the rest.

    ``estimate`` is the report's ``map_accuracy_estimate``. None when under
    :data:`REDUCED_SHARE_TOLD` of the map was mapped with an input missing (or the report
    predates the figures).
    """
    share = estimate.get("reduced_input_fraction")
    if not share or share < REDUCED_SHARE_TOLD or estimate.get("complete_input_accuracy") is None:
        return None
    reduced, complete = estimate["reduced_input_accuracy"], estimate["complete_input_accuracy"]
    return (
        f"The {100 * share:.1f}% of the map mapped with an input missing (no data there, or "
        f"left out by the spectral screen) is expected to be {reduced:.2f} right, the rest "
        f"{complete:.2f}: the missing_inputs band of uncertainty.tif shows where."
    )


#: Share of a map outside the area of applicability from which the figures say what it means.
#: 0.2 left it unsaid on two sheets where a unit in no observation lay outside: a legacy map's
#: patch alone (15% outside, expected 0.924 against a true 0.876) and the next sheet's pluton
#: (19.9% outside, 99% of the pluton's pixels among them). Maps observed throughout lie 3%
#: outside (tuning scenes 0-3).
OUTSIDE_AOA_TOLD = 0.1


#: Share of the dissimilarity outside the area of applicability from which the input giving it
#: is named.
CHIEF_INPUT_SHARE = 0.5


def trust_words(report: dict) -> list[str]:
    """The sentences on the area of applicability and on missing inputs a report calls for.

    A report with a ``model`` is a trained model's map of other rasters (``geomap predict``).
    """
    estimate = report.get("map_accuracy_estimate") or {}
    words = (outside_aoa_words(estimate, "model" in report), reduced_input_words(estimate))
    return [w for w in words if w]


def outside_aoa_words(estimate: dict, applied: bool = False) -> str | None:
    """A sentence when :data:`OUTSIDE_AOA_TOLD` of the map or more lies outside the AOA.

    ``applied``: the map is a trained model's on other rasters (``geomap predict``), which may
    have been acquired or processed otherwise than the training ones.

    A legacy map's patch in one corner left 42% of the sheet outside it, and two of the
    sheet's units were in no observation: the map names every pixel after an observed unit,
    and the expected accuracy of the whole map (0.89) stood against a true 0.71 until it
    learnt from held-out units (0.70; outside the AOA 0.38 against a true 0.43).
    """
    inside = estimate.get("aoa_fraction")
    if inside is None or round(1 - inside, 9) < OUTSIDE_AOA_TOLD:  # 1 - 0.9 is under 0.1
        return None
    start = (
        f"{1 - inside:.0%} of the map lies outside the area of applicability, where the inputs "
        "are unlike every observation's: units that no observation holds may lie there, and "
        "the map cannot show them (it names each pixel after an observed unit)"
    )
    end = " Observations there are the remedy (applicability.tif shows where)."
    by_input = estimate.get("outside_aoa_dissimilarity_by_input") or {}
    if len(by_input) > 1:
        name, share = next(iter(by_input.items()))  # the largest first
        if share >= CHIEF_INPUT_SHARE:
            end = (
                f" {share:.0%} of the pixels' dissimilarity there is in {name}: its values there "
                "are unlike the observations'."
                + (
                    " If it was acquired or processed otherwise than the raster the model was "
                    "trained on, the ground may be alike where its values are not."
                    if applied
                    else ""
                )
                + end
            )
    there, here = estimate.get("outside_aoa_accuracy"), estimate.get("inside_aoa_accuracy")
    if estimate.get("outside_aoa_allows_for_unseen_units") and there is not None:
        inside_too = f"{here:.2f} inside" if here is not None else "no pixel lies inside"
        return (
            f"{start}. The expected accuracy there, {there:.2f} ({inside_too}), allows for "
            "such units only as far as they resemble the observed ones, each held out of "
            "training in turn to see how its samples are mapped: a unit unlike them all can be "
            "mapped wrong throughout where the expected accuracy is high, and no observation "
            "measures it." + end
        )
    return (
        f"{start}, so the expected accuracy there, learnt where the inputs are alike, may be too "
        "high." + end
    )


#: Share of the features' reach where a raster is lost, between which and its complement a
#: pixel is on a rim and suggested as no site (3% of a DEM's pixels void at random put 1.6% of
#: pixels on a rim at a reach of 3 pixels, none at 7).
RIM_SHARE = 0.1
#: Held-out samples that tested a class (``Applicability.class_tested_``) below which it gets no
#: expected accuracy of its own: the calibration learns from the held-out predictions of every
#: class together, and a class the spatial CV did not test is never predicted right in them, so
#: its pixels' mean P(right) says nothing of it (a unit observed once, and wrongly, was mapped on
#: 532 pixels, all wrong, "expected" 0.90). A small polygon's pixels, held out together, test
#: nothing however many they are; nor do points along one traverse.
MIN_CLASS_TESTED = 5


@dataclass
class AccuracyTally:
    """Map-wide expected accuracy, added up window by window.

    ``add`` takes the class codes, expected accuracy and AOA mask of a window's mapped pixels,
    and which of them were mapped with an input missing; ``to_dict`` gives the
    ``map_accuracy_estimate`` of the report.
    """

    n_classes: int
    pixels: np.ndarray = field(init=False)
    accuracy_sum: np.ndarray = field(init=False)
    inside: int = 0
    reduced: int = 0
    reduced_accuracy_sum: float = 0.0
    outside_accuracy_sum: float = 0.0
    #: Whether the expected accuracy outside the AOA allows for units no observation holds
    #: (:class:`geomap.applicability.Applicability` fitted with ``units_out``).
    unseen_units: bool = False
    #: Held-out samples that tested each class, when known: a class of fewer than
    #: :data:`MIN_CLASS_TESTED` gets no expected accuracy of its own.
    tested: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.pixels = np.zeros(self.n_classes, "int64")
        self.accuracy_sum = np.zeros(self.n_classes, "float64")

    def add(
        self,
        codes: np.ndarray,
        expected_accuracy: np.ndarray,
        aoa: np.ndarray,
        reduced: np.ndarray | None = None,
    ) -> None:
        """Count the mapped pixels of a window (those with a finite expected accuracy).

        ``reduced`` (bool, the shape of ``codes``) marks the pixels mapped with an input
        missing: a source with no data there, or left out by a spectral screen.
        """
        codes, acc, aoa = (np.asarray(a).ravel() for a in (codes, expected_accuracy, aoa))
        mapped = np.isfinite(acc)
        codes = codes[mapped].astype(int)
        self.pixels += np.bincount(codes, minlength=self.n_classes)
        self.accuracy_sum += np.bincount(codes, acc[mapped], minlength=self.n_classes)
        self.inside += int((aoa[mapped] == 1).sum())
        self.outside_accuracy_sum += float(acc[mapped & (aoa == 0)].sum())
        if reduced is not None:
            lost = np.asarray(reduced, dtype=bool).ravel() & mapped
            self.reduced += int(lost.sum())
            self.reduced_accuracy_sum += float(acc[lost].sum())

    def to_dict(self, class_names: Sequence[str]) -> dict:
        """The report's figures: the whole map's and each class's mean, the AOA's share.

        ``reduced_input_accuracy`` and ``complete_input_accuracy`` are the means over the
        pixels mapped with an input missing and over the others; ``inside_aoa_accuracy`` and
        ``outside_aoa_accuracy`` over the pixels inside and outside the AOA.
        """
        total = int(self.pixels.sum())
        complete = total - self.reduced
        outside = total - self.inside
        overall = float(self.accuracy_sum.sum())
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = self.accuracy_sum / self.pixels
        few = np.zeros(self.n_classes, bool)
        if self.tested is not None:
            few = np.asarray(self.tested) < MIN_CLASS_TESTED
        return {
            "overall_accuracy": float(self.accuracy_sum.sum() / total) if total else None,
            "per_class": {
                n: (float(a) if p and not f else None)
                for n, a, p, f in zip(class_names, per_class, self.pixels, few)
            },
            "per_class_too_few_tested": [n for n, f in zip(class_names, few) if f],
            "aoa_fraction": self.inside / total if total else None,
            "inside_aoa_accuracy": (
                (overall - self.outside_accuracy_sum) / self.inside if self.inside else None
            ),
            "outside_aoa_accuracy": self.outside_accuracy_sum / outside if outside else None,
            "outside_aoa_allows_for_unseen_units": self.unseen_units,
            "mapped_pixels": total,
            "reduced_input_fraction": self.reduced / total if total else None,
            "reduced_input_accuracy": (
                self.reduced_accuracy_sum / self.reduced if self.reduced else None
            ),
            "complete_input_accuracy": (
                float(self.accuracy_sum.sum() - self.reduced_accuracy_sum) / complete
                if complete
                else None
            ),
            "method": (
                "mean over the mapped pixels of P(mapped class right), a logistic calibration of "
                "the held-out spatial-CV predictions on their entropy, dissimilarity index and "
                "the share of the model's importance their missing inputs carry (see "
                "applicability.calibration.inputs)"
                + (
                    "; outside the area of applicability, of those and of the samples of each "
                    "unit held out of training in turn, always mapped wrong (see "
                    "applicability.calibration_outside_aoa)"
                    if self.unseen_units
                    else ""
                )
            ),
        }
