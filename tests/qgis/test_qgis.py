"""geomap's outputs opened in QGIS itself (Debian's python3-qgis), not only read back with GDAL.

QGIS must be there: without ``/usr/bin/python3`` able to import ``qgis`` these tests fail (install
the Debian package python3-qgis, as .ci/run does); they never skip. GEOMAP_QGIS_PYTHON names
another interpreter with QGIS.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from PIL import Image

from geomap.workflow import RunConfig, run

QGIS_PYTHON = os.environ.get("GEOMAP_QGIS_PYTHON", "/usr/bin/python3")
INSPECT = Path(__file__).with_name("qgis_inspect.py")
ODD_NAMES = {
    "alluvium": 'Alluvium "recent" & <terraces>',
    "basalt": "Basalt – Ödenwald flows",
    "granite": "Granite (Permian), S-type",
    "limestone": "Limestone's reef facies",
    "sandstone": "Sandstein/Quarzit",
    "shale": "Schist > shale",
}


def in_qgis(tmp_path: Path, files: list[dict]) -> dict:
    """Ask QGIS what it makes of ``files`` (see qgis_inspect.py); fail when QGIS is missing."""
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"files": files}), encoding="utf-8")
    try:
        done = subprocess.run(
            [QGIS_PYTHON, str(INSPECT), str(request)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path)},
        )
    except FileNotFoundError:
        pytest.fail(f"{QGIS_PYTHON} not found: install Debian's python3-qgis (see .ci/run).")
    if "No module named 'qgis'" in done.stderr:
        pytest.fail(f"{QGIS_PYTHON} has no QGIS: install Debian's python3-qgis (see .ci/run).")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def styled_map(out: Path, stem: str) -> dict:
    """The names and colours geomap meant for ``<stem>.tif``, from its legend."""
    legend = out / ("legend.csv" if stem == "lithology" else f"{stem}_legend.csv")
    table = pd.read_csv(legend)
    return {
        "classes": [
            {"value": int(c), "label": n, "colour": h}
            for c, n, h in zip(table["code"], table["name"], table["colour"])
        ]
    }


def assert_drawn_as_coded(raster: Path, png: Path, classes: list[dict]) -> None:
    """Every pixel QGIS drew has its class's colour; nodata is left transparent."""
    with rasterio.open(raster) as src:
        codes = src.read(1)
        nodata = src.nodata
    drawn = np.asarray(Image.open(png).convert("RGBA"))
    assert drawn.shape[:2] == codes.shape
    palette = np.zeros((256, 4), "uint8")
    for c in classes:
        h = c["colour"].lstrip("#")
        palette[c["value"]] = [int(h[i : i + 2], 16) for i in (0, 2, 4)] + [255]
    expected = palette[codes]
    valid = codes != nodata
    assert (drawn[valid] == expected[valid]).all(axis=1).mean() == 1.0
    assert (drawn[~valid][:, 3] == 0).all()


def test_the_forest_map_opens_styled_in_qgis_with_every_layer(demo_run, tmp_path):
    out = Path(shutil.copytree(demo_run[0], tmp_path / "map"))  # QGIS writes .aux.xml beside
    report = demo_run[1]
    rasters = ["lithology", "uncertainty", "probabilities", "applicability", "expected_accuracy"]
    files = [
        {
            "path": str(out / f"{name}.tif"),
            "kind": "raster",
            "render": str(tmp_path / "lithology.png") if name == "lithology" else None,
        }
        for name in rasters
    ] + [
        {"path": str(out / f"{name}.gpkg"), "kind": "vector"}
        for name in ("suggested_samples", "observations_to_check")
    ]
    seen = in_qgis(tmp_path, files)["files"]
    assert all(seen[f["path"]]["valid"] for f in files)
    lith = seen[str(out / "lithology.tif")]
    wanted = styled_map(out, "lithology")
    assert lith["style_loaded"] and lith["renderer"] == "paletted"
    assert lith["classes"] == wanted["classes"]
    assert lith["crs"] == "EPSG:32633" and lith["nodata"] == 255
    assert_drawn_as_coded(out / "lithology.tif", tmp_path / "lithology.png", wanted["classes"])
    names = [c["label"] for c in wanted["classes"]]
    assert seen[str(out / "probabilities.tif")]["band_names"] == [
        f"Band {i}: {n}" for i, n in enumerate(names, 1)
    ]
    assert seen[str(out / "uncertainty.tif")]["band_names"] == [
        "Band 1: entropy",
        "Band 2: margin",
        "Band 3: missing_inputs",  # the demo scene's cloud
    ]
    assert seen[str(out / "applicability.tif")]["band_names"][1] == "Band 2: aoa"
    sites = seen[str(out / "suggested_samples.gpkg")]
    assert sites["features"] == report["suggested_samples"]["n_written"] > 0
    assert {"rank", "predicted_class", "reason"} <= set(sites["fields"])
    checks = seen[str(out / "observations_to_check.gpkg")]
    assert checks["features"] == report["observations_to_check"]["n_listed"] > 0
    assert {"rank", "site", "obs_id", "observed", "held_out"} <= set(checks["fields"])


def test_class_names_with_quotes_ampersands_and_accents_survive_into_qgis(demo_scene, tmp_path):
    points = gpd.read_file(demo_scene.points_gpkg)
    points["lithology"] = points["lithology"].map(ODD_NAMES)
    labels = tmp_path / "odd.gpkg"
    points.to_file(labels)
    out = tmp_path / "map"
    config = RunConfig(
        rasters=list(demo_scene.rasters), labels=labels, label_column="lithology", out=out,
        trees=20, block_size=64, suggest=0, applicability=False, cv_folds=3,
    )  # fmt: skip
    run(config)
    lith = in_qgis(tmp_path, [{"path": str(out / "lithology.tif"), "kind": "raster"}])["files"][
        str(out / "lithology.tif")
    ]
    assert lith["style_loaded"] and lith["renderer"] == "paletted"
    assert [c["label"] for c in lith["classes"]] == sorted(ODD_NAMES.values())


@pytest.fixture(scope="module")
def som_clusters(demo_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("qgis_som") / "clusters"
    config = RunConfig(
        rasters=list(demo_scene.rasters), labels=None, label_column=None, out=out,
        model="som-clusters", som_samples=6000, iterations=2000, block_size=64,
    )  # fmt: skip
    run(config)
    return out


def test_som_clusters_open_styled_in_qgis(som_clusters, tmp_path):
    out = Path(shutil.copytree(som_clusters, tmp_path / "clusters"))
    files = [
        {"path": str(out / "clusters.tif"), "kind": "raster", "render": str(tmp_path / "c.png")},
        {"path": str(out / "quantization_error.tif"), "kind": "raster"},
    ]
    seen = in_qgis(tmp_path, files)["files"]
    clusters = seen[str(out / "clusters.tif")]
    wanted = styled_map(out, "clusters")
    assert clusters["renderer"] == "paletted" and clusters["classes"] == wanted["classes"]
    assert_drawn_as_coded(out / "clusters.tif", tmp_path / "c.png", wanted["classes"])
    assert seen[str(out / "quantization_error.tif")]["valid"]
