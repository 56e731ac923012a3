"""Every page driven through Streamlit's AppTest: demo scene -> train -> map -> export."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.warp import calculate_default_transform, reproject
from streamlit.testing.v1 import AppTest

import session
from geomap import webmap
from geomap.apply import predict
from geomap.errors import ModelError
from geomap.synthetic import make_scene
from geomap.trust import reduced_input_words
from geomap.workflow import RunConfig, run

APP = Path(__file__).resolve().parents[2] / "app" / "streamlit_app.py"


def _errors(app) -> list[str]:
    return [e.value for e in app.error]


def _train_one(app) -> dict:
    """Train a small forest on the Data page's inputs; the session's only run."""
    app.switch_page("views/train.py").run()
    app.slider(key="trees").set_value(20)
    app.slider(key="cv_folds").set_value(3)
    app.button(key="train").click().run()
    assert not app.exception and not _errors(app)
    (run,) = app.session_state["runs"].values()
    return run


@pytest.fixture
def trained(app):
    """The app after opening the demo scene and training a small forest."""
    app.run()
    assert not app.exception
    app.button(key="open_demo").click().run()
    assert not app.exception and not _errors(app)
    app.switch_page("views/train.py").run()
    app.slider(key="trees").set_value(30)
    app.slider(key="cv_folds").set_value(3)
    app.button(key="train").click().run()
    assert not app.exception and not _errors(app)
    return app


def test_data_page_shows_grid_sources_and_samples(app):
    app.run()
    assert not app.exception
    assert not app.dataframe  # nothing chosen yet
    app.button(key="open_demo").click().run()
    assert not app.exception
    sources = app.dataframe[0].value
    assert list(sources["file"]) == list(session.DEMO_RASTERS)
    assert list(sources["CRS"])[1] == "EPSG:4326"  # the radiometrics come in lon/lat
    assert list(sources["resolution"])[:2] == ["30 m", "0.00118323 x 0.00080848 degrees"]
    samples = app.dataframe[1].value
    assert samples["samples"].sum() == 300 and len(samples) == 6
    assert any("EPSG:32633" in m.value for m in app.markdown)
    assert app.success[0].value.startswith("Ready")
    # the sidebar tells what the page chose in the same run, not one run late
    assert [c.value for c in app.sidebar.caption] == [
        "Inputs: 4 raster(s) from the demo scene; observations field_points.gpkg"
    ]


def test_the_data_page_says_polygon_samples_are_capped_pixels(app):
    """A legacy map's units showed 2000 samples each (the cap), read as counts of observations."""
    demo = session.demo_inputs()
    app.session_state["source"] = "upload"
    legacy = demo.labels.with_name("legacy_map.gpkg")
    app.session_state["kept_uploads"] = {"rasters": list(demo.rasters), "labels": legacy}
    app.run()
    assert not app.exception and not _errors(app)
    assert app.dataframe[1].value["samples"].sum() > 3000  # pixels, not the file's 4 polygons
    assert any(
        "A polygon's samples are its pixels" in c.value
        and "the random forest's draw, at most 2,000 per class; the labelled SOM draws up to 25,000"
        in c.value
        for c in app.caption
    )


def test_train_page_reports_both_cross_validations(trained):
    key = trained.session_state["current_run"]
    result = trained.session_state["runs"][key]
    table = trained.dataframe[0].value
    assert list(table.columns) == ["spatial CV", "random CV"]
    spatial = result["report"]["validation"]["spatial"]["overall_accuracy"]
    assert table.loc["overall accuracy", "spatial CV"] == pytest.approx(spatial)
    assert 0.5 < spatial <= 1.0
    assert any("believe the spatial figure" in m.value for m in trained.markdown)
    estimate = result["report"]["map_accuracy_estimate"]["overall_accuracy"]
    assert any(f"**{estimate:.2f}**" in i.value for i in trained.info)
    reduced = reduced_input_words(result["report"]["map_accuracy_estimate"])  # the cloud
    assert reduced and any(reduced in i.value for i in trained.info)
    assert result["report"]["configuration"]["trees"] == 30
    screened = result["report"]["prediction"]["screened_pixels"]
    assert result["report"]["configuration"]["spectral_screen"] is True and screened > 0
    assert any(f"{screened:,} of them where the optical" in c.value for c in trained.caption)
    checks = result["report"]["observations_to_check"]
    assert checks["n_listed"] > 0  # the demo's field points hold misidentified rocks
    shown = next(d.value for d in trained.dataframe if "mapped without it" in d.value.columns)
    assert len(shown) == checks["n_listed"]
    assert shown["observation"].iloc[0] == checks["first"][0]["site"]
    assert shown["observation"].str.startswith("obs_id ").all()


def test_the_spectral_screen_can_be_switched_off(trained):
    first = trained.session_state["current_run"]
    trained.checkbox(key="screen").uncheck()
    trained.button(key="train").click().run()
    assert not trained.exception and not _errors(trained)
    key = trained.session_state["current_run"]
    report = trained.session_state["runs"][key]["report"]
    assert key != first and report["spectral_screen"] is None
    assert report["prediction"]["screened_pixels"] == 0


