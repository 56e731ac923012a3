"""The geomap command: help, a run, one test per bad input (message, exit 2, nothing written)."""

import json
import logging
import re
import subprocess
import sys

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from affine import Affine
from shapely.geometry import Point

from geomap.cli import main

X0, Y0 = 500000.0, 5200000.0


@pytest.fixture
def scene(raster_factory, tmp_path):
    """Two small rasters and 60 observations of three classes in a GeoPackage."""
    rng = np.random.default_rng(0)
    truth = (np.arange(60)[None, :] // 20).repeat(60, axis=0)  # three vertical bands
    bands = np.stack(
        [truth * 10 + rng.normal(0, 3, truth.shape), truth * -5 + rng.normal(0, 3, truth.shape)]
    )
    a = raster_factory("sat.tif", bands.astype("float32"), descriptions=["red", "nir"])
    b = raster_factory("mag.tif", (truth * 2.0 + rng.normal(0, 1, truth.shape)).astype("float32"))
    r, c = rng.integers(0, 60, 60), rng.integers(0, 60, 60)
    names = np.array(["granite", "basalt", "shale"])[truth[r, c]]
    pts = gpd.GeoDataFrame(
        {"lithology": names},
        geometry=[Point(X0 + 30 * cc + 15, Y0 - 30 * rr - 15) for rr, cc in zip(r, c)],
        crs="EPSG:32633",
    )
    labels = tmp_path / "obs.gpkg"
    pts.to_file(labels)
    return {"rasters": [a, b], "labels": labels, "points": pts, "tmp": tmp_path}


def args(scene, out=None, labels=None, column="lithology", rasters=None, extra=()):
    argv = [
        "run",
        "--labels",
        str(labels or scene["labels"]),
        "--label-column",
        column,
        "--out",
        str(out or scene["tmp"] / "out"),
        "--trees",
        "10",
        "--quiet",
        *extra,
    ]
    for r in rasters or scene["rasters"]:
        argv += ["--raster", str(r)]
    return argv


def fails(capsys, argv, *phrases, out=None):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and "Warning" not in err
    for phrase in phrases:
        assert phrase in err, err
    if out is not None:
        assert not out.exists()
    return err


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--raster",
        "--labels",
        "--label-column",
        "--out",
        "--model",
        "--trees",
        "--random-state",
        "--crs",
        "--resolution",
        "--block-size",
        "--cv-folds",
        "--features",
        "--label-crs",
        "--label-layer",
        "--legend",
        "--quiet",
        "--overwrite",
        "--smooth",
        "--nodata",
        "--som-size",
        "--iterations",
        "--sigma",
        "--learning-rate",
        "--clusters",
        "--cluster-method",
        "--som-samples",
    ):
        assert option in text
    assert (
        subprocess.run(
            [sys.executable, "-m", "geomap.cli", "--help"], capture_output=True
        ).returncode
        == 0
    )


def test_a_run_and_a_predict(scene, capsys):
    out = scene["tmp"] / "out"
    assert main(args(scene)) == 0
    assert (out / "lithology.tif").exists()
    again = scene["tmp"] / "again"
    argv = ["predict", "--model", str(out / "model.skops"), "--out", str(again)]
    for r in scene["rasters"]:
        argv += ["--raster", str(r)]
    capsys.readouterr()
    assert main(argv) == 0
    assert (again / "lithology.tif").exists()
    assert "at training: " in capsys.readouterr().err
    config = json.loads((again / "report.json").read_text())["configuration"]
    assert config["rasters"] == [str(r) for r in scene["rasters"]]  # as given, to repeat it
    assert config["model_file"] == str(out / "model.skops") and config["same_order"] is False
    assert config["model"] == "rf"  # report.html names the kind of model
    assert main([*argv, "--same-order", "--overwrite"]) == 0  # as given: told so
    assert "--same-order: each raster was taken for the training" in capsys.readouterr().err
    sites = ["suggest", *argv[1:3], *argv[5:], "--out", str(scene["tmp"] / "s.gpkg"), "--n", "3"]
    assert main([*sites, "--same-order"]) == 0 and (scene["tmp"] / "s.gpkg").exists()


