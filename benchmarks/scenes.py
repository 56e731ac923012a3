"""Command-line options shared by the benchmarks on generated scenes."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from geomap.synthetic import Scene
from geomap.workflow import RunConfig


def scene_parser(doc: str, seeds: list[int]) -> argparse.ArgumentParser:
    """A parser with ``--seeds``, ``--size``, ``--trees`` and ``--workdir`` (add the script's)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=seeds)
    parser.add_argument("--size", type=int, default=300, help="scene side in pixels")
    parser.add_argument("--trees", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=None, help="default: a fresh temp dir")
    return parser


def parse(
    parser: argparse.ArgumentParser, argv: list[str] | None, prefix: str
) -> argparse.Namespace:
    """Parse ``argv``; without ``--workdir``, a fresh temporary folder named ``prefix...``."""
    args = parser.parse_args(argv)
    if args.workdir is None:
        args.workdir = Path(tempfile.mkdtemp(prefix=prefix))
    args.workdir.mkdir(parents=True, exist_ok=True)
    return args


def scene_config(scene: Scene, out: Path, seed: int, trees: int, **options) -> RunConfig:
    """geomap's defaults on a scene's rasters and field points, seeded; ``options`` override."""
    return RunConfig(
        **{
            "rasters": list(scene.rasters),
            "labels": scene.points_gpkg,
            "label_column": scene.label_column,
            "out": out,
            "trees": trees,
            "random_state": seed,
            "overwrite": True,
            **options,
        }
    )
