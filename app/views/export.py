"""Export page: every output of the run, one by one or as one zip."""

from __future__ import annotations

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
    "report.html": "the run's report to read: units, accuracy, where to trust the map, inputs",
    "report.json": "inputs, grid, cross-validation, importance, timings, configuration",
    "model.skops": "the fitted model, for `geomap predict` on other rasters",
    "applicability.tif": "dissimilarity index and area-of-applicability mask (1 inside)",
    "expected_accuracy.tif": "probability that the mapped class is right, pixel by pixel",
    "suggested_samples.gpkg": "suggested field sites, ranked, with the reason for each",
    "suggested_samples.csv": "the same sites with lon/lat for a GPS",
    "observations_to_check.gpkg": "observations to check: the model trained without them maps "
    "another unit there",
    "observations_to_check.csv": "observations to check, with lon/lat for a GPS",
}
MIME = {
    ".tif": "image/tiff",
    ".json": "application/json",
    ".csv": "text/csv",
    ".html": "text/html",
}

st.title("Export")
result = session.current_run()
if result is None:
    st.info("Train a model first: the files of the latest run are offered here.")
    st.stop()
out: Path = result["out"]


def _reader(path: Path):
    """Read a file only when its button is clicked, not on every render of the page."""
    return lambda: path.read_bytes()


def _zipped(out: Path, key: str):
    return lambda: session.workspace().zip_run(out, key).read_bytes()


total = sum(p.stat().st_size for p in out.iterdir()) / 1e6
st.download_button(
    f"Everything as one zip (about {total:.1f} MB before compression)",
    _zipped(out, result["key"]),
    file_name=f"geomap-{result['key']}.zip",
    mime="application/zip",
    type="primary",
    key="dl_zip",
    icon=":material/folder_zip:",
    on_click="ignore",
)
for path in sorted(out.iterdir(), key=lambda p: (p.name not in DESCRIPTIONS, p.name)):
    left, right = st.columns([1, 2])
    left.download_button(
        path.name,
        _reader(path),
        file_name=path.name,
        mime=MIME.get(path.suffix, "application/octet-stream"),
        key=f"dl_{path.name}",
        on_click="ignore",
    )
    size = path.stat().st_size
    shown = f"{size / 1e6:.2f} MB" if size >= 100_000 else f"{max(size / 1e3, 0.1):.1f} kB"
    right.caption(f"{DESCRIPTIONS.get(path.name, '')} ({shown})")
st.caption("Open lithology.tif in QGIS: it is styled with the class names and colours.")
