"""The interactive map: offline Leaflet assets, layers rendered from the run's GeoTIFFs, legends.

Leaflet's JavaScript and CSS are served by this app, never by a CDN, so the map works in a field
camp or a closed network: the ``django-js-lib-leaflet`` package (Leaflet 1.9.4, BSD-2-Clause)
holds them, and declaring its folder as a Streamlit component makes Streamlit serve it under
``/component/<name>/``. Without a basemap no tile is requested at all.

The layers' PNGs are served the same way, from a folder of this server process named by their
SHA-256 (unguessable without the image), so a redrawn map, or the rerun each pan and zoom
causes, sends their addresses, not the images, and the browser keeps them in its cache.
"""

from __future__ import annotations

import atexit
import hashlib
import html
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import folium
import rasterio
import streamlit as st
import streamlit.components.v1 as components
from branca.element import MacroElement, Template

from geomap import webmap

LEAFLET_DIR = Path(str(resources.files("js_lib_leaflet") / "static" / "js_lib_leaflet"))
_LEAFLET = components.declare_component("leaflet_assets", path=str(LEAFLET_DIR))
OVERLAY_DIR = Path(tempfile.mkdtemp(prefix="geomap-overlays-"))
atexit.register(shutil.rmtree, OVERLAY_DIR, ignore_errors=True)
_OVERLAYS = components.declare_component("overlays", path=str(OVERLAY_DIR))
#: An overlay PNG not drawn for this long is removed (drawn again, it is written again).
OVERLAY_SECONDS = 3600
LEAFLET_JS = f"/component/{_LEAFLET.name}/leaflet.js"
LEAFLET_CSS = f"/component/{_LEAFLET.name}/leaflet.css"
NO_BASEMAP = "None (works offline)"
BASEMAPS = {NO_BASEMAP: None, "OpenStreetMap (needs internet)": "OpenStreetMap"}
MAX_SIZE = 900


@dataclass(frozen=True)
class LayerSpec:
    """A map layer read from one band of one output file."""

    title: str
    file: str
    band: int
    kind: str  # "class", "continuous", or "mask" (0/1: shaded where 0, clear where 1)
    cmap: str = "magma"
    vmin: float | None = 0.0
    vmax: float | None = 1.0
    note: str = ""
    clear: float | None = None  # values at or below it are drawn transparent


# fmt: off
LAYERS = (
    LayerSpec("Lithology", "lithology.tif", 1, "class"),
    LayerSpec("Uncertainty: entropy", "uncertainty.tif", 1, "continuous",
              note="0: one class certain; 1: every class equally likely"),
    LayerSpec("Uncertainty: margin", "uncertainty.tif", 2, "continuous",
              note="1 - (p1 - p2): high where the two likeliest classes are close"),
    LayerSpec("Missing inputs", "uncertainty.tif", 3, "continuous", "Blues",
              note="share of input rasters not used at the pixel: no data (a cloud) or optical "
                   "bands screened out (haze, shadow); clear where every input was used",
              clear=0.0),
    LayerSpec("Expected accuracy", "expected_accuracy.tif", 1, "continuous", "RdYlGn",
              note="probability that the mapped class is right (calibrated on spatial CV)"),
    LayerSpec("Area of applicability", "applicability.tif", 2, "mask",
              note="inside, the inputs resemble the training data; outside, the map "
                   "extrapolates: units no observation holds may lie there"),
    LayerSpec("Dissimilarity index", "applicability.tif", 1, "continuous", "viridis", None, None,
              note="distance to the nearest training sample in feature space"),
    LayerSpec("SOM clusters", "clusters.tif", 1, "class"),
    LayerSpec("SOM sub-units", "subunits.tif", 1, "class"),
    LayerSpec("Quantization error (percentile)", "quantization_error.tif", 2, "continuous",
              "viridis", 0.0, 100.0,
              note="how unlike its SOM node a pixel is, against the training pixels"),
    LayerSpec("Label distance", "label_distance.tif", 1, "continuous", "viridis", None, None,
              note="codebook distance to the nearest labelled node: high = nothing like it seen"),
)
# fmt: on


