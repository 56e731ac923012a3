"""Data page: the demo scene in one click, or uploaded rasters and observations."""

from __future__ import annotations

import pandas as pd
import streamlit as st

import session
from geomap.errors import GeomapError, LabelError
from geomap.labels import label_columns, label_layers, observation_layer
from geomap.sources import parse_nodata
from geomap.summary import describe_inputs
from geomap.tables import SHEET_SUFFIXES
from geomap.workflow import MAX_PER_CLASS

st.title("Survey data")
st.write(
    "Give geomap the survey rasters (satellite bands, radiometrics, magnetics, gravity, "
    "elevation; any CRS and resolution) and the field observations (points or mapped polygons)."
)

if st.button("Open the demo scene", key="open_demo", type="primary", icon=":material/science:"):
    st.session_state.source = "demo"
    st.session_state.left_demo = False

limit = st.get_option("server.maxUploadSize")


def _uploaded(kind: str, key: str) -> None:
    """An upload box changed: new files, or its last file removed with its x.

    Removing the last file forgets it; rasters uploaded before the user left the page (and the
    box was emptied) stay in use.
    """
    if st.session_state.get("source") == "demo":  # the demo's rasters are not uploads
        st.session_state.left_demo = True
    st.session_state.source = "upload"
    if not st.session_state.get(key):
        kept = st.session_state.get("kept_uploads", {})
        replaced = kept.get("replaced", [])
        earlier = [p for p in kept.get("earlier", []) if p not in replaced]
        kept[kind] = earlier if kind == "rasters" else None


left, right = st.columns(2)
with left:
    raster_files = st.file_uploader(
        "Rasters",
        type=session.RASTER_TYPES,
        accept_multiple_files=True,
        key="raster_files",
        on_change=_uploaded,
        args=("rasters", "raster_files"),
        help=f"GeoTIFF, JPEG2000 and other single-file rasters "
        f"({', '.join('.' + t for t in session.RASTER_TYPES)}), up to {limit} MB each. Larger "
        "scenes, and VRTs or grids of several files: run the `geomap` command line on the files "
        "where they are.",
    )
with right:
    label_file = st.file_uploader(
        "Field observations",
        type=session.LABEL_TYPES,
        key="label_file",
        on_change=_uploaded,
        args=("labels", "label_file"),
        help="GeoPackage, GeoJSON, a zipped Shapefile (.shp with its .dbf, .shx and .prj in one "
        ".zip), KML from Google Earth, or a CSV, Excel workbook (.xlsx, .xls) or LibreOffice "
        "spreadsheet (.ods) with x/y, "
        "easting/northing or lon/lat columns.",
    )
    legend_file = st.file_uploader(
        "Legend (optional)",
        type=session.LEGEND_TYPES,
        key="legend_file",
        on_change=_uploaded,
        args=("legend", "legend_file"),
        help="A CSV or workbook (its sheet named 'Legend', else its first) naming and "
        "colouring the classes: a column of the values in the class "
        "column (e.g. integer codes), a 'name' column and an optional 'colour' column "
        "(#rrggbb). The map lists the units in its row order; values given the same name "
        "become one unit. An earlier run's legend.csv works for observations holding names.",
    )
st.caption(
    f"Uploads stay in a private folder of this browser session, up to {limit} MB per file. "
    "Reloading the page, or opening its address again within "
    f"{session.KEEP_SECONDS // 3600} hours, finds them and the runs again; keep the address to "
    "yourself: it opens your session."
)


def _earlier_rasters(kept: dict, earlier: list) -> None:
    """The rasters uploaded earlier, in a box where one can be removed (a file that is wrong)."""
    if not earlier:
        return
    names = [p.name for p in earlier]
    shown = st.session_state.get("earlier_shown", [])
    chosen = st.session_state.get("earlier_rasters", names)
    st.session_state.earlier_rasters = [n for n in names if n in chosen or n not in shown]
    st.session_state.earlier_shown = names
    keep = st.multiselect(
        "Rasters uploaded earlier in this session, in use (remove one with its x)",
        names,
        key="earlier_rasters",
        wrap=True,  # a dozen band files: every name in sight, never scrolled sideways
    )
    if len(keep) < len(names):
        gone = [p for p in earlier if p.name not in keep]
        for field in ("rasters", "earlier"):
            kept[field] = [p for p in kept.get(field, []) if p not in gone]
        st.rerun()


