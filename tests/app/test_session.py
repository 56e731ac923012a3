"""The per-session workspace: private, safe file names, removed with the session."""

from __future__ import annotations

import gc
import json
import zipfile

import session


def test_each_session_gets_its_own_folder_and_it_is_removed():
    a, b = session.Workspace(), session.Workspace()
    assert a.root != b.root and a.root.is_dir() and b.root.is_dir()
    path = a.save("rasters", "dem.tif", b"x")
    assert path.parent.parent.parent == a.root and not list(b.root.iterdir())
    root = a.root
    a.close()
    assert not root.exists() and b.root.exists()
    root_b = b.root
    del b
    gc.collect()
    assert not root_b.exists()


def test_uploaded_names_cannot_escape_the_workspace():
    ws = session.Workspace()
    try:
        for name in ("../../etc/passwd.tif", "..\\..\\evil.tif", "  spaced name (1).tif", ".."):
            path = ws.save("rasters", name, b"x")
            assert path.parent.parent == ws.root / "rasters"
            assert not path.name.startswith(".")
    finally:
        ws.close()
    assert session.safe_name("field sheet #3.gpkg") == "field sheet _3.gpkg"
    assert session.safe_name("carte géologique (2024).tif") == "carte géologique (2024).tif"
    assert session.safe_name(" .. :evil?.tif") == "_evil_.tif"


def test_a_namesake_with_other_bytes_does_not_change_the_file_in_use():
    """A corrected DEM, or one uploaded in a duplicated tab of the same session."""
    ws = session.Workspace()
    try:
        first = ws.save("rasters", "dem.tif", b"first")
        second = ws.save("rasters", "dem.tif", b"second")
        assert first != second and first.name == second.name == "dem.tif"
        assert first.read_bytes() == b"first" and second.read_bytes() == b"second"
        assert ws.save("rasters", "dem.tif", b"first") == first  # the same bytes: the same file
    finally:
        ws.close()


def test_zip_of_a_run_holds_every_file_and_is_made_once(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "lithology.tif").write_bytes(b"tif")
    (out / "report.json").write_text("{}")
    ws = session.Workspace()
    try:
        path = ws.zip_run(out, "abc")
        assert sorted(zipfile.ZipFile(path).namelist()) == ["lithology.tif", "report.json"]
        stamp = path.stat().st_mtime_ns
        assert ws.zip_run(out, "abc").stat().st_mtime_ns == stamp
    finally:
        ws.close()


def test_messages_name_uploaded_files_without_the_private_folder(tmp_path):
    root = tmp_path / "geomap-session-x"
    text = f"Raster '{root}/rasters/notes.tif': GDAL cannot read it ('{root}/rasters/notes.tif')."
    assert session.user_message(text, root) == (
        "Raster 'notes.tif': GDAL cannot read it ('notes.tif')."
    )
    ws = session.Workspace()
    try:
        saved = ws.save("rasters", "notes.tif", b"not a raster")  # under the bytes' hash
        said = session.user_message(f"Raster '{saved}': GDAL cannot read it.", ws.root)
        assert said == "Raster 'notes.tif': GDAL cannot read it."
    finally:
        ws.close()
    assert session.user_message(text, None) == text


