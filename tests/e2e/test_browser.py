"""The app in a real headless Chromium with the network cut: demo -> train -> map -> export."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import rasterio
from playwright.sync_api import expect

from geomap.synthetic import make_scene
from geomap.workflow import RunConfig, run

CLASSES = ("alluvium", "basalt", "granite", "limestone", "sandstone", "shale")


def _go(page, name: str) -> None:
    page.get_by_role("link", name=name, exact=True).first.click()


def _map_frame(page):
    return page.frame_locator("iframe[title*='streamlit_folium']")


def _the_scene_opens_whole(page) -> None:
    """The first view shows the whole scene inside the map, clear of the layer control.

    Measured before Leaflet's style applied, the control lay below the map and half the demo
    opened below the map's foot (user pass: the scene at 403-864 px of 620).
    """
    page.wait_for_timeout(1500)  # the frame's height, then Leaflet's debounced resize
    boxes = (
        _map_frame(page)
        .locator(".leaflet-container")
        .evaluate(
            """m => [m, m.querySelector('img.leaflet-image-layer'),
                 m.querySelector('.leaflet-control-layers')].map(e => {
                     const r = e.getBoundingClientRect();
                     return [r.left, r.top, r.right, r.bottom];
                 })"""
        )
    )
    (left, top, right, bottom), scene, control = boxes
    assert left - 1 <= scene[0] and top - 1 <= scene[1], boxes
    assert scene[2] <= right + 1 and scene[3] <= bottom + 1, boxes
    clear = scene[2] <= control[0] or scene[3] <= control[1]
    assert clear, boxes


def _zoom_in_then_redraw_keeps_the_view(page) -> None:
    """Zoom in twice (quickly), move the opacity slider, then add a layer: each draws it anew.

    The map's scale bar tells the zoom: it must stay the zoomed-in one (no return to the whole
    survey after the redraw; no snapping back while zooming, which this catches only when the
    second click beats the first zoom's round trip to the server: the deterministic check is
    tests/app/test_session.py).
    """
    scale = _map_frame(page).locator(".leaflet-control-scale-line").first
    seen = [scale.inner_text()]
    for _ in range(2):
        _map_frame(page).locator(".leaflet-control-zoom-in").click()
        expect(scale).not_to_have_text(seen[-1])
        seen.append(scale.inner_text())
    page.wait_for_timeout(3000)  # the view reaches the server, which must not send it back
    whole, zoomed = seen[0], seen[-1]
    assert scale.inner_text() == zoomed, seen
    _redraw(page, "ArrowLeft")
    expect(_map_frame(page).locator("img.leaflet-image-layer").first).to_be_visible()
    page.wait_for_timeout(2000)
    assert scale.inner_text() == zoomed != whole, (whole, zoomed, scale.inner_text())
    page.get_by_role("combobox").first.click()  # a layer more: a taller layer control
    page.get_by_role("option", name="Missing inputs").click()
    page.keyboard.press("Escape")
    expect(
        page.locator(".geomap-legend, .geomap-colourbar").get_by_text("Missing inputs")
    ).to_be_visible()
    page.wait_for_timeout(3000)
    scale = _map_frame(page).locator(".leaflet-control-scale-line").first
    assert scale.inner_text() == zoomed, (whole, zoomed, scale.inner_text())  # not fitted anew


def _box(page, name: str):
    """The tick box of a layer in the map's layer control."""
    rows = _map_frame(page).locator(".leaflet-control-layers-overlays label")
    return rows.filter(has_text=name).locator("input")


def _redraw(page, key: str) -> None:
    """Move the opacity slider one step, which draws the map anew, and wait for the new map."""
    drawn = page.locator("iframe[title*='streamlit_folium']").element_handle()
    page.get_by_role("slider", name="Opacity").press(key)
    drawn.wait_for_element_state("hidden")  # the map is replaced
    expect(page.locator("iframe[title*='streamlit_folium']")).to_have_count(1)