def available_layers(out: Path) -> list[LayerSpec]:
    """The layers whose files the run wrote, plus one probability layer per mapped class."""
    layers = [s for s in LAYERS if (out / s.file).exists() and _has_band(out / s.file, s.band)]
    if (out / "probabilities.tif").exists() and (out / "lithology.tif").exists():
        names = [name for name, _ in webmap.class_legend(out / "lithology.tif")]
        layers += [
            LayerSpec(f"Probability: {n}", "probabilities.tif", i + 1, "continuous", "viridis")
            for i, n in enumerate(names)
        ]
    return layers


def _has_band(path: Path, band: int) -> bool:
    with rasterio.open(path) as src:
        return band <= src.count


@st.cache_data(max_entries=64, show_spinner=False)
def render(
    path: str, mtime_ns: int, spec: LayerSpec
) -> tuple[bytes, tuple, tuple | None, tuple | None]:
    """A layer as PNG bytes with its bounds, cached by file, version and style."""
    if spec.kind == "class":
        overlay = webmap.class_overlay(path, MAX_SIZE)
    elif spec.kind == "mask":
        overlay = webmap.mask_overlay(path, spec.band, max_size=MAX_SIZE)
    else:
        overlay = webmap.continuous_overlay(
            path,
            spec.band,
            cmap=spec.cmap,
            vmin=spec.vmin,
            vmax=spec.vmax,
            max_size=MAX_SIZE,
            clear=spec.clear,
        )
    return webmap.to_png(overlay.image), overlay.bounds, overlay.value_range, overlay.data_range


def overlay_url(png: bytes) -> str:
    """The address this server gives a layer's PNG (written once; old ones are removed)."""
    name = hashlib.sha256(png).hexdigest() + ".png"
    path = OVERLAY_DIR / name
    if path.exists():
        os.utime(path)  # drawn now: not old
    else:
        tmp = path.with_suffix(".part")
        tmp.write_bytes(png)
        tmp.replace(path)
        old = time.time() - OVERLAY_SECONDS
        for other in OVERLAY_DIR.glob("*.png"):
            if other.stat().st_mtime < old:
                other.unlink(missing_ok=True)
    return f"/component/{_OVERLAYS.name}/{name}"


def offline_map(bounds: tuple, basemap: str | None, view: tuple | None = None) -> folium.Map:
    """A folium map that loads Leaflet from this app and tiles only when a basemap is chosen.

    It opens at ``view`` (centre, zoom), where the user left the map, or on the scene (see
    :func:`fit_clear_of_control`). The view goes into the map itself: given to the component
    beside a fit to the scene, it lost to the fit, and a map redrawn with another layer opened
    zoomed out.
    """
    (south, west), (north, east) = bounds
    m = folium.Map(
        location=list(view[0]) if view else [(south + north) / 2, (west + east) / 2],
        zoom_start=view[1] if view else webmap.zoom_for(bounds),
        tiles=None,
        control_scale=True,
    )
    m.default_js = [("leaflet", LEAFLET_JS)]
    m.default_css = [("leaflet_css", LEAFLET_CSS)]
    if basemap:
        folium.TileLayer(basemap, name=basemap, control=True).add_to(m)
    _FocusInPlace().add_to(m)
    return m


