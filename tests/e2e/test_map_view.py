"""The map's first view in Chromium, without the app: folium's page, Leaflet from its package."""

from __future__ import annotations

import sys
from pathlib import Path

import folium

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "app"))
import mapview  # noqa: E402  (the app's module, imported as the app imports it)

#: The demo scene's corners and the map's size in the app at a 1400 x 1000 window: the scene
#: takes 460 x 461 px at zoom 12.
DEMO = ((46.8454, 15.0), (46.9535, 15.1578))
MAP_PX = {"width": 697, "height": 620}

_VIEW = """() => {
    const map = Object.values(window).find(v => v instanceof L.Map);
    const rect = e => {
        const r = e.getBoundingClientRect();
        return [r.left, r.top, r.right, r.bottom];
    };
    return {zoom: map.getZoom(), control: rect(document.querySelector(".leaflet-control-layers")),
            scene: rect(document.querySelector("img.leaflet-image-layer"))};
}"""


def _map_html(n_layers: int, view: tuple | None = None) -> str:
    """The page of a map of n raster layers, drawn at ``view`` (centre, zoom) if given."""
    m = mapview.offline_map(DEMO, None, view=view)
    for i in range(n_layers):
        folium.raster_layers.ImageOverlay(
            "data:,", bounds=[list(c) for c in DEMO], name=f"Uncertainty: layer {i}"
        ).add_to(m)
    control = mapview.layer_control(m, n_layers, {"memory": "m", "latest": "l", "fresh": []})
    mapview.fit_clear_of_control(m, control, DEMO, "moved", kept_view=view is not None)
    return m.get_root().render()


def _drag(page) -> None:
    page.mouse.move(100, 100)
    page.mouse.down()
    page.mouse.move(160, 140, steps=5)
    page.mouse.up()


def _first_view(browser, n_layers: int, first_px: dict | None = None, moved=False) -> dict:
    """Zoom and the screen boxes of the scene and the layer control of a map of n raster layers.

    ``first_px``: the frame's size when the map is drawn, before it takes :data:`MAP_PX`, as
    Streamlit sizes a component's frame after drawing it; ``moved``: the user drags the map
    before that.
    """
    html, page = _map_html(n_layers), browser.new_page(viewport=first_px or MAP_PX)
    try:
        page.route("**/*", lambda route: _serve(route, html))
        page.goto("http://geomap.test/")
        if moved:
            _drag(page)
        if first_px:
            before = page.evaluate(_VIEW)
            page.set_viewport_size(MAP_PX)
            page.wait_for_timeout(500)  # Leaflet's resize handler is debounced
            return {**page.evaluate(_VIEW), "before": before}
        return page.evaluate(_VIEW)
    finally:
        page.close()


def _serve(route, html: str) -> None:
    """The page itself, and Leaflet's files from the package; nothing else."""
    url = route.request.url
    if url == "http://geomap.test/":
        route.fulfill(body=html, content_type="text/html")
    elif url.startswith("http://geomap.test/component/"):
        route.fulfill(path=mapview.LEAFLET_DIR / url.split("/", 5)[5])
    else:
        route.abort()


def _apart(a: list, b: list) -> bool:
    left, top, right, bottom = a
    return right <= b[0] or b[2] <= left or bottom <= b[1] or b[3] <= top


def test_the_scene_opens_as_large_as_it_fits_clear_of_the_layer_control(browser):
    """The room kept below the scene was reckoned from the count of layers: five (an open list
    178 px from the map's foot) kept 170 px of 620, six (folded into an icon 80 px from it)
    196 px, and the demo opened at zoom 11, half the size it takes left of the open list or
    above the icon."""
    for n_layers in (4, 5, 6):
        view = _first_view(browser, n_layers)
        assert view["zoom"] == 12, (n_layers, view)
        assert _apart(view["scene"], view["control"]), (n_layers, view)


def test_the_fit_follows_the_frame_until_the_user_moves_the_map(browser):
    """Fitted to the first, small frame only, the demo opened with half of it below the map's
    foot (user pass: the scene at 403-864 px of 620); once dragged, the user's view stays."""
    view = _first_view(browser, 5, first_px={"width": 697, "height": 150})
    assert view["zoom"] == 12, view
    assert _apart(view["scene"], view["control"]), view
    top, bottom = view["scene"][1], view["scene"][3]
    assert 0 <= top and bottom <= MAP_PX["height"], view
    dragged = _first_view(browser, 5, first_px={"width": 697, "height": 300}, moved=True)
    assert dragged["zoom"] == dragged["before"]["zoom"], dragged