def _choose(page, remove_last: bool = False, add: str | None = None) -> None:
    """Take the last layer out of the Layers box, or add one, and wait for the map drawn anew."""
    maps = page.locator("iframe[title*='streamlit_folium']")
    drawn = maps.element_handle()
    page.get_by_role("combobox").first.click()
    if remove_last:
        page.keyboard.press("Backspace")
    if add:
        page.get_by_role("option", name=add).click()
    page.keyboard.press("Escape")
    drawn.wait_for_element_state("hidden")  # the map is replaced; Streamlit may hold a second
    page.wait_for_timeout(1500)  # frame for an instant, which the frame locators cannot take
    expect(maps).to_have_count(1, timeout=20_000)  # a busy machine: longer than an instant


def _ticks_survive_a_redraw(page) -> None:
    """Untick the observations and tick the margin in the layer control, then move the opacity
    slider, which draws the map anew: the ticks stay as the user left them."""

    def box(name: str):
        return _box(page, name)

    expect(box("Uncertainty: margin")).not_to_be_checked()
    expect(box("Field observations")).to_be_checked()
    box("Uncertainty: margin").check()
    box("Field observations").uncheck()
    _redraw(page, "ArrowRight")
    expect(box("Uncertainty: margin")).to_be_checked()
    expect(box("Field observations")).not_to_be_checked()
    assert _map_frame(page).locator("img.leaflet-image-layer").count() == 2  # both rasters drawn
    box("Field observations").check()


def _an_added_layer_is_shown_and_then_kept_as_left(page) -> None:
    """'Missing inputs', just added in the Layers box, is ticked at once (it used to be drawn
    unticked until found in the layer control), beside the ticks the user set before; unticked,
    it stays so when the map is drawn anew."""
    images = _map_frame(page).locator("img.leaflet-image-layer")
    expect(_box(page, "Missing inputs")).to_be_checked()
    expect(_box(page, "Uncertainty: margin")).to_be_checked()  # ticked by the user earlier
    expect(_box(page, "Field observations")).to_be_checked()
    expect(images).to_have_count(3)
    _box(page, "Missing inputs").uncheck()
    _redraw(page, "ArrowRight")
    expect(_box(page, "Uncertainty: margin")).to_be_checked()
    expect(_box(page, "Missing inputs")).not_to_be_checked()
    expect(images).to_have_count(2)
    # choices whose map never reached the browser (picked again while it was read) leave no
    # memory of their own: the next one starts from the run's latest ticks, not from none
    forgotten = page.evaluate(
        """() => Object.keys(sessionStorage).filter(k => k.split(":").length > 3)
                .map(k => { sessionStorage.removeItem(k); return k; })"""
    )
    assert forgotten, "no tick memory kept in the tab"
    _choose(page, remove_last=True)  # 'Missing inputs' out (a longer list folds the control)
    _choose(page, add="Uncertainty: entropy")
    expect(_box(page, "Uncertainty: entropy")).to_be_checked()
    expect(_box(page, "Uncertainty: margin")).to_be_checked()
    expect(images).to_have_count(3)
    # the only raster shown taken out of the box: the first raster shows, not none
    _box(page, "Lithology").uncheck()
    _box(page, "Uncertainty: margin").uncheck()
    _choose(page, remove_last=True)
    expect(_box(page, "Lithology")).to_be_checked()
    expect(_box(page, "Uncertainty: margin")).not_to_be_checked()
    expect(images).to_have_count(1)
    _box(page, "Uncertainty: margin").check()


def _the_chosen_layers_wrap_inside_their_box(page) -> None:
    """With six layers chosen every tag of the Layers box lies inside the box and shows its
    whole name (Streamlit keeps the tags of a box in a column on one line that scrolls to the
    last one: 'Lithology' showed half its first letter)."""
    _choose(page, add="Expected accuracy")
    _choose(page, add="Uncertainty: entropy")
    layers = page.get_by_test_id("stMultiSelect").filter(has_text="Layers")
    tags = layers.locator("[data-tag]")
    expect(tags).to_have_count(6)
    box = layers.get_by_test_id("stMultiSelectTagsContainer")
    sideways = box.evaluate("b => [b.scrollLeft, b.scrollWidth - b.clientWidth]")
    edges = box.bounding_box()
    for tag in tags.all():
        at = tag.bounding_box()
        inside = (
            edges["x"] <= at["x"] and at["x"] + at["width"] <= edges["x"] + edges["width"] + 0.5
        )
        assert inside, (tag.inner_text(), at, edges, sideways)
        whole = tag.locator("span[title]").evaluate("s => s.scrollWidth <= s.clientWidth")
        assert whole, tag.inner_text()  # not cut short with an ellipsis
    assert sideways == [0, 0], sideways
    rows = {round(tag.bounding_box()["y"]) for tag in tags.all()}
    print("Layers box:", len(rows), "row(s) of tags")