class _FocusInPlace(MacroElement):
    """Script that keeps the page in place: a click focuses the map, the wheel scrolls the page.

    Leaflet focuses the map on the first press of a button in it (for its arrow-key panning). In
    the component's frame that focus scrolled the app's page to bring the whole map into view
    when it did not fit in the window, the press's release landed elsewhere and the first click
    on an observation opened no popup (user pass). The keys still pan and zoom the map.

    The wheel zoomed the map as soon as the page, scrolled by it, brought the map under the
    pointer: the map shrank to a dot and the page stopped scrolling, its layer list out of reach
    (user pass). Now the wheel zooms the map once it has been clicked (while it has the focus),
    or with Ctrl held (a touchpad's pinch); otherwise it scrolls the page.
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }}, container = map.getContainer();
            var keyboard = map.keyboard;
            if (keyboard) {
                keyboard.disable();  // its press handler is bound when enabled
                keyboard._onMouseDown = function () {
                    if (!this._focused) this._map.getContainer().focus({preventScroll: true});
                };
                keyboard.enable();
            }
            container.addEventListener("wheel", function (event) {
                var focused = document.hasFocus() && document.activeElement === container;
                if (!focused && !event.ctrlKey) event.stopImmediatePropagation();  // the page's
            }, true);
        })();
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "FocusInPlace"


def rendered(out: Path, spec: LayerSpec) -> tuple[str, tuple, tuple | None, tuple | None]:
    """:func:`render` of a layer of the run in ``out``, its PNG served at the address given."""
    path = out / spec.file
    png, *rest = render(str(path), path.stat().st_mtime_ns, spec)
    return (overlay_url(png), *rest)


#: More layers than this and the open layer list would cover much of the map: it folds.
OPEN_LAYER_LIST = 5


def layer_control(m: folium.Map, n_layers: int, ticks: dict) -> folium.LayerControl:
    """Add the map's layer list: bottom right, clear of popups; folded into its icon when long.

    Its ticks are kept in the browser tab under the name ``ticks["memory"]`` and given back
    when the map is drawn anew (another opacity or basemap, back from another page), so a layer
    the user ticked on or off stays so. Every change is also kept under ``ticks["latest"]``; a
    memory not kept yet starts from those ticks with the layers ``ticks["fresh"]`` ticked (see
    ``session.layer_ticks``), and with the first raster layer ticked if no raster would show
    (the one shown was taken out of the Layers box).
    """
    control = folium.LayerControl(collapsed=n_layers > OPEN_LAYER_LIST, position="bottomright")
    control.add_to(m)
    _KeptTicks(control, ticks["memory"], ticks["latest"], ticks["fresh"]).add_to(m)
    return control


def fit_clear_of_control(
    m: folium.Map,
    control: folium.LayerControl,
    bounds: tuple,
    moved: str | None = None,
    kept_view: bool = False,
) -> None:
    """Open the map on the whole scene, as large as it fits above or beside the layer control.

    ``moved``: the name under which the browser tab keeps that the user moved this map (a
    run's). Once they have, a map drawn at a ``kept_view`` (where they left it) stays there;
    until then it is fitted anew, as the layer control may have grown (a layer added to a map
    drawn at the view of a smaller control had the control over the scene's corner; user pass).

    The browser measures the control (open or folded into its icon) and the map, and keeps the
    strip below the control's top or the one left of its left edge clear, whichever lets the
    scene show larger, once Leaflet's style has put the control inside the map (the script
    runs before the style sheet applies in Streamlit's component frame: measured then, the
    control lay 1,267 px down, below the map, and half the demo opened below the map's foot;
    user pass), and again when the frame changes size, until the user moves the map.

    A room reckoned from the count of layers kept 196 px of 620 clear
    below the scene for six layers, whose list is folded into an icon 80 px from the map's
    foot, and the demo opened one zoom level out (a quarter of the area it could take); with
    five it did so for want of the room left of the list.
    """
    _FitClearOfControl(control, [list(corner) for corner in bounds], moved, kept_view).add_to(m)


class _FitClearOfControl(MacroElement):
    """Script that fits the map to bounds clear of a layer control, as the browser lays it out."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }}, control = {{ this.control.get_name() }};
            var bounds = L.latLngBounds({{ this.bounds|tojson }}), touched = false;
            var moved = {{ this.moved|tojson }};
            try {  // moved by the user earlier: the view kept, where they left it
                touched = {{ this.kept_view|tojson }} && moved !== null
                    && window.sessionStorage.getItem(moved) !== null;
            } catch (e) {}
            function fit(tries) {
                var box = map.getContainer().getBoundingClientRect();
                var at = control.getContainer().getBoundingClientRect();
                if (touched || box.height < 200 || box.width < 200) return;  // not laid out
                if (at.top < box.top || at.bottom > box.bottom + 1 || at.left < box.left) {
                    // Leaflet's style not applied yet: the control lies outside the map
                    if ((tries || 0) < 100) setTimeout(fit, 50, (tries || 0) + 1);
                    return;
                }
                var rooms = [L.point(0, box.bottom - at.top), L.point(box.right - at.left, 0)];
                var zooms = rooms.map(function (room) {
                    return map.getBoundsZoom(bounds, false, room);
                });
                var room = rooms[zooms[1] > zooms[0] ? 1 : 0];
                map.fitBounds(bounds, {paddingBottomRight: room, animate: false});
            }
            fit(0);
            map.on("resize", function () { fit(0); });  // the frame may take its size later
            L.DomEvent.on(map.getContainer(), "pointerdown wheel keydown touchstart", function () {
                touched = true;  // the user's own view from then on
                try {
                    if (moved !== null) window.sessionStorage.setItem(moved, "1");
                } catch (e) {}
            });
        })();
        {% endmacro %}
        """
    )

    def __init__(
        self, control: folium.LayerControl, bounds: list, moved: str | None, kept_view: bool
    ) -> None:
        super().__init__()
        self._name = "FitClearOfControl"
        self.control, self.bounds, self.moved, self.kept_view = control, bounds, moved, kept_view


class _KeptTicks(MacroElement):
    """Script that keeps a layer control's ticks in the tab's sessionStorage under a name."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        (function () {
            var map = {{ this._parent.get_name() }}, control = {{ this.control.get_name() }};
            var name = {{ this.memory|tojson }}, latest = {{ this.latest|tojson }};
            var fresh = {{ this.fresh|tojson }}, ticks = {};
            function read(key) {
                var kept = window.sessionStorage.getItem(key);
                return kept === null ? null : JSON.parse(kept) || {};
            }
            function save() {
                var text = JSON.stringify(ticks);
                try {
                    window.sessionStorage.setItem(name, text);
                    window.sessionStorage.setItem(latest, text);
                } catch (e) {}
            }
            var chosen = false;  // a new choice of layers
            try {
                ticks = read(name);
                if (ticks === null) {  // the latest ticks, the layers just chosen on
                    chosen = true;
                    ticks = read(latest) || {};
                    fresh.forEach(function (layer) { ticks[layer] = true; });
                }
            } catch (e) { ticks = {}; }
            control._layers.forEach(function (entry) {
                if (!entry.overlay || !(entry.name in ticks)) return;
                if (ticks[entry.name]) map.addLayer(entry.layer);
                else map.removeLayer(entry.layer);
            });
            var rasters = control._layers.filter(function (entry) {
                return entry.overlay && entry.layer instanceof L.ImageOverlay;
            });
            var seen = rasters.some(function (entry) { return map.hasLayer(entry.layer); });
            if (chosen && rasters.length && !seen) {  // the one shown was taken out: the first
                map.addLayer(rasters[0].layer);
                ticks[rasters[0].name] = true;
            }
            save();
            function keep(on) {
                return function (event) {
                    ticks[event.name] = on;
                    save();
                };
            }
            map.on("overlayadd", keep(true));
            map.on("overlayremove", keep(false));
        })();
        {% endmacro %}
        """
    )

    def __init__(
        self, control: folium.LayerControl, memory: str, latest: str, fresh: list[str]
    ) -> None:
        super().__init__()
        self._name = "KeptTicks"
        self.control, self.memory, self.latest, self.fresh = control, memory, latest, fresh


def add_overlay(
    m: folium.Map, out: Path, spec: LayerSpec, opacity: float, show: bool = True
) -> tuple[tuple | None, tuple | None]:
    """Add a layer to the map (ticked off in the layer control unless ``show``).

    Returns its colour ramp's (vmin, vmax) and the (min, max) of its values for continuous
    layers (None, None for class maps).
    """
    url, bounds, value_range, data_range = rendered(out, spec)
    layer = folium.raster_layers.ImageOverlay(
        "data:,",
        bounds=[list(bounds[0]), list(bounds[1])],
        opacity=opacity,
        name=spec.title,
        show=show,
    )
    layer.url = url  # an address on this server (folium would read it as a local file's path)
    layer.add_to(m)
    return value_range, data_range


@st.cache_data(max_entries=16, show_spinner=False)
def observations(
    path: str,
    mtime_ns: int,
    column: str,
    crs: str | None,
    layer: str | None = None,
    legend: str | None = None,
    legend_mtime_ns: int | None = None,
    class_map: str | None = None,
    class_map_mtime_ns: int | None = None,
) -> dict:
    """The observations file as GeoJSON in longitude/latitude, cached by file and version.

    The legend's version is part of the key: a legend uploaded again under its name renames the
    points too. With the run's ``class_map`` each point also carries the class mapped there.
    """
    return webmap.observations_geojson(
        path, column, crs=crs, layer=layer, legend=legend, class_map=class_map
    )


def add_observations(m: folium.Map, geojson: dict, colours: dict[str, str]) -> None:
    """Field observations as small circles (points) or outlines (polygons) with popups."""
    mapped = bool(geojson["features"]) and "mapped" in geojson["features"][0]["properties"]
    fields = ["site", "label", "mapped", "source"] if mapped else ["site", "label", "source"]
    aliases = (
        ["observation", "observed", "mapped", "file"]
        if mapped
        else ["observation", "class", "file"]
    )
    folium.GeoJson(
        geojson,
        name="Field observations",
        marker=folium.CircleMarker(radius=4, weight=1, fill=True, fill_opacity=0.9),
        style_function=lambda f: {
            "color": "#000000",
            "weight": 1,
            "fillColor": colours.get(f["properties"]["label"], "#ffffff"),
            "fillOpacity": 0.9 if f["properties"]["label"] in colours else 0.0,  # not mapped
        },
        popup=folium.GeoJsonPopup(fields=fields, aliases=aliases),
    ).add_to(m)


SITE_FIELDS = ("rank", "predicted_class", "expected_accuracy", "reason")
CHECK_FIELDS = ("rank", "site", "observed", "held_out", "p_observed", "p_held_out")
#: How each point layer is drawn, for the map and its legend: (ring colour, fill, dashes).
SITE_STYLE = ("#d7191c", "#ffffff", None)
CHECK_STYLE = ("#000000", None, "4 3")


@st.cache_data(max_entries=16, show_spinner=False)
def points(path: str, mtime_ns: int, fields: tuple[str, ...]) -> dict:
    """Points of a run's file (suggested sites, observations to check) as lon/lat GeoJSON.

    Cached by file, version and fields.
    """
    return webmap.vector_geojson(path, fields)


def add_sites(m: folium.Map, geojson: dict) -> None:
    """Suggested field sites as white rings with their rank, class, accuracy, reason and place.

    The place is latitude, longitude in decimal degrees (WGS 84), as a GPS or a phone's map
    takes it: the popup was the only word on a site in the browser, and it gave none.
    """
    features = [
        {**f, "properties": {**f["properties"], "where": _lat_lon(f["geometry"])}}
        for f in geojson["features"]
    ]
    folium.GeoJson(
        {**geojson, "features": features},
        name="Suggested field sites",
        marker=folium.CircleMarker(radius=7, weight=3, fill=True, fill_opacity=0.6),
        style_function=lambda f: {"color": SITE_STYLE[0], "fillColor": SITE_STYLE[1], "weight": 3},
        popup=folium.GeoJsonPopup(
            fields=[*SITE_FIELDS, "where"],
            aliases=["rank", "mapped as", "expected accuracy", "why here", "lat, lon (WGS 84)"],
        ),
        tooltip=folium.GeoJsonTooltip(fields=["rank"], aliases=["site"]),
    ).add_to(m)


def _lat_lon(geometry: dict) -> str:
    """A GeoJSON point's latitude and longitude, "-31.95222, 115.85136"."""
    lon, lat = geometry["coordinates"][:2]
    return f"{lat:.5f}, {lon:.5f}"