def test_not_a_raster(scene, capsys):
    bad = scene["tmp"] / "photo.tif"
    bad.write_bytes(b"\x89PNG not really")
    out = scene["tmp"] / "o"
    fails(
        capsys,
        args(scene, out=out, rasters=[bad]),
        "photo.tif",
        "cannot read it as a raster",
        out=out,
    )


def test_truncated_raster(scene, capsys, raster_factory):
    p = raster_factory("cut.tif", np.random.default_rng(0).random((300, 300)).astype("float32"))
    p.write_bytes(p.read_bytes()[:20000])
    out = scene["tmp"] / "o"
    fails(capsys, args(scene, out=out, rasters=[p]), "cut.tif", "truncated", out=out)


def test_raster_without_crs(scene, capsys, raster_factory):
    p = raster_factory("nocrs.tif", np.ones((10, 10), "float32"), crs=None)
    out = scene["tmp"] / "o"
    fails(
        capsys,
        args(scene, out=out, rasters=[p]),
        "nocrs.tif",
        "no coordinate reference system",
        out=out,
    )


def test_missing_raster(scene, capsys):
    out = scene["tmp"] / "o"
    fails(
        capsys,
        args(scene, out=out, rasters=[scene["tmp"] / "gone.tif"]),
        "gone.tif",
        "does not exist",
        out=out,
    )


def test_rasters_that_do_not_overlap(scene, capsys, raster_factory):
    far = raster_factory(
        "far.tif", np.ones((10, 10), "float32"), transform=Affine(30, 0, 700000, 0, -30, Y0)
    )
    out = scene["tmp"] / "o"
    fails(
        capsys,
        args(scene, out=out, rasters=[scene["rasters"][0], far]),
        "do not overlap",
        "far.tif",
        out=out,
    )


def test_all_nan_band(scene, capsys, raster_factory):
    p = raster_factory("nan.tif", np.full((10, 10), np.nan, "float32"))
    out = scene["tmp"] / "o"
    fails(
        capsys,
        args(scene, out=out, rasters=[scene["rasters"][0], p]),
        "nan.tif",
        "no valid value",
        out=out,
    )


def test_label_column_that_does_not_exist(scene, capsys):
    out = scene["tmp"] / "o"
    fails(capsys, args(scene, out=out, column="rock"), "no column 'rock'", "lithology", out=out)


def test_labels_that_cover_no_pixel(scene, capsys):
    far = scene["points"].copy()
    far.geometry = far.geometry.translate(1e5, 0)
    path = scene["tmp"] / "far.gpkg"
    far.to_file(path)
    out = scene["tmp"] / "o"
    fails(capsys, args(scene, out=out, labels=path), "cover no pixel", "EPSG:32633", out=out)


def test_projected_coordinates_given_as_longitudes_get_a_crs_message(scene, capsys):
    pts = scene["points"]
    table = pd.DataFrame({"x": pts.geometry.x, "y": pts.geometry.y, "lithology": pts.lithology})
    path = scene["tmp"] / "utm.csv"
    table.to_csv(path, index=False)
    out = scene["tmp"] / "o"
    argv = args(scene, out=out, labels=path, extra=["--label-crs", "EPSG:4326"])
    err = fails(capsys, argv, "not valid in the CRS given for them, EPSG:4326", out=out)
    x, y = (
        pts.geometry.x,
        pts.geometry.y,
    )  # all of them: those placed at inf were dropped as repeats
    assert f"(x {x.min():,.0f} to {x.max():,.0f}, y {y.min():,.0f} to {y.max():,.0f})" in err
    assert "inf" not in err and "e+06" not in err
    assert "Read in the rasters' CRS, EPSG:32633, they fall on the rasters" in err


def test_single_class(scene, capsys):
    one = scene["points"].assign(lithology="granite")
    path = scene["tmp"] / "one.gpkg"
    one.to_file(path)
    out = scene["tmp"] / "o"
    fails(capsys, args(scene, out=out, labels=path), "of one class ('granite')", out=out)