def _sync_uploads() -> session.Inputs:
    """Save new uploads into the workspace; returns inputs pointing at the saved files.

    Streamlit empties the upload boxes when the user comes back from another page (and tells
    the page they changed), so an empty box keeps the files it held. Rasters uploaded then are
    added to those (a file of the same name replaces its namesake); a new observation or legend
    file replaces the earlier one. "Forget them" drops the earlier files; "Forget the
    observations" (or legend) that file alone.
    """
    ws = session.workspace()
    saved = st.session_state.setdefault("saved_uploads", {})
    singles = {"labels": label_file, "legend": legend_file}
    for f in [*(raster_files or []), *filter(None, singles.values())]:
        if f.file_id not in saved:
            kind = next((k for k, s in singles.items() if f is s), "rasters")
            saved[f.file_id] = ws.save(kind, f.name, f.getvalue())
    kept = st.session_state.setdefault("kept_uploads", {"rasters": [], "labels": None})
    box = [saved[f.file_id] for f in raster_files or []]
    earlier = kept.get("earlier", [])
    if box:  # a namesake keeps its place, with the new bytes; removed with its x, it is gone
        new = {p.name: p for p in box}
        replaced = [p for p in earlier if p.name in new or p in kept.get("replaced", [])]
        kept["replaced"] = replaced
        kept["rasters"] = [
            new.get(p.name, p) for p in earlier if p.name in new or p not in replaced
        ]
        kept["rasters"] += [p for p in box if p.name not in {q.name for q in earlier}]
    else:
        kept["earlier"], kept["replaced"] = list(kept["rasters"]), []
    for kind, f in singles.items():
        if f:
            kept[kind] = saved[f.file_id]
    earlier = [p for p in kept["rasters"] if p not in box]
    singles_kept = {k: kept[k] for k, f in singles.items() if kept.get(k) and not f}
    if earlier or singles_kept:
        _earlier_rasters(kept, earlier)
        words = {"labels": "Observations", "legend": "Legend"}
        in_use = "; ".join(f"{words[k]} in use: {p.name}" for k, p in singles_kept.items())
        note, forget = st.columns([4, 1], vertical_alignment="center")
        note.caption(
            (f"{in_use} (a new upload replaces it). " if in_use else "")
            + "Streamlit empties the upload boxes after a visit to another page; the files "
            "uploaded earlier in this session stay in use. Rasters uploaded now are added to "
            "them (one of the same name replaces its namesake)."
        )
        if forget.button("Forget them", key="forget_uploads"):
            kept["rasters"], kept["earlier"], kept["replaced"] = box, [], []
            for kind, f in singles.items():
                if not f:
                    kept[kind] = None
            st.rerun()
        for kind in singles_kept:  # the next sheet's rasters, without the first's observations
            if forget.button(f"Forget the {words[kind].lower()}", key=f"forget_{kind}"):
                kept[kind] = None
                st.rerun()
    return session.Inputs(
        rasters=session.projected_first(kept["rasters"]),
        labels=kept["labels"],
        legend=kept.get("legend"),
    )


@st.cache_data(max_entries=32, show_spinner=False)
def _columns(path: str, mtime_ns: int, crs: str | None, layer: str | None) -> list[str]:
    return label_columns(path, crs=crs, layer=layer)


def _uploads_set_aside() -> None:
    """Say that the demo scene replaced the user's uploads, which are kept, and offer them."""
    kept = st.session_state.get("kept_uploads") or {}
    if not (kept.get("rasters") or kept.get("labels") or raster_files or label_file):
        return
    note, back = st.columns([4, 1], vertical_alignment="center")
    note.info(
        "The demo scene is in use, not the files you uploaded; they are kept.",
        icon=":material/science:",
    )
    if back.button("Use my uploads", key="use_uploads"):
        st.session_state.source = "upload"
        st.rerun()


source = st.session_state.get("source")
if source == "demo":
    data = session.demo_inputs()
    _uploads_set_aside()
elif source == "upload":
    data = _sync_uploads()
else:
    st.info("Open the demo scene, or upload rasters and observations.")
    session.stop()