def add_to_check(m: folium.Map, geojson: dict) -> None:
    """Observations to check as dashed rings, with what the held-out map says there.

    A ring is filled, invisibly: a click at its centre, on the observation's dot, opens the
    ring's popup (the held-out class and probabilities), not the dot's.
    """
    folium.GeoJson(
        geojson,
        name="Observations to check",
        marker=folium.CircleMarker(radius=9, weight=2.5, fill=True, fill_opacity=0.0),
        style_function=lambda f: {
            "color": CHECK_STYLE[0],
            "weight": 2.5,
            "dashArray": CHECK_STYLE[2],
        },
        popup=folium.GeoJsonPopup(
            fields=list(CHECK_FIELDS),
            aliases=[
                *("rank", "observation", "observed", "mapped without it", "p(observed)"),
                "p(mapped)",
            ],
        ),
        tooltip=folium.GeoJsonTooltip(fields=["site"], aliases=["check"]),
    ).add_to(m)


def points_legend_html(
    layers: list[str],
    by_unit: bool = True,
    shapes: frozenset = frozenset({"point"}),
    clusters: bool = False,
) -> str:
    """What the point layers' symbols mean: field observations, sites, observations to check.

    ``by_unit``: the observations are filled with their unit's colour (the first layer is a
    class map), left hollow where the map has no such unit. ``shapes``: what the observations
    are, "point" (a dot) and "polygon" (an outlined area: a legacy map's patch), as
    :func:`observation_shapes` finds them. ``clusters``: the map is of clusters, made without
    the observations; they are hollow, and each names the cluster it lies in.
    """
    if clusters:
        fill = "hollow; click one for its unit and the cluster it lies in"
    elif by_unit:
        fill = "the unit's colour inside; hollow: a unit this map does not show"
    else:
        fill = "coloured by unit when a class map is the first layer"
    symbols = {
        "Field observations": ("#000000", None if clusters else "#dddddd", None, 4, fill),
        "Suggested field sites": (*SITE_STYLE, 7, "ranked; click for why"),
        "Observations to check": (*CHECK_STYLE, 8, "mapped as another unit without them"),
    }
    rows = []
    for title in layers:
        if title in symbols:
            ring, fill, dashes, radius, note = symbols[title]
            style = f'stroke="{ring}" fill="{fill or "none"}" stroke-dasharray="{dashes or "none"}"'
            marks = [f'<circle cx="10" cy="10" r="{radius}" stroke-width="2" {style}/>']
            if title == "Field observations" and "polygon" in shapes:  # outlined areas
                area = f'<rect x="{{}}" y="3" width="14" height="14" stroke-width="1" {style}/>'
                marks = marks + [area.format(23)] if "point" in shapes else [area.format(3)]
            svg = f'<svg width="{20 * len(marks)}" height="20">{"".join(marks)}</svg>'
            rows.append(
                f'<div class="geomap-legend-row">{svg} {html.escape(title)}'
                f'<div style="font-size:0.8em;margin-left:24px">{html.escape(note)}</div></div>'
            )
    return f'<div class="geomap-legend">{"".join(rows)}</div>' if rows else ""


