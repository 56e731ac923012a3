"""geomap web app: the frame. Pages live in views/; the science lives in the geomap package."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import streamlit as st
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import session  # noqa: E402
from geomap.export import limit_malloc_arenas  # noqa: E402
from geomap.kernels import warm_up_in_background  # noqa: E402
from geomap.tables import SHEET_SUFFIXES  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")


def _icon() -> Image.Image:
    """A 32 x 32 favicon of folded strata, drawn here so that no icon is fetched from a CDN."""
    rows, cols = np.mgrid[0:32, 0:32]
    bands = ((cols + 6 * np.sin(rows / 5)) // 8).astype(int) % 3
    palette = np.array([[245, 205, 60], [150, 150, 160], [120, 180, 230]], dtype="uint8")
    return Image.fromarray(palette[bands])


st.set_page_config(page_title="geomap", page_icon=_icon(), layout="wide")


@st.cache_resource(show_spinner=False)
def _warm_up_kernels():
    """Compile the feature kernels once per server while the user uploads; share heaps.

    numba takes 2 s after an install (2 cores); otherwise the first training would wait for it.
    Each session's threads would otherwise take heaps of their own (see limit_malloc_arenas).
    """
    limit_malloc_arenas()
    return warm_up_in_background()


_warm_up_kernels()

pages = [
    st.Page("views/data.py", title="Data", icon=":material/upload_file:", default=True),
    st.Page("views/train.py", title="Train", icon=":material/model_training:"),
    st.Page("views/map.py", title="Map", icon=":material/map:"),
    st.Page("views/export.py", title="Export", icon=":material/download:"),
]
navigation = st.navigation(pages)
session.resume()
session.keep_widget_values()

status = st.sidebar.empty()


def _unusable(data: session.Inputs) -> str:
    """What the Data page could not use, in red, or ""."""
    if not (data.problem or data.observations_problem):
        return ""
    named = [f"'{n}'" for n in session.problem_files(data)]
    which = (
        f"{named[0]} is not usable as it is"
        if len(named) == 1
        else f"{session.listed(named) or 'They'} are not usable as they are"
    )
    return f". :red[{which}: see the Data page.]"


def show_status() -> None:
    """The inputs and the map of this session, in the sidebar (cleared when there are none)."""
    data, run = session.inputs(), session.current_run()
    if not data.rasters and run is None:
        status.empty()  # nothing to show: clear what the last run wrote there
        return
    lines = []
    if data.rasters:
        origin = "from the demo scene" if data.demo else "uploaded"
        observations = ""
        if data.labels is not None:
            kind = "sheet" if data.labels.suffix.lower() in SHEET_SUFFIXES else "layer"
            part = f" ({kind} {data.label_layer})" if data.label_layer else ""
            observations = f"; observations {data.labels.name}{part}"
            if data.legend is not None:
                observations += f"; legend {data.legend.name}"
        lines.append(
            f"Inputs: {len(data.rasters)} raster(s) {origin}{observations}{_unusable(data)}"
        )
    if run is not None:
        words = session.MODEL_WORDS.get(run["params"]["model"], run["params"]["model"])
        lines.append(f"Map: {words}, run `{run['key']}`")
    # one element, rewritten whole: two captions, then one, left the browser showing the first
    # run's second line twice ("Map: ..." above "Map: ..." once the rasters were gone)
    status.caption("  \n".join(lines))


show_status()  # shown while the page runs (a training), replaced by what the page chose
if session.lost():
    st.info(
        "This address's session is no longer on the server: the app was restarted, or the "
        f"session was unused for {session.KEEP_SECONDS // 3600} hours. Its uploads and maps are "
        "gone; open the demo scene or upload the files again.",
        icon=":material/history:",
    )
starting = st.session_state.get("train") or st.session_state.get("apply")  # a run's button
if session.interrupted() and not starting:  # not as a training starts
    st.warning(
        "The last training stopped before it finished: the page was left or a setting changed "
        "while it ran. Train again and stay on the Train page until it is done.",
        icon=":material/warning:",
    )
try:
    navigation.run()
finally:  # a page that stops early (session.stop) has kept its state: reads here would stop
    if navigation.url_path != "map":
        session.map_left()
    session.remember()
    show_status()