if data.labels is not None and not data.demo:
    table_file = data.labels.suffix.lower() in (".csv", *SHEET_SUFFIXES)
    data.label_crs = (
        st.text_input(
            session.CRS_BOX,
            key="label_crs",
            placeholder="EPSG:4326 for lon/lat columns; e.g. EPSG:32633 for x/y"
            if table_file
            else "only if the file has none, e.g. EPSG:32633",
            help="Needed for a table's x/y or easting/northing columns (lon/lat are read as "
            "EPSG:4326), and for a file saved without its CRS (a Shapefile without .prj). An "
            "EPSG code, or for a mine's local grid its PROJ string (+proj=tmerc ...) or WKT.",
        )
        or None
    )
    columns: list[str] = []
    with session.reported("Reading the observations"):
        try:
            layers = label_layers(data.labels)  # a damaged workbook says so here
            if len(layers) > 1:  # a project GeoPackage, a workbook
                first = observation_layer(data.labels)
                data.label_layer = st.selectbox(
                    f"{'Sheet' if table_file else 'Layer'} holding the observations",
                    layers,
                    index=layers.index(first) if first in layers else 0,
                    key="label_layer",
                )
            columns = _columns(
                str(data.labels), data.labels.stat().st_mtime_ns, data.label_crs, data.label_layer
            )
        except GeomapError as exc:  # the sidebar names the file; the Train page says why
            data.observations_problem = session.show_error("Reading the observations", exc)
    if columns:
        key = f"label_column:{data.labels.name}:{data.labels.stat().st_mtime_ns}"  # per file
        if st.session_state.get(key) not in columns:  # first time, or another layer's columns
            st.session_state[key] = session.guess_class_column(columns)
        data.label_column = st.selectbox(session.COLUMN_BOX, columns, key=key)
if not data.demo:
    nodata = st.text_input(
        session.NODATA_BOX,
        key="nodata",
        placeholder="e.g. 0 for Sentinel-2 JPEG2000; or 0; dem.tif=-32768",
        help="The value that marks missing pixels in rasters whose files do not say it (0 "
        "outside a Sentinel-2 orbit or around a mosaic). Those pixels are mapped from the other "
        "rasters, as under a cloud. For one raster, its file name and value: dem.tif=-32768; "
        "several separated by ';'. A raster whose data type cannot hold the value does not "
        "take it.",
    ).strip()
    try:
        data.nodata, data.raster_nodata = parse_nodata(
            [part for part in nodata.split(";") if part.strip()]
        )
    except GeomapError as exc:
        data.nodata, data.raster_nodata = None, {}
        st.error(session.in_app_words(str(exc)))
st.session_state.inputs = data


@st.cache_data(max_entries=32, show_spinner="Reading the inputs...")
def _describe(rasters, labels, column, crs, layer, legend, nodata, named, stamps) -> dict:
    return describe_inputs(
        rasters,
        labels,
        column,
        label_crs=crs,
        label_layer=layer,
        legend=legend,
        nodata=nodata,
        raster_nodata=dict(named),
    )


def _pixel_size(resolution) -> str:
    """Pixel size as "30", or "0.00105 x 0.00072" where the sides differ (degrees)."""
    x, y = (f"{v:.6g}" for v in resolution)
    return x if x == y else f"{x} x {y}"


def _summary(data: session.Inputs, observations: bool) -> dict:
    """:func:`describe_inputs` of the rasters, and of the observations and legend if asked."""
    labels = data.labels if observations and not data.observations_problem else None
    legend = data.legend if labels is not None else None
    stamps = tuple(p.stat().st_mtime_ns for p in [*data.rasters, *filter(None, [labels, legend])])
    return _describe(
        tuple(map(str, data.rasters)),
        str(labels) if labels else None,
        data.label_column if labels else None,
        data.label_crs,
        data.label_layer,
        str(legend) if legend else None,
        data.nodata,
        tuple(data.raster_nodata.items()),
        stamps,
    )