def test_same_data_and_parameters_do_not_train_again(trained, monkeypatch):
    key = trained.session_state["current_run"]

    def must_not_run(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr("geomap.workflow.run", must_not_run)
    trained.button(key="train").click().run()
    assert not trained.exception and not _errors(trained)
    assert trained.session_state["current_run"] == key
    assert any("without training again" in i.value for i in trained.info)


def test_map_page_draws_layers_legend_and_probabilities(trained):
    trained.switch_page("views/map.py").run()
    assert not trained.exception and not _errors(trained)
    legend = " ".join(m.value for m in trained.markdown)
    for name in ("alluvium", "basalt", "granite", "limestone", "sandstone", "shale"):
        assert name in legend
    layers = trained.multiselect(key="map_layers")
    for title in (
        "Probability: basalt",
        "Uncertainty: entropy",
        "Expected accuracy",
        "Area of applicability",
        "Suggested field sites",
        "Observations to check",
    ):
        assert title in layers.options
    assert "Observations to check" in layers.value  # shown by default
    assert layers.proto.wrap  # in a column Streamlit scrolled the tags sideways, the first cut
    legend = " ".join(m.value for m in trained.markdown)
    assert "mapped as another unit without them" in legend and "Tick a layer on or off" in legend
    assert "a layer lower in the list is drawn over those above it" in legend
    layers.set_value(["Uncertainty: entropy", "Field observations"]).run()
    legend = " ".join(m.value for m in trained.markdown)
    assert "Field observations: units" in legend and "granite" in legend  # the dots' colours
    assert "Tick a layer" not in legend  # one raster: nothing to tick between
    layers.set_value(list(layers.options)).run()
    assert not trained.exception and not _errors(trained)
    assert "Field observations: units" not in " ".join(m.value for m in trained.markdown)
    trained.slider(key="opacity").set_value(0.4).run()
    trained.radio(key="basemap").set_value("OpenStreetMap (needs internet)").run()
    assert not trained.exception and not _errors(trained)


def test_export_page_offers_every_file_and_a_zip(trained):
    trained.switch_page("views/export.py").run()
    assert not trained.exception and not _errors(trained)
    out = trained.session_state["runs"][trained.session_state["current_run"]]["out"]
    files = sorted(p.name for p in out.iterdir())
    buttons = trained.get("download_button")
    assert len(buttons) == len(files) + 1
    assert not (out.parent.parent / "zips").exists()  # made only when asked for
    with rasterio.open(out / "lithology.tif") as src:
        assert "CLASS_NAMES" in src.tags() and src.colormap(1)
    # the report a user downloads names their files, not the server's temporary folder
    text = (out / "report.json").read_text(encoding="utf-8")
    assert str(out.parent.parent) not in text and "geomap-session-" not in text
    report = json.loads(text)
    assert report["configuration"]["out"] == f"geomap-{trained.session_state['current_run']}"


def test_the_results_say_which_run_and_model_they_come_from(trained):
    key = trained.session_state["current_run"]
    captions = [c.value for c in trained.caption]
    assert f"Results of run `{key}`: random forest, 30 trees, default features, 3 folds." in (
        captions
    )
    trained.radio(key="model").set_value("som-clusters").run()
    (note,) = [i.value for i in trained.info if i.value.startswith("Below: the last run")]
    assert note == "Below: the last run (random forest). Press Train and map for SOM clusters."
    trained.switch_page("views/export.py").run()
    assert f"Files of run `{key}`: random forest, 30 trees, default features, 3 folds." in [
        c.value for c in trained.caption
    ]


def test_pages_before_training_point_back(app):
    app.run()
    for page in ("views/train.py", "views/map.py", "views/export.py"):
        app.switch_page(page).run()
        assert not app.exception
        assert app.info, page


def test_a_training_stopped_by_leaving_the_page_is_reported_until_one_starts_again(app):
    """Said once, the Map page's own rerun took the warning away after a second."""
    app.session_state["training"] = "0123456789abcdef"  # begun, never finished
    app.run()
    assert any("The last training stopped before it finished" in w.value for w in app.warning)
    app.button(key="open_demo").click().run()
    app.switch_page("views/map.py").run()  # any rerun, any page
    assert any("The last training stopped before it finished" in w.value for w in app.warning)
    _train_one(app)
    assert not any("The last training stopped" in w.value for w in app.warning)


def test_the_map_says_when_the_data_page_changed_after_training(app):
    demo = session.demo_inputs()
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {"rasters": list(demo.rasters), "labels": demo.labels}
    app.run()
    _train_one(app)
    app.switch_page("views/map.py").run()
    assert not any("changed on the Data page" in i.value for i in app.info)
    app.switch_page("views/data.py").run()
    column = next(s for s in app.selectbox if s.label == "Column holding the rock type")
    assert column.value == "lithology"
    column.select("geologist").run()
    app.switch_page("views/map.py").run()
    assert any("class column changed on the Data page" in i.value for i in app.info)


def test_the_no_data_box_serves_rasters_that_do_not_declare_theirs(app, tmp_path):
    demo = session.demo_inputs()
    with rasterio.open(demo.rasters[0]) as src:
        profile, bands = src.profile, src.read()
    bands[:, :, :40] = 0  # the edge of a scene, 0 without a declared nodata
    profile.update(nodata=None)
    edge = tmp_path / "scene_edge.tif"
    with rasterio.open(edge, "w", **profile) as dst:
        dst.write(bands)
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {"rasters": [edge, *demo.rasters[1:]], "labels": None}
    app.run()
    hint = next(w.value for w in app.warning if "exactly 0" in w.value)
    assert f"enter 0 in the box '{session.NODATA_BOX}' so those" in hint
    app.text_input(key="nodata").input("0").run()
    assert not any("exactly 0" in w.value for w in app.warning)
    assert app.session_state["inputs"].nodata == 0.0
    assert app.dataframe[0].value["nodata"].tolist()[0] == 0.0
    app.text_input(key="nodata").input("zero").run()
    assert any("'zero' is not a number" in e.value for e in app.error)


def test_the_no_data_box_takes_a_value_per_raster(app, tmp_path):
    """A Landsat scene with 0 and a DEM with -32768 for no data, neither declared: one value
    could not serve both (a DEM at sea level holds real zeros)."""
    demo = session.demo_inputs()
    undeclared = []
    for path, fill in ((demo.rasters[0], 0), (demo.rasters[3], -32768)):
        with rasterio.open(path) as src:
            profile, bands = src.profile, src.read()
        bands[:, :40] = fill
        profile.update(nodata=None)
        undeclared.append(tmp_path / f"bare_{path.name}")
        with rasterio.open(undeclared[-1], "w", **profile) as dst:
            dst.write(bands)
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {
        "rasters": [*undeclared, *demo.rasters[1:3]],
        "labels": None,
    }
    app.run()
    hints = " ".join(w.value for w in app.warning)
    assert f"enter bare_landsat.tif=0 in the box '{session.NODATA_BOX}'" in hints
    assert f"enter bare_dem.tif=-32768 in the box '{session.NODATA_BOX}'" in hints
    app.text_input(key="nodata").input("bare_landsat.tif=0; bare_dem.tif=-32768").run()
    assert not app.warning and not app.error
    data = app.session_state["inputs"]
    assert data.nodata is None
    assert data.raster_nodata == {"bare_landsat.tif": 0.0, "bare_dem.tif": -32768.0}
    table = app.dataframe[0].value.set_index("file")["nodata"]
    assert table["bare_landsat.tif"] == 0.0 and table["bare_dem.tif"] == -32768.0
    app.text_input(key="nodata").input("bare_lansat.tif=0").run()
    assert any("no raster of that name" in e.value for e in app.error)


def test_the_data_page_lists_a_scenes_cloud_mask_apart_from_the_rasters(app, tmp_path):
    """A QA_PIXEL uploaded with its Landsat scene's band files is no raster of the map: the page
    says what it masks, in a table of its own."""
    demo = session.demo_inputs()
    scene = "LC09_L2SP_190026_20230612_20230614_02_T1"
    with rasterio.open(demo.rasters[0]) as src:
        profile, bands = src.profile, src.read()
    profile.update(count=1)
    uploads = []
    for number, band in zip((2, 4), bands[[0, 2]]):
        uploads.append(tmp_path / f"{scene}_SR_B{number}.TIF")
        with rasterio.open(uploads[-1], "w", **profile) as dst:
            dst.write(band, 1)
    flags = np.full(bands.shape[1:], 21824, "uint16")  # clear land
    flags[:50, :50] = 22280  # a cloud
    qa = tmp_path / f"{scene}_QA_PIXEL.TIF"
    with rasterio.open(qa, "w", **{**profile, "nodata": 1}) as dst:
        dst.write(flags, 1)
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {"rasters": [*uploads, qa, demo.rasters[2]], "labels": None}
    app.run()
    assert not app.exception and not _errors(app)
    assert list(app.dataframe[0].value["file"]) == [p.name for p in (*uploads, demo.rasters[2])]
    masks = app.dataframe[1].value
    assert masks.to_dict("records") == [
        {
            "file": qa.name,
            "layer": "Landsat Collection 2 QA_PIXEL",
            "flags": "fill, cloud, dilated cloud, cirrus, cloud shadow or snow",
            "masks": f"{uploads[0].name}, {uploads[1].name}",
        }
    ]
    assert any(h.value == "Cloud masks" for h in app.subheader)


def test_observations_uploaded_over_the_demo_say_the_demo_went(app):
    """The demo open, a user uploaded their observations: the page said only "Upload at least
    one raster", and the demo's rasters were gone without a word (user pass)."""
    app.run()
    app.button(key="open_demo").click().run()
    app.session_state["source"] = "upload"  # what the upload box's callback sets, and the flag
    app.session_state["left_demo"] = True
    app.session_state["kept_uploads"] = {"rasters": [], "labels": session.demo_inputs().labels}
    app.run()
    assert not app.exception
    (warning,) = [w.value for w in app.warning]
    assert warning.startswith("The demo scene is no longer in use: an upload replaced it")
    app.button(key="open_demo").click().run()  # back to the demo: no such warning later
    assert app.session_state["left_demo"] is False and not app.warning


def test_one_bad_raster_uploaded_earlier_can_be_removed_alone(app, tmp_path):
    demo = session.demo_inputs()
    photo = tmp_path / "outcrop_photo.tif"
    with rasterio.open(photo, "w", driver="PNG", width=8, height=8, count=1, dtype="uint8") as d:
        d.write(np.zeros((1, 8, 8), "uint8"))
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {
        "rasters": [*demo.rasters, photo],
        "labels": demo.labels,
    }
    app.run()
    assert any("outcrop_photo.tif': it is not georeferenced" in e.value for e in app.error)
    assert "Remove 'outcrop_photo.tif' with its × above to go on with the other rasters." in [
        c.value for c in app.caption
    ]
    # the sidebar does not call them usable inputs (it said "5 raster(s) uploaded")
    assert [c.value for c in app.sidebar.caption] == [
        "Inputs: 5 raster(s) uploaded; observations field_points.gpkg. "
        ":red['outcrop_photo.tif' is not usable as it is: see the Data page.]"
    ]
    box = app.multiselect(key="earlier_rasters")
    assert box.value == [p.name for p in [*demo.rasters, photo]]
    assert "Observations in use: field_points.gpkg (a new upload replaces it)." in (
        " ".join(c.value for c in app.caption)
    )
    box.set_value([n for n in box.value if n != "outcrop_photo.tif"]).run()
    assert not app.exception and not _errors(app)
    assert app.session_state["inputs"].rasters == session.projected_first(list(demo.rasters))
    assert app.session_state["inputs"].labels == demo.labels  # the rest stays
    assert [c.value for c in app.sidebar.caption] == [
        "Inputs: 4 raster(s) uploaded; observations field_points.gpkg"
    ]
    # the observations alone go (the next sheet's rasters, mapped with a model); "Forget them"
    # was the only way, and took the rasters too
    app.button(key="forget_labels").click().run()
    assert not app.exception and not _errors(app)
    assert app.session_state["inputs"].labels is None
    assert len(app.session_state["inputs"].rasters) == 4
    assert not [b for b in app.button if b.key == "forget_labels"]


def test_observations_the_data_page_refused_are_not_offered_for_training(app, tmp_path):
    demo = session.demo_inputs()
    stations = gpd.read_file(demo.labels)[["obs_id", "geologist", "geometry"]]
    stations.to_file(tmp_path / "stations.geojson")  # no rock column at all
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {
        "rasters": list(demo.rasters),
        "labels": tmp_path / "stations.geojson",
    }
    app.run()
    assert any("names each observation rather than its rock type" in e.value for e in app.error)
    app.switch_page("views/train.py").run()
    assert any(
        e.value.startswith("This model learns from observations, and the Data page could not")
        and "names each observation rather than its rock type" in e.value
        for e in app.error
    )
    assert not [b for b in app.button if b.key == "train"]


def test_a_libreoffice_field_book_is_read_and_a_broken_xls_named(app, tmp_path, write_ods):
    """The boxes refused both, and the browser said only that their MIME type was not allowed."""
    assert {"ods", "xls"} <= set(session.LABEL_TYPES) & set(session.LEGEND_TYPES)
    demo = session.demo_inputs()
    table = pd.read_csv(demo.labels.with_suffix(".csv"))
    rows = [["Field observations 2024"], list(table.columns), *table.itertuples(index=False)]
    book = write_ods(tmp_path / "field book.ods", {"Notes": [["by", "A. Smith"]], "2024": rows})
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {"rasters": list(demo.rasters), "labels": book}
    app.run()
    assert not app.exception and not _errors(app)
    assert app.selectbox(key="label_layer").value == "2024"  # the sheet with coordinates
    assert app.dataframe[1].value["samples"].sum() == 300
    sidebar = [c.value for c in app.sidebar.caption]
    assert sidebar == ["Inputs: 4 raster(s) uploaded; observations field book.ods (sheet 2024)"]
    old = tmp_path / "field book.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")  # cut short
    app.session_state["kept_uploads"]["labels"] = old
    app.run()
    assert not app.exception
    assert any(
        "field book.xls'" in e.value and "damaged or cut short" in e.value for e in app.error
    ), _errors(app)
    # the sidebar named the rasters as not usable ("4 raster(s) uploaded (not usable as ...)")
    assert [c.value for c in app.sidebar.caption] == [
        "Inputs: 4 raster(s) uploaded; observations field book.xls. "
        ":red['field book.xls' is not usable as it is: see the Data page.]"
    ]
    app.switch_page("views/train.py").run()  # the forest says why; the rasters can be clustered
    assert not app.exception
    assert any(
        e.value.startswith("This model learns from observations, and the Data page could not")
        and "field book.xls'" in e.value
        for e in app.error
    ), _errors(app)
    app.radio(key="model").set_value("som-clusters").run()
    assert not app.exception and not _errors(app)
    assert [b for b in app.button if b.key == "train"]


