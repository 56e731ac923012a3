"""Area of applicability, expected accuracy and suggested field sites on scenes with a known truth.

For each seed a scene is generated with `geomap.synthetic.make_scene`, the forest is trained and
cross-validated with the workflow's own steps (RasterStack, FeatureRecipe, sample_labels,
prepare_samples, simulated_outages, cross_validate), `geomap.applicability.Applicability` is
fitted on the spatial cross-validation (and its simulated input outages) and applied to every
pixel of the scene (in memory; the scenes are small), and:

- the estimated map accuracy (mean expected accuracy over the mapped pixels) is set against the
  true accuracy, beside the spatial-CV accuracy as the estimate geomap gave before;
- the error rate outside the AOA is set against the error rate inside;
- the AUROC of 1 - expected accuracy for telling wrong pixels from right ones, beside the AUROC of
  the entropy alone;
- a second field season is simulated: N sites are labelled from the truth and the forest is
  retrained; the gain in true accuracy of the N suggested sites is set against N random valid
  pixels (mean of several draws) and the N pixels of highest entropy, and so are the units no
  training sample holds that each set's pixels land on and the share of them mapped wrong.

The shipped path is checked too: `geomap run` maps each scene (streamed, with its own seeds), and
the estimate in its report.json, the AOA error rates from applicability.tif and the AUROC from
expected_accuracy.tif are measured against the truth (columns "run ..."), and so are the report's
expected accuracy over the pixels mapped with an input missing (the missing_inputs band of
uncertainty.tif: the cloud, partial surveys) and over the rest ("true there" / "est there",
"true rest" / "est rest").

    python benchmarks/applicability.py                     # seeds 11 23 37 41 59
    python benchmarks/applicability.py --seeds 11 --n 30
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).parent))
from quality import save_verdicts  # noqa: E402
from scenes import parse, scene_parser

from geomap.applicability import Applicability, normalised_entropy
from geomap.features import FeatureRecipe, feature_groups
from geomap.labels import read_labels
from geomap.models import LithologyForest
from geomap.placement import sample_labels
from geomap.screen import screens_for
from geomap.sites import SiteCandidates, default_spacing
from geomap.stack import RasterStack
from geomap.synthetic import make_scene
from geomap.trust import AccuracyTally
from geomap.validate import cross_validate
from geomap.workflow import (
    RunConfig,
    encode_classes,
    prepare_samples,
    run,
    simulated_outages,
)

NODATA = 255
MAP_SAMPLE = 5000


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = scene_parser(__doc__, [11, 23, 37, 41, 59])
    parser.add_argument("--n", type=int, default=30, help="sites of the second field season")
    parser.add_argument("--random-draws", type=int, default=5, help="draws of N random sites")
    parser.add_argument("--window", type=int, default=100, help="window side for the streaming")
    parser.add_argument(
        "--observations",
        choices=("points", "patch"),
        default="points",
        help="train on the field points (default) or on the legacy map's patch of polygons alone",
    )
    return parse(parser, argv, "geomap-applicability-")


# ---------------------------------------------------------------------------- training


class Trained:
    """A scene trained as `geomap run` trains it, with every pixel's features in memory."""

    def __init__(self, scene, seed: int, trees: int, observations: Path) -> None:
        with RasterStack.open(scene.rasters) as stack:
            self.grid = stack.grid
            labels = read_labels(observations, scene.label_column)
            placed = sample_labels(labels, stack.grid, random_state=seed)
            recipe = FeatureRecipe.for_stack(stack, "default")
            samples, self.X, _ = prepare_samples(stack, recipe, observations, placed)
            self.names, self.y, _ = encode_classes(samples.labels, observations)
            self.groups = feature_groups(recipe)
            block = stack.read(Window(0, 0, self.grid.width, self.grid.height), halo=recipe.halo)
            self.X_map = recipe.compute_pixels(block)
        self.estimator = LithologyForest(
            n_estimators=trees,
            feature_groups=self.groups,
            screens=screens_for(recipe),
            random_state=seed,
        )
        xy = np.column_stack(self.grid.xy(samples.rows, samples.cols))
        self.model = clone(self.estimator).fit(self.X, self.y)
        map_xy = self._map_xy(seed)  # coverage is known without reading: a closed stack does
        self.outages = simulated_outages(recipe, self.model.feature_importances_, stack, map_xy)
        self.cv = cross_validate(
            self.estimator,
            self.X,
            self.y,
            xy,
            self.names,
            map_xy=map_xy,
            outages=self.outages,
            random_state=seed,
            units_out=True,
        )
        self.proba = self.predict(self.model)
        self.X_seen = self.screened_features(self.model)

    def _map_xy(self, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        n = self.grid.width * self.grid.height
        flat = rng.choice(n, size=min(MAP_SAMPLE, n), replace=False)
        return np.column_stack(self.grid.xy(flat // self.grid.width, flat % self.grid.width))

    def predict(self, model) -> np.ndarray:
        """Class probabilities of every pixel (rows: pixels in row-major order)."""
        proba = np.full((len(self.X_map), len(model.classes_)), np.nan)
        rows = np.flatnonzero(np.isfinite(self.X_map).any(axis=1))
        proba[rows] = model.predict_proba(self.X_map[rows])
        return proba

    def screened_features(self, model) -> np.ndarray:
        """The features as the streamed layers see them: what the screens flag is missing."""
        return model.screened_features(self.X_map)[0]


def truth_codes(scene, names: list[str]) -> np.ndarray:
    """Truth of every pixel as codes into ``names`` (NODATA where absent or another class)."""
    with rasterio.open(scene.truth) as src:
        truth = src.read(1).ravel()
    lut = np.full(256, NODATA, dtype="int64")
    for code, name in enumerate(scene.class_names):
        if name in names:
            lut[code] = names.index(name)
    return lut[truth], truth


def predicted_codes(proba: np.ndarray) -> np.ndarray:
    out = np.argmax(np.nan_to_num(proba, nan=-1.0), axis=1)
    out[np.isnan(proba).any(axis=1)] = NODATA
    return out


# ---------------------------------------------------------------------------- accuracy


def windows(grid, size: int):
    """Flat pixel indices of each window of the grid, as the streamed prediction visits them."""
    for win in grid.windows(size):
        r, c = np.mgrid[
            win.row_off : win.row_off + win.height, win.col_off : win.col_off + win.width
        ]
        yield (r * grid.width + c).ravel()


def applicability_figures(t: Trained, truth: np.ndarray, app, window: int) -> tuple[dict, dict]:
    """Estimated against true accuracy, AOA error rates and AUROC; and the per-pixel layers."""
    layers = {k: np.full(len(t.X_seen), np.nan) for k in ("di", "aoa", "accuracy")}
    tally = AccuracyTally(len(t.names))
    pred = predicted_codes(t.proba)
    seconds = 0.0
    for idx in windows(t.grid, window):
        t0 = time.perf_counter()
        di, aoa, acc = app.transform(t.X_seen[idx], t.proba[idx])
        seconds += time.perf_counter() - t0
        layers["di"][idx], layers["aoa"][idx], layers["accuracy"][idx] = di, aoa, acc
        tally.add(pred[idx], acc, aoa)
    estimate = tally.to_dict(t.names)
    valid = (pred != NODATA) & (truth != NODATA) & np.isfinite(layers["accuracy"])
    wrong = pred[valid] != truth[valid]
    inside = layers["aoa"][valid] == 1
    entropy = normalised_entropy(t.proba)[valid]
    figures = {
        "true_accuracy": float(1 - wrong.mean()),
        "estimated_accuracy": estimate["overall_accuracy"],
        "spatial_cv_accuracy": t.cv["spatial"]["overall_accuracy"],
        "aoa_fraction": estimate["aoa_fraction"],
        "error_inside_aoa": float(wrong[inside].mean()) if inside.any() else float("nan"),
        "error_outside_aoa": float(wrong[~inside].mean()) if (~inside).any() else float("nan"),
        "auroc_expected_error": float(roc_auc_score(wrong, 1 - layers["accuracy"][valid])),
        "auroc_entropy": float(roc_auc_score(wrong, entropy)),
        "threshold": app.threshold_,
        "calibration_inputs": ",".join(app.calibration_.inputs_),
        "transform_pixels_per_second": len(t.X_seen) / seconds,
    }
    figures["estimate_error"] = abs(figures["estimated_accuracy"] - figures["true_accuracy"])
    figures["spatial_cv_error"] = abs(figures["spatial_cv_accuracy"] - figures["true_accuracy"])
    return figures, layers


# ---------------------------------------------------------------------------- second season


def suggested_pixels(t: Trained, app, layers: dict, n: int, window: int) -> np.ndarray:
    """Flat indices of the N sites geomap suggests, collected window by window."""
    g = t.grid
    spacing = default_spacing(g.width * g.height * g.pixel_area_m2, n)
    candidates = SiteCandidates(app, t.names, n, spacing, g.crs)
    for idx in windows(g, window):
        x, y = g.xy(idx // g.width, idx % g.width)
        candidates.add(
            x,
            y,
            t.X_seen[idx],
            t.proba[idx],
            layers["di"][idx],
            layers["aoa"][idx],
            layers["accuracy"][idx],
        )
    sites = candidates.select()
    cols, rows = ~g.transform @ (sites["x"].to_numpy(), sites["y"].to_numpy())
    return np.floor(rows).astype(int) * g.width + np.floor(cols).astype(int)


def retrained_accuracy(t: Trained, truth_all: np.ndarray, scene, pixels: np.ndarray) -> float:
    """True map accuracy after labelling ``pixels`` from the truth and retraining."""
    names = list(t.names)
    for code in np.unique(truth_all[pixels]):
        if code != NODATA and scene.class_names[code] not in names:
            names.append(scene.class_names[code])  # a rock the first season never met
    truth, _ = truth_codes(scene, names)
    keep = pixels[truth[pixels] != NODATA]
    X = np.vstack([t.X, t.X_map[keep]])
    y = np.concatenate([t.y, truth[keep]])
    model = clone(t.estimator).fit(X, y)
    proba = t.predict(model)
    pred = np.asarray(model.classes_)[np.argmax(np.nan_to_num(proba, nan=-1.0), axis=1)]
    valid = ~np.isnan(proba).any(axis=1) & (truth != NODATA)
    return float((pred[valid] == truth[valid]).mean())


def season_figures(t, scene, app, layers, args, seed: int) -> dict:
    """Accuracy gain of N suggested, N random and N highest-entropy sites, and what they find."""
    truth, truth_all = truth_codes(scene, list(t.names))
    mapped = np.flatnonzero(np.isfinite(layers["accuracy"]))
    base = retrained_accuracy(t, truth_all, scene, np.zeros(0, int))
    predicted = predicted_codes(t.proba)

    def found(pixels: np.ndarray) -> tuple[float, float]:
        """Units no training sample holds among the pixels' truths; share mapped wrong."""
        unseen = {int(c) for c in truth_all[pixels] if c != NODATA} - {
            scene.class_names.index(name) for name in t.names
        }
        return float(len(unseen)), float((predicted[pixels] != truth[pixels]).mean())

    rng = np.random.default_rng([seed, 99])
    draws = [rng.choice(mapped, args.n, replace=False) for _ in range(args.random_draws)]
    random_gain = np.mean([retrained_accuracy(t, truth_all, scene, d) - base for d in draws])
    random_found = np.mean([found(d) for d in draws], axis=0)
    entropy = normalised_entropy(t.proba)
    top = mapped[np.argsort(-entropy[mapped], kind="stable")[: args.n]]
    sites = suggested_pixels(t, app, layers, args.n, args.window)
    return {
        "base_accuracy": base,
        "gain_suggested": retrained_accuracy(t, truth_all, scene, sites) - base,
        "gain_random": float(random_gain),
        "gain_entropy": retrained_accuracy(t, truth_all, scene, top) - base,
        "suggested_outside_aoa": float((layers["aoa"][sites] == 0).mean()),
        "unseen_units": float(len(set(scene.class_names) - set(t.names))),
        "found_suggested": found(sites)[0],
        "found_random": float(random_found[0]),
        "found_entropy": found(top)[0],
        "wrong_suggested": found(sites)[1],
        "wrong_random": float(random_found[1]),
        "wrong_entropy": found(top)[1],
    }


# ---------------------------------------------------------------------------- the benchmark

COLUMNS = (
    ("true OA", "true_accuracy", "{:.3f}"),
    ("estimated", "estimated_accuracy", "{:.3f}"),
    ("|est-true|", "estimate_error", "{:.3f}"),
    ("spatial CV", "spatial_cv_accuracy", "{:.3f}"),
    ("|cv-true|", "spatial_cv_error", "{:.3f}"),
    ("in AOA", "aoa_fraction", "{:.3f}"),
    ("err in", "error_inside_aoa", "{:.3f}"),
    ("err out", "error_outside_aoa", "{:.3f}"),
    ("AUROC 1-EA", "auroc_expected_error", "{:.3f}"),
    ("AUROC ent", "auroc_entropy", "{:.3f}"),
    ("gain sugg", "gain_suggested", "{:+.4f}"),
    ("gain rand", "gain_random", "{:+.4f}"),
    ("gain ent", "gain_entropy", "{:+.4f}"),
    ("unseen", "unseen_units", "{:.1f}"),
    ("found sugg", "found_suggested", "{:.1f}"),
    ("found rand", "found_random", "{:.1f}"),
    ("found ent", "found_entropy", "{:.1f}"),
    ("wrong sugg", "wrong_suggested", "{:.3f}"),
    ("wrong rand", "wrong_random", "{:.3f}"),
    ("wrong ent", "wrong_entropy", "{:.3f}"),
    ("run |est-true|", "run_estimate_error", "{:.3f}"),
    ("run err in", "run_error_inside_aoa", "{:.3f}"),
    ("run err out", "run_error_outside_aoa", "{:.3f}"),
    ("run AUROC", "run_auroc_expected_error", "{:.3f}"),
    ("run missing", "run_reduced_fraction", "{:.3f}"),
    ("true there", "run_reduced_true", "{:.3f}"),
    ("est there", "run_reduced_estimated", "{:.3f}"),
    ("true rest", "run_complete_true", "{:.3f}"),
    ("est rest", "run_complete_estimated", "{:.3f}"),
)


def shipped_figures(scene, args: argparse.Namespace) -> dict:
    """The same figures from the files `geomap run` writes."""
    out = args.workdir / f"run_{scene.directory.name}"
    config = RunConfig(
        rasters=list(scene.rasters),
        labels=observations(scene, args),
        label_column=scene.label_column,
        out=out,
        trees=args.trees,
        suggest=args.n,
        overwrite=True,
    )
    report = run(config)
    with (
        rasterio.open(out / "lithology.tif") as m,
        rasterio.open(out / "applicability.tif") as a,
        rasterio.open(out / "expected_accuracy.tif") as e,
        rasterio.open(out / "uncertainty.tif") as u,
        rasterio.open(scene.truth) as t,
    ):
        mapped, aoa, acc = m.read(1).ravel(), a.read(2).ravel(), e.read(1).ravel()
        reduced = u.read(3).ravel() > 0
        truth = t.read(1).ravel()
        names = json.loads(m.tags()["CLASS_NAMES"])
    truth_names = np.array(list(scene.class_names) + [""] * 256)[truth]
    valid = (mapped != NODATA) & np.isfinite(acc)
    wrong = np.array(names + [""])[np.minimum(mapped, len(names))][valid] != truth_names[valid]
    inside = aoa[valid] == 1
    estimate = report["map_accuracy_estimate"]
    lost = reduced[valid]
    return {
        "run_estimate_error": abs(estimate["overall_accuracy"] - (1 - wrong.mean())),
        "run_reduced_fraction": float(lost.mean()),
        "run_reduced_true": float(1 - wrong[lost].mean()) if lost.any() else np.nan,
        "run_reduced_estimated": estimate["reduced_input_accuracy"] or np.nan,
        "run_complete_true": float(1 - wrong[~lost].mean()),
        "run_complete_estimated": estimate["complete_input_accuracy"],
        "run_error_inside_aoa": float(wrong[inside].mean()),
        "run_error_outside_aoa": float(wrong[~inside].mean()) if (~inside).any() else np.nan,
        "run_auroc_expected_error": float(roc_auc_score(wrong, 1 - acc[valid])),
    }


def observations(scene, args: argparse.Namespace) -> Path:
    """The scene's field points, or its legacy map's polygons (``--observations patch``)."""
    return scene.polygons_gpkg if args.observations == "patch" else scene.points_gpkg


def seed_figures(seed: int, args: argparse.Namespace) -> dict:
    """Every figure of one seed's scene."""
    t0 = time.perf_counter()
    scene = make_scene(args.workdir / f"seed_{seed}", size=args.size, seed=seed)
    t = Trained(scene, seed, args.trees, observations(scene, args))
    app = Applicability(
        weights=t.model.feature_importances_, feature_groups=t.groups, random_state=seed
    ).fit(
        t.X,
        t.y,
        folds=t.cv["spatial_folds"],
        oof_proba=t.cv["spatial_oof_proba"],
        outages=list(zip(t.outages, t.cv.get("spatial_outage_oof_proba", []))),
        units_out=(t.cv["unit_folds"], t.cv["unit_oof_proba"]) if "unit_folds" in t.cv else None,
    )
    truth, _ = truth_codes(scene, list(t.names))
    figures, layers = applicability_figures(t, truth, app, args.window)
    figures.update(season_figures(t, scene, app, layers, args, seed))
    figures.update(shipped_figures(scene, args))
    return {"seed": seed, **figures, "seconds": time.perf_counter() - t0}


def print_table(results: list[dict], mean: dict) -> None:
    widths = [max(len(c[0]), 7) for c in COLUMNS]
    print("seed  " + "  ".join(c[0].rjust(w) for c, w in zip(COLUMNS, widths)))
    for label, row in [(str(r["seed"]), r) for r in results] + [("mean", mean)]:
        cells = [fmt.format(row[k]).rjust(w) for (_, k, fmt), w in zip(COLUMNS, widths)]
        print(f"{label:<6}" + "  ".join(cells))


def targets(mean: dict) -> list[dict]:
    """The targets of issue 5, each with its measured value and verdict."""
    m = mean
    checks = [
        (
            f"mean |estimated - true accuracy| = {m['estimate_error']:.3f} (target <= 0.05)",
            m["estimate_error"] <= 0.05,
        ),
        (
            f"error rate outside AOA {m['error_outside_aoa']:.3f} vs inside "
            f"{m['error_inside_aoa']:.3f} (target: clearly higher outside, here >= 1.5x)",
            m["error_outside_aoa"] >= 1.5 * m["error_inside_aoa"],
        ),
        (
            f"AUROC of 1 - expected accuracy = {m['auroc_expected_error']:.3f} (target >= 0.75)",
            m["auroc_expected_error"] >= 0.75,
        ),
        (
            f"gain of suggested sites {m['gain_suggested']:+.4f} vs random "
            f"{m['gain_random']:+.4f} and highest entropy {m['gain_entropy']:+.4f} "
            "(target: above both)",
            m["gain_suggested"] > max(m["gain_random"], m["gain_entropy"]),
        ),
    ]
    return [{"target": text, "pass": bool(ok)} for text, ok in checks]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    t0 = time.perf_counter()
    results = []
    for seed in args.seeds:
        results.append(seed_figures(seed, args))
        print(f"seed {seed} done in {results[-1]['seconds']:.0f} s", flush=True)
    keys = [k for k, v in results[0].items() if isinstance(v, float) and k != "seconds"]
    mean = {k: float(np.nanmean([r[k] for r in results])) for k in keys}
    speed = mean["transform_pixels_per_second"]
    print(f"\nApplicability.transform (DI, AOA, expected accuracy): {speed:,.0f} pixels/s")
    print(f"N = {args.n} sites; random: mean of {args.random_draws} draws\n")
    print_table(results, mean)
    print()
    save_verdicts(args, results, mean, targets(mean), t0, "applicability.json")


if __name__ == "__main__":
    main()