#: The layer control's overlays that are shown, from the bottom of the drawing to its top: by
#: the stacking of Leaflet's panes, then of the elements in a pane, then by their place in it.
_DRAWN_BOTTOM_UP = """() => {
    const named = Object.keys(window).find(k => /^layer_control_.*_layers$/.test(k));
    const z = e => Number(getComputedStyle(e).zIndex) || 0;
    const element = layer => layer._image || Object.values(layer._layers)[0]._path.ownerSVGElement;
    const order = e => [z(e.parentElement), z(e), [...e.parentElement.children].indexOf(e)];
    const shown = Object.entries(window[named].overlays).filter(([, l]) => window.map.hasLayer(l));
    const keys = shown.map(([name, layer]) => [name, order(element(layer))]);
    const first = (a, b) => a.findIndex((v, i) => v !== b[i]);
    keys.sort((a, b) => { const i = first(a[1], b[1]); return i < 0 ? 0 : a[1][i] - b[1][i]; });
    return keys.map(k => k[0]);
}"""


def _layers_are_drawn_in_their_listed_order_whatever_the_ticking(page) -> None:
    """Rasters ticked in the layer control from the last listed to the first are drawn in the
    order listed, a lower one over those above it, as the legend says (Leaflet would put the
    one ticked last on top but for its layer control's z-index by place), and the points over
    every raster."""
    _map_frame(page).locator(".leaflet-control-layers").hover()  # six layers: it is folded
    rasters = ["Lithology", "Uncertainty: margin", "Expected accuracy", "Uncertainty: entropy"]
    for name in rasters:
        _box(page, name).uncheck()
    for name in reversed(rasters):
        _box(page, name).check()
    points = ["Field observations", "Observations to check"]
    drawn = _map_frame(page).locator("body").evaluate(_DRAWN_BOTTOM_UP)
    assert drawn[: len(rasters)] == rasters and sorted(drawn[len(rasters) :]) == points, drawn
    page.mouse.move(0, 0)