def _clusters_allowed_and_the_forest_told(app, name: str) -> None:
    """The Train page after the Data page could not read the observations or the legend."""
    app.switch_page("views/train.py").run()
    assert not app.exception
    assert any(
        e.value.startswith("This model learns from observations, and the Data page could not")
        and f"{name}'" in e.value
        for e in app.error
    ), _errors(app)
    assert "clusters (no observations needed)' can map the rasters without them." in " ".join(
        c.value for c in app.caption
    )
    app.radio(key="model").set_value("som-clusters").run()
    assert not app.exception and not _errors(app)
    assert [b for b in app.button if b.key == "train"]
    app.radio(key="model").set_value("rf")
    app.switch_page("views/data.py").run()


def test_a_damaged_field_book_or_legend_leaves_the_rasters_to_cluster(app, tmp_path, write_ods):
    """A damaged .ods's cover sheet was read as the observations ('no coordinate columns among
    ['by', 'A. Smith']'), and a legend that could not be read stopped every model (user pass).
    """
    demo = session.demo_inputs()
    table = pd.read_csv(demo.labels.with_suffix(".csv"))
    rows = [list(table.columns), *table.itertuples(index=False)]
    book = write_ods(tmp_path / "field book.ods", {"Notes": [["by", "A. Smith"]], "2024": rows})
    with zipfile.ZipFile(book) as archive:
        content = archive.read("content.xml").decode()
    cut = content.rindex("<table:table-row>")
    with zipfile.ZipFile(book, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content[:cut] + "<table:table-row<" + content[cut + 17 :])
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {"rasters": list(demo.rasters), "labels": book}
    app.run()
    assert not app.exception
    assert [e for e in _errors(app) if "cannot be read as an OpenDocument spreadsheet" in e]
    assert not [b for b in app.selectbox if b.key == "label_layer"]
    assert [c.value for c in app.sidebar.caption] == [
        "Inputs: 4 raster(s) uploaded; observations field book.ods. "
        ":red['field book.ods' is not usable as it is: see the Data page.]"
    ]
    _clusters_allowed_and_the_forest_told(app, "field book.ods")
    legend = tmp_path / "legend.xls"
    legend.write_bytes(b"\xd0\xcf\x11\xe0" + bytes(596))  # an .xls cut short
    app.session_state["kept_uploads"].update(labels=demo.labels, legend=legend)
    app.run()
    assert not app.exception
    said = [e for e in _errors(app) if e.startswith("Reading the legend failed: Legend '")]
    assert said and "legend.xls': the file cannot be read" in said[0] and "\\x" not in said[0]
    assert any("Rasters ready" in s.value for s in app.success)  # the rasters are described
    assert "observations field_points.gpkg; legend legend.xls" in app.sidebar.caption[0].value
    _clusters_allowed_and_the_forest_told(app, "legend.xls")


