"""Regenerate the demo scene in data_samples/demo/ (entirely synthetic, see README.md).

Run from the repository root:  .venv/bin/python data_samples/make_demo.py
"""

from __future__ import annotations

from pathlib import Path

import pyogrio

from geomap.synthetic import make_scene

DEMO = Path(__file__).resolve().parent / "demo"
ARGUMENTS = {"size": 400, "pixel_size": 30.0, "seed": 0, "n_points": 300, "cloud": True}


def main() -> None:
    # A fixed GeoPackage timestamp, so that regenerating gives byte-identical files.
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": "2025-01-01T00:00:00.000Z"})
    scene = make_scene(DEMO, **ARGUMENTS)
    for path in sorted(scene.directory.iterdir()):
        print(f"{path.stat().st_size / 1024:8.1f} KiB  {path.relative_to(DEMO.parent.parent)}")


if __name__ == "__main__":
    main()