def test_demo_to_map_and_download_with_the_network_blocked(offline, tmp_path):
    page = offline.page
    timings = {}
    t0 = time.perf_counter()
    page.get_by_role("button", name="Open the demo scene").click()
    expect(page.get_by_text("Ready: go to")).to_be_visible()
    timings["demo"] = time.perf_counter() - t0

    _go(page, "Train")
    t0 = time.perf_counter()
    page.get_by_role("button", name="Train and map").click()
    expect(page.get_by_text("believe the spatial figure")).to_be_visible(timeout=300_000)
    timings["train"] = time.perf_counter() - t0
    expect(page.get_by_test_id("stDataFrame").first).to_be_visible()  # CV side by side

    _go(page, "Map")
    t0 = time.perf_counter()
    frame = _map_frame(page)
    expect(frame.locator("img.leaflet-image-layer").first).to_be_visible(timeout=120_000)
    loaded = "i => i.complete && i.naturalWidth > 0 && i.src.includes('/component/')"
    assert frame.locator("img.leaflet-image-layer").first.evaluate(loaded)  # served by the app
    expect(frame.locator(".leaflet-control-layers")).to_be_visible()
    expect(frame.locator("path.leaflet-interactive").first).to_be_attached()  # observations
    timings["map"] = time.perf_counter() - t0
    for name in CLASSES:
        expect(page.locator(".geomap-legend").get_by_text(name, exact=True)).to_be_visible()
    expect(page.locator(".geomap-colourbar")).to_be_visible()
    shot = tmp_path / "map.png"
    page.screenshot(path=shot, full_page=True)
    assert shot.stat().st_size > 20_000
    keep = os.environ.get("GEOMAP_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "map.png")

    _the_scene_opens_whole(page)
    _ticks_survive_a_redraw(page)
    _zoom_in_then_redraw_keeps_the_view(page)
    _an_added_layer_is_shown_and_then_kept_as_left(page)
    _the_chosen_layers_wrap_inside_their_box(page)
    _layers_are_drawn_in_their_listed_order_whatever_the_ticking(page)

    _go(page, "Export")
    with page.expect_download() as info:
        page.get_by_role("button", name="lithology.tif", exact=True).click()
    saved = tmp_path / "lithology.tif"
    info.value.save_as(saved)
    with rasterio.open(saved) as src:
        assert src.count == 1 and src.dtypes[0] == "uint8"
        assert re.search("granite", src.tags()["CLASS_NAMES"])
        assert src.colormap(1)[0][3] == 255
    print("demo flow seconds:", {k: round(v, 1) for k, v in timings.items()})

    assert re.search(r"[?&]session=[\w-]{16,}", page.url), page.url  # the address holds it
    page.reload()  # a new browser session under the same address: nothing is lost
    expect(page.get_by_role("button", name="lithology.tif", exact=True)).to_be_visible()
    _go(page, "Map")
    expect(_map_frame(page).locator("img.leaflet-image-layer").first).to_be_visible()
    assert offline.blocked == [], offline.blocked


def test_a_bad_upload_shows_a_message_naming_the_file(offline, tmp_path):
    page = offline.page
    bad = tmp_path / "field_photo.tif"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not a GeoTIFF at all")
    page.locator("input[type=file]").first.set_input_files(bad)
    alert = page.get_by_text(re.compile("Reading the inputs failed: Raster 'field_photo.tif'"))
    expect(alert).to_be_visible()
    assert "geomap-session" not in alert.inner_text()  # no private server paths
    assert offline.blocked == [], offline.blocked


def test_two_sessions_do_not_see_each_others_data(offline, new_session):
    offline.page.get_by_role("button", name="Open the demo scene").click()
    expect(offline.page.get_by_text("Ready: go to")).to_be_visible()
    other = new_session()
    expect(other.page.get_by_text("Open the demo scene, or upload")).to_be_visible()
    _go(other.page, "Map")
    expect(other.page.get_by_text("Train a model first")).to_be_visible()


def test_uploaded_rasters_and_csv_observations_are_ready_to_train(offline):
    page = offline.page
    demo = Path(__file__).resolve().parents[2] / "data_samples" / "demo"
    inputs = page.locator("input[type=file]")
    rasters = ("landsat.tif", "radiometrics.tif", "magnetics.tif")
    inputs.nth(0).set_input_files([demo / name for name in rasters])
    # as a user would: the next file once the page has read these (on a busy machine a file
    # given while the page redrew was not taken)
    expect(page.get_by_text("Rasters ready:")).to_be_visible()
    inputs.nth(1).set_input_files(demo / "field_points.csv")
    expect(page.get_by_text("Ready: go to")).to_be_visible()
    expect(page.get_by_text("Column holding the rock type")).to_be_visible()
    expect(page.get_by_text("EPSG:32633, 30 x 30 m per pixel")).to_be_visible()
    expect(page.get_by_text("Inputs: 3 raster(s) uploaded")).to_be_visible()

    # Streamlit empties upload boxes on another page: coming back keeps the files
    _go(page, "Train")
    page.get_by_role("slider", name="Trees in the forest").press("ArrowLeft")  # a quick one
    page.get_by_role("button", name="Train and map").click()
    expect(page.get_by_text("Cross-validating")).to_be_visible()
    sidebar = page.get_by_test_id("stSidebar").inner_text()  # now, while it trains
    assert "Inputs: 3 raster(s) uploaded" in sidebar, sidebar  # drawn before the page runs
    expect(page.get_by_text("believe the spatial figure")).to_be_visible(timeout=300_000)
    trees = page.get_by_role("slider", name="Trees in the forest")
    trees.press("ArrowLeft")  # 180 trees, set but not trained: kept through a visit to the map
    expect(trees).to_have_value("180")
    # a user's pause: the slider sends its value after a short delay, and a page left at once
    # went without it (CI on a busy machine: 200 again after the visit)
    page.wait_for_timeout(1500)
    _go(page, "Map")
    _go(page, "Train")
    expect(trees).to_have_value("180")
    _go(page, "Data")
    expect(page.get_by_text("Rasters uploaded earlier in this session, in use")).to_be_visible()
    expect(page.get_by_text("Observations in use: field_points.csv")).to_be_visible()
    expect(page.get_by_text("Ready: go to")).to_be_visible()

    # a raster forgotten at first is added to them; one of the same name replaces its namesake
    inputs.nth(0).set_input_files(demo / "dem.tif")
    expect(page.get_by_text("Inputs: 4 raster(s) uploaded")).to_be_visible()
    inputs.nth(0).set_input_files(demo / "landsat.tif")
    earlier = page.get_by_test_id("stMultiSelect")
    expect(earlier).not_to_contain_text("landsat.tif")  # it is in the box now
    expect(earlier).to_contain_text("radiometrics.tif")
    expect(page.get_by_text("Inputs: 4 raster(s) uploaded")).to_be_visible()
    expect(page.get_by_text("EPSG:32633, 30 x 30 m per pixel")).to_be_visible()  # not degrees
    page.get_by_role("button", name="Remove landsat.tif").click()  # the namesake is gone too
    expect(page.get_by_text("Inputs: 3 raster(s) uploaded")).to_be_visible()
    expect(page.get_by_text("EPSG:32633, 30 x 30 m per pixel")).to_be_visible()  # degrees last
    page.get_by_role("button", name="Forget them").click()
    expect(page.get_by_text("Inputs: 1 raster(s) uploaded")).to_be_visible()
    expect(page.get_by_text("Rasters ready")).to_be_visible()  # the observations forgotten too
    page.get_by_role("button", name="Remove dem.tif").click()
    expect(page.get_by_text("Upload at least one raster.")).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_text("Inputs:")).to_have_count(0)
    assert offline.blocked == [], offline.blocked