def test_observations_of_one_rock_type_are_refused_on_the_data_page(app, tmp_path):
    """The Data page said "Ready: go to Train" under a warning that one class cannot make a map;
    the training then failed (user pass).
    """
    demo = session.demo_inputs()
    frame = gpd.read_file(demo.labels)
    frame[frame["lithology"] == "sandstone"].to_file(tmp_path / "sandstone.gpkg")
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {
        "rasters": list(demo.rasters),
        "labels": tmp_path / "sandstone.gpkg",
    }
    app.run()
    assert not app.exception
    assert [e for e in _errors(app) if "every observation on the rasters is of one class" in e]
    assert not [s for s in app.success if "Ready" in s.value]
    assert not [w for w in app.warning if "['sandstone']" in w.value]
    _clusters_allowed_and_the_forest_told(app, "sandstone.gpkg")


def test_a_project_geopackage_asks_for_the_layer_of_the_observations(app, tmp_path):
    demo = session.demo_inputs()
    points = gpd.read_file(demo.labels)
    project = tmp_path / "project.gpkg"
    points.to_file(project, layer="season_2024")
    points.iloc[:50].to_file(project, layer="season_2023")
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {"rasters": list(demo.rasters), "labels": project}
    app.run()
    assert not app.exception and not _errors(app)
    layer = app.selectbox(key="label_layer")
    assert layer.options == ["season_2024", "season_2023"]
    assert app.dataframe[1].value["samples"].sum() == 300
    layer.select("season_2023").run()
    assert not app.exception and not _errors(app)
    assert app.dataframe[1].value["samples"].sum() == 50
    assert app.session_state["inputs"].label_layer == "season_2023"
    run = _train_one(app)
    assert run["report"]["configuration"]["label_layer"] == "season_2023"
    assert sum(run["report"]["samples"]["per_class"].values()) == 50
    app.switch_page("views/map.py").run()  # draws the observations of that layer
    assert not app.exception and not _errors(app)


def test_a_field_workbook_asks_for_its_sheet_and_maps(app, tmp_path):
    """Observations kept in Excel: a sheet per season, each below a title."""
    from openpyxl import Workbook

    demo = session.demo_inputs()
    table = pd.read_csv(demo.labels.with_suffix(".csv"))
    book = Workbook()
    book.remove(book.active)
    for season, rows in (("2024", table), ("2023", table.iloc[:50])):
        sheet = book.create_sheet(season)
        sheet.append([f"Field observations {season}"])
        sheet.append(list(rows.columns))
        for row in rows.itertuples(index=False):
            sheet.append(list(row))
    workbook = tmp_path / "field book.xlsx"
    book.save(workbook)
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {"rasters": list(demo.rasters), "labels": workbook}
    app.run()
    assert not app.exception and not _errors(app)
    sheet = app.selectbox(key="label_layer")
    assert sheet.label == "Sheet holding the observations"
    assert sheet.options == ["2024", "2023"]
    assert app.dataframe[1].value["samples"].sum() == 300
    sheet.select("2023").run()
    assert not app.exception and not _errors(app)
    assert app.dataframe[1].value["samples"].sum() == 50
    run = _train_one(app)
    assert sum(run["report"]["samples"]["per_class"].values()) == 50
    app.switch_page("views/map.py").run()  # draws the observations of that sheet
    assert not app.exception and not _errors(app)


