"""Map page: lithology, uncertainty and probabilities over the survey area, toggled by the user."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit_folium import st_folium

import mapview
import session
from geomap import webmap

st.title("Map")
result = session.current_run()
if result is None:
    st.info("Train a model first: the map shows the result of the latest run.")
    st.page_link("views/train.py", label="Go to Train", icon=":material/arrow_back:")
    session.stop()

stale = session.stale_note(result, session.inputs())
if stale:
    st.info(stale, icon=":material/update:")
out = result["out"]
config = result["report"]["configuration"]
layers = {spec.title: spec for spec in mapview.available_layers(out)}
first = next(iter(layers.values()))
POINTS = "Field observations"
SITES = "Suggested field sites"
CHECKS = "Observations to check"
observed = session.observations_shown(config)
offered = [
    *layers,
    *([POINTS] if observed else []),
    *([SITES] if (out / "suggested_samples.gpkg").exists() else []),
    *([CHECKS] if (out / "observations_to_check.gpkg").exists() else []),
]
# The labelled SOM's class frequencies per node are mostly pure: its margin told wrong pixels
# from right ones with AUROC 0.68 on the demo, its expected accuracy 0.83 (the forest's 0.89, 0.85)
TRUST = "Expected accuracy" if config.get("model") == "som" else "Uncertainty: margin"
DEFAULT = ("Lithology", "SOM clusters", TRUST, POINTS, CHECKS)
defaults = [t for t in DEFAULT if t in offered]
kept = st.session_state.get("map_layers")
if kept == st.session_state.get("map_defaults"):  # the last map's defaults, left as they were
    st.session_state.map_layers = defaults  # this run's own (a SOM's trust layer, its clusters)
elif kept:  # chosen by the user for another run: keep what this one has too, else its defaults
    st.session_state.map_layers = [t for t in kept if t in offered] or defaults
st.session_state.map_defaults = defaults

controls, legend = st.columns([3, 1])
with controls:
    chosen = st.multiselect(
        "Layers",
        offered,
        default=defaults,
        key="map_layers",
        wrap=True,  # Streamlit's default in a column: one line, scrolled to its end
        help=(
            "A layer you add is shown at once; tick layers on or off in the map's layer control "
            "(bottom right)."
        ),
    )
    if observed is None and session.inputs().labels is not None:
        st.caption(
            "The Data page's observations are not shown: "
            + (
                "this map applies a model trained earlier, which does not use them."
                if result["params"]["model"] == "apply"
                else "they could not be read (see the Data page)."
            )
        )
    a, b = st.columns(2)
    opacity = a.slider("Opacity", 0.0, 1.0, 0.8, 0.05, key="opacity")
    basemap = b.radio(
        "Basemap",
        list(mapview.BASEMAPS),
        key="basemap",
        horizontal=True,
        help="Without a basemap nothing is fetched from the internet.",
    )

if not chosen:
    st.info("Choose a layer to show in the box 'Layers'.", icon=":material/layers:")
bounds = mapview.rendered(out, first)[1]
center, zoom = session.map_view(result["key"], (tuple(chosen), opacity, basemap))
view = (center, zoom) if center is not None else None
m = mapview.offline_map(bounds, mapview.BASEMAPS[basemap], view=view)
legend_html = []
with session.reported("Drawing the map"):
    rasters = [title for title in chosen if title in layers]
    ticks = session.layer_ticks(result["key"], chosen, list(layers))
    for title in rasters:
        spec = layers[title]
        shown = title in ticks["shown"]
        value_range, data_range = mapview.add_overlay(m, out, spec, opacity, show=shown)
        if spec.kind == "class":
            entries = webmap.class_legend(out / spec.file)
            legend_html.append(mapview.class_legend_html(entries, spec.title))
        else:
            legend_html.append(mapview.colour_bar_html(spec, value_range, data_range))
    if len(rasters) > 1:  # which of them show is the layer control's (the browser's) to say
        legend_html.append(
            '<div style="font-size:0.8em;margin-bottom:0.6em">Tick a layer on or off in the '
            "map's layer control (bottom right) to see it or what lies under it; a layer lower in "
            "the list is drawn over those above it.</div>"
        )
    shapes, symbols_at = frozenset({"point"}), len(legend_html)  # said before the units
    # a run without observations (clusters): the session's, each with the cluster it lies in
    clustered = config.get("model") == "som-clusters"
    if POINTS in chosen:
        labels = Path(observed["labels"])
        classes = out / ("lithology.tif" if not clustered else first.file)
        legend_file = observed.get("legend")
        geojson = mapview.observations(
            str(labels),
            labels.stat().st_mtime_ns,
            observed["label_column"],
            observed["label_crs"],
            observed.get("label_layer"),  # runs of this session made before the layer choice
            legend_file,
            Path(legend_file).stat().st_mtime_ns if legend_file else None,
            *((str(classes), classes.stat().st_mtime_ns) if classes.exists() else ()),
        )
        by_unit = first.kind == "class" and not clustered
        colours = dict(webmap.class_legend(out / first.file)) if by_unit else {}
        mapview.add_observations(m, geojson, colours)
        shapes = mapview.observation_shapes(geojson) or shapes
        if colours and first.title not in rasters:  # the dots' colours need their legend
            entries = webmap.class_legend(out / first.file)
            legend_html.append(mapview.class_legend_html(entries, f"{POINTS}: units"))
    legend_html.insert(
        symbols_at,
        mapview.points_legend_html(
            chosen, first.kind == "class" and not clustered, shapes, clusters=clustered
        ),
    )
    if SITES in chosen:
        path = out / "suggested_samples.gpkg"
        mapview.add_sites(
            m, mapview.points(str(path), path.stat().st_mtime_ns, mapview.SITE_FIELDS)
        )
    if CHECKS in chosen:
        path = out / "observations_to_check.gpkg"
        geojson = mapview.points(str(path), path.stat().st_mtime_ns, mapview.CHECK_FIELDS)
        mapview.add_to_check(m, geojson)
    control = mapview.layer_control(m, len(chosen), ticks)
    # the whole scene, until the user moves this run's map (then the view kept, if any)
    mapview.fit_clear_of_control(m, control, bounds, ticks["moved"], kept_view=view is not None)
    with controls:
        state = st_folium(
            m, height=620, use_container_width=True, returned_objects=["center", "zoom"], key="map"
        )
        session.remember_map_view(result["key"], state)
        st.caption(
            "The mouse wheel scrolls the page; click the map first to zoom it with the wheel (or "
            "hold Ctrl), or use its + and - buttons or keys."
        )
with legend:
    st.markdown("".join(legend_html), unsafe_allow_html=True)
    if "validation" in result["report"]:
        st.caption(
            "Uncertainty is highest where the model hesitates between units; expected accuracy "
            "and the area of applicability say where the map can be trusted."
        )