def test_removing_an_upload_with_its_x_forgets_it(offline):
    page = offline.page
    demo = Path(__file__).resolve().parents[2] / "data_samples" / "demo"
    inputs = page.locator("input[type=file]")
    inputs.nth(0).set_input_files(demo / "landsat.tif")
    inputs.nth(1).set_input_files(demo / "field_points.gpkg")
    expect(page.get_by_text("Ready: go to")).to_be_visible()
    page.get_by_role("button", name="Remove field_points.gpkg").click()
    expect(page.get_by_text(re.compile("Rasters ready"))).to_be_visible()
    expect(page.get_by_text("Ready: go to")).to_have_count(0)
    assert offline.blocked == [], offline.blocked


def test_a_model_file_uploaded_maps_the_next_sheet(offline, tmp_path):
    """The model upload box is one AppTest cannot fill: a real upload, a real map."""
    trained_on = make_scene(tmp_path / "sheet1", size=96, seed=3, n_points=60)
    run(
        RunConfig(
            rasters=list(trained_on.rasters),
            labels=trained_on.points_gpkg,
            label_column="lithology",
            out=tmp_path / "run",
            trees=10,
            cv_folds=2,
        )
    )
    sheet = make_scene(tmp_path / "sheet2", size=96, seed=4, n_points=20)
    page = offline.page
    page.locator("input[type=file]").nth(0).set_input_files(list(sheet.rasters))
    expect(page.get_by_text("or map them with a model trained earlier")).to_be_visible()
    _go(page, "Train")
    page.get_by_text("A model trained earlier, applied to these rasters").click()
    button = page.get_by_role("button", name="Map with this model")
    expect(button).to_be_disabled()  # no run of this session, no file yet
    page.locator("input[type=file]").set_input_files(tmp_path / "run" / "model.skops")
    expect(button).to_be_enabled()
    button.click()
    expect(page.get_by_text("Expected accuracy of the whole map")).to_be_visible(timeout=300_000)
    expect(page.get_by_text("an uploaded model applied to the rasters")).to_be_visible()
    _go(page, "Map")
    frame = _map_frame(page)
    expect(frame.locator("img.leaflet-image-layer").first).to_be_visible(timeout=120_000)
    with rasterio.open(tmp_path / "run" / "lithology.tif") as src:
        trained = json.loads(src.tags()["CLASS_NAMES"])  # the units the 60 points hold
    for name in trained:
        expect(page.locator(".geomap-legend").get_by_text(name, exact=True)).to_be_visible()
    _go(page, "Train")  # the box is empty again: the uploaded model stays in use
    expect(page.get_by_text("Model in use: model.skops")).to_be_visible()
    assert offline.blocked == [], offline.blocked