def observation_shapes(geojson: dict) -> frozenset:
    """What the observations' GeoJSON features are: "point", "polygon" or both."""
    kinds = {str(f["geometry"]["type"]).lower() for f in geojson["features"] if f["geometry"]}
    return frozenset("polygon" if "polygon" in kind else "point" for kind in kinds)


def class_legend_html(entries: list[tuple[str, str]], title: str) -> str:
    """A legend of class swatches and names."""
    rows = "".join(
        f'<div class="geomap-legend-row"><span style="display:inline-block;width:14px;'
        f'height:14px;background:{c};border:1px solid #555;margin-right:6px"></span>'
        f"{html.escape(n)}</div>"
        for n, c in entries
    )
    return f'<div class="geomap-legend"><b>{html.escape(title)}</b>{rows}</div>'


def colour_bar_html(
    spec: LayerSpec, value_range: tuple[float, float], data_range: tuple | None = None
) -> str:
    """A horizontal colour bar with its end values and what the layer means.

    An end the layer's values go beyond (``data_range``) is marked <= or >= and the bar says
    the values reach further.
    """
    note = f'<div style="font-size:0.8em">{html.escape(spec.note)}</div>' if spec.note else ""
    if spec.kind == "mask":  # two values: two swatches, not a ramp between them
        shade = "rgba({}, {}, {}, {:.2f})".format(
            *webmap.MASK_SHADE[:3], webmap.MASK_SHADE[3] / 255
        )
        swatch = (
            '<span style="display:inline-block;width:14px;height:14px;background:{};'
            'border:1px solid #555;margin-right:6px"></span>'
        )
        rows = "".join(
            f'<div class="geomap-legend-row">{swatch.format(c)}{w}</div>'
            for c, w in (
                ("transparent", "inside (1): clear, the layers under it show"),
                (shade, "outside (0): shaded"),
            )
        )
        return f'<div class="geomap-colourbar"><b>{html.escape(spec.title)}</b>{rows}{note}</div>'
    stops = ", ".join(webmap.colour_ramp(spec.cmap, 9))
    lo, hi = value_range
    below = data_range is not None and data_range[0] < lo
    above = data_range is not None and data_range[1] > hi
    reach = ""
    if below or above:
        parts = [f"down to {data_range[0]:.3g}"] if below else []
        parts += [f"up to {data_range[1]:.3g}"] if above else []
        reach = f'<div style="font-size:0.8em">Values reach {" and ".join(parts)}.</div>'
    lo_text, hi_text = f"{'≤ ' if below else ''}{lo:.3g}", f"{'≥ ' if above else ''}{hi:.3g}"
    return (
        f'<div class="geomap-colourbar"><b>{html.escape(spec.title)}</b>'
        f'<div style="height:12px;background:linear-gradient(to right, {stops})"></div>'
        f'<div style="display:flex;justify-content:space-between;font-size:0.8em">'
        f"<span>{lo_text}</span><span>{hi_text}</span></div>{reach}{note}</div>"
    )
