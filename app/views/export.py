"""Export page: every output of the run, one by one or as one zip."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import session
from geomap.report_html import FILE_NOTES

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
    session.stop()
out: Path = result["out"]
stale = session.stale_note(result, session.inputs())
if stale:
    st.info(stale, icon=":material/update:")
st.caption(f"Files of run `{result['key']}`: {session.describe_params(result['params'])}.")


def _note(name: str) -> str:
    """What a file holds; the run's report is read here, not 'this page'."""
    return (
        "the run's report to read in a browser"
        if name == "report.html"
        else FILE_NOTES.get(name, "")
    )


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
for path in sorted(out.iterdir(), key=lambda p: (p.name not in FILE_NOTES, p.name)):
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
    right.caption(f"{_note(path.name)} ({shown})")
maps = [n for n in ("lithology.tif", "clusters.tif", "subunits.tif") if (out / n).exists()]
if maps:
    st.caption(
        f"Open {maps[0]} in QGIS: it is styled with the class names and colours when "
        f"{maps[0]}.aux.xml lies beside it (both are in the zip); alone it has the colours, and "
        "the names in its CLASS_NAMES tag."
    )