def test_class_with_one_sample_warns(scene, capsys):
    pts = scene["points"].copy()
    pts.loc[0, "lithology"] = "dolerite"
    path = scene["tmp"] / "rare.gpkg"
    pts.to_file(path)
    main([a for a in args(scene, labels=path) if a != "--quiet"])
    err = capsys.readouterr().err
    assert "Class 'dolerite' has only 1 sample" in err
    assert "grid: EPSG:32633, 30 x 30 m per pixel, 60 x 60 pixels" in err
    assert "sat.tif: EPSG:32633, 30 m, bilinear, nodata 0.0% of the grid" in err


def test_csv_without_coordinates(scene, capsys):
    path = scene["tmp"] / "obs.csv"
    pd.DataFrame({"station": [1], "lithology": ["granite"]}).to_csv(path, index=False)
    out = scene["tmp"] / "o"
    fails(
        capsys,
        args(scene, out=out, labels=path),
        "obs.csv",
        "no coordinate columns",
        "lon/lat",
        out=out,
    )


def test_empty_label_file(scene, capsys):
    path = scene["tmp"] / "empty.geojson"
    path.touch()
    out = scene["tmp"] / "o"
    fails(capsys, args(scene, out=out, labels=path), "empty.geojson", "empty", out=out)


def test_labels_all_on_nodata(scene, capsys, raster_factory):
    data = np.full((2, 60, 60), -9999, "float32")
    data[:, :5, :5] = 1.0
    holes = raster_factory("holes.tif", data, nodata=-9999)
    pts = scene["points"].copy()
    pts.geometry = [Point(X0 + 900 + 30 * i, Y0 - 900) for i in range(len(pts))]
    path = scene["tmp"] / "onholes.gpkg"
    pts.to_file(path)
    out = scene["tmp"] / "o"
    fails(capsys, args(scene, out=out, labels=path, rasters=[holes]), "fall on nodata", out=out)


def test_sigterm_mid_run_leaves_nothing(scene):
    out = scene["tmp"] / "killed"
    script = (
        "import os, signal, sys, time\n"
        "import geomap.workflow as w\n"
        "def writes(tmp, *a, **k):\n"
        "    (tmp / 'lithology.stream.tif').write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    time.sleep(30)\n"
        "w.write_forest_outputs = writes\n"
        "from geomap.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, *args(scene, out=out)], capture_output=True, timeout=120
    )
    assert done.returncode == 128 + 15, done.stderr.decode()[-2000:]
    assert not out.exists()
    assert [p.name for p in scene["tmp"].iterdir() if p.name.startswith(".")] == []


def test_a_write_the_disk_refuses_is_a_message_and_leaves_nothing(scene):
    """A limit on file size (or a full disk) stopped the first GeoTIFF window with a traceback
    ending in rasterio's 'Write failed. See previous exception for details.' (helper's audit)."""
    out = scene["tmp"] / "too_big"
    limit = "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))\n"
    script = limit + "import sys\nfrom geomap.cli import main\nsys.exit(main(sys.argv[1:]))\n"
    done = subprocess.run(
        [sys.executable, "-c", script, *args(scene, out=out)], capture_output=True, timeout=120
    )
    err = done.stderr.decode()
    assert done.returncode == 2, err[-2000:]
    assert "Traceback" not in err
    assert f"error: Writing the outputs in '{scene['tmp']}' failed (" in err
    assert "); nothing was written. That disk has " in err and "MB free now" in err
    assert not out.exists()
    assert [p.name for p in scene["tmp"].iterdir() if p.name.startswith(".")] == []


def test_label_layer_picks_one_layer_of_a_project_geopackage(scene, capsys):
    project = scene["tmp"] / "project.gpkg"
    scene["points"].to_file(project, layer="season_2024")
    scene["points"].assign(lithology="granite").to_file(project, layer="season_2023")
    fails(capsys, args(scene, labels=project), "hold 2 layers", "--label-layer")
    assert main(args(scene, labels=project, extra=["--label-layer", "season_2024"])) == 0
    report = json.loads((scene["tmp"] / "out" / "report.json").read_text())
    assert report["configuration"]["label_layer"] == "season_2024"
    assert len(report["samples"]["per_class"]) == 3


