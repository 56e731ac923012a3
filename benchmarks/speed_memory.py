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
seconds (printed) overlap the rest; `--no-applicability` measures the map alone. The reference
moves with the machine (by a quarter between sessions here): `--predict-rounds N` then runs
`geomap predict` N times with the run's model and measures the reference after each, so every
round has a reference just before and just after it.

    python benchmarks/speed_memory.py --sizes 4000 8000 --predict-rounds 2 --workdir /tmp/bench
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


class Reference:
    """The same forest on features already in memory, two ways, measured as often as asked.

    ``sklearn``: scikit-learn's ``predict_proba`` of the fitted forest (the issue's reference);
    ``compiled``: :func:`geomap.kernels.forest_proba`, the walk geomap maps with, on the same
    forest and rows (what the streaming itself costs is measured against this one). The
    features of ``windows`` 256-pixel windows spread over the scene are held in memory; each
    rate is the median of three timed calls, alternated, so that one noisy spell does not set it.
    """

    def __init__(self, model_path: Path, rasters: list[Path], windows: int) -> None:
        bundle = load_model(model_path)
        recipe = FeatureRecipe.from_dict(bundle["recipe"])
        self.X = reference_features(recipe, rasters, windows)
        forest = bundle["estimator"].forest_
        self.ways = {"sklearn": forest.predict_proba, "compiled": lambda X: forest_proba(forest, X)}
        for way in self.ways.values():
            way(self.X[:1000])  # warm up

    def rates(self) -> dict:
        """Pixels per second of each way, now."""
        seconds = {name: [] for name in self.ways}
        for _ in range(3):
            for name, way in self.ways.items():
                t0 = time.perf_counter()
                way(self.X)
                seconds[name].append(time.perf_counter() - t0)
        return {name: self.X.shape[0] / float(np.median(s)) for name, s in seconds.items()}


def run_argv(points: Path, rasters: list[Path], out: Path, args) -> list[str]:
    """``geomap run`` on the stack, quiet, into ``out``."""
    argv = ["run", "--labels", str(points), "--label-column", "lithology", "--out", str(out)]
    argv += ["--overwrite", "--trees", str(args.trees), "--quiet"]
    argv += [a for r in rasters for a in ("--raster", str(r))]
    return argv + ([] if args.applicability else ["--no-applicability"])


def predict_round(model: Path, rasters: list[Path], out: Path) -> tuple[float, float]:
    """``geomap predict`` with the run's model: its streamed rate and peak RSS."""
    argv = ["predict", "--model", str(model), "--out", str(out), "--overwrite", "--quiet"]
    child, _ = run_child(argv + [a for r in rasters for a in ("--raster", str(r))])
    pred = json.loads((out / "report.json").read_text())["prediction"]
    return (pred["mapped_pixels"] + pred["nodata_pixels"]) / pred["seconds"]["wall"], child[
        "peak_rss_mb"
    ]


def bracketed(stream: list[float], refs: list[dict], way: str) -> list[float]:
    """Each predict round's rate over the mean of the references measured before and after it."""
    return [round(rate / ((a[way] + b[way]) / 2), 3) for rate, a, b in zip(stream, refs, refs[1:])]


def bench(size: int, args) -> dict:
    directory = args.workdir / f"survey_{size}_{args.bands}"
    t0 = time.perf_counter()
    rasters, points = generate(directory, size, args.bands)
    print(f"[{size}] stack ready ({time.perf_counter() - t0:.0f} s)", flush=True)
    out = args.workdir / f"run_{size}{'' if args.applicability else '_no_aoa'}"
    child, wall = run_child(run_argv(points, rasters, out, args))
    report = json.loads((out / "report.json").read_text())
    pred = report["prediction"]
    pixels = pred["mapped_pixels"] + pred["nodata_pixels"]
    stream_rate = pixels / pred["seconds"]["wall"]
    reference = Reference(out / "model.skops", rasters, args.reference_windows)
    refs = [reference.rates()]
    result = {
        "size": size,
        "bands": args.bands,
        "trees": args.trees,
        "pixels": pixels,
        "run_wall_s": round(wall, 1),
        "predict_wall_s": round(pred["seconds"]["wall"], 1),
        "predict_seconds": pred["seconds"],
        "streamed_px_per_s": round(stream_rate),
        "in_memory_px_per_s": round(refs[0]["sklearn"]),
        "in_memory_compiled_px_per_s": round(refs[0]["compiled"]),
        "reference_pixels": reference.X.shape[0],
        "throughput_ratio": round(stream_rate / refs[0]["sklearn"], 3),
        "throughput_ratio_compiled": round(stream_rate / refs[0]["compiled"], 3),
        "applicability_s": round(report["timings_seconds"].get("applicability_stream", 0.0), 1),
        "peak_rss_mb": round(child["peak_rss_mb"]),
        "in_memory_features_would_need_mb": round(
            pixels * len(report["features"]["names"]) * 4 / 2**20
        ),
    }
    stream, peaks = [], []
    for _ in range(args.predict_rounds):
        rate, peak = predict_round(out / "model.skops", rasters, args.workdir / f"pred_{size}")
        stream.append(rate)
        peaks.append(peak)
        refs.append(reference.rates())
    if stream:
        result["predict_px_per_s"] = [round(r) for r in stream]
        result["reference_px_per_s"] = [round(r["sklearn"]) for r in refs]
        result["reference_compiled_px_per_s"] = [round(r["compiled"]) for r in refs]
        result["predict_ratios"] = bracketed(stream, refs, "sklearn")
        result["predict_ratios_compiled"] = bracketed(stream, refs, "compiled")
        result["predict_peak_rss_mb"] = round(max(peaks))
    return result


def _table(results: list[dict]) -> None:
    print(
        "\n`geomap run` (reference measured after it):\n"
        "                          in memory: scikit-learn   in memory: compiled walk\n"
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
    rounds = [r for r in results if "predict_ratios" in r]
    if not rounds:
        return
    print(
        "\n`geomap predict` rounds, each against the mean of the references measured just "
        "before and just after it:\n"
        "size  round  streamed px/s  scikit-learn px/s (before, after)  ratio   compiled ratio"
    )
    for r in rounds:
        for i, rate in enumerate(r["predict_px_per_s"]):
            before, after = r["reference_px_per_s"][i : i + 2]
            print(
                f"{r['size']:<5} {i + 1:<6} {rate:<14} {f'{before}, {after}':<34} "
                f"{r['predict_ratios'][i]:<7} {r['predict_ratios_compiled'][i]}"
            )
        ratios = r["predict_ratios"]
        print(
            f"{r['size']:<5} median ratio {float(np.median(ratios)):.3f} over {len(ratios)} "
            f"round(s); the reference itself ranged {min(r['reference_px_per_s'])}-"
            f"{max(r['reference_px_per_s'])} px/s; predict peak RSS {r['predict_peak_rss_mb']} MB"
        )


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
    parser.add_argument(
        "--predict-rounds",
        type=int,
        default=0,
        help="then time `geomap predict` with the run's model this many times, measuring the "
        "reference again after each, so each round has one before and one after it",
    )
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
    _table(results)
    (args.workdir / "speed_memory.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