def test_a_legend_names_and_colours_the_classes_from_data_page_to_map(app, tmp_path):
    demo = session.demo_inputs()
    legend = tmp_path / "legend.csv"
    legend.write_text(
        "code,name,colour\nshale,Shale unit,#102030\ngranite,Granite unit,#a0b0c0\n"
        "basalt,Basalt unit,\n"
    )
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {
        "rasters": list(demo.rasters),
        "labels": demo.labels,
        "legend": legend,
    }
    app.run()
    assert not app.exception and not _errors(app)
    classes = app.dataframe[1].value["class"].tolist()
    assert classes[:3] == ["Shale unit", "Granite unit", "Basalt unit"]
    assert any("legend.csv" in c.value for c in app.caption)  # kept upload, listed as in use
    assert any("not in the legend" in w.value for w in app.warning)  # alluvium, ...
    run = _train_one(app)
    assert run["report"]["legend"]["units"] == ["Shale unit", "Granite unit", "Basalt unit"]
    # the Data page's warnings are folded away on the Train page, not repeated above the figures
    (folded,) = [e for e in app.expander if e.label.endswith("as on the Data page")]
    assert any("not in the legend" in w.value for w in folded.warning)
    assert sum("not in the legend" in w.value for w in app.warning) == 1
    with rasterio.open(run["out"] / "lithology.tif") as src:
        assert src.colormap(1)[0][:3] == (0x10, 0x20, 0x30)
    app.switch_page("views/map.py").run()
    assert not app.exception and not _errors(app)
    legend_html = "".join(m.value for m in app.markdown)
    assert "Shale unit" in legend_html and "#102030" in legend_html


def test_a_bad_raster_shows_geomaps_message_and_the_session_goes_on(app, tmp_path):
    bad = tmp_path / "scan.tif"
    bad.write_bytes(b"this is a scanned field sheet, not a raster")
    demo = session.demo_inputs()
    app.session_state["inputs"] = session.Inputs(
        rasters=[bad], labels=demo.labels, label_column="lithology"
    )
    app.run()
    app.switch_page("views/train.py").run()
    app.button(key="train").click().run()
    assert not app.exception
    (message,) = _errors(app)
    assert "scan.tif" in message and message.startswith("Training failed")
    app.switch_page("views/data.py").run()
    assert not app.exception


def test_a_failed_run_says_the_results_below_are_the_last_runs_that_finished(trained, monkeypatch):
    """After a failed apply the Train page showed an earlier model's accuracy of 0.89 with
    nothing to say it was not the new model's (user pass)."""
    earlier = trained.session_state["current_run"]

    def failing(*args, **kwargs):
        raise ModelError("Training needs at least two classes")

    monkeypatch.setattr("geomap.workflow.run", failing)
    trained.slider(key="trees").set_value(40)  # another run, not the cached one
    trained.button(key="train").click().run()
    assert not trained.exception
    assert _errors(trained)[0].startswith("Training failed")
    assert trained.session_state["current_run"] == earlier
    (note,) = [i.value for i in trained.info if "did not finish" in i.value]
    assert note.endswith("below are the results of the last run that did.")
    trained.run()  # the next visit: no failure to speak of
    assert not [i for i in trained.info if "did not finish" in i.value]


def _training_fails_with(app, monkeypatch, error: BaseException) -> str:
    """Train the demo with a workflow that raises ``error``; the one error message shown."""

    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr("geomap.workflow.run", failing)
    app.session_state["inputs"] = session.demo_inputs()
    app.run()
    app.switch_page("views/train.py").run()
    app.button(key="train").click().run()
    assert not app.exception
    (message,) = _errors(app)
    return message


def test_an_unexpected_error_is_reported_as_a_bug_and_logged(app, monkeypatch, caplog):
    message = _training_fails_with(app, monkeypatch, ZeroDivisionError("a bug"))
    assert "bug in geomap" in message
    assert "ZeroDivisionError" in caplog.text


def test_running_out_of_memory_is_not_called_a_bug(app, monkeypatch):
    message = _training_fails_with(app, monkeypatch, MemoryError())
    assert "ran out of the server's memory" in message and "bug" not in message


def test_a_coarser_pixel_is_chosen_on_the_train_page(app):
    """The command line's --resolution: 10 m Sentinel-2 over a whole sheet was the app's only
    grid."""
    app.run()
    app.button(key="open_demo").click().run()
    assert any("a coarser pixel, or another raster" in m.value for m in app.markdown)
    app.switch_page("views/train.py").run()
    app.number_input(key="resolution").set_value(60.0)
    run = _train_one(app)
    assert run["params"]["resolution"] == 60.0
    assert session.describe_params(run["params"]).endswith("pixel size 60")
    assert run["report"]["grid"]["resolution"] == [60.0, 60.0]
    with rasterio.open(run["out"] / "lithology.tif") as src:
        assert src.res == (60.0, 60.0)


def test_the_maps_crs_is_chosen_among_the_rasters_projected_ones(app, tmp_path):
    """The command line's --crs: a DEM in the next UTM zone (or radiometrics in a national
    grid) could not give the map its CRS unless uploaded first; degrees are not offered."""
    demo = session.demo_inputs()
    dem = next(p for p in demo.rasters if p.name == "dem.tif")
    moved = tmp_path / "dem_utm34.tif"
    with rasterio.open(dem) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:32634", src.width, src.height, *src.bounds
        )
        profile = {**src.profile, "crs": "EPSG:32634", "transform": transform}
        with rasterio.open(moved, "w", **{**profile, "width": width, "height": height}) as dst:
            reproject(rasterio.band(src, 1), rasterio.band(dst, 1))
    app.session_state["source"] = "upload"
    rasters = [moved if p == dem else p for p in demo.rasters]
    app.session_state["kept_uploads"] = {"rasters": rasters, "labels": demo.labels}
    app.run()
    app.switch_page("views/train.py").run()
    box = app.selectbox(key="map_crs")
    assert box.options == [
        "EPSG:32633 (landsat.tif, magnetics.tif)",
        "EPSG:32634 (dem_utm34.tif)",
    ]  # radiometrics.tif, in degrees, is not offered
    box.set_value("EPSG:32634")
    run = _train_one(app)
    assert run["params"]["crs"] == "EPSG:32634"
    assert "map in EPSG:32634" in session.describe_params(run["params"])
    assert run["report"]["grid"]["crs"] == "EPSG:32634"
    with rasterio.open(run["out"] / "lithology.tif") as src:
        assert src.crs == "EPSG:32634"