def test_a_map_drawn_again_is_fitted_until_the_user_moves_it(browser):
    """A layer added to a map the user had not moved was drawn at the view the fit gave a
    smaller layer control, which then covered the scene's corner (user pass)."""
    small = _map_html(3)
    page = browser.new_page(viewport=MAP_PX)
    try:
        page.route("**/*", lambda route: _serve(route, small))
        page.goto("http://geomap.test/")
        first = page.evaluate(_VIEW)
        centre = page.evaluate("() => Object.values(window).find(v => v instanceof L.Map)"
                               ".getCenter()")  # fmt: skip
        kept = ((centre["lat"], centre["lng"]), first["zoom"])  # what the app keeps
        page.unroute("**/*")
        larger = _map_html(5, view=kept)
        page.route("**/*", lambda route: _serve(route, larger))
        page.goto("http://geomap.test/")
        again = page.evaluate(_VIEW)
        assert _apart(again["scene"], again["control"]), again
        assert again["scene"] != first["scene"]  # fitted anew, for the taller layer list
        _drag(page)  # the user's view from now on, in this tab
        page.goto("http://geomap.test/")
        page.wait_for_timeout(300)
        assert page.evaluate(_VIEW)["scene"] == first["scene"]  # at the view given, not fitted
    finally:
        page.close()


#: The map's zoom, read in its frame.
_ZOOM = "() => Object.values(window).find(v => v instanceof L.Map).getZoom()"


def _framed(browser):
    """A page of 1000 x 700 whose map frame (620 px tall) starts 300 px down: it does not fit.

    The map holds one observation, at the scene's centre (in the window).
    """
    m = mapview.offline_map(DEMO, None)
    centre = [(DEMO[0][1] + DEMO[1][1]) / 2, (DEMO[0][0] + DEMO[1][0]) / 2]  # lon, lat
    point = {"site": "obs 7", "label": "granite", "source": "field.gpkg"}
    feature = {
        "type": "Feature",
        "properties": point,
        "geometry": {"type": "Point", "coordinates": centre},
    }
    mapview.add_observations(m, {"type": "FeatureCollection", "features": [feature]}, {})
    map_html = m.get_root().render()
    frame = (
        '<html><body style="margin:0"><div style="height:300px"></div>'
        f'<iframe src="/map" width="{MAP_PX["width"]}" height="{MAP_PX["height"]}"></iframe>'
        '<div style="height:600px"></div></body></html>'
    )

    def serve(route) -> None:
        if route.request.url == "http://geomap.test/map":
            route.fulfill(body=map_html, content_type="text/html")
        else:
            _serve(route, frame)

    page = browser.new_page(viewport={"width": 1000, "height": 700})
    page.route("**/*", serve)
    page.goto("http://geomap.test/")
    page.frame_locator("iframe").locator("path.leaflet-interactive").wait_for()
    return page


def test_the_first_click_on_an_observation_opens_its_popup_when_the_map_does_not_fit(browser):
    """Leaflet focuses the map on the first press in it; in the app's frame that focus scrolled
    the page to show the whole map when it did not fit in the window, the press's release
    landed elsewhere and the first click on an observation opened nothing (user pass). The map
    still takes the keyboard: '+' zooms in."""
    page = _framed(browser)
    try:
        inner = page.frame_locator("iframe")
        box = inner.locator("path.leaflet-interactive").bounding_box()
        assert box["y"] + box["height"] < 700  # in the window; the map's foot is not (920 px)
        page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_timeout(500)
        assert page.evaluate("window.scrollY") == 0
        assert "granite" in inner.locator(".leaflet-popup-content").inner_text(timeout=2000)
        before = page.frames[1].evaluate(_ZOOM)
        page.keyboard.press("+")
        page.wait_for_timeout(500)
        assert page.frames[1].evaluate(_ZOOM) == before + 1
    finally:
        page.close()


def test_the_wheel_scrolls_the_page_over_the_map_until_the_map_is_clicked(browser):
    """Scrolled by the wheel, the page brought the map under the pointer, and from then on the
    wheel zoomed the map out to the whole world while the page stood still, its layer list out
    of reach (user pass). Clicked, the map zooms with the wheel; with Ctrl, at once."""
    page = _framed(browser)
    try:
        zoom = page.frames[1].evaluate(_ZOOM)
        page.mouse.move(500, 500)  # over the map
        for _ in range(3):
            page.mouse.wheel(0, 100)
            page.wait_for_timeout(300)
        assert page.evaluate("window.scrollY") >= 250
        assert page.frames[1].evaluate(_ZOOM) == zoom
        page.keyboard.down("Control")  # a touchpad's pinch comes as a wheel with Ctrl
        page.mouse.wheel(0, 100)
        page.keyboard.up("Control")
        page.wait_for_timeout(500)
        assert page.frames[1].evaluate(_ZOOM) < zoom
        zoom, scrolled = page.frames[1].evaluate(_ZOOM), page.evaluate("window.scrollY")
        page.mouse.click(500, 300)  # focuses the map (a spot of the scene with no marker)
        page.mouse.wheel(0, -100)
        page.wait_for_timeout(500)
        assert page.frames[1].evaluate(_ZOOM) > zoom
        assert page.evaluate("window.scrollY") == scrolled
    finally:
        page.close()
