"""The ``geomap`` command: the same functions the app calls, from a terminal."""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from geomap.apply import predict, suggest
from geomap.bundles import BEYOND_TRAINING_SHARE
from geomap.cli_parser import parse
from geomap.errors import GeomapError
from geomap.export import limit_malloc_arenas
from geomap.products import expand_rasters
from geomap.report_html import cluster_words, observed_cluster_words, observed_counts_words
from geomap.sources import crs_words, parse_nodata
from geomap.subunits import SubunitConfig, subunits
from geomap.trust import SiteRequest, trust_words
from geomap.workflow import RunConfig, run

log = logging.getLogger("geomap")


def _som_options(args) -> dict:
    return {
        "som_size": args.som_size,
        "iterations": args.iterations,
        "sigma": args.sigma,
        "learning_rate": args.learning_rate,
        "clusters": args.clusters,
        "cluster_method": args.cluster_method,
        "som_samples": args.som_samples,
    }


class _Bar:
    """A tqdm progress bar per stage (cross-validation, prediction), on a terminal unless quiet.

    Where stderr is not a terminal (a log file, a scheduler's job), a line says how far a stage
    is and the time left, at most every :data:`LOG_EVERY` seconds.
    """

    STAGES = {"validate": ("cross-validating", "model"), "predict": ("predicting", "window")}
    LOG_EVERY = 60.0

    def __init__(self, quiet: bool) -> None:
        self.enabled = not quiet and sys.stderr.isatty()
        self.logging = not quiet and not self.enabled
        self.bar = None
        self.stage = None
        self.started = self.logged = 0.0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage == "validate" and done == 0:
            log.info("cross-validating (random and spatial blocks)...")
        if stage not in self.STAGES:
            return
        if self.logging:
            self._log(stage, done, total)
        if not self.enabled:
            return
        if stage != self.stage:
            from tqdm import tqdm

            desc, unit = self.STAGES[stage]
            self.bar, self.stage = tqdm(total=total, desc=desc, unit=unit), stage
        self.bar.update(done - self.bar.n)
        if done == total:
            self.bar.close()

    def _log(self, stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        if stage != self.stage:
            self.stage, self.started, self.logged = stage, now, now
            return
        if done >= total or now - self.logged < self.LOG_EVERY or done == 0:
            return
        self.logged = now
        left = (now - self.started) / done * (total - done)
        desc, unit = self.STAGES[stage]
        log.info("%s: %d of %d %ss done, about %s left", desc, done, total, unit, _duration(left))


def _duration(seconds: float) -> str:
    """``"40 s"``, ``"7 min"`` or ``"2.5 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _summarise(report: dict) -> None:
    _log_inputs(report)
    _log_figures(report)
    for note in report.get("warnings", []):
        log.warning("warning: %s", note)
    pred = report["prediction"]
    screened = pred.get("screened_pixels", 0)
    log.info(
        "mapped %d pixels (%d with reduced inputs%s), %d nodata; wrote %s",
        pred["mapped_pixels"],
        pred["reduced_input_pixels"],
        f", {screened} of them optical pixels unlike every observation's" if screened else "",
        pred["nodata_pixels"],
        report.get("configuration", {}).get("out", "the output folder"),
    )


def _log_inputs(report: dict) -> None:
    """The grid, then each source on it."""
    grid = report["grid"]
    log.info(
        "grid: %s, %g x %g %s per pixel, %d x %d pixels",
        crs_words(grid["crs"]),
        *grid["resolution"],
        grid["units"],
        grid["width"],
        grid["height"],
    )
    nodata = report["prediction"]["source_nodata_fraction"]
    for source, fraction in zip(report["sources"], nodata):
        log.info(
            "  %s: %s, %g %s, %s, nodata %.1f%% of the grid",
            Path(source["path"]).name,
            crs_words(source["crs"]),
            source["resolution"][0],
            source["units"],
            source["resampling"],
            100 * fraction,
        )


def _log_figures(report: dict) -> None:
    """Cross-validation, the map's expected accuracy, and the lists written beside the map."""
    val = report.get("validation")
    if val:
        for kind in ("random", "spatial"):
            m = val[kind]
            log.info(
                "%s CV: overall accuracy %.3f, balanced %.3f, macro-F1 %.3f, kappa %.3f",
                kind,
                m["overall_accuracy"],
                m["balanced_accuracy"],
                m["macro_f1"],
                m["kappa"],
            )
        log.info(val["summary"])
    clusters = cluster_words(report)
    if clusters:
        log.info(clusters)
    observed = observed_cluster_words(report)
    if observed:
        where = report["som"]["clusters"]["observed"]
        log.info(
            "where the observations lie among the clusters (%s; every count in %s):",
            observed_counts_words(where),
            where["table"],
        )
        for line in observed:
            log.info("  %s", line)
    if "training" in report:  # geomap predict: the model's own validation
        log.info("at training: %s", report["training"]["validation"]["summary"])
    estimate = report.get("map_accuracy_estimate")
    if estimate and estimate["overall_accuracy"] is not None:
        outside = report.get("outside_training_fraction", 0.0)
        log.info(
            "expected accuracy of the whole map %.3f; %.0f%% of it inside the area of "
            "applicability%s",
            estimate["overall_accuracy"],
            100 * estimate["aoa_fraction"],
            f"; on the ground, {outside:.0%} of it lies outside the area the model was trained "
            "on, where no observation backs this figure (see the warning below)"
            if outside >= BEYOND_TRAINING_SHARE
            else "",
        )
        for words in trust_words(report):
            log.info(words)
    if "suggested_samples" in report:
        log.info("%s suggested field sites in suggested_samples.gpkg/.csv", _n_sites(report))
    checks = report.get("observations_to_check")
    if checks and checks["n_listed"]:
        log.info(
            "%d of %d observations are mapped as another unit by the held-out model, which gives "
            "their own unit less than one chance in ten: check them in "
            "observations_to_check.gpkg/.csv",
            checks["n_listed"],
            checks["n_points"],
        )


def _metres(value: float) -> str:
    """A distance without spurious digits: 411, 12,500, 2.5."""
    return f"{round(value):,}" if value >= 100 else f"{value:.2g}"


def _n_sites(report: dict) -> str:
    """The sites written, and how many were asked for when fewer lie far enough apart."""
    sites = report["suggested_samples"]
    if sites["n_written"] >= sites["n_requested"]:
        return f"{sites['n_written']}"
    if sites["reachable_pixels"] < sites["n_requested"]:
        return (
            f"{sites['n_written']} (of {sites['n_requested']} asked for: the map has "
            f"{sites['reachable_pixels']} pixel(s) to suggest)"
        )
    return (
        f"{sites['n_written']} (of {sites['n_requested']} asked for: where the map can be "
        f"reached, no more places lie at least {_metres(sites['min_spacing_m'])} m apart, the "
        "spacing kept between sites)"
    )


def _nodata(args) -> dict:
    """``nodata`` and ``raster_nodata`` from the --nodata values given."""
    default, by_name = parse_nodata(args.nodata or [])
    return {"nodata": default, "raster_nodata": by_name}


def _run(args, bar) -> dict:
    config = RunConfig(
        rasters=args.raster,
        labels=args.labels,
        label_column=args.label_column,
        out=args.out,
        model=args.model,
        trees=args.trees,
        random_state=args.random_state,
        crs=args.crs,
        resolution=args.resolution,
        block_size=args.block_size,
        cv_folds=args.cv_folds,
        features=args.features,
        label_crs=args.label_crs,
        label_layer=args.label_layer,
        legend=args.legend,
        max_per_class=args.max_per_class,
        smooth=args.smooth,
        **_nodata(args),
        overwrite=args.overwrite,
        suggest=args.suggest,
        access=args.access,
        max_walk=args.max_walk,
        applicability=args.applicability,
        spectral_screen=args.spectral_screen,
        **_som_options(args),
    )
    return run(config, progress=bar)


def _subunits(args, bar) -> dict:
    config = SubunitConfig(
        map=args.map,
        unit=args.unit,
        rasters=args.raster,
        out=args.out,
        features=args.features,
        random_state=args.random_state,
        block_size=args.block_size,
        **_nodata(args),
        overwrite=args.overwrite,
        **_som_options(args),
    )
    return subunits(config, progress=bar)


def _predict(args, bar) -> dict:
    return predict(
        args.model,
        args.raster,
        args.out,
        block_size=args.block_size,
        overwrite=args.overwrite,
        progress=bar,
        same_order=args.same_order,
        **_nodata(args),
    )


def _suggest(args, bar) -> None:
    request = SiteRequest(args.n, args.access, args.max_walk)
    report = suggest(
        args.model,
        args.raster,
        args.out,
        request,
        block_size=args.block_size,
        overwrite=args.overwrite,
        same_order=args.same_order,
        **_nodata(args),
    )
    for note in report["warnings"]:
        log.warning("warning: %s", note)
    log.info("wrote %s sites to %s and its .csv", _n_sites(report), args.out)


_COMMANDS = {"run": _run, "subunits": _subunits, "predict": _predict, "suggest": _suggest}


def _stop(signum, frame) -> None:
    raise SystemExit(128 + signum)  # unwinds like Ctrl-C: no half-written output is left


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    SIGTERM (a scheduler's time limit, ``kill``) stops the run like Ctrl-C: the temporary output
    folder is removed and ``--out`` stays as it was.
    """
    args = parse(argv)
    limit_malloc_arenas()  # before the threads start
    logging.basicConfig(level=logging.WARNING, format="%(message)s", force=True)
    log.setLevel(logging.WARNING if args.quiet else logging.INFO)  # not the libraries' chatter
    logging.getLogger("rasterio._env").setLevel(logging.ERROR)  # GDAL's notes: geomap says its own
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop) if main_thread else None
    try:
        if getattr(args, "raster", None) and args.command not in ("predict", "suggest"):
            args.raster = expand_rasters(args.raster)  # a product: its band files (a model's
            # own in predict and suggest, which take the bands it was trained on)
        report = _COMMANDS[args.command](args, _Bar(args.quiet))
    except GeomapError as exc:
        print(f"geomap {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"geomap {args.command}: interrupted; nothing was written.", file=sys.stderr)
        return 130
    except MemoryError:
        print(
            f"geomap {args.command}: error: this machine ran out of memory; nothing was written. "
            "Give smaller windows (--block-size 128 or 64), the raw bands alone (--features "
            "raw), or fewer rasters or bands.",
            file=sys.stderr,
        )
        return 2
    finally:
        if main_thread and previous is not None:  # None: a handler set outside Python
            signal.signal(signal.SIGTERM, previous)
    if report is not None:
        _summarise(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