@pytest.mark.parametrize("model", ["som-clusters", "som"])
def test_som_modes_train_and_map(app, model):
    app.run()
    app.button(key="open_demo").click().run()
    app.switch_page("views/train.py").run()
    app.radio(key="model").set_value(model).run()
    app.number_input(key="clusters").set_value(5)
    app.number_input(key="som_side").set_value(8)
    app.number_input(key="iterations").set_value(3000)
    folds = [s for s in app.slider if s.key == "cv_folds"]
    assert len(folds) == (model == "som")  # clusters are not cross-validated
    for slider in folds:
        slider.set_value(3)
    screens = [c for c in app.checkbox if c.key == "screen"]
    assert len(screens) == (model == "som")  # no observations to compare clusters with
    app.button(key="train").click().run()
    assert not app.exception and not _errors(app)
    report_key = app.session_state["current_run"]
    report = app.session_state["runs"][report_key]["report"]
    assert (report.get("spectral_screen") is not None) == (model == "som")
    assert report["som"]["clusters"]["n_clusters"] == 5 and report["som"]["shape"] == [8, 8]
    assert any("8 x 8 nodes trained on" in m.value for m in app.markdown)
    assert any("5 clusters (kmeans), as many as asked for." in m.value for m in app.markdown)
    (status,) = app.sidebar.caption  # one element: a second one was left behind when it went
    assert status.value.startswith("Inputs: 4 raster(s) from the demo scene; observations ")
    assert status.value.endswith(f"  \nMap: {session.MODEL_WORDS[model]}, run `{report_key}`")
    where = [m.value for m in app.markdown if m.value.startswith("Where the observations of")]
    assert len(where) == (model == "som-clusters")  # the clusters, found without them
    assert all("granite (" in w and "clusters_by_unit.csv" in w for w in where)
    assert all("once per pixel drawn, at most 2,000 per unit" in w for w in where)
    # U-matrix, hit map, component planes (and the confusion matrix when there are labels)
    assert len(app.get("image")) == 3 + (model == "som")
    assert ("validation" in report) == (model == "som")
    app.switch_page("views/map.py").run()
    assert not app.exception and not _errors(app)
    layers = app.multiselect(key="map_layers")
    assert "SOM clusters" in layers.value
    assert ("Expected accuracy" in layers.value) == (model == "som")  # not its weak margin
    assert "Uncertainty: margin" not in layers.value
    assert "Quantization error (percentile)" in layers.options
    assert ("Label distance" in layers.options) == (model == "som")
    legend = " ".join(m.value for m in app.markdown)
    assert "cluster 1" in legend
    # the demo's field points over the clusters too, each naming the cluster it lies in
    assert "Field observations" in layers.value
    assert ("the cluster it lies in" in legend) == (model == "som-clusters")
    if model == "som-clusters":
        data = app.session_state["inputs"]
        out = app.session_state["runs"][app.session_state["current_run"]]["out"]
        points = webmap.observations_geojson(
            data.labels, data.label_column, class_map=out / "clusters.tif"
        )
        mapped = {f["properties"]["mapped"] for f in points["features"]}
        assert {f"cluster {i}" for i in range(1, 6)} >= mapped and len(mapped) > 1
        # and the Train page said where each unit's observations lie
        assert (out / "clusters_by_unit.csv").exists()
        assert set(report["som"]["clusters"]["observed"]["units"]) == {
            f["properties"]["label"] for f in points["features"]
        }
    app.switch_page("views/export.py").run()
    captions = [c.value for c in app.caption]
    assert not [c for c in captions if c.startswith("(")]  # every file says what it holds
    shown = "lithology.tif" if model == "som" else "clusters.tif"
    assert any(c.startswith(f"Open {shown} in QGIS: it is styled with") for c in captions)
    assert any(f"{shown}.aux.xml lies beside it" in c for c in captions)


def _next_sheet(app, directory: Path, labels: Path | None = None) -> list[Path]:
    """Another scene's rasters (the same kinds, named as the demo's) on the Data page."""
    scene = make_scene(directory, size=96, seed=5, n_points=20)
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {"rasters": list(scene.rasters), "labels": labels}
    app.switch_page("views/data.py").run()
    assert not app.exception and not _errors(app)
    if labels is None:
        assert "or map them with a model trained earlier" in app.success[0].value
    return list(scene.rasters)


def test_a_forest_of_this_session_maps_the_next_sheet(trained, tmp_path):
    """Training on one sheet, then mapping the next in the browser: only the CLI could."""
    (forest,) = trained.session_state["runs"].values()
    rasters = _next_sheet(trained, tmp_path / "sheet", session.demo_inputs().labels)
    trained.switch_page("views/train.py").run()
    trained.radio(key="model").set_value("apply").run()
    assert not trained.slider  # nothing to train: no trees, no folds
    assert trained.selectbox(key="apply_from").value == forest["key"]
    captions = " ".join(c.value for c in trained.caption)
    assert (
        "Random forest: 6 units (alluvium, basalt, granite, limestone, sandstone, shale), "
        "trained on landsat.tif, radiometrics.tif, magnetics.tif, dem.tif." in captions
    )
    assert "The observations on the Data page are not used" in captions  # the demo's points
    trained.button(key="apply").click().run()
    assert not trained.exception and not _errors(trained)
    run = trained.session_state["runs"][trained.session_state["current_run"]]
    assert run["params"]["model"] == "apply" and run["key"] != forest["key"]
    assert f"Results of run `{run['key']}`: run {forest['key']}'s model applied to the " in (
        " ".join(c.value for c in trained.caption)
    )
    info = " ".join(i.value for i in trained.info)
    assert "Expected accuracy of the whole map" in info and "suggested field sites" not in info
    assert any(m.value.startswith("At training: Random (") for m in trained.markdown)
    (units,) = [d.value for d in trained.dataframe if "share of this map" in d.value]
    assert list(units.columns) == [
        "share of this map",
        "share of the training map",
        "times the training share",
        "expected accuracy",
        "training samples",
    ]
    change = units["share of this map"] / units["share of the training map"]
    assert np.allclose(units["times the training share"], change, equal_nan=True)
    assert units["share of this map"].sum() == pytest.approx(1)
    assert units["share of the training map"].sum() == pytest.approx(1, abs=1e-4)
    assert units["training samples"].sum() == 300
    assert trained.selectbox(key="apply_from").options == [  # not the run that applied it
        f"Run {forest['key']} of this session: {session.describe_params(forest['params'])}",
        "A model file (model.skops) to upload",
    ]
    # the same maps as `geomap predict` with the model and the rasters
    predict(forest["out"] / "model.skops", rasters, tmp_path / "cli")
    for name in ("lithology.tif", "expected_accuracy.tif"):
        with rasterio.open(run["out"] / name) as a, rasterio.open(tmp_path / "cli" / name) as b:
            assert np.array_equal(a.read(), b.read(), equal_nan=True)
    assert "geomap-session-" not in (run["out"] / "report.json").read_text(encoding="utf-8")
    trained.switch_page("views/map.py").run()
    assert not trained.exception and not _errors(trained)
    layers = trained.multiselect(key="map_layers")
    assert "Lithology" in layers.value and "Field observations" not in layers.options
    assert "The Data page's observations are not shown: this map applies a model" in " ".join(
        c.value for c in trained.caption
    )
    trained.switch_page("views/export.py").run()
    assert not trained.exception and not _errors(trained)


