"""Export page: every output of the run, one by one or as one zip."""

from __future__ import annotations

import zipfile
from pathlib import Path

import streamlit as st

import session

DESCRIPTIONS = {
    "lithology.tif": "the class map (Cloud-Optimised GeoTIFF with colours and class names)",
    "lithology.tif.aux.xml": "class names as GDAL categories (keep beside lithology.tif)",
    "lithology.qml": "QGIS style: names and colours",
    "uncertainty.tif": "entropy, margin and missing-inputs bands",
    "probabilities.tif": "one band per class",
    "legend.csv": "code, name, colour, training samples and mapped area per class",
    "report.json": "inputs, grid, cross-validation, importance, timings, configuration",
    "model.skops": "the fitted model, for `geomap predict` on other rasters",
}
MIME = {".tif": "image/tiff", ".json": "application/json", ".csv": "text/csv"}

st.title("Export")
result = session.current_run()
if result is None:
    st.info("Train a model first: the files of the latest run are offered here.")
    st.stop()
out: Path = result["out"]


def _zip(out: Path, key: str) -> Path:
    """A zip of the run's files, written once into the session's workspace."""
    path = session.workspace().root / "zips" / f"geomap-{key}.zip"
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(".part")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            for f in sorted(out.iterdir()):
                z.write(f, f.name)
        tmp.replace(path)
    return path


with session.reported("Preparing the downloads"):
    bundle = _zip(out, result["key"])
    with open(bundle, "rb") as f:
        st.download_button(
            f"Everything as one zip ({bundle.stat().st_size / 1e6:.1f} MB)",
            f,
            file_name=bundle.name,
            mime="application/zip",
            type="primary",
            key="dl_zip",
            icon=":material/folder_zip:",
        )
    for path in sorted(out.iterdir(), key=lambda p: (p.name not in DESCRIPTIONS, p.name)):
        left, right = st.columns([1, 2])
        with open(path, "rb") as f:
            left.download_button(
                path.name,
                f,
                file_name=path.name,
                mime=MIME.get(path.suffix, "application/octet-stream"),
                key=f"dl_{path.name}",
            )
        size = path.stat().st_size / 1e6
        right.caption(f"{DESCRIPTIONS.get(path.name, '')} ({size:.2f} MB)")
st.caption("Open lithology.tif in QGIS: it is styled with the class names and colours.")
