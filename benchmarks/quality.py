"""Mapping quality on synthetic scenes with a known truth: geomap against a plain per-pixel forest.

For each seed a scene is generated with `geomap.synthetic.make_scene` and mapped six ways:

- `geomap`: the default pipeline (neighbourhood features, no probability smoothing);
- `geomap_smooth3`: the same with 3 x 3 probability smoothing (smooth=3);
- `geomap_raw`: raw bands only (features="raw");
- `geomap_no_screen`: the default pipeline without the spectral screen (`geomap.screen`);
- `geomap_exact_labels`: the default pipeline trained on the same field points labelled with the
  truth of their pixel (no mislabels, no point across a contact from its pixel centre): a
  control that shows how far each CV is from the true accuracy when the labels mean what the
  truth means, apart from the label noise;
- `plain_forest`: the per-pixel random forest a geologist would script by hand: every band
  reprojected in memory onto the truth grid (bilinear, NaN for no data), a scikit-learn
  RandomForestClassifier trained on the pixels under the field points, uncertainty the normalised
  entropy of predict_proba.

Each map is scored against `truth.tif` over the pixels where both are valid: the true overall
accuracy, and the AUROC of its uncertainty (entropy, margin) for telling wrong pixels from right
ones. geomap's random- and spatial-CV accuracies are set beside its true accuracy and beside a
field check: its agreement with 2000 observations at uniformly random places, labelled like the
field points (`geomap.synthetic.check_points`), the figure cross-validation on field observations
estimates. Every figure is measured in this one run and compared with the others; nothing is
timed.

    python benchmarks/quality.py                          # seeds 11 23 37 41 59
    python benchmarks/quality.py --seeds 11 --fast        # one seed, no ablations
    python benchmarks/quality.py --workdir /tmp/geomap-quality --size 300 --trees 200
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.enums import Resampling
from rasterio.warp import reproject
from scenes import parse, scene_config, scene_parser
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score

from geomap.synthetic import Scene, check_points, make_scene
from geomap.workflow import run

NODATA = 255
ABLATIONS = {
    "geomap_smooth3": {"smooth": 3},
    "geomap_raw": {"features": "raw"},
    "geomap_no_screen": {"spectral_screen": False},
}
CHECK_POINTS = 2000
CV_METRICS = ("overall_accuracy", "balanced_accuracy", "macro_f1", "kappa")
MAIN_COLUMNS = (
    ("true OA", "geomap", "true_accuracy", "{:.3f}"),
    ("plain OA", "plain_forest", "true_accuracy", "{:.3f}"),
    ("gain pts", "comparison", "accuracy_gain_points", "{:+.1f}"),
    ("AUROC ent", "geomap", "auroc_entropy", "{:.3f}"),
    ("AUROC mrg", "geomap", "auroc_margin", "{:.3f}"),
    ("plain AUROC", "plain_forest", "auroc_entropy", "{:.3f}"),
    ("random CV", "geomap", "random_cv_overall_accuracy", "{:.3f}"),
    ("spatial CV", "geomap", "spatial_cv_overall_accuracy", "{:.3f}"),
    ("|spat-true|", "geomap", "spatial_gap", "{:.3f}"),
    ("|rand-true|", "geomap", "random_gap", "{:.3f}"),
    ("check OA", "geomap", "field_check_accuracy", "{:.3f}"),
    ("|spat-chk|", "geomap", "spatial_check_gap", "{:.3f}"),
    ("|rand-chk|", "geomap", "random_check_gap", "{:.3f}"),
    ("block m", "geomap", "spatial_block_size_m", "{:.0f}"),
    ("labels=truth", "scene", "label_truth_agreement", "{:.3f}"),
)
ABLATION_COLUMNS = (
    ("default OA", "geomap", "true_accuracy", "{:.3f}"),
    ("smooth3 OA", "geomap_smooth3", "true_accuracy", "{:.3f}"),
    ("raw OA", "geomap_raw", "true_accuracy", "{:.3f}"),
    ("no-screen OA", "geomap_no_screen", "true_accuracy", "{:.3f}"),
    ("default AUROC", "geomap", "auroc_entropy", "{:.3f}"),
    ("smooth3 AUROC", "geomap_smooth3", "auroc_entropy", "{:.3f}"),
    ("raw AUROC", "geomap_raw", "auroc_entropy", "{:.3f}"),
    ("smooth3 spat CV", "geomap_smooth3", "spatial_cv_overall_accuracy", "{:.3f}"),
    ("raw spat CV", "geomap_raw", "spatial_cv_overall_accuracy", "{:.3f}"),
)
CONTROL_COLUMNS = (
    ("true OA", "geomap_exact_labels", "true_accuracy", "{:.3f}"),
    ("random CV", "geomap_exact_labels", "random_cv_overall_accuracy", "{:.3f}"),
    ("spatial CV", "geomap_exact_labels", "spatial_cv_overall_accuracy", "{:.3f}"),
    ("|spat-true|", "geomap_exact_labels", "spatial_gap", "{:.3f}"),
    ("|rand-true|", "geomap_exact_labels", "random_gap", "{:.3f}"),
    ("block m", "geomap_exact_labels", "spatial_block_size_m", "{:.0f}"),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = scene_parser(__doc__, [11, 23, 37, 41, 59])
    parser.add_argument("--fast", action="store_true", help="skip the ablations")
    return parse(parser, argv, "geomap-quality-")


# ---------------------------------------------------------------------------- scoring


def read_truth(scene: Scene) -> tuple[np.ndarray, dict]:
    """Truth codes and the profile of their grid (the output grid of a default geomap run)."""
    with rasterio.open(scene.truth) as src:
        return src.read(1), src.profile


def map_scores(pred: np.ndarray, truth: np.ndarray, scores: dict[str, np.ndarray]) -> dict:
    """True accuracy of a class map and the AUROC of each uncertainty score for its errors."""
    valid = (pred != NODATA) & (truth != NODATA)
    wrong = pred[valid] != truth[valid]
    out = {"true_accuracy": float(1 - wrong.mean()), "scored_pixels": int(valid.sum())}
    for name, score in scores.items():
        out[f"auroc_{name}"] = float(roc_auc_score(wrong, score[valid]))
    return out


def uncertainties(proba: np.ndarray) -> dict[str, np.ndarray]:
    """Normalised entropy and margin 1 - (p1 - p2) of (n_pixels, n_classes) probabilities."""
    logs = np.log(np.where(proba > 0, proba, 1.0))
    top2 = np.sort(proba, axis=1)[:, -2:]
    return {
        "entropy": -(proba * logs).sum(axis=1) / np.log(proba.shape[1]),
        "margin": 1 - (top2[:, 1] - top2[:, 0]),
    }


# ---------------------------------------------------------------------------- geomap


def to_truth_codes(lithology: Path, class_names: tuple[str, ...]) -> np.ndarray:
    """geomap's class map recoded by name into the truth's codes (a class may be absent)."""
    with rasterio.open(lithology) as src:
        codes = src.read(1)
        names = json.loads(src.tags()["CLASS_NAMES"])
    lut = np.full(256, NODATA, dtype="uint8")
    lut[: len(names)] = [class_names.index(n) for n in names]
    return lut[codes]


def cv_figures(report: dict, true_accuracy: float, check_accuracy: float) -> dict:
    """Random and spatial cross-validation figures and their distance to the true accuracy and
    to the field check's."""
    out = {}
    for kind in ("random", "spatial"):
        figures = report["validation"][kind]
        out.update({f"{kind}_cv_{m}": float(figures[m]) for m in CV_METRICS})
        out[f"{kind}_gap"] = abs(float(figures["overall_accuracy"]) - true_accuracy)
        out[f"{kind}_check_gap"] = abs(float(figures["overall_accuracy"]) - check_accuracy)
    out["spatial_block_size_m"] = float(report["validation"]["spatial"]["block_size"])
    return out