@pytest.mark.parametrize("option", ["--labels", "--label-column"])
def test_an_option_given_twice_is_an_error(scene, capsys, option):
    argv = args(scene, extra=[option, "other"])
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert f"{option} given twice (" in capsys.readouterr().err
    assert not (scene["tmp"] / "out").exists()


def test_an_option_of_run_given_to_predict_is_named_as_such(tmp_path, capsys):
    """`predict --resolution 30` got argparse's "unrecognized arguments" under geomap's own
    usage, not saying that predict keeps the model's grid."""
    argv = ["predict", "--model", "m.skops", "--raster", "a.tif", "--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--resolution", "30"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: geomap predict")
    assert "--resolution is an option of geomap run, not of geomap predict." in err
    assert "predict maps on the model's grid" in err
    with pytest.raises(SystemExit):
        main([*argv, "--resolutoin=30"])
    assert "unrecognized arguments: --resolutoin=30" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--crs", "EPSG:4326", "--resolution", "30", "--bogus", "1"])
    err = capsys.readouterr().err
    assert "--crs is an option of geomap run" in err and "--resolution is an option" in err
    assert err.count("predict maps on the model's grid") == 1
    assert "unrecognized arguments: --bogus 1" in err
    assert not (tmp_path / "o").exists()


def test_ctrl_c_says_nothing_was_written(scene, capsys, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("geomap.cli.run", interrupted)
    assert main(args(scene)) == 130
    err = capsys.readouterr().err
    assert "interrupted; nothing was written" in err and "Traceback" not in err


def test_running_out_of_memory_says_what_to_give_and_writes_nothing(scene, capsys, monkeypatch):
    def too_big(*a, **k):
        raise MemoryError

    monkeypatch.setattr("geomap.workflow.predict_stack", too_big)  # mid-run, outputs staged
    out = scene["tmp"] / "oom"
    assert main(args(scene, out=out)) == 2
    err = capsys.readouterr().err
    assert "ran out of memory; nothing was written" in err and "--block-size 128" in err
    assert "Traceback" not in err and not out.exists()


def test_observations_off_the_rasters_are_reported(scene, capsys):
    pts = scene["points"].copy()
    pts.geometry = pts.geometry.translate(xoff=900.0)  # half of them east of the rasters
    labels = scene["tmp"] / "shifted.gpkg"
    pts.to_file(labels)
    assert main(args(scene, labels=labels)) == 0
    err = capsys.readouterr().err
    outside = int((pts.geometry.x > X0 + 1800).sum())
    assert f"warning: {outside} of 60 points in 'shifted.gpkg' fall outside" in err


def test_output_folder_that_exists(scene, capsys):
    out = scene["tmp"] / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    fails(capsys, args(scene, out=out), "already holds files", "--overwrite")
    assert (out / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in scene["tmp"].iterdir() if p.name.startswith(".taken")) == []


def test_overwrite_replaces_an_earlier_run_and_nothing_else(scene, capsys):
    out = scene["tmp"] / "taken"
    assert main(args(scene, out=out)) == 0
    (out / "lithology.tif.aux.xml").write_text("<PAMDataset/>")  # as QGIS leaves it
    (out / "probabilities.tif").write_text("an older run's")
    assert main(args(scene, out=out, extra=["--overwrite"])) == 0
    assert (out / "probabilities.tif").stat().st_size > 100
    (out / "my_notes.txt").write_text("keep me")
    (out / "field data").mkdir()
    before = sorted(p.name for p in out.iterdir())
    err = fails(capsys, args(scene, out=out, extra=["--overwrite"]), "did not write")
    assert "field data/" in err and "my_notes.txt" in err
    assert sorted(p.name for p in out.iterdir()) == before
    assert (out / "my_notes.txt").read_text() == "keep me"


def test_out_dot_writes_into_the_current_folder(scene, capsys, monkeypatch):
    here = scene["tmp"] / "season1"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(args(scene, out=".")) == 0, capsys.readouterr().err
    assert (here / "lithology.tif").exists() and (here / "report.json").exists()
    assert sorted(p.name for p in scene["tmp"].iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize(
    ("option", "value", "phrase"),
    [
        ("--block-size", "8", "has to be at least 16"),
        ("--cv-folds", "1", "has to be at least 2"),
        ("--cv-folds", "500", "has to be at most 20; got 500"),  # ran 102 folds, unsaid
        ("--suggest", "0", "has to be at least 1"),
        ("--max-walk", "2mi", "is not a positive distance"),
        ("--clusters", "300", "has to be at most 255"),
        ("--clusters", "2.5", "has to be a whole number; got '2.5'"),
        ("--trees", "ten", "has to be a whole number; got 'ten'"),
        ("--random-state", "2.5", "has to be a whole number; got '2.5'"),
        ("--resolution", "30m", "has to be a number; got '30m'"),
        ("--resolution", "-30", "has to be greater than 0; got -30"),
    ],
)
def test_out_of_range_options_are_refused_before_any_work(scene, capsys, option, value, phrase):
    with pytest.raises(SystemExit) as info:
        main(args(scene, extra=[option, value]))
    assert info.value.code == 2
    assert phrase in capsys.readouterr().err


def test_a_photo_named_tif_gets_one_clear_message_and_no_library_warning(scene, capsys):
    import warnings

    import rasterio

    photo = scene["tmp"] / "photo.tif"
    with rasterio.open(
        photo.with_suffix(".png"), "w", driver="PNG", width=8, height=8, count=1, dtype="uint8"
    ) as dst:
        dst.write(np.zeros((1, 8, 8), "uint8"))
    photo.write_bytes(photo.with_suffix(".png").read_bytes())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fails(capsys, args(scene, rasters=[photo]), "photo.tif", "not georeferenced", "a PNG image")
    assert not [w for w in caught if "georeferenc" in str(w.message).lower()]


SOM_FAST = ["--som-samples", "2000", "--iterations", "500"]


def _som_argv(scene, out, model="som-clusters", extra=()):
    argv = ["run", "--model", model, "--out", str(out), "--quiet", *SOM_FAST, *extra]
    for r in scene["rasters"]:
        argv += ["--raster", str(r)]
    return argv


def test_som_clusters_needs_no_labels_and_its_bundle_predicts(scene):
    out = scene["tmp"] / "units"
    assert main(_som_argv(scene, out, extra=["--clusters", "3", "--som-size", "6x8"])) == 0
    assert (out / "clusters.tif").exists() and (out / "quantization_error.tif").exists()
    again = scene["tmp"] / "again"
    argv = ["predict", "--model", str(out / "model.skops"), "--out", str(again), "--quiet"]
    for r in scene["rasters"]:
        argv += ["--raster", str(r)]
    assert main(argv) == 0 and (again / "clusters.tif").exists()


def test_som_and_subunits_from_the_command_line(scene, capsys):
    out = scene["tmp"] / "som"
    extra = ["--labels", str(scene["labels"]), "--label-column", "lithology", "--cv-folds", "2"]
    assert main(_som_argv(scene, out, model="som", extra=extra)) == 0
    assert (out / "label_distance.tif").exists() and (out / "lithology.tif").exists()
    sub = ["subunits", "--map", str(out / "lithology.tif"), "--out", str(scene["tmp"] / "sub")]
    sub += ["--quiet", "--clusters", "2", *SOM_FAST]
    for r in scene["rasters"]:
        sub += ["--raster", str(r)]
    named = f"{scene['rasters'][0].name}=-9999"  # the form run and predict take
    capsys.readouterr()
    told = [a for a in sub if a != "--quiet"]
    assert main([*told, "--unit", "shale", "--nodata", named]) == 0
    assert (scene["tmp"] / "sub" / "subunits.tif").exists()
    said = capsys.readouterr().err  # how many sub-units, and how much of the unit each maps
    assert re.search(r"2 clusters \(kmeans\), as many as asked for; of the mapped pixels: "
                     r"shale subunit 1 \d+%, shale subunit 2 \d+%\.", said), said  # fmt: skip
    report = json.loads((scene["tmp"] / "sub" / "report.json").read_text())
    assert report["configuration"]["raster_nodata"] == {scene["rasters"][0].name: -9999.0}
    fails(capsys, [*sub, "--overwrite", "--unit", "gneiss"], "'gneiss' is not in the map",
          "'basalt', 'granite', 'shale'")  # fmt: skip


def test_labels_without_their_column_are_refused_with_the_columns_listed(scene, capsys):
    out = scene["tmp"] / "o"
    argv = [a for a in args(scene, out=out) if a not in ("--label-column", "lithology")]
    fails(capsys, argv, "are given without --label-column", "Their columns: ", "lithology", out=out)


def test_som_without_labels_is_refused(scene, capsys):
    out = scene["tmp"] / "x"
    fails(capsys, _som_argv(scene, out, model="som"), "give --labels FILE", "som-clusters", out=out)


@pytest.mark.parametrize("value", ["0x4", "ax3", "1x1", "2x3x4"])
def test_bad_som_size_is_refused_before_any_work(scene, capsys, value):
    with pytest.raises(SystemExit) as info:
        main(_som_argv(scene, scene["tmp"] / "x", extra=["--som-size", value]))
    assert info.value.code == 2
    assert "ROWSxCOLS" in capsys.readouterr().err


def test_a_crs_without_an_epsg_code_is_one_short_line_on_the_terminal():
    from rasterio.crs import CRS

    from geomap.sources import crs_words

    sinusoidal = CRS.from_string("+proj=sinu +R=6371007.181 +units=m").to_string()
    assert len(sinusoidal) > 300  # WKT, as the report keeps it
    assert crs_words(sinusoidal).startswith("+proj=sinu ") and len(crs_words(sinusoidal)) < 90
    assert crs_words("EPSG:32633") == "EPSG:32633"


def test_fewer_sites_than_asked_for_are_said_on_the_terminal():
    from geomap.cli import _n_sites

    sites = {"n_written": 16, "n_requested": 30, "min_spacing_m": 250.0, "reachable_pixels": 900}
    report = {"suggested_samples": sites}
    assert _n_sites(report) == (
        "16 (of 30 asked for: where the map can be reached, no more places lie at least 250 m "
        "apart, the spacing kept between sites)"
    )
    sites["min_spacing_m"] = 410.792  # spurious digits
    assert "at least 411 m apart" in _n_sites(report)
    sites["min_spacing_m"] = 12500.3
    assert "at least 12,500 m apart" in _n_sites(report)
    sites["min_spacing_m"] = 250.0
    sites |= {"n_written": 28, "reachable_pixels": 28}  # --resolution 3000: a map of 28 pixels
    assert _n_sites(report) == "28 (of 30 asked for: the map has 28 pixel(s) to suggest)"
    sites["n_written"] = 30
    assert _n_sites(report) == "30"


def test_the_command_shares_heaps_among_its_threads_before_they_start(scene, monkeypatch):
    """Per-thread heaps took 3 GB of address space: under `ulimit -v 2000000` no thread started."""
    calls = []
    monkeypatch.setattr("geomap.cli.limit_malloc_arenas", lambda: calls.append("arenas"))
    monkeypatch.setattr("geomap.cli.run", lambda *a, **k: calls.append("run"))
    main(args(scene))
    assert calls[:2] == ["arenas", "run"]


def test_the_expected_accuracy_where_an_input_is_missing_is_logged(caplog):
    from geomap.cli import _log_figures

    estimate = {
        "overall_accuracy": 0.91,
        "aoa_fraction": 0.97,
        "reduced_input_fraction": 0.06,
        "reduced_input_accuracy": 0.78,
        "complete_input_accuracy": 0.92,
    }
    with caplog.at_level(logging.INFO, logger="geomap"):
        _log_figures({"map_accuracy_estimate": estimate})
    assert "expected accuracy of the whole map 0.910" in caplog.text
    assert "The 6.0% of the map mapped with an input missing" in caplog.text
    assert "0.78 right, the rest 0.92" in caplog.text
    assert "outside the area" not in caplog.text


def test_the_expected_accuracy_of_a_map_beyond_its_training_area_says_so_at_once(caplog):
    """It was printed as a plain figure, and the warning that 72% of the map lay beyond the
    training area came lines later."""
    from geomap.cli import _log_figures

    estimate = {"overall_accuracy": 0.96, "aoa_fraction": 0.65}
    with caplog.at_level(logging.INFO, logger="geomap"):
        _log_figures({"map_accuracy_estimate": estimate, "outside_training_fraction": 0.72})
    assert (
        "expected accuracy of the whole map 0.960; 65% of it inside the area of applicability; "
        "on the ground, 72% of it lies outside the area the model was trained on, where no "
        "observation backs this figure (see the warning below)"
    ) in caplog.text


def test_nodata_per_raster_is_kept_by_the_model_for_predict(scene, capsys):
    """--nodata sat.tif=-1 --nodata -2: the satellite scene its own, the rest -2; predict reuses
    them, and a plain value there replaces the plain one only (it gave the DEM's -32768 up)."""
    out = scene["tmp"] / "out"
    assert main(args(scene, extra=["--nodata", "sat.tif=-1", "--nodata", "-2"])) == 0
    report = json.loads((out / "report.json").read_text())
    assert [s["nodata"] for s in report["sources"]] == [-1.0, -2.0]
    assert report["configuration"]["raster_nodata"] == {"sat.tif": -1.0}

    def predicted(name: str, *extra: str) -> list:
        argv = ["predict", "--model", str(out / "model.skops"), "--out", str(scene["tmp"] / name)]
        for r in scene["rasters"]:
            argv += ["--raster", str(r)]
        assert main([*argv, "--quiet", *extra]) == 0
        return [
            s["nodata"]
            for s in json.loads((scene["tmp"] / name / "report.json").read_text())["sources"]
        ]

    assert predicted("again") == [-1.0, -2.0]
    assert predicted("named", "--nodata", "mag.tif=-3") == [-1.0, -3.0]
    assert predicted("plain", "--nodata", "-5") == [-1.0, -5.0]
    assert predicted("both", "--nodata", "-5", "--nodata", "sat.tif=-6") == [-6.0, -5.0]
    sheet = scene["tmp"] / "sheet_2"  # the next sheet's files, named otherwise
    sheet.mkdir()
    renamed = [sheet / "sat_east.tif", sheet / "mag_east.tif"]
    for r, new in zip(scene["rasters"], renamed):
        new.write_bytes(r.read_bytes())
    argv = ["predict", "--model", str(out / "model.skops"), "--out", str(scene["tmp"] / "east")]
    argv += ["--raster", str(renamed[0]), "--raster", str(renamed[1]), "--quiet"]
    assert main([*argv, "--nodata", "mag.tif=-8"]) == 0  # named as at training
    east = json.loads((scene["tmp"] / "east" / "report.json").read_text())
    assert [s["nodata"] for s in east["sources"]] == [-1.0, -8.0]


def test_two_nodata_values_for_every_raster_are_refused(scene, capsys):
    out = scene["tmp"] / "out"
    assert main(args(scene, extra=["--nodata", "0", "--nodata", "-32768"])) != 0
    err = capsys.readouterr().err
    assert "Two no-data values for every raster (0 and -32768)" in err
    assert "NAME=VALUE for a raster that needs another" in err and not out.exists()
    assert main(args(scene, extra=["--nodata", "dme.tif=0"])) != 0
    assert "No-data value for 'dme.tif': no raster of that name" in capsys.readouterr().err


def test_progress_is_logged_where_no_bar_can_show(caplog, monkeypatch):
    """A run in a scheduler's job: 17 minutes of cross-validation said nothing after its start."""
    from geomap import cli

    clock = iter([0.0, 30.0, 70.0, 100.0, 200.0])
    monkeypatch.setattr(cli.time, "monotonic", lambda: next(clock))
    bar = cli._Bar(quiet=False)
    assert bar.logging and not bar.enabled  # pytest's stderr is no terminal
    with caplog.at_level(logging.INFO, logger="geomap"):
        for done in (0, 1, 2, 3, 10):  # at 0, 30, 70, 100 and 200 s
            bar("validate", done, 10)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "cross-validating (random and spatial blocks)...",
        "cross-validating: 2 of 10 models done, about 5 min left",  # 70 s for 2: 280 s left
    ]
    assert cli._duration(40) == "40 s" and cli._duration(9000) == "2.5 h"
    assert not cli._Bar(quiet=True).logging
