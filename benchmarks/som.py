"""Self-organizing maps on generated scenes with a known truth: quality, novelty and speed.

For each seed a scene is generated with `geomap.synthetic.make_scene` (seeds not used while the
SOM code was written) and mapped with geomap's defaults:

- `som` (semi-supervised) with every observation: true overall accuracy against `truth.tif`,
  beside the majority-class rate (the accuracy of mapping everything as the commonest unit);
- `som-clusters` (no labels): normalised mutual information (NMI) of the clusters with the truth;
- `som` again once per unit with every observation of that unit removed: the mean label distance
  over the unit nobody observed against the mean over the observed units (the ratio must be > 1).

Speed (`--speed-sizes`): a 12-band float32 stack is generated per size (in a child process, once),
`geomap run --model som-clusters` maps it in a fresh child process that reports its peak RSS, and
the streamed rate (pixels per second of the whole output step: reading, features, best-matching-
unit search, writing, overviews, COG, plots) is set against two in-memory numpy BMU searches of
the same fitted map on standardised features of 256-pixel windows already in memory (median of 3
calls): geomap's own chunked search without any I/O (`nearest_rows`, the strict
reference) and the plain numpy expansion `||z||^2 - 2 z.W + ||w||^2` one window at a time.

    python benchmarks/som.py                                   # seeds 404 505 606, speed at 2000
    python benchmarks/som.py --seeds 101 --speed-sizes         # one seed, no speed run
    python benchmarks/som.py --speed-sizes 4000 8000 --workdir /tmp/geomap-som
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio
from sklearn.metrics import normalized_mutual_info_score

sys.path.insert(0, str(Path(__file__).parent))
from quality import NODATA, to_truth_codes  # noqa: E402
from speed_memory import generate, reference_features, run_child  # noqa: E402

from geomap.export import load_model  # noqa: E402
from geomap.features import FeatureRecipe  # noqa: E402
from geomap.kernels import nearest_rows  # noqa: E402
from geomap.synthetic import make_scene  # noqa: E402
from geomap.workflow import RunConfig, run  # noqa: E402

TARGETS = {"accuracy": 0.45, "nmi": 0.30, "label_distance_ratio": 1.0, "throughput_ratio": 0.8}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="*", default=[404, 505, 606])
    parser.add_argument("--size", type=int, default=300, help="quality scene side in pixels")
    parser.add_argument("--speed-sizes", type=int, nargs="*", default=[2000])
    parser.add_argument("--reference-windows", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a fresh temp dir")
    args = parser.parse_args(argv)
    if args.workdir is None:
        args.workdir = Path(tempfile.mkdtemp(prefix="geomap-som-"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    return args


def _run(scene, out: Path, model: str, labels: Path | None) -> dict:
    config = RunConfig(
        rasters=list(scene.rasters),
        labels=labels,
        label_column="lithology",
        out=out,
        model=model,
        overwrite=True,
    )
    return run(config)


def held_out_ratio(scene, truth: np.ndarray, unit: str, workdir: Path) -> dict:
    """Label distance over ``unit`` when none of its observations is kept, against the others."""
    points = gpd.read_file(scene.points_gpkg)
    labels = workdir / f"without_{unit}.gpkg"
    points[points["lithology"] != unit].to_file(labels)
    out = workdir / f"som_without_{unit}"
    _run(scene, out, "som", labels)
    with rasterio.open(out / "label_distance.tif") as src:
        distance = src.read(1)
    code = scene.class_names.index(unit)
    valid = (truth != NODATA) & np.isfinite(distance)
    inside = float(distance[valid & (truth == code)].mean())
    outside = float(distance[valid & (truth != code)].mean())
    return {"unit": unit, "unobserved": inside, "observed": outside, "ratio": inside / outside}


def quality(seed: int, args) -> dict:
    directory = args.workdir / f"seed_{seed}"
    scene = make_scene(directory / "scene", size=args.size, seed=seed)
    with rasterio.open(scene.truth) as src:
        truth = src.read(1)
    _run(scene, directory / "som", "som", scene.points_gpkg)
    mapped = to_truth_codes(directory / "som" / "lithology.tif", scene.class_names)
    valid = (mapped != NODATA) & (truth != NODATA)
    accuracy = float((mapped[valid] == truth[valid]).mean())
    majority = float(np.bincount(truth[valid]).max() / valid.sum())
    _run(scene, directory / "clusters", "som-clusters", None)
    with rasterio.open(directory / "clusters" / "clusters.tif") as src:
        clusters = src.read(1)
    ok = (clusters != NODATA) & (truth != NODATA)
    nmi = float(normalized_mutual_info_score(truth[ok], clusters[ok]))
    present = [n for i, n in enumerate(scene.class_names) if (truth == i).mean() >= 0.02]
    novelty = [held_out_ratio(scene, truth, unit, directory) for unit in present]
    return {
        "seed": seed,
        "accuracy": accuracy,
        "majority_rate": majority,
        "nmi": nmi,
        "label_distance": novelty,
    }


def plain_search(Z: np.ndarray, W: np.ndarray, rows: int = 65536) -> np.ndarray:
    """The BMU search as one would write it in numpy, one 256 x 256 window of rows at a time."""
    w2 = (W**2).sum(axis=1)
    return np.concatenate(
        [
            np.argmin((z**2).sum(1)[:, None] - 2 * z @ W.T + w2, axis=1)
            for z in (Z[s : s + rows] for s in range(0, len(Z), rows))
        ]
    )


def _rate(fn, n: int) -> float:
    fn()  # warm up
    seconds = []
    for _ in range(3):
        t0 = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t0)
    return n / float(np.median(seconds))


def in_memory_rates(model_path: Path, rasters: list[Path], windows: int) -> tuple[dict, int]:
    """Pixels per second of BMU searches on standardised features already in memory.

    ``geomap``: geomap's own chunked search; ``plain``: :func:`plain_search`.
    """
    bundle = load_model(model_path)
    recipe = FeatureRecipe.from_dict(bundle["recipe"])
    som = bundle["clusters"].som_
    X = reference_features(recipe, rasters, windows)
    Z, W = som.standardise(X), som.codebook_
    rates = {
        "geomap": _rate(lambda: nearest_rows(Z, W), len(Z)),
        "plain": _rate(lambda: plain_search(Z, W), len(Z)),
    }
    return rates, len(Z)


def speed(size: int, args) -> dict:
    rasters, _ = generate(args.workdir / f"stack_{size}_12", size, 12)
    out = args.workdir / f"clusters_{size}"
    argv = ["run", "--model", "som-clusters", "--out", str(out), "--overwrite", "--quiet"]
    for r in rasters:
        argv += ["--raster", str(r)]
    child, wall = run_child(argv)
    report = json.loads((out / "report.json").read_text())
    pred = report["prediction"]
    pixels = pred["mapped_pixels"] + pred["nodata_pixels"]
    stream_rate = pixels / pred["seconds"]["wall"]
    ref, ref_pixels = in_memory_rates(out / "model.skops", rasters, args.reference_windows)
    return {
        "size": size,
        "pixels": pixels,
        "som_nodes": report["som"]["nodes"],
        "features": len(report["features"]["names"]),
        "run_wall_s": round(wall, 1),
        "fit_s": report["timings_seconds"]["fit"],
        "output_seconds": pred["seconds"],
        "streamed_px_per_s": round(stream_rate),
        "in_memory_px_per_s": round(ref["geomap"]),
        "plain_numpy_px_per_s": round(ref["plain"]),
        "reference_pixels": ref_pixels,
        "throughput_ratio": round(stream_rate / ref["geomap"], 3),
        "ratio_to_plain_numpy": round(stream_rate / ref["plain"], 3),
        "peak_rss_mb": round(child["peak_rss_mb"]),
    }


def _verdict(name: str, passed: bool, text: str) -> None:
    print(f"{'PASS' if passed else 'FAIL'} {name}: {text}")


def report(quality_rows: list[dict], speed_rows: list[dict]) -> None:
    print("\nseed  SOM OA  majority  NMI clusters  label distance unobserved/observed by unit")
    for q in quality_rows:
        ratios = " ".join(f"{n['unit']}={n['ratio']:.2f}" for n in q["label_distance"])
        print(f"{q['seed']:<5} {q['accuracy']:.3f}  {q['majority_rate']:.3f}     {q['nmi']:.3f}"
              f"         {ratios}")  # fmt: skip
    if quality_rows:
        acc = np.mean([q["accuracy"] for q in quality_rows])
        maj = np.mean([q["majority_rate"] for q in quality_rows])
        nmi = np.mean([q["nmi"] for q in quality_rows])
        ratios = [n["ratio"] for q in quality_rows for n in q["label_distance"]]
        print(f"mean  {acc:.3f}  {maj:.3f}     {nmi:.3f}         "
              f"ratio mean {np.mean(ratios):.2f}, min {np.min(ratios):.2f}, "
              f"{sum(r > 1 for r in ratios)}/{len(ratios)} units above 1")  # fmt: skip
        _verdict("accuracy", acc >= TARGETS["accuracy"] and acc > maj,
                 f"mean SOM OA {acc:.3f} >= 0.45, above the majority rate {maj:.3f}")  # fmt: skip
        _verdict("nmi", nmi >= TARGETS["nmi"], f"mean NMI {nmi:.3f} >= 0.30")
        _verdict("label distance", min(ratios) > 1,
                 f"every held-out unit's label distance above the observed units' (min ratio "
                 f"{min(ratios):.2f})")  # fmt: skip
    if speed_rows:
        print("\nsize  pixels      nodes  streamed px/s  in-memory px/s (geomap, plain numpy)  "
              "ratio (geomap, plain)  peak RSS MB")  # fmt: skip
        for r in speed_rows:
            print(f"{r['size']:<5} {r['pixels']:<11} {r['som_nodes']:<6} "
                  f"{r['streamed_px_per_s']:<14} {r['in_memory_px_per_s']:<9} "
                  f"{r['plain_numpy_px_per_s']:<27} {r['throughput_ratio']:<6} "
                  f"{r['ratio_to_plain_numpy']:<15} {r['peak_rss_mb']}")  # fmt: skip
        worst = min(r["throughput_ratio"] for r in speed_rows)
        _verdict("throughput", worst >= TARGETS["throughput_ratio"],
                 f"streamed / in-memory geomap BMU search {worst:.3f} >= 0.8")  # fmt: skip
        worst = min(r["ratio_to_plain_numpy"] for r in speed_rows)
        _verdict("throughput (plain numpy)", worst >= TARGETS["throughput_ratio"],
                 f"streamed / in-memory plain numpy BMU search {worst:.3f} >= 0.8")  # fmt: skip


def main(argv=None) -> None:
    args = parse_args(argv)
    t0 = time.perf_counter()
    quality_rows, speed_rows = [], []
    for seed in args.seeds:
        quality_rows.append(quality(seed, args))
        print(json.dumps(quality_rows[-1]), flush=True)
    for size in args.speed_sizes:
        speed_rows.append(speed(size, args))
        print(json.dumps(speed_rows[-1]), flush=True)
    report(quality_rows, speed_rows)
    path = args.workdir / "som.json"
    path.write_text(json.dumps({"quality": quality_rows, "speed": speed_rows}, indent=1))
    print(f"\nfigures in {path}; {time.perf_counter() - t0:.0f} s in all")


if __name__ == "__main__":
    main()