def geomap_figures(
    scene: Scene, check: tuple, out: Path, seed: int, trees: int, options: dict
) -> dict:
    """Run geomap on a scene with ``options`` overriding RunConfig defaults; score its outputs."""
    config = scene_config(scene, out, seed, trees, **options)
    t0 = time.perf_counter()
    report = run(config)
    seconds = time.perf_counter() - t0
    truth, _ = read_truth(scene)
    pred = to_truth_codes(out / "lithology.tif", scene.class_names)
    with rasterio.open(out / "uncertainty.tif") as src:
        scores = {"entropy": src.read(1), "margin": src.read(2)}
    figures = map_scores(pred, truth, scores)
    pixels, labels = check
    mapped = pred.ravel()[pixels] != NODATA
    figures["field_check_accuracy"] = float(np.mean(pred.ravel()[pixels][mapped] == labels[mapped]))
    figures.update(cv_figures(report, figures["true_accuracy"], figures["field_check_accuracy"]))
    figures["seconds"] = seconds
    return figures


# ---------------------------------------------------------------------------- plain forest


def bands_on_grid(paths: tuple[Path, ...], profile: dict) -> np.ndarray:
    """Every band of every raster, bilinearly reprojected onto the grid; NaN for no data."""
    layers = []
    for path in paths:
        with rasterio.open(path) as src:
            dst = np.full((src.count, profile["height"], profile["width"]), np.nan, "float32")
            reproject(
                src.read(out_dtype="float32"),
                dst,
                src_transform=src.transform,
                src_crs=src.crs,
                src_nodata=src.nodata,
                dst_transform=profile["transform"],
                dst_crs=profile["crs"],
                dst_nodata=np.nan,
                resampling=Resampling.bilinear,
            )
        layers.append(dst)
    return np.concatenate(layers)