def test_messages_name_the_apps_controls_not_command_line_options():
    text = session.user_message(
        "Labels 'a.csv': coordinates in columns 'x'/'y' have no stated CRS. Give it with "
        "--label-crs, e.g. --label-crs EPSG:32633. Or pick another --label-column.",
        None,
    )
    assert "--" not in text
    assert f"Give it in the box '{session.CRS_BOX}', e.g. EPSG:32633." in text
    assert "the box 'Column holding the rock type'" in text
    for core, app in [
        ("The columns are: a, b. Pass one of them with --label-column.",
         "The columns are: a, b. Choose one of them in 'Column holding the rock type'."),
        ("blank; pass the column that holds the classes with --label-column.",
         "blank; choose the column that holds the classes in 'Column holding the rock type'."),
        ("rock types or check --label-column.",
         "rock types or check the choice of 'Column holding the rock type'."),
        ("Name the layer (--label-layer on the command line), or",
         "Name the layer (in the box 'Layer holding the observations'), or"),
        ("and none of them have a column 'unit'. Name the sheet (--label-layer on the command "
         "line), or", "and none of them have a column 'unit'. Choose the sheet in the box 'Sheet "
         "holding the observations', or"),
        ("Labels 'obs.xlsx', sheet 'Day 2': 1 row has", "Field observations 'obs.xlsx', sheet "
         "'Day 2': 1 row has"),
        ("same zone, give it with --label-crs EPSG:26917.",
         f"same zone, enter EPSG:26917 in the box '{session.CRS_BOX}'."),
        ("a scene), pass --nodata 0 so those",
         f"a scene), enter 0 in the box '{session.NODATA_BOX}' so those"),
        ("(...). Give a GeoTIFF, JPEG2000, VRT or another format GDAL opens.",  # cannot upload
         "(...). Upload a GeoTIFF, JPEG2000 or another single-file format GDAL opens (a VRT "
         "only points to other files: save it as a GeoTIFF first, in QGIS with Export > Save "
         "As)."),
        ("(in QGIS: Raster > Miscellaneous > Merge; or gdalbuildvrt mosaic.vrt a.tif 'b c.tif', "
         "and give mosaic.vrt); else",
         "(in QGIS: Raster > Miscellaneous > Merge, then upload the merged GeoTIFF); else"),
        ("Give the CRS it is in with --crs (the map is then made in that CRS too), or export "
         "it with its CRS (...). Its corners (...) fall on 'K.ers' read in that raster's CRS, "
         "EPSG:28350 (MGA50): it is likely in that CRS, or another of the same zone; if so, "
         "--crs EPSG:28350.",
         "Export it with its CRS (...). Its corners (...) fall on 'K.ers' read in that raster's "
         "CRS, EPSG:28350 (MGA50): it is likely in that CRS, or another of the same zone; if so, "
         "export it with EPSG:28350 as its CRS."),
        ("If they are, but name their bands otherwise or not at all, give --same-order to take "
         "each for the training raster at its place in the list.",
         f"If they are, but name their bands otherwise or not at all, tick '{session.ORDER_BOX}' "
         "on the Train page to take each for the training raster at its place in the Data "
         "page's list."),
        ("--same-order takes each raster for the training raster at its place in the list: the",
         f"'{session.ORDER_BOX}' takes each raster for the training raster at its place in the "
         "Data page's list: the"),
        ("--same-order would take 'dem.tif' (elevation) for 'magnetics.tif' (tmi), yet ... Give "
         "them in the training order, or leave --same-order out to let the names order them.",
         f"'{session.ORDER_BOX}' would take 'dem.tif' (elevation) for 'magnetics.tif' (tmi), "
         f"yet ... Give them in the training order, or untick '{session.ORDER_BOX}' to let the "
         "names order them."),
    ]:  # fmt: skip
        assert session.user_message(core, None) == app


def test_the_class_column_guess_skips_the_geologists_name():
    assert session.guess_class_column(["obs_id", "geologist", "code"]) == "code"
    assert session.guess_class_column(["obs_id", "geologist"]) == "obs_id"  # refused, listed
    assert session.guess_class_column(["station", "geologist", "Gestein"]) == "Gestein"
    assert session.guess_class_column(["obs_id", "geologist", "LITH_CODE"]) == "LITH_CODE"
    assert session.guess_class_column(["Geologist", "Geology"]) == "Geology"
    assert session.guess_class_column(["unit_name", "Lithology"]) == "Lithology"