def _show_inputs(data: session.Inputs) -> None:
    """The reference grid, every source and the observations per class, with the warnings."""
    try:
        try:
            summary = _summary(data, observations=True)
        except LabelError as exc:  # observations or legend: the rasters can still be clustered
            what = "the legend" if str(exc).startswith("Legend ") else "the observations"
            data.observations_problem = session.show_error(f"Reading {what}", exc)
            summary = _summary(data, observations=False)
    except GeomapError as exc:  # the Train page reads it too: no training on what failed here
        data.problem, data.warnings = session.show_error("Reading the inputs", exc), []
        named = [n for n in session.problem_files(data) if n in {p.name for p in data.rasters}]
        if len(named) == 1 and len(data.rasters) > 1:
            st.caption(f"Remove '{named[0]}' with its × above to go on with the other rasters.")
        return
    data.problem, data.warnings = None, list(summary["warnings"])
    with session.reported("Reading the inputs"):
        grid = summary["grid"]
        st.subheader("Reference grid")
        st.write(
            f"{grid['crs']}, {grid['resolution'][0]:g} x {grid['resolution'][1]:g} "
            f"{grid['units']} per pixel, {grid['width']} x {grid['height']} pixels; every raster "
            "is read onto it window by window (a coarser pixel, or another raster's CRS: "
            "**Train**, under More)."
        )
        st.dataframe(
            pd.DataFrame(
                {
                    "file": [s["path"].rsplit("/", 1)[-1] for s in summary["sources"]],
                    "bands": [", ".join(s["bands"]) for s in summary["sources"]],
                    "CRS": [s["crs"] for s in summary["sources"]],
                    "resolution": [
                        f"{_pixel_size(s['resolution'])} {s['units']}" for s in summary["sources"]
                    ],
                    "type": [s["dtype"] for s in summary["sources"]],
                    "nodata": [s["nodata"] for s in summary["sources"]],
                    "resampling": [s["resampling"] for s in summary["sources"]],
                }
            ),
            hide_index=True,
            key="sources_table",
        )
        sources = [(s["path"].rsplit("/", 1)[-1], tuple(s["bands"])) for s in summary["sources"]]
        for note in session.same_bands(sources):
            st.warning(note)
        if summary.get("masks"):
            st.subheader("Cloud masks")
            st.caption(
                "Not features: the pixels each flags read as no data in the rasters of its scene, "
                "which are mapped there from the other rasters and marked less certain."
            )
            st.dataframe(
                pd.DataFrame(
                    {
                        "file": [m["path"].rsplit("/", 1)[-1] for m in summary["masks"]],
                        "layer": [m["product"] for m in summary["masks"]],
                        "flags": [m["flags"] for m in summary["masks"]],
                        "masks": [
                            ", ".join(p.rsplit("/", 1)[-1] for p in m["masks"])
                            for m in summary["masks"]
                        ],
                    }
                ),
                hide_index=True,
                key="masks_table",
            )
        if "samples" in summary:
            st.subheader("Observations on the grid")
            st.dataframe(
                pd.DataFrame(summary["samples"]["per_class"].items(), columns=["class", "samples"]),
                hide_index=True,
                key="samples_table",
            )
            if summary["samples"]["counts"].get("polygons"):
                st.caption(
                    "A polygon's samples are its pixels, drawn from every polygon of its class. "
                    f"The table counts the random forest's draw, at most {MAX_PER_CLASS['rf']:,} "
                    f"per class; the labelled SOM draws up to {MAX_PER_CLASS['som']:,} (Train, "
                    "under More: Most polygon pixels per class)."
                )
        for note in summary["warnings"]:
            st.warning(session.in_app_words(note))
        if data.ready:
            st.success("Ready: go to **Train**.")
        else:
            st.success(
                "Rasters ready: **Train** can cluster them with a self-organizing map, or map "
                "them with a model trained earlier (the next sheet), now; the forest and the "
                "labelled SOM also need observations."
            )
        st.page_link("views/train.py", label="Train a model", icon=":material/arrow_forward:")


# not st.stop(): the frame redraws the sidebar after the page, which a stopped page cannot
if data.rasters:
    _show_inputs(data)
elif st.session_state.get("left_demo"):  # observations uploaded over the demo: it went quietly
    st.warning(
        "The demo scene is no longer in use: an upload replaced it, and the demo's rasters are "
        "not uploads. Upload your rasters too, or open the demo scene again."
    )
else:
    st.warning("Upload at least one raster.")