def point_pixels(
    scene: Scene, profile: dict, points: gpd.GeoDataFrame | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Flat pixel index and truth-coded label of each field point (or of ``points``)."""
    if points is None:
        points = gpd.read_file(scene.points_gpkg)
    points = points.to_crs(profile["crs"])
    xy = (points.geometry.x.to_numpy(), points.geometry.y.to_numpy())
    cols, rows = ~profile["transform"] @ xy
    rows, cols = np.floor(rows).astype(int), np.floor(cols).astype(int)
    inside = (rows >= 0) & (rows < profile["height"]) & (cols >= 0) & (cols < profile["width"])
    labels = pd.Index(scene.class_names).get_indexer(points[scene.label_column])
    return (rows * profile["width"] + cols)[inside], labels[inside]


def plain_forest_figures(scene: Scene, seed: int, trees: int) -> dict:
    """The hand-scripted per-pixel random forest on the truth grid, scored like geomap."""
    t0 = time.perf_counter()
    truth, profile = read_truth(scene)
    bands = bands_on_grid(scene.rasters, profile)
    X = bands.reshape(len(bands), -1).T
    pixels, y = point_pixels(scene, profile)
    forest = RandomForestClassifier(n_estimators=trees, n_jobs=-1, random_state=seed)
    proba = forest.fit(X[pixels], y).predict_proba(X)
    pred = forest.classes_[proba.argmax(axis=1)].reshape(truth.shape)
    scores = {k: v.reshape(truth.shape) for k, v in uncertainties(proba).items()}
    figures = map_scores(pred, truth, scores)
    figures["training_pixels"] = int(len(pixels))
    figures["seconds"] = time.perf_counter() - t0
    return figures


# ---------------------------------------------------------------------------- the benchmark


def scene_figures(scene: Scene) -> dict:
    """Share of field labels equal to the truth of their pixel.

    A perfect map is scored wrong at the other points by cross-validation (the scenes mislabel
    ~2% of the observations, and a point near a contact can fall in a pixel of another unit).
    """
    truth, profile = read_truth(scene)
    pixels, labels = point_pixels(scene, profile)
    agree = truth.ravel()[pixels] == labels
    return {"label_truth_agreement": float(agree.mean()), "points_on_grid": int(len(pixels))}


def exact_labels(scene: Scene, path: Path) -> Path:
    """The field points relabelled with the truth of their pixel, written to ``path``."""
    truth, profile = read_truth(scene)
    points = gpd.read_file(scene.points_gpkg).to_crs(profile["crs"])
    pixels, _ = point_pixels(scene, profile, points)
    if len(pixels) != len(points):
        raise RuntimeError(f"{scene.points_gpkg}: field points off the truth grid")
    points[scene.label_column] = np.asarray(scene.class_names)[truth.ravel()[pixels]]
    points.to_file(path, driver="GPKG")
    return path


def seed_figures(seed: int, args: argparse.Namespace) -> dict:
    """Every map of one seed's scene, scored."""
    t0 = time.perf_counter()
    base = args.workdir / f"seed_{seed}"
    scene = make_scene(base / "scene", size=args.size, seed=seed)
    out = {"scene": scene_figures(scene)}
    check = point_pixels(scene, read_truth(scene)[1], check_points(scene, CHECK_POINTS))
    variants = {"geomap": {}}
    if not args.fast:
        control = {"labels": exact_labels(scene, base / "exact_labels.gpkg")}
        variants.update(ABLATIONS, geomap_exact_labels=control)
    for name, options in variants.items():
        out[name] = geomap_figures(scene, check, base / name, seed, args.trees, options)
    out["plain_forest"] = plain_forest_figures(scene, seed, args.trees)
    gain = 100 * (out["geomap"]["true_accuracy"] - out["plain_forest"]["true_accuracy"])
    out["comparison"] = {"accuracy_gain_points": gain}
    return {"seed": seed, **out, "seconds": time.perf_counter() - t0}


def mean_figures(results: list[dict]) -> dict:
    """Mean over seeds of every figure of every map."""
    groups = [k for k, v in results[0].items() if isinstance(v, dict)]
    return {
        g: {k: float(np.mean([r[g][k] for r in results])) for k in results[0][g]} for g in groups
    }


def print_table(title: str, columns: tuple, results: list[dict], mean: dict) -> None:
    widths = [max(len(c[0]), 7) for c in columns]
    print(f"\n{title}")
    print("seed  " + "  ".join(c[0].rjust(w) for c, w in zip(columns, widths)))
    rows = [(str(r["seed"]), r) for r in results] + [("mean", mean)]
    for label, figures in rows:
        cells = [fmt.format(figures[g][k]).rjust(w) for (_, g, k, fmt), w in zip(columns, widths)]
        print(f"{label:<6}" + "  ".join(cells))


def targets(mean: dict) -> list[dict]:
    """The quality targets, each with its measured value and verdict."""
    g = mean["geomap"]
    gain = mean["comparison"]["accuracy_gain_points"]
    spatial, random_ = g["spatial_gap"], g["random_gap"]
    checks = [
        (
            f"geomap accuracy - plain forest accuracy = {gain:+.1f} points (target >= +5.0)",
            gain >= 5.0,
        ),
        (
            f"AUROC of geomap entropy for wrong pixels = {g['auroc_entropy']:.3f} (target >= 0.75)",
            g["auroc_entropy"] >= 0.75,
        ),
        (f"mean |spatial CV - true accuracy| = {spatial:.3f} (target <= 0.08)", spatial <= 0.08),
        (
            f"mean |spatial CV - true| = {spatial:.3f} < mean |random CV - true| = {random_:.3f}",
            spatial < random_,
        ),
        (
            f"mean |spatial CV - field check| = {g['spatial_check_gap']:.3f} < mean |random CV - "
            f"field check| = {g['random_check_gap']:.3f} (not an issue target: CV scored like "
            "the check, on field labels)",
            g["spatial_check_gap"] < g["random_check_gap"],
        ),
    ]
    if "geomap_exact_labels" in mean:
        c = mean["geomap_exact_labels"]
        checks.append(
            (
                f"labels = pixel truth: mean |spatial CV - true| = {c['spatial_gap']:.3f} < mean "
                f"|random CV - true| = {c['random_gap']:.3f} (not an issue target: a control "
                "without label noise)",
                c["spatial_gap"] < c["random_gap"],
            )
        )
    return [{"target": text, "pass": bool(ok)} for text, ok in checks]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    t0 = time.perf_counter()
    results = []
    for seed in args.seeds:
        results.append(seed_figures(seed, args))
        print(f"seed {seed} done in {results[-1]['seconds']:.0f} s", flush=True)
    mean = mean_figures(results)
    print_table("geomap (default) against the plain per-pixel forest", MAIN_COLUMNS, results, mean)
    if not args.fast:
        print_table("ablations (true accuracy, AUROC of entropy)", ABLATION_COLUMNS, results, mean)
        title = "control: the same points labelled with their pixel's truth"
        print_table(title, CONTROL_COLUMNS, results, mean)
    print()
    save_verdicts(args, results, mean, targets(mean), t0, "quality.json")


def save_verdicts(args, results: list, mean: dict, checks: list, t0: float, name: str) -> None:
    """Print one PASS/FAIL line per target and write every figure into ``args.workdir / name``."""
    for check in checks:
        print(f"{'PASS' if check['pass'] else 'FAIL'}  {check['target']}")
    summary = {
        "configuration": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "seeds": results,
        "mean": mean,
        "targets": checks,
        "seconds": time.perf_counter() - t0,
    }
    path = args.workdir / name
    path.write_text(json.dumps(summary, indent=1))
    print(f"\nfigures: {path}\ntotal {summary['seconds']:.0f} s")


if __name__ == "__main__":
    main()
