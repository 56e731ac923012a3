"""Two satellites in one run: does a cloud the mask missed in the second one spoil the map?

For each seed a scene is generated with `geomap.synthetic.make_scene` (Landsat with its cloud,
haze ring and shadow; K/Th/U, magnetics, a DEM; 300 field points). A second optical scene,
"S2", is another acquisition of the same ground on the same grid: the scene's Landsat bands
without the cloud, each band with its own gain and fresh noise (3%). Where no observation lies,
a thin cloud the mask missed covers a disc of S2 (up to 0.3 of the scene across): the S2 values
are mixed with a bright, flat cloud spectrum, 70% over the inner third of the disc's radius,
fading to nothing at its edge.

geomap's default pipeline (one spectral screen per sensor; each scene chooses its Kuwahara
squares apart) is set against the same pipeline as it was before sensors were told apart: one
screen, for the first sensor only, and Kuwahara squares chosen across both scenes on a shared
grid. Printed per seed and on average: the true accuracy over the map, over the S2 cloud's
disc and over Landsat's own cloud, haze and shadow outside that disc (pixels Landsat lacks, or
that the per-sensor run mapped without an input).
Figures are accuracies measured in this one run; nothing is timed.

    python benchmarks/two_sensors.py                 # judging seeds 11 23 37 41 59
    python benchmarks/two_sensors.py --seeds 0 1 --trees 100
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from unittest import mock

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from scenes import parse, scene_config, scene_parser

from geomap import features, workflow
from geomap.synthetic import make_scene
from geomap.workflow import run

S2_BANDS = tuple(f"S2_{b}" for b in ("blue", "green", "red", "nir", "swir1", "swir2"))
CLOUD_SPECTRUM = np.array([4200, 4100, 4000, 3900, 3300, 2800], "float32")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = scene_parser(__doc__, [11, 23, 37, 41, 59])
    return parse(parser, argv, "geomap-two-sensors-")


def farthest_from_points(points: gpd.GeoDataFrame, profile: dict) -> tuple[int, int, float]:
    """Row, column and distance (pixels) of the pixel farthest from every observation."""
    cols, rows = ~profile["transform"] @ (points.geometry.x.values, points.geometry.y.values)
    r, c = np.mgrid[0 : profile["height"] : 2, 0 : profile["width"] : 2]
    far = np.full(r.shape, np.inf)
    for pr, pc in zip(rows, cols):
        far = np.minimum(far, np.hypot(r - pr, c - pc))
    i = np.unravel_index(np.argmax(far), far.shape)
    return int(r[i]), int(c[i]), float(far[i])


def write_s2(scene, clear_landsat: Path, path: Path, seed: int) -> np.ndarray:
    """The second acquisition with its unmasked cloud; returns the cloud's disc (bool grid).

    The disc is every pixel the cloud touches, its faint margin included.
    """
    with rasterio.open(clear_landsat) as src:
        bands, profile = src.read().astype("float32"), src.profile
    rng = np.random.default_rng(seed)
    gain = rng.uniform(0.9, 1.1, (len(bands), 1, 1)).astype("float32")
    s2 = bands * gain * (1 + rng.normal(0, 0.03, bands.shape)).astype("float32")
    points = gpd.read_file(scene.points_gpkg).to_crs(profile["crs"])
    r0, c0, far = farthest_from_points(points, profile)
    radius = min(0.1 * profile["width"], far - 3)
    rows, cols = np.mgrid[0 : profile["height"], 0 : profile["width"]]
    d = np.hypot(rows - r0, cols - c0) / radius
    mix = (0.7 * np.clip(1.5 - d, 0, 1)).astype("float32")  # 70% over the inner half
    s2 = s2 * (1 - mix) + CLOUD_SPECTRUM[:, None, None] * mix
    with rasterio.open(path, "w", **{**profile, "nodata": 0}) as dst:
        dst.write(np.clip(s2, 1, 65535).astype("uint16"))
        dst.descriptions = S2_BANDS
    return mix > 0


def first_sensor_only():
    """The pipeline before sensors were told apart: joint Kuwahara squares, one screen."""
    screens_for = workflow.screens_for
    return [
        mock.patch.object(features, "_band_scenes", lambda names, *_: [-1] * len(names)),
        mock.patch.object(workflow, "screens_for", lambda recipe: screens_for(recipe)[:1]),
    ]


def true_accuracy(out: Path, truth: np.ndarray, class_names) -> tuple[np.ndarray, np.ndarray]:
    """Right/wrong per pixel (NaN off the map) and the missing-inputs layer."""
    with rasterio.open(out / "lithology.tif") as src:
        codes, names = src.read(1), json.loads(src.tags()["CLASS_NAMES"])
    with rasterio.open(out / "uncertainty.tif") as src:
        missing = src.read(3)
    lut = np.full(256, 255, "uint8")
    lut[: len(names)] = [list(class_names).index(n) for n in names]
    pred = lut[codes]
    right = np.where((pred == 255) | (truth == 255), np.nan, pred == truth)
    return right, missing


def seed_figures(seed: int, args: argparse.Namespace) -> list[dict]:
    base = args.workdir / f"seed_{seed}"
    scene = make_scene(base / "scene", size=args.size, seed=seed)
    clear = make_scene(base / "clear", size=args.size, seed=seed, n_points=10, cloud=False)
    cloud = write_s2(scene, clear.rasters[0], base / "s2.tif", seed)
    with rasterio.open(scene.truth) as src:
        truth = src.read(1)
    with rasterio.open(scene.rasters[0]) as src:
        landsat_gap = src.read(1) == 0
    rows = []
    for name in ("per sensor", "first only"):
        patches = first_sensor_only() if name == "first only" else []
        for p in patches:
            p.start()
        try:
            out = base / name.replace(" ", "_")
            rasters = [*scene.rasters, base / "s2.tif"]
            config = scene_config(
                scene, out, seed, args.trees, rasters=rasters, applicability=False
            )
            report = run(config)
        finally:
            for p in patches:
                p.stop()
        right, missing = true_accuracy(out, truth, scene.class_names)
        if name == "per sensor":  # Landsat's cloud, haze and shadow, as the per-sensor run saw
            landsat_bad = (landsat_gap | (missing > 0)) & ~cloud
        rows.append(
            {
                "seed": seed,
                "pipeline": name,
                "map": float(np.nanmean(right)),
                "S2 cloud": float(np.nanmean(right[cloud])),
                "screens": len(report["spectral_screen"] or []),
                "right": right,
            }
        )
    for row in rows:
        row["Landsat cloud"] = float(np.nanmean(row.pop("right")[landsat_bad]))
    return rows


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = [row for seed in args.seeds for row in seed_figures(seed, args)]
    table = pd.DataFrame(rows)
    mean = table.groupby("pipeline", sort=False)[["map", "S2 cloud", "Landsat cloud"]].mean()
    with pd.option_context("display.width", 200):
        print(table.round(4).to_string(index=False))
        print("\nmean over seeds\n" + mean.round(4).to_string())
    gain = 100 * (mean.loc["per sensor"] - mean.loc["first only"])
    print(
        f"\nper-sensor screens vs first sensor only: map {gain['map']:+.2f} points, "
        f"S2 cloud {gain['S2 cloud']:+.2f}, Landsat cloud {gain['Landsat cloud']:+.2f}"
    )


if __name__ == "__main__":
    main()