def test_a_renamed_raster_beside_its_namesake_kind_is_told(app, tmp_path):
    """The next sheet's Landsat as L8_sheet2.tif beside the first sheet's landsat.tif: both in
    use, five rasters, and the Data page said Ready (user pass)."""
    scene = make_scene(tmp_path / "sheet", size=96, seed=5, n_points=20)
    renamed = scene.rasters[0].with_name("L8_sheet2.tif")
    scene.rasters[0].rename(renamed)
    app.session_state["source"] = "upload"
    demo = list(session.demo_inputs().rasters)
    app.session_state["kept_uploads"] = {"rasters": [*demo, renamed], "labels": None}
    app.run()
    assert not app.exception and not _errors(app)
    (told,) = [w.value for w in app.warning if "hold the same bands" in w.value]
    assert told.startswith("landsat.tif and L8_sheet2.tif hold the same bands (blue, green")


def test_an_uploaded_model_maps_and_a_bad_one_is_named(app, tmp_path):
    app.run()
    rasters = _next_sheet(app, tmp_path / "sheet")
    config = RunConfig(
        rasters=session.projected_first(rasters),  # as the Data page lists them
        labels=rasters[0].with_name("field_points.gpkg"),
        label_column="lithology",
        out=tmp_path / "run",
        trees=10,
        cv_folds=2,
    )
    run(config)
    app.session_state["uploaded_model"] = tmp_path / "run" / "model.skops"
    app.switch_page("views/train.py").run()
    app.radio(key="model").set_value("apply").run()
    assert app.selectbox(key="apply_from").value == "upload"  # no run of this session to offer
    assert "Model in use: model.skops" in " ".join(c.value for c in app.caption)
    app.checkbox(key="same_order").check()
    app.button(key="apply").click().run()
    assert not app.exception and not _errors(app)
    warnings = " ".join(w.value for w in app.warning)
    assert "'Take the rasters in the order the model was trained on': each raster was" in warnings
    bad = tmp_path / "model.skops"
    bad.write_bytes(b"not a model")
    app.session_state["uploaded_model"] = bad
    app.run()  # said as the file comes, before any button
    assert not app.exception
    (error,) = _errors(app)
    assert error.startswith("Reading the model failed: Model '") and (
        "model.skops' is not a geomap model bundle: it is not even a skops file" in error
    )
    assert app.button(key="apply").disabled


def _train_small_som(app, model: str, clusters: int | None = None) -> None:
    """Train a 6 x 6 SOM of the kind given on the Data page's inputs."""
    app.switch_page("views/train.py").run()
    app.radio(key="model").set_value(model).run()
    if clusters:
        app.number_input(key="clusters").set_value(clusters)
    app.number_input(key="som_side").set_value(6)
    app.number_input(key="iterations").set_value(2000)
    app.button(key="train").click().run()


def test_som_clusters_of_one_sheet_map_the_next(app, tmp_path):
    app.run()
    app.button(key="open_demo").click().run()
    _train_small_som(app, "som-clusters", clusters=4)
    (clusters,) = app.session_state["runs"].values()
    _next_sheet(app, tmp_path / "sheet")
    app.switch_page("views/train.py").run()
    app.radio(key="model").set_value("apply").run()
    assert any(c.value.startswith("SOM clusters: 4 clusters (cluster 1, ") for c in app.caption)
    app.button(key="apply").click().run()
    assert not app.exception and not _errors(app)
    run = app.session_state["runs"][app.session_state["current_run"]]
    assert (
        run["key"] != clusters["key"] and run["report"]["configuration"]["model"] == "som-clusters"
    )
    (units,) = [d.value for d in app.dataframe if "share of this map" in d.value]
    assert list(units.index) == [f"cluster {i}" for i in range(1, 5)]
    app.switch_page("views/map.py").run()
    assert not app.exception and not _errors(app)
    assert app.multiselect(key="map_layers").value == ["SOM clusters"]


def test_the_map_of_another_kind_of_run_shows_its_own_layers(trained):
    """Layers kept from a forest's map: a SOM clusters run offers none of most of them."""
    trained.switch_page("views/map.py").run()
    assert "Lithology" in trained.multiselect(key="map_layers").value
    _train_small_som(trained, "som-clusters", clusters=4)
    trained.switch_page("views/map.py").run()
    assert not trained.exception and not _errors(trained) and not trained.warning
    assert trained.multiselect(key="map_layers").value[0] == "SOM clusters"
    trained.multiselect(key="map_layers").set_value([]).run()  # cleared on purpose: stays so
    assert trained.multiselect(key="map_layers").value == []
    assert any("Choose a layer" in i.value for i in trained.info)
    # the model to apply is the one trained last (the oldest run was offered first)
    trained.switch_page("views/train.py").run()
    trained.radio(key="model").set_value("apply").run()
    assert trained.selectbox(key="apply_from").value == trained.session_state["current_run"]


