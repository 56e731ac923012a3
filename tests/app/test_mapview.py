"""The map is built from local assets only: no element asks for a CDN."""

from __future__ import annotations

import os
import re

import folium
import numpy as np

import mapview
from geomap import webmap


def _walk(element):
    yield element
    for child in getattr(element, "_children", {}).values():
        yield from _walk(child)


def test_a_full_map_loads_nothing_from_outside(tmp_path):
    bounds = ((46.8, 15.0), (46.9, 15.1))
    m = mapview.offline_map(bounds, None)
    folium.raster_layers.ImageOverlay(
        "data:image/png;base64,", bounds=[list(b) for b in bounds]
    ).add_to(m)
    point = {"type": "Point", "coordinates": [15.05, 46.85]}
    observation = {"label": "granite", "source": "f.gpkg", "site": "station GM-7"}
    mapview.add_observations(
        m,
        {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": point, "properties": observation},
        ]},
        {"granite": "#ff0000"},
    )  # fmt: skip
    site = {"rank": 1, "predicted_class": "granite", "expected_accuracy": 0.4, "reason": "far"}
    mapview.add_sites(
        m,
        {"type": "FeatureCollection", "features": [
            {"type": "Feature", "geometry": point, "properties": site},
        ]},
    )  # fmt: skip
    folium.LayerControl().add_to(m)
    links = [
        url
        for element in _walk(m)
        for _, url in [*getattr(element, "default_js", []), *getattr(element, "default_css", [])]
    ]
    assert links == [mapview.LEAFLET_JS, mapview.LEAFLET_CSS]
    html = m.get_root().render()
    assert not re.findall(r"(?:src|href)=\"https?://", html)
    assert '"observation"' in html and '"site"' in html  # the popup names the observation
    assert '"where": "46.85000, 15.05000"' in html  # where a site is, for a GPS
    assert "tile.openstreetmap" not in html


def test_leaflet_is_served_from_the_installed_package():
    assert (mapview.LEAFLET_DIR / "leaflet.js").stat().st_size > 100_000
    assert (mapview.LEAFLET_DIR / "leaflet.css").exists()
    assert mapview.LEAFLET_JS.startswith("/component/") and mapview.LEAFLET_JS.endswith(
        "/leaflet.js"
    )


def test_a_basemap_is_added_only_when_asked_for():
    bounds = ((46.8, 15.0), (46.9, 15.1))
    assert "tile.openstreetmap" in mapview.offline_map(bounds, "OpenStreetMap").get_root().render()


def test_a_colour_bar_says_when_values_go_beyond_its_ends():
    spec = next(s for s in mapview.LAYERS if s.title == "Dissimilarity index")
    clipped = mapview.colour_bar_html(spec, (0.1, 0.4), (0.05, 5.95))
    assert "≤ 0.1" in clipped and "≥ 0.4" in clipped
    assert "Values reach down to 0.05 and up to 5.95." in clipped
    inside = mapview.colour_bar_html(spec, (0.0, 1.0), (0.2, 0.9))
    assert "≤" not in inside and "≥" not in inside and "Values reach" not in inside


def test_the_area_of_applicability_has_two_swatches_not_a_ramp():
    """A 0/1 mask had a grey colour bar, as if values between meant something."""
    spec = next(s for s in mapview.LAYERS if s.title == "Area of applicability")
    legend = mapview.colour_bar_html(spec, (0.0, 1.0), (0.0, 1.0))
    assert "linear-gradient" not in legend
    assert "inside (1): clear" in legend and "outside (0): shaded" in legend
    assert (
        legend.index("background:transparent")
        < legend.index("inside (1)")
        < legend.index("background:rgba(0, 0, 0, 0.60)")
        < legend.index("outside (0)")
    )


def test_layer_images_are_served_by_the_app_under_unguessable_names(tmp_path):
    png = webmap.to_png(np.zeros((4, 4, 4), dtype="uint8"))
    url = mapview.overlay_url(png)
    name = url.rsplit("/", 1)[1]
    assert url.startswith("/component/") and len(name) == 64 + 4  # sha-256 of the image
    assert (mapview.OVERLAY_DIR / name).read_bytes() == png
    assert mapview.overlay_url(png) == url  # the same image, the same address
    stale = mapview.OVERLAY_DIR / ("0" * 64 + ".png")
    stale.write_bytes(png)
    os.utime(stale, (0, 0))  # drawn long ago
    mapview.overlay_url(webmap.to_png(np.full((4, 4, 4), 255, dtype="uint8")))
    assert not stale.exists() and (mapview.OVERLAY_DIR / name).exists()


