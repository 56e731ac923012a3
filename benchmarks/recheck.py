"""Observations to check: does the list find the field observations that are wrong?

For each seed a scene is generated with `geomap.synthetic.make_scene` (300 clustered field
points; about 2% of them name the wrong unit, as a misidentified rock does) and mapped with
geomap's default pipeline. Its `observations_to_check.csv` is scored against what the generator
knows of each point:

- misidentified: the point's class is not the unit at its exact place;
- off its pixel: the class is not the truth of the pixel it falls in (misidentified, or a point
  across a contact from its pixel's centre: what the map at 30 m cannot show).

Printed per seed and pooled: how many points are listed, the share of listed points that are
misidentified (precision) against the share among all points (the base rate, what checking
points at random finds), the share of misidentified points the list holds (recall), and the same
for "off its pixel". Figures are counts and ratios measured in this one run; nothing is timed.

    python benchmarks/recheck.py                      # judging seeds 200 .. 211
    python benchmarks/recheck.py --seeds 0 1 2 --trees 100
"""

from __future__ import annotations

import argparse
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from scenes import parse, scene_config, scene_parser

from geomap.synthetic import CLASS_NAMES, make_scene, truth_at
from geomap.workflow import run


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = scene_parser(__doc__, list(range(200, 212)))
    return parse(parser, argv, "geomap-recheck-")


def point_truths(points: gpd.GeoDataFrame, truth_path: Path, seed: int) -> pd.DataFrame:
    """Per point: misidentified (class is not the unit at its place), off its pixel's truth."""
    x, y = points.geometry.x.to_numpy(), points.geometry.y.to_numpy()
    here = np.asarray(CLASS_NAMES)[truth_at(x, y, seed=seed)]
    with rasterio.open(truth_path) as src:
        codes = np.array([v[0] for v in src.sample(zip(x, y))])
    pixel = np.asarray(CLASS_NAMES)[np.clip(codes, 0, len(CLASS_NAMES) - 1)]
    label = points["lithology"].to_numpy()
    return pd.DataFrame(
        {
            "site": [f"obs_id {i}" for i in points["obs_id"]],
            "misidentified": label != here,
            "off_pixel": label != pixel,
        }
    )


def seed_figures(seed: int, args: argparse.Namespace) -> dict:
    scene = make_scene(args.workdir / f"scene_{seed}", size=args.size, seed=seed)
    out = args.workdir / f"run_{seed}"
    report = run(scene_config(scene, out, seed, args.trees))
    truths = point_truths(gpd.read_file(scene.points_gpkg), scene.truth, seed)
    listed_file = out / "observations_to_check.csv"
    listed = set(pd.read_csv(listed_file)["site"]) if listed_file.exists() else set()
    assert report["observations_to_check"]["n_listed"] == len(listed)
    truths["listed"] = truths["site"].isin(listed)
    return {
        "seed": seed,
        "points": len(truths),
        "listed": int(truths["listed"].sum()),
        **{k: int(truths[k].sum()) for k in ("misidentified", "off_pixel")},
        **{
            f"listed_{k}": int((truths[k] & truths["listed"]).sum())
            for k in ("misidentified", "off_pixel")
        },
    }


def rates(row: dict) -> dict:
    """Precision, base rate, enrichment and recall of a seed's (or the pooled) counts."""
    out = {}
    for kind in ("misidentified", "off_pixel"):
        base = row[kind] / row["points"]
        precision = row[f"listed_{kind}"] / row["listed"] if row["listed"] else float("nan")
        out[f"{kind}: precision"] = precision
        out[f"{kind}: base rate"] = base
        out[f"{kind}: enrichment"] = precision / base if base else float("nan")
        out[f"{kind}: recall"] = row[f"listed_{kind}"] / row[kind] if row[kind] else float("nan")
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    rows = [seed_figures(seed, args) for seed in args.seeds]
    pooled = {k: sum(r[k] for r in rows) for k in rows[0] if k != "seed"}
    table = pd.DataFrame([{**r, **rates(r)} for r in [*rows, {"seed": "pooled", **pooled}]])
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.round(3).to_string(index=False))
    r = rates(pooled)
    print(
        f"\npooled over {len(rows)} scenes: {pooled['listed']} of {pooled['points']} points "
        f"listed; misidentified among them {r['misidentified: precision']:.3f} vs "
        f"{r['misidentified: base rate']:.3f} among all points "
        f"(x{r['misidentified: enrichment']:.1f}), recall {r['misidentified: recall']:.3f}; "
        f"off their pixel {r['off_pixel: precision']:.3f} vs {r['off_pixel: base rate']:.3f} "
        f"(x{r['off_pixel: enrichment']:.1f}), recall {r['off_pixel: recall']:.3f}"
    )


if __name__ == "__main__":
    main()