def test_a_labelled_soms_map_after_a_forests_opens_with_its_own_defaults(trained):
    """The forest's default layers, never touched, were carried over as if chosen: the SOM's map
    opened with Lithology and its weak margin only (user pass)."""
    trained.switch_page("views/map.py").run()
    assert "Uncertainty: margin" in trained.multiselect(key="map_layers").value
    _train_small_som(trained, "som")
    trained.switch_page("views/map.py").run()
    assert not trained.exception and not _errors(trained)
    assert trained.multiselect(key="map_layers").value == [
        "Lithology",
        "SOM clusters",
        "Expected accuracy",
        "Field observations",
    ]
    trained.multiselect(key="map_layers").set_value(["Lithology", "Label distance"]).run()
    trained.switch_page("views/train.py").run()
    trained.radio(key="model").set_value("rf").run()
    trained.button(key="train").click().run()  # the forest again: an earlier run, shown
    trained.switch_page("views/map.py").run()
    assert trained.multiselect(key="map_layers").value == ["Lithology"]  # the user's, kept


def test_the_demo_sets_the_uploads_aside_and_gives_them_back(app):
    demo = session.demo_inputs()
    uploads = {"rasters": list(demo.rasters[:2]), "labels": demo.labels}
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = uploads
    app.run()
    assert len(app.session_state["inputs"].rasters) == 2
    app.button(key="open_demo").click().run()
    assert len(app.session_state["inputs"].rasters) == 4
    assert any("not the files you uploaded; they are kept" in i.value for i in app.info)
    app.button(key="use_uploads").click().run()
    assert not app.exception and app.session_state["source"] == "upload"
    assert len(app.session_state["inputs"].rasters) == 2


def test_choices_survive_a_visit_to_other_pages(app):
    demo = session.demo_inputs()
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {"rasters": list(demo.rasters), "labels": demo.labels}
    app.run()
    app.text_input(key="nodata").input("7").run()
    app.text_input(key="label_crs").input("EPSG:32633").run()
    next(s for s in app.selectbox if s.label == session.COLUMN_BOX).select("geologist").run()
    app.switch_page("views/train.py").run()
    app.radio(key="model").set_value("som").run()
    app.switch_page("views/map.py").run()
    app.switch_page("views/data.py").run()  # Streamlit forgets a left page's widgets
    assert app.text_input(key="nodata").value == "7"
    assert app.text_input(key="label_crs").value == "EPSG:32633"
    assert next(s for s in app.selectbox if s.label == session.COLUMN_BOX).value == "geologist"
    data = app.session_state["inputs"]
    assert (data.nodata, data.label_crs, data.label_column) == (7.0, "EPSG:32633", "geologist")
    app.switch_page("views/train.py").run()
    assert app.radio(key="model").value == "som"
    assert not app.exception and not app.warning


def test_a_csv_of_eastings_without_a_crs_is_told_the_rasters_crs(app, tmp_path):
    """The CSV's columns were read with its coordinates, before the rasters' grid was known:
    the app said "e.g. EPSG:32633" whatever the rasters' CRS."""
    demo = session.demo_inputs()
    points = gpd.read_file(demo.labels).to_crs("EPSG:32633")
    csv = tmp_path / "traverse.csv"
    pd.DataFrame(
        {"easting": points.geometry.x, "northing": points.geometry.y, "rock": points["lithology"]}
    ).to_csv(csv, index=False)
    app.session_state["source"] = "upload"
    app.session_state["kept_uploads"] = {"rasters": list(demo.rasters), "labels": csv}
    app.run()
    assert next(s for s in app.selectbox if s.label == session.COLUMN_BOX).options == ["rock"]
    (error,) = _errors(app)
    assert "They fall on the rasters' grid read in its CRS, EPSG:32633" in error
    assert f"enter EPSG:32633 in the box '{session.CRS_BOX}'" in error
    app.text_input(key="label_crs").input("EPSG:32633").run()
    assert not _errors(app) and app.success[0].value.startswith("Ready")


def _reloaded(app) -> AppTest:
    """The app as a reload of ``app``'s address finds it: a new browser session, same token."""
    again = AppTest.from_file(str(APP), default_timeout=300)
    again.query_params["session"] = app.session_state["token"]
    again.run()
    assert not again.exception
    return again


def test_settings_made_before_the_first_training_survive_a_reload(app):
    """The Train page stops early until a run exists: it still keeps its settings."""
    app.run()
    app.button(key="open_demo").click().run()
    app.switch_page("views/train.py").run()
    app.slider(key="trees").set_value(50).run()
    app.selectbox(key="features").select("raw").run()
    again = _reloaded(app)
    again.switch_page("views/train.py").run()
    assert again.slider(key="trees").value == 50 and again.selectbox(key="features").value == "raw"


def test_a_reload_during_training_says_the_training_stopped(app, monkeypatch):
    """A reload stops the page that trains (Streamlit stops it as below); the new page says so."""
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException

    def stopped(*args, **kwargs):
        raise StopException()

    monkeypatch.setattr("geomap.workflow.run", stopped)
    app.run()
    app.button(key="open_demo").click().run()
    app.switch_page("views/train.py").run()
    app.button(key="train").click().run()
    assert "runs" not in app.session_state or not app.session_state["runs"]
    again = _reloaded(app)
    assert any("The last training stopped before it finished" in w.value for w in again.warning)


def test_a_reloaded_page_finds_its_uploads_runs_and_choices(trained):
    token = trained.session_state["token"]
    assert trained.query_params["session"] == token  # in the address
    first = trained.session_state["current_run"]
    trained.switch_page("views/map.py").run()
    trained.slider(key="opacity").set_value(0.3).run()
    reloaded = AppTest.from_file(str(APP), default_timeout=300)
    reloaded.query_params["session"] = token  # the same address, a new browser session
    reloaded.run()
    assert not reloaded.exception
    assert reloaded.session_state["token"] == token
    assert reloaded.session_state["current_run"] == first
    reloaded.switch_page("views/map.py").run()
    assert not reloaded.exception and not _errors(reloaded)
    assert reloaded.slider(key="opacity").value == 0.3
    assert not any("Train a model first" in i.value for i in reloaded.info)
    reloaded.session_state["runs"].clear()  # a duplicated tab's changes stay its own
    assert first in trained.session_state["runs"]
    stranger = AppTest.from_file(str(APP), default_timeout=300)
    stranger.query_params["session"] = "not-a-session"
    stranger.run()
    assert stranger.session_state["token"] not in (token, "not-a-session")
    assert "runs" not in stranger.session_state
    assert any("session is no longer on the server" in i.value for i in stranger.info)
    stranger.run()
    assert not any("no longer on the server" in i.value for i in stranger.info)  # said once
