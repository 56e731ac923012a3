"""Speed and memory of streamed prediction against in-memory predict_proba of the same forest.

For each size, a 12-band float32 stack with known geology is generated (in a child process, once),
its bands named like a survey's (six Landsat bands, K, Th, U, TMI, elevation, gravity) so that
geomap derives the ratios, spectral shares, terrain and spectral screen it would for one; then
`geomap run` maps it in a fresh child process that reports its peak RSS. The reference is
measured in this process: the same fitted forest's `predict_proba` on features of the same scene
already in memory (windows spread over the scene, median of three calls). Both rates are pixels
per second of wall time; the streamed one covers the whole prediction step (reading, features,
forest, writing, overviews, COG, and the applicability layers and site candidates), the reference
the forest alone. Their ratio is what to read, since machines here are noisy. The applicability
layers are computed in the writer thread while the forest predicts the next window, so their
seconds (printed) overlap the rest; `--no-applicability` measures the map alone.

    python benchmarks/speed_memory.py --sizes 4000 8000 --workdir /tmp/geomap-bench
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from rasterio.windows import Window

from geomap.export import load_model
from geomap.features import FeatureRecipe
from geomap.kernels import forest_proba
from geomap.stack import RasterStack

#: The child reports VmHWM, its own peak: ru_maxrss of a child started by fork keeps the parent's
#: RSS at the fork (a parent holding 1.5 GB gives a trivial child a ru_maxrss of 1.5 GB).
_CHILD = """
import json, re, sys
from geomap.cli import main
code = main(sys.argv[1:])
hwm = re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)
print(json.dumps({"code": code, "peak_rss_mb": int(hwm) / 1024}))
"""


#: Band names of the generated stack, in order (beyond 12 bands: band_13, ...).
SURVEY = (
    "blue",
    "green",
    "red",
    "nir",
    "swir1",
    "swir2",
    "K",
    "Th",
    "U",
    "tmi",
    "elevation",
    "gravity",
)


def generate(directory: Path, size: int, bands: int) -> tuple[list[Path], Path]:
    done = directory / "done.json"
    names = [*SURVEY[:bands], *(f"band_{b + 1}" for b in range(len(SURVEY), bands))]
    if not done.exists():
        code = (
            "import sys, json; from geomap.synthetic import write_benchmark_stack as w; "
            f"p, pts, t = w(sys.argv[1], size={size}, n_bands={bands}, names={names!r}); "
            "info = {'rasters': [str(x) for x in p], 'points': str(pts)}; "
            "json.dump(info, open(sys.argv[2], 'w'))"
        )
        subprocess.run([sys.executable, "-c", code, str(directory), str(done)], check=True)
    info = json.loads(done.read_text())
    return [Path(p) for p in info["rasters"]], Path(info["points"])


def run_child(argv: list[str]) -> tuple[dict, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *argv], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"child failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def reference_features(recipe: FeatureRecipe, rasters: list[Path], windows: int) -> np.ndarray:
    """Features of ``windows`` 256-pixel windows spread over the scene (seeded), in memory."""
    rng = np.random.default_rng(0)
    with RasterStack.open(rasters) as stack:
        rows = rng.integers(0, stack.grid.height - 256, windows)
        cols = rng.integers(0, stack.grid.width - 256, windows)
        return np.concatenate(
            [
                recipe.compute_pixels(stack.read(Window(c, r, 256, 256), halo=recipe.halo))
                for r, c in zip(rows, cols)
            ]
        )


def in_memory_rates(model_path: Path, rasters: list[Path], windows: int) -> tuple[dict, int]:
    """Pixels per second of the forest on features already in memory, two ways.

    ``sklearn``: scikit-learn's ``predict_proba`` of the fitted forest (the issue's reference);
    ``compiled``: :func:`geomap.kernels.forest_proba`, the walk geomap maps with, on the same
    forest and rows (what the streaming itself costs is measured against this one). The
    features of ``windows`` 256-pixel windows spread over the scene are held in memory; each
    rate is the median of three timed calls, alternated, so that one noisy spell does not set it.
    """
    bundle = load_model(model_path)
    recipe = FeatureRecipe.from_dict(bundle["recipe"])
    X = reference_features(recipe, rasters, windows)
    forest = bundle["estimator"].forest_
    ways = {"sklearn": forest.predict_proba, "compiled": lambda X: forest_proba(forest, X)}
    seconds = {name: [] for name in ways}
    for way in ways.values():
        way(X[:1000])  # warm up
    for _ in range(3):
        for name, way in ways.items():
            t0 = time.perf_counter()
            way(X)
            seconds[name].append(time.perf_counter() - t0)
    return {name: X.shape[0] / float(np.median(s)) for name, s in seconds.items()}, X.shape[0]


def bench(size: int, args) -> dict:
    directory = args.workdir / f"survey_{size}_{args.bands}"
    t0 = time.perf_counter()
    rasters, points = generate(directory, size, args.bands)
    print(f"[{size}] stack ready ({time.perf_counter() - t0:.0f} s)", flush=True)
    out = args.workdir / f"run_{size}{'' if args.applicability else '_no_aoa'}"
    argv = [
        "run",
        "--labels",
        str(points),
        "--label-column",
        "lithology",
        "--out",
        str(out),
        "--overwrite",
        "--trees",
        str(args.trees),
        "--quiet",
    ]
    for r in rasters:
        argv += ["--raster", str(r)]
    if not args.applicability:
        argv.append("--no-applicability")
    child, wall = run_child(argv)
    report = json.loads((out / "report.json").read_text())
    pred = report["prediction"]
    pixels = pred["mapped_pixels"] + pred["nodata_pixels"]
    stream_rate = pixels / pred["seconds"]["wall"]
    trust_s = report["timings_seconds"].get("applicability_stream", 0.0)
    rates, ref_pixels = in_memory_rates(out / "model.skops", rasters, args.reference_windows)
    ref_rate = rates["sklearn"]
    result = {
        "size": size,
        "bands": args.bands,
        "trees": args.trees,
        "pixels": pixels,
        "run_wall_s": round(wall, 1),
        "predict_wall_s": round(pred["seconds"]["wall"], 1),
        "predict_seconds": pred["seconds"],
        "streamed_px_per_s": round(stream_rate),
        "in_memory_px_per_s": round(ref_rate),
        "in_memory_compiled_px_per_s": round(rates["compiled"]),
        "reference_pixels": ref_pixels,
        "throughput_ratio": round(stream_rate / ref_rate, 3),
        "throughput_ratio_compiled": round(stream_rate / rates["compiled"], 3),
        "applicability_s": round(trust_s, 1),
        "peak_rss_mb": round(child["peak_rss_mb"]),
        "in_memory_features_would_need_mb": round(
            pixels * len(report["features"]["names"]) * 4 / 2**20
        ),
    }
    if args.predict:
        child, wall = run_child(
            [
                "predict",
                "--model",
                str(out / "model.skops"),
                "--out",
                str(args.workdir / f"pred_{size}"),
                "--overwrite",
                "--quiet",
                *sum((["--raster", str(r)] for r in rasters), []),
            ]
        )
        predicted = json.loads((args.workdir / f"pred_{size}" / "report.json").read_text())
        result["predict_command_wall_s"] = round(wall, 1)
        result["predict_command_ratio"] = round(
            pixels / predicted["prediction"]["seconds"]["wall"] / ref_rate, 3
        )
        result["predict_command_peak_rss_mb"] = round(child["peak_rss_mb"])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[4000, 8000])
    parser.add_argument("--bands", type=int, default=12)
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument(
        "--reference-windows",
        type=int,
        default=16,
        help="256-pixel windows held in memory for the predict_proba reference",
    )
    parser.add_argument("--predict", action="store_true", help="also time `geomap predict`")
    parser.add_argument(
        "--no-applicability",
        dest="applicability",
        action="store_false",
        help="run `geomap run --no-applicability` (the map alone)",
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/geomap-bench"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    results = []
    for size in args.sizes:
        results.append(bench(size, args))
        print(json.dumps(results[-1], indent=1), flush=True)
    print(
        "\n                          in memory: scikit-learn   in memory: compiled walk\n"
        "size  pixels    streamed px/s  px/s     ratio        px/s     ratio"
        "           AOA s (overlapped)  peak RSS MB"
    )
    for r in results:
        print(
            f"{r['size']:<5} {r['pixels']:<9} {r['streamed_px_per_s']:<14} "
            f"{r['in_memory_px_per_s']:<8} {r['throughput_ratio']:<12} "
            f"{r['in_memory_compiled_px_per_s']:<8} {r['throughput_ratio_compiled']:<15} "
            f"{r['applicability_s']:<19} {r['peak_rss_mb']}"
        )
    (args.workdir / "speed_memory.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