def test_the_legend_explains_the_point_symbols_shown():
    html = mapview.points_legend_html(["Lithology", "Observations to check"])
    assert "Observations to check" in html and 'stroke-dasharray="4 3"' in html
    assert "Suggested field sites" not in html
    assert mapview.points_legend_html(["Lithology"]) == ""
    dots = mapview.points_legend_html(["Lithology", "Field observations"])
    assert "hollow: a unit this map does not show" in dots  # 62 white dots went unexplained
    plain = mapview.points_legend_html(["Uncertainty: margin", "Field observations"], False)
    assert "coloured by unit when a class map is the first layer" in plain
    clusters = mapview.points_legend_html(["SOM clusters", "Field observations"], clusters=True)
    assert "the cluster it lies in" in clusters and "a unit this map does not show" not in clusters
    assert 'fill="none"' in clusters and 'fill="#dddddd"' in dots  # drawn as the text says
    assert "<circle" in dots and "<rect" not in dots


def test_observations_drawn_as_areas_have_an_area_in_the_legend():
    """A legacy map's polygons, drawn filled, were explained by a hollow dot (user pass)."""
    feature = {"type": "Feature", "properties": {}}
    point = {**feature, "geometry": {"type": "Point", "coordinates": [15.0, 46.8]}}
    area = {**feature, "geometry": {"type": "MultiPolygon", "coordinates": []}}
    collection = {"type": "FeatureCollection"}
    polygons = mapview.observation_shapes({**collection, "features": [area]})
    both = mapview.observation_shapes({**collection, "features": [point, area]})
    assert polygons == {"polygon"} and both == {"point", "polygon"}
    shown = ["Lithology", "Field observations"]
    patch = mapview.points_legend_html(shown, shapes=polygons)
    assert "<rect" in patch and "<circle" not in patch and 'width="20"' in patch
    mixed = mapview.points_legend_html(shown, shapes=both)
    assert "<rect" in mixed and "<circle" in mixed and 'width="40"' in mixed


def test_the_scene_is_fitted_once_the_layer_control_it_keeps_clear_of_is_there():
    """The browser test (tests/e2e/test_map_view.py) measures the view; here: the script."""
    bounds = ((46.8, 15.0), (46.9, 15.1))
    m = mapview.offline_map(bounds, None)
    assert "fitBounds" not in m.get_root().render()  # a view kept: no fit
    control = mapview.layer_control(m, 2, {"memory": "m", "latest": "l", "fresh": []})
    mapview.fit_clear_of_control(m, control, bounds)
    html = m.get_root().render()
    script = html[html.index(f"{control.get_name()} = L.control.layers(") :]
    assert f"var map = {m.get_name()}, control = {control.get_name()};" in script
    assert "L.latLngBounds([[46.8, 15.0], [46.9, 15.1]])" in script and "fitBounds" in script


def test_a_long_layer_list_folds_into_its_icon():
    ticks = {"memory": "t", "latest": "l", "fresh": []}
    assert not mapview.layer_control(folium.Map(), 2, ticks).options["collapsed"]
    assert mapview.layer_control(folium.Map(), 9, ticks).options["collapsed"]  # covered the map


def test_the_layer_ticks_are_kept_under_their_name_after_the_control():
    """The browser test checks they survive a redraw; here: the script names the right things."""
    m = folium.Map()
    ticks = {"memory": 'run "7":a1:1', "latest": 'run "7"', "fresh": ["Expected accuracy"]}
    control = mapview.layer_control(m, 2, ticks)
    html = m.get_root().render()
    script = html[html.index(f"{control.get_name()} = L.control.layers(") :]
    assert f"control = {control.get_name()};" in script  # after the control it reads
    assert 'var name = "run \\"7\\":a1:1", latest = "run \\"7\\"";' in script
    assert 'var fresh = ["Expected accuracy"], ticks = {};' in script
    assert f"var map = {m.get_name()}," in script


def test_a_ring_to_check_takes_clicks_at_its_centre():
    m = folium.Map()
    site = {k: "x" for k in mapview.CHECK_FIELDS} | {"site": "station 7"}
    point = {"type": "Point", "coordinates": [15.0, 47.0]}
    feature = {"type": "Feature", "properties": site, "geometry": point}
    mapview.add_to_check(m, {"type": "FeatureCollection", "features": [feature]})
    page = m.get_root().render()
    assert '"fill": true' in page and '"fillOpacity": 0.0' in page  # clickable, unseen


def test_observations_of_a_unit_the_map_lacks_are_hollow():
    """They were white, beside alluvium's cream: the legend's 'white' could not be told apart."""
    m = mapview.offline_map(((46.8, 15.0), (46.9, 15.1)), None)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [15.05, 46.85]},
            "properties": {"label": label, "source": "f.gpkg", "site": f"station {i}"},
        }
        for i, label in enumerate(["granite", "gneiss"])
    ]
    mapview.add_observations(
        m, {"type": "FeatureCollection", "features": features}, {"granite": "#ff0000"}
    )
    page = m.get_root().render()
    assert '"fillColor": "#ff0000", "fillOpacity": 0.9' in page
    assert '"fillColor": "#ffffff", "fillOpacity": 0.0' in page