def test_a_run_made_from_other_inputs_is_flagged(tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "obs.gpkg"
    run = {
        "report": {
            "configuration": {
                "rasters": [str(a)],
                "labels": str(b),
                "label_column": "lithology",
                "legend": None,
            }
        }
    }
    same = session.Inputs(rasters=[a], labels=b, label_column="lithology")
    assert session.stale_note(run, same) is None
    layer = session.Inputs(rasters=[a], labels=b, label_column="lithology", label_layer="faults")
    assert "before the observations' layer changed" in session.stale_note(run, layer)
    crs = session.Inputs(rasters=[a], labels=b, label_column="lithology", label_crs="EPSG:4326")
    assert "before the observations' CRS changed" in session.stale_note(run, crs)
    column = session.Inputs(rasters=[a], labels=b, label_column="geologist")
    assert "class column changed" in session.stale_note(run, column)
    more = session.Inputs(rasters=[a, tmp_path / "dem.tif"], labels=b, label_column="lithology")
    assert "rasters changed" in session.stale_note(run, more)
    book = tmp_path / "book.ods"  # it said "the observations, legend changed"
    both = session.Inputs(rasters=[a], labels=book, legend=book, label_column="lithology")
    assert "before the observations and legend changed" in session.stale_note(run, both)
    more.labels, more.legend = book, book
    assert "the rasters, observations and legend changed" in session.stale_note(run, more)
    assert session.stale_note(run, more).endswith("; train again to map the new inputs.")
    applied = {**run, "params": {"model": "apply"}}  # a model mapped the rasters: no training
    said = session.stale_note(applied, more)
    assert said.endswith("; press Map with this model again to map the new inputs.")
    run["report"]["configuration"]["labels"] = None  # SOM clusters: observations do not matter
    assert session.stale_note(run, session.Inputs(rasters=[a])) is None
    own = session.Inputs(rasters=[a], raster_nodata={"a.tif": 0.0})
    assert "no-data value changed" in session.stale_note(run, own)
    run["report"]["configuration"]["raster_nodata"] = {"a.tif": 0.0}
    assert session.stale_note(run, own) is None
    a.write_bytes(b"raster")  # run_key reads the files' contents
    params = {"model": "rf"}
    assert session.run_key(own, params) != session.run_key(session.Inputs(rasters=[a]), params)


def test_a_redrawn_map_opens_where_the_user_left_it_and_a_shown_one_is_left_alone():
    import streamlit as st

    for key in ("map_view", "map_on_screen", "map_sent"):
        st.session_state.pop(key, None)
    assert session.map_view("run1", ("Lithology", 0.8)) == (None, None)  # first: whole survey
    session.remember_map_view("run1", {"zoom": 12})  # the component's default: no centre yet
    assert session.map_view("run1", ("Lithology", 0.7)) == (None, None)
    session.remember_map_view("run1", {"center": {"lat": -31.5, "lng": 116.2}, "zoom": 14})
    # the same map stays on screen: its view is the browser's, never sent back
    assert session.map_view("run1", ("Lithology", 0.7)) == (None, None)
    assert session.map_view("run1", ("Lithology", 0.6)) == ((-31.5, 116.2), 14)  # redrawn
    session.remember_map_view("run1", {"center": {"lat": -31.6, "lng": 116.3}, "zoom": 15})
    # still on screen: the view it was drawn with again (the same arguments: nothing moves;
    # none would draw it anew, fitted to the whole survey)
    assert session.map_view("run1", ("Lithology", 0.6)) == ((-31.5, 116.2), 14)
    session.map_left()  # another page, then back: drawn anew where it was left
    assert session.map_view("run1", ("Lithology", 0.6)) == ((-31.6, 116.3), 15)
    assert session.map_view("run2", ("Lithology", 0.8)) == (None, None)  # another run's area


def test_a_layer_added_to_the_map_is_shown_and_earlier_ticks_are_inherited():
    """A chosen layer used to be drawn unticked (only the first was shown) until ticked."""
    import streamlit as st

    st.session_state.pop("map_ticks", None)
    rasters = ["Lithology", "Uncertainty: margin", "Expected accuracy"]
    start = session.layer_ticks("run1", ["Lithology", "Field observations"], rasters)
    token = st.session_state.map_ticks["run1"]["token"]
    assert start == {
        "memory": f"geomap-ticks:run1:{token}:0",
        "latest": "geomap-ticks:run1",
        "moved": f"geomap-moved:run1:{token}",  # kept by the tab when the user moves the map
        "fresh": [],
        "shown": ["Lithology"],
    }
    # drawn again (opacity, basemap, zoom): the same memory, nothing forced
    assert session.layer_ticks("run1", ["Lithology", "Field observations"], rasters) == start
    added = session.layer_ticks(
        "run1", ["Lithology", "Field observations", "Expected accuracy"], rasters
    )
    assert added["memory"] == f"geomap-ticks:run1:{token}:1"
    assert added["fresh"] == ["Expected accuracy"]
    assert added["shown"] == ["Lithology", "Expected accuracy"]
    again = session.layer_ticks(
        "run1", ["Lithology", "Field observations", "Expected accuracy"], rasters
    )
    assert again == added  # the user may untick it now: the browser keeps that under memory 1
    # the first raster removed: the next one becomes first and is shown
    gone = session.layer_ticks("run1", ["Uncertainty: margin", "Expected accuracy"], rasters)
    assert gone["fresh"] == ["Uncertainty: margin"]
    assert gone["shown"] == ["Expected accuracy", "Uncertainty: margin"]
    other = session.layer_ticks("run2", ["Expected accuracy", "Lithology"], rasters)
    assert other["latest"] == "geomap-ticks:run2" and other["shown"] == ["Expected accuracy"]
    # back to the first run: its generations go on, never a memory left for other layers
    back = session.layer_ticks("run1", ["Lithology", "Expected accuracy"], rasters)
    assert back["memory"] == f"geomap-ticks:run1:{token}:3" and back["fresh"] == ["Lithology"]
    st.session_state.pop("map_ticks")  # a session begun anew in the same tab
    anew = session.layer_ticks("run1", ["Lithology"], rasters)["memory"]
    assert anew.startswith("geomap-ticks:run1:") and anew.endswith(":0") and token not in anew
    assert "map_ticks" in session._PERSISTED  # a reload goes on from the same memory


def test_the_nodata_advice_for_a_name_with_spaces_reads_as_one_entry():
    box = session.NODATA_BOX
    said = session.user_message("the edge), pass --nodata 'land sat.tif=0' so those", None)
    assert said == f"the edge), enter land sat.tif=0 in the box '{box}' so those"
    said = session.user_message("give it its own: --nodata 'my dem.tif=VALUE'.", None)
    assert said == f"give it its own: enter my dem.tif=VALUE in the box '{box}'."
    said = session.user_message("give it its own: --nodata dem.tif=VALUE.", None)
    assert said == f"give it its own: enter dem.tif=VALUE in the box '{box}'."


def test_the_nodata_examples_read_as_the_box_takes_them():
    said = session.user_message("another, e.g. --nodata 0 --nodata dem.tif=-32768.", None)
    assert said == "another, e.g. 0; dem.tif=-32768."
    said = session.user_message("(0.5), and each value as its own entry.", None)
    assert said == "(0.5), and separate the values with ';'."


def test_the_file_a_problem_names_is_not_taken_for_one_whose_name_ends_its_name(tmp_path):
    """'dem.tif' was named not usable for a message about 'srtm_dem.tif' (and the other way)."""
    dem, srtm = tmp_path / "dem.tif", tmp_path / "srtm_dem.tif"
    data = session.Inputs(rasters=[dem, srtm], labels=tmp_path / "field book.ods")
    data.problem = "Raster 'srtm_dem.tif': it is not georeferenced."
    assert session.problem_files(data) == ["srtm_dem.tif"]
    data.problem = f"Raster '{dem}': it is not georeferenced (read as 'dem.tif')."
    assert session.problem_files(data) == ["dem.tif"]
    data.problem = "Labels 'field book.ods', sheet '2024': 1 row has empty coordinates."
    assert session.problem_files(data) == ["field book.ods"]
    data.legend = data.labels  # the field book holds the legend too: named once
    assert session.problem_files(data) == ["field book.ods"]


def test_rasters_holding_the_same_bands_are_named_together():
    """L8_sheet2.tif uploaded after landsat.tif: both stayed in use, and mapping failed later
    on the wrong raster (user pass)."""
    optical = ("blue", "green", "red")
    notes = session.same_bands(
        [("landsat.tif", optical), ("dem.tif", ("elevation",)), ("L8_sheet2.tif", optical)]
    )
    assert notes == [
        "landsat.tif and L8_sheet2.tif hold the same bands (blue, green, red): they are taken "
        "as 2 scenes of one sensor, each with its own ratios and spectral screen. If one "
        "replaces another (the next sheet's), remove the one not wanted with its × in "
        "'Rasters uploaded earlier in this session, in use'."
    ]
    assert session.same_bands([("a.tif", optical), ("dem.tif", ("elevation",))]) == []


def test_a_runs_report_names_the_uploads_not_the_servers_folder():
    """report.json of an app run gave '/tmp/geomap-session-.../rasters/<hash>/dem.tif'."""
    ws = session.Workspace()
    try:
        dem = ws.save("rasters", "dem.tif", b"x")
        obs = ws.save("labels", "field points.gpkg", b"y")
        out = ws.run_dir("0123abcd")
        out.mkdir(parents=True)
        report = {"configuration": {"rasters": [str(dem)], "labels": str(obs), "out": str(out)}}
        report["sources"] = [{"path": str(dem)}, {"path": "/data/survey/dem.tif"}]
        windows = str(ws.root) + "\\masks\\0123456789abcdef\\QA_PIXEL.TIF"  # its separators
        report["masks"] = [{"path": windows}, {"path": f"/vsitar/{dem.parent}/scene.tar/B4.TIF"}]
        (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
        ws.tidy_report(out)
        tidy = json.loads((out / "report.json").read_text(encoding="utf-8"))
    finally:
        ws.close()
    assert tidy["configuration"] == {
        "rasters": ["dem.tif"],
        "labels": "field points.gpkg",
        "out": "geomap-0123abcd",
    }
    assert tidy["sources"] == [{"path": "dem.tif"}, {"path": "/data/survey/dem.tif"}]
    assert tidy["masks"] == [{"path": "QA_PIXEL.TIF"}, {"path": "/vsitar/scene.tar/B4.TIF"}]


def test_a_runs_description_names_a_polygon_draw_set_by_hand():
    """Two labelled SOM runs, 25,000 and 2,000 pixels per class, read alike in the run lists."""
    params = {"model": "som", "features": "default", "cv_folds": 5, "max_per_class": None}
    assert session.describe_params(params) == "labelled SOM, default features, 5 folds"
    params["max_per_class"] = 2000
    assert session.describe_params(params).endswith(", at most 2,000 polygon pixels per class")


def test_som_runs_of_other_cluster_counts_and_sizes_read_apart():
    """Three clusters runs were listed alike in the Train page's box of models (user pass)."""
    params = {"model": "som-clusters", "features": "default", "clusters": 5, "som_size": (8, 8)}
    assert (
        session.describe_params(params) == "SOM clusters, 5 clusters, 8 x 8 nodes, default features"
    )
    params.update(clusters=None, som_size=None)
    assert session.describe_params(params) == (
        "SOM clusters, clusters chosen from the data, default features"
    )
