import json
import xml.etree.ElementTree as ET
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from affine import Affine
from shapely.geometry import Point

from geomap.apply import predict
from geomap.errors import ModelError, OutputExistsError
from geomap.export import OUTPUT_NAMES, load_model
from geomap.predict import uncertainty
from geomap.workflow import RunConfig, input_records, run


@pytest.fixture
def result(demo_run):
    """The session's run of the demo scene (tests/conftest.py)."""
    return demo_run


def test_every_output_is_written(result):
    out, _ = result
    names = {p.name for p in out.iterdir()}
    assert names == {
        "lithology.tif",
        "lithology.tif.aux.xml",
        "uncertainty.tif",
        "probabilities.tif",
        "legend.csv",
        "lithology.qml",
        "report.json",
        "report.html",
        "model.skops",
        "applicability.tif",
        "expected_accuracy.tif",
        "suggested_samples.gpkg",
        "suggested_samples.csv",
        "observations_to_check.gpkg",
        "observations_to_check.csv",
    }


def test_overwrite_knows_every_file_of_a_run(result):
    assert all(OUTPUT_NAMES.fullmatch(p.name) for p in result[0].iterdir())


def test_lithology_is_a_styled_cog(result, demo_scene):
    out, report = result
    with rasterio.open(out / "lithology.tif") as src:
        assert src.dtypes == ("uint8",) and src.nodata == 255
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        names = json.loads(src.tags()["CLASS_NAMES"])
        cmap = src.colormap(1)
        data = src.read(1)
    assert names == list(demo_scene.class_names)
    assert cmap[names.index("granite")][:3] == (239, 120, 130)
    assert set(np.unique(data)) <= set(range(len(names)))
    cats = ET.parse(out / "lithology.tif.aux.xml").findall(".//Category")
    assert [c.text for c in cats] == names
    qml = ET.parse(out / "lithology.qml").findall(".//paletteEntry")
    assert [e.get("label") for e in qml] == names
    legend = pd.read_csv(out / "legend.csv")
    assert list(legend["name"]) == names
    assert legend["mapped_pixels"].sum() == data.size
    assert legend["training_samples"].sum() == report["samples"]["counts"]["used"]


def test_a_sure_pixel_has_entropy_zero_not_minus_zero():
    entropy, margin = uncertainty(np.array([[1.0, 0.5], [0.0, 0.5]]))
    assert entropy.tolist() == [0.0, 1.0] and not np.signbit(entropy).any()
    assert margin.tolist() == [0.0, 1.0]


def test_uncertainty_and_probabilities(result, demo_scene):
    out, _ = result
    with (
        rasterio.open(out / "uncertainty.tif") as unc,
        rasterio.open(out / "probabilities.tif") as prob,
    ):
        assert unc.descriptions == ("entropy", "margin", "missing_inputs")
        assert prob.descriptions == demo_scene.class_names
        u, p = unc.read(), prob.read()
    assert np.nanmin(u[:2]) >= 0 and np.nanmax(u[:2]) <= 1 + 1e-6
    np.testing.assert_allclose(p.sum(axis=0), 1, atol=1e-5)
    # the cloud over landsat is mapped from the other sources and flagged
    assert (u[2] > 0).any() and np.isfinite(u[0]).all()


def test_haze_and_shadow_the_mask_missed_are_mapped_without_landsat(result, demo_scene):
    from geomap.synthetic._rasters import _cloud, _cloud_radius

    out, report = result
    [screen] = report["spectral_screen"]  # one sensor
    assert screen["active"] and screen["sources"] == [0]
    with rasterio.open(out / "uncertainty.tif") as unc, rasterio.open(demo_scene.rasters[0]) as ls:
        missing, landsat = unc.read(3), ls.read(1)
        rows, cols = np.mgrid[0 : unc.height, 0 : unc.width]
        x, y = unc.transform @ (cols + 0.5, rows + 0.5)
    screened = (missing > 0) & (landsat != 0)  # landsat has data, yet it was not used
    assert screened.sum() == report["prediction"]["screened_pixels"]
    assert 0 < screened.mean() < 0.05
    np.testing.assert_allclose(missing[screened], 1 / len(demo_scene.rasters))
    cloud = _cloud(160, 30.0, 3)
    r = _cloud_radius(x, y, cloud, 3)
    artefact = (r < 1.3) | (_cloud_radius(x, y, cloud, 3, cloud.shadow) < 1)
    assert artefact[screened].mean() > 0.8  # 95%: the haze ring and the shadow (6% of the scene)
    assert artefact.mean() < 0.1


def test_a_cloud_in_a_second_sensor_is_screened_and_mapped_from_the_first(demo_scene, tmp_path):
    """Sentinel-2 beside Landsat on one grid, with a cloud the mask missed in Sentinel-2 only."""
    with rasterio.open(demo_scene.rasters[0]) as src:
        landsat, profile = src.read().astype("float32"), src.profile
    rows, cols = np.mgrid[0 : profile["height"], 0 : profile["width"]]
    points = gpd.read_file(demo_scene.points_gpkg).to_crs(profile["crs"])
    p_cols, p_rows = ~profile["transform"] @ (points.geometry.x.values, points.geometry.y.values)
    far = np.min(np.hypot(rows[..., None] - p_rows, cols[..., None] - p_cols), axis=-1)
    far[landsat[0] == 0] = 0
    r0, c0 = np.unravel_index(np.argmax(far), far.shape)  # unvisited ground: no observation
    radius = min(12.0, far[r0, c0] - 2)
    blob = np.hypot(rows - r0, cols - c0) < radius
    s2 = np.where(blob, 4000, landsat * 0.95)  # a cloud left unmasked: bright and flat
    s2 = np.where(landsat[:1] != 0, np.clip(s2, 1, 65535), 0).astype("uint16")
    path = tmp_path / "s2.tif"
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(s2)
        dst.descriptions = tuple(
            f"S2_{b}" for b in ("blue", "green", "red", "nir", "swir1", "swir2")
        )
    out = tmp_path / "two"
    report = run(
        RunConfig(
            rasters=[*demo_scene.rasters, path],
            labels=demo_scene.points_gpkg,
            label_column="lithology",
            out=out,
            trees=30,
            applicability=False,
        )
    )
    landsat_screen, s2_screen = report["spectral_screen"]
    assert landsat_screen["sources"] == [0] and s2_screen["sources"] == [len(demo_scene.rasters)]
    with rasterio.open(out / "uncertainty.tif") as unc:
        missing = unc.read(3)
    clear = blob & (landsat[0] != 0) & (np.hypot(rows - r0, cols - c0) < radius - 3)
    assert (missing[clear] > 0).mean() > 0.9  # S2 screened under its cloud: Landsat maps it
    assert (missing[~blob] > 0).mean() < 0.1


def test_the_screen_can_be_switched_off(demo_scene, tmp_path):
    from geomap.cli import main

    rasters = [a for r in demo_scene.rasters for a in ("--raster", str(r))]
    out = tmp_path / "unscreened"
    argv = ["run", *rasters, "--labels", str(demo_scene.points_gpkg), "--label-column"]
    argv += ["lithology", "--out", str(out), "--trees", "10", "--no-applicability"]
    assert main([*argv, "--no-spectral-screen", "--quiet"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["spectral_screen"] is None and report["prediction"]["screened_pixels"] == 0
    assert report["configuration"]["spectral_screen"] is False
    with rasterio.open(out / "uncertainty.tif") as unc, rasterio.open(demo_scene.rasters[0]) as ls:
        assert ((unc.read(3) > 0) == (ls.read(1) == 0)).all()  # only the cloud itself


def test_the_same_rasters_in_another_order_give_the_same_map(demo_scene, tmp_path):
    """The forest was grown over the features in the order the rasters came: the demo's last
    three swapped changed 1.5% of the map and its spatial CV (0.900 against 0.893)."""
    first, *others = demo_scene.rasters
    outs = []
    for rasters in ([first, *others], [first, *others[::-1]]):
        outs.append(tmp_path / f"map{len(outs)}")
        config = RunConfig(
            rasters=list(rasters),
            labels=demo_scene.points_gpkg,
            label_column="lithology",
            out=outs[-1],
            trees=20,
            applicability=False,
            suggest=0,
        )
        run(config)
    for name in ("lithology.tif", "probabilities.tif", "uncertainty.tif"):
        with rasterio.open(outs[0] / name) as a, rasterio.open(outs[1] / name) as b:
            assert np.array_equal(a.read(), b.read()), name
    reports = [json.loads((out / "report.json").read_text()) for out in outs]
    assert reports[0]["configuration"]["rasters"] != reports[1]["configuration"]["rasters"]
    assert reports[0]["validation"]["spatial"] == reports[1]["validation"]["spatial"]


def test_points_and_polygons_in_one_file_are_scored_apart(demo_scene, tmp_path):
    """The legacy map's pixels outnumber the field points 7 to 1 and made the figures theirs."""
    points = gpd.read_file(demo_scene.points_gpkg)[["lithology", "geometry"]]
    polygons = gpd.read_file(demo_scene.polygons_gpkg)[["lithology", "geometry"]]
    both = tmp_path / "observations.gpkg"
    gpd.GeoDataFrame(pd.concat([points, polygons], ignore_index=True), crs=points.crs).to_file(both)
    config = RunConfig(
        rasters=list(demo_scene.rasters),
        labels=both,
        label_column="lithology",
        out=tmp_path / "map",
        trees=20,
        applicability=False,
    )
    report = run(config)
    kinds = report["validation"]["by_kind"]
    assert kinds["point"]["samples"] == report["samples"]["by_kind"]["point"]
    assert kinds["polygon"]["samples"] == report["samples"]["by_kind"]["polygon"]
    assert kinds["polygon"]["samples"] > kinds["point"]["samples"]
    spatial = report["validation"]["spatial"]
    n = spatial["n_samples"]
    mean = (
        kinds["point"]["spatial"] * kinds["point"]["samples"]
        + kinds["polygon"]["spatial"] * kinds["polygon"]["samples"]
    ) / n
    assert mean == pytest.approx(spatial["overall_accuracy"])
    (note,) = [w for w in report["warnings"] if "pixels of mapped polygons" in w]
    share = kinds["polygon"]["samples"] / n
    assert report["validation"]["summary"].endswith(
        f" Polygon pixels are {share:.0%} of these samples; on the {kinds['point']['samples']:,} "
        f"field points alone spatial CV gives {kinds['point']['spatial']:.2f}."
    )  # the sentence on which figure to believe says it too
    assert f"On the {kinds['point']['samples']:,} field points alone" in note
    assert f"spatial CV gives {kinds['point']['spatial']:.2f}" in note
    # in training, the polygons count as observations, not pixel for pixel
    counts = report["samples"]["counts"]
    assert counts["polygons"] <= counts["polygon_worth"] < 0.1 * counts["polygon_pixels"]
    (told,) = [w for w in report["warnings"] if w.startswith("In training the model, the")]
    assert told.startswith(
        f"In training the model, the {counts['polygons']} polygon(s) of 'observations.gpkg' "
        f"count as {counts['polygon_worth']:,.0f} observations beside its {counts['points']:,} "
        f"points, not as their {counts['polygon_pixels']:,} pixels"
    )
    assert "The accuracy figures still score every pixel and every point once." in told


def test_report_has_both_validations_and_configuration(result):
    out, report = result
    saved = json.loads((out / "report.json").read_text())
    assert saved["validation"]["random"]["overall_accuracy"] > 0.5
    assert set(saved["validation"]["spatial"]) >= {
        "overall_accuracy",
        "balanced_accuracy",
        "macro_f1",
        "kappa",
        "per_class_recall",
        "confusion_matrix",
        "block_size",
    }
    assert saved["validation"]["summary"]
    assert saved["validation"]["by_kind"] is None  # field points only
    assert not any("pixels of mapped polygons" in w for w in saved["warnings"])
    assert saved["configuration"]["trees"] == 60
    assert saved["configuration"]["max_per_class"] == 2000  # the forest's default, as used
    assert len(saved["inputs"]["rasters"][0]["sha256"]) == 64
    assert saved["grid"]["width"] == 160
    assert sum(saved["importance"]["features"].values()) == pytest.approx(1.0)


def test_the_report_hashes_every_file_of_a_dataset(tmp_path):
    """An ER Mapper grid's values are in a data file beside its .ers header, which alone was
    hashed (609 bytes); a Shapefile's attributes are in its .dbf."""
    profile = {
        "driver": "ERS", "width": 8, "height": 8, "count": 1, "dtype": "float32",
        "crs": "EPSG:28350", "transform": Affine(30, 0, 385000, 0, -30, 6470000),
    }  # fmt: skip
    with rasterio.open(tmp_path / "K.ers", "w", **profile) as dst:
        dst.write(np.ones((1, 8, 8), "float32"))
    gpd.GeoDataFrame(
        {"lithology": ["granite"]}, geometry=[Point(385100, 6469900)], crs="EPSG:28350"
    ).to_file(tmp_path / "obs.shp")
    (grid,) = input_records([tmp_path / "K.ers"])
    (labels,) = input_records([tmp_path / "obs.shp"], rasters=False)
    (data,) = grid["side_files"]
    assert data["path"] == str(tmp_path / "K") and data["bytes"] == 8 * 8 * 4
    assert {Path(f["path"]).suffix for f in labels["side_files"]} >= {".dbf", ".shx", ".prj"}
    with rasterio.open(tmp_path / "K.ers", "r+") as dst:
        dst.write(np.zeros((1, 8, 8), "float32"))  # other values, the same header
    again = input_records([tmp_path / "K.ers"])[0]
    assert again["sha256"] == grid["sha256"] and again["side_files"][0]["sha256"] != data["sha256"]


def test_map_is_close_to_the_truth(result, demo_scene):
    out, report = result
    with rasterio.open(out / "lithology.tif") as m, rasterio.open(demo_scene.truth) as t:
        accuracy = (m.read(1) == t.read(1)).mean()
    assert accuracy > 0.7
    assert abs(report["validation"]["spatial"]["overall_accuracy"] - accuracy) < 0.15


def test_predict_with_the_bundle_reproduces_the_map(result, demo_scene, tmp_path):
    out, report = result
    again = predict(
        out / "model.skops", list(demo_scene.rasters), tmp_path / "again", block_size=64
    )
    spatial = report["validation"]["spatial"]["overall_accuracy"]
    assert again["training"]["validation"]["spatial"]["overall_accuracy"] == spatial
    assert again["training"]["validation"]["summary"] == report["validation"]["summary"]
    legends = [pd.read_csv(d / "legend.csv") for d in (out, tmp_path / "again")]
    assert legends[1]["training_samples"].tolist() == legends[0]["training_samples"].tolist()
    for name in (
        "lithology.tif",
        "probabilities.tif",
        "applicability.tif",
        "expected_accuracy.tif",
    ):
        with rasterio.open(out / name) as a, rasterio.open(tmp_path / "again" / name) as b:
            np.testing.assert_array_equal(a.read(), b.read())


def test_streaming_is_independent_of_block_size(result, demo_scene, tmp_path):
    out, _ = result
    predict(out / "model.skops", list(demo_scene.rasters), tmp_path / "big", block_size=200)
    with (
        rasterio.open(out / "probabilities.tif") as a,
        rasterio.open(tmp_path / "big" / "probabilities.tif") as b,
    ):
        np.testing.assert_array_equal(a.read(), b.read())


def test_predict_refuses_other_inputs(result, demo_scene, tmp_path):
    out, _ = result
    unknown = [*demo_scene.rasters[:2], demo_scene.truth]  # a raster the model never saw
    with pytest.raises(ModelError, match="trained on 4 rasters.*Raster 3 differs"):
        predict(out / "model.skops", unknown, tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_model_bundle_refuses_untrusted_types(result, tmp_path):
    import skops.io as sio

    evil = tmp_path / "evil.skops"
    sio.dump({"estimator": pd.Timestamp("2020-01-01")}, evil)
    with pytest.raises(ModelError, match="does not trust"):
        load_model(evil)
    bundle = load_model(result[0] / "model.skops")
    assert bundle["class_names"] and bundle["recipe"]["band_names"]


def test_the_bundle_keeps_the_share_of_each_unit_on_the_training_map(result, tmp_path):
    """For a map made later with it: a unit spreading over another's ground shows."""
    out, report = result
    shares = load_model(out / "model.skops")["training"]["map_share_per_class"]
    pixels = report["prediction"]["pixels_per_class"]
    total = sum(pixels.values())
    assert shares == pytest.approx([n / total for n in pixels.values()], abs=1e-6)
    without_dem = report["configuration"]["rasters"][:3]  # another map from the same model
    later = predict(out / "model.skops", without_dem, tmp_path / "p")["prediction"]
    kept = load_model(tmp_path / "p" / "model.skops")["training"]["map_share_per_class"]
    assert kept == shares  # the training's, not the later map's
    assert later["pixels_per_class"] != pixels


def test_existing_output_is_refused_and_kept(result, demo_scene):
    out, _ = result
    before = (out / "report.json").read_bytes()
    config = RunConfig(list(demo_scene.rasters), demo_scene.points_gpkg, "lithology", out)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        run(config)
    assert (out / "report.json").read_bytes() == before


@pytest.mark.parametrize("smooth", [2, 0, 1.5])
def test_an_even_smoothing_window_is_refused_by_the_library_too(demo_scene, tmp_path, smooth):
    config = RunConfig(
        list(demo_scene.rasters), demo_scene.points_gpkg, "lithology", tmp_path / "o", smooth=smooth
    )
    with pytest.raises(ModelError, match="odd number of pixels"):
        run(config)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("folds", [1, 500])
def test_a_fold_count_out_of_range_is_refused_by_the_library_too(demo_scene, tmp_path, folds):
    config = RunConfig(
        list(demo_scene.rasters),
        demo_scene.points_gpkg,
        "lithology",
        tmp_path / "o",
        cv_folds=folds,
    )
    with pytest.raises(ModelError, match=f"cv_folds has to be 2 to 20, .*; got {folds}"):
        run(config)
    assert not (tmp_path / "o").exists()


def test_predict_puts_rasters_named_as_at_training_in_order(result, demo_scene, tmp_path):
    out, _ = result
    swapped = [demo_scene.rasters[i] for i in (0, 1, 3, 2)]
    report = predict(out / "model.skops", swapped, tmp_path / "x")
    assert report["warnings"][0] == (
        "The rasters were given in another order than at training; geomap put them in the "
        "training order by their names."  # the same names: no list of 'a.tif as a.tif'
    )
    again = tmp_path / "x" / "lithology.tif"
    with rasterio.open(out / "lithology.tif") as a, rasterio.open(again) as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_predict_maps_an_area_one_survey_did_not_cover(result, demo_scene, tmp_path):
    out, _ = result
    no_radiometrics = [demo_scene.rasters[i] for i in (0, 2, 3)]
    report = predict(out / "model.skops", no_radiometrics, tmp_path / "sheet2")
    first = report["warnings"][0]
    assert first.startswith("No raster was given for 'radiometrics.tif' (K, Th, U);")
    two = predict(out / "model.skops", no_radiometrics[:2], tmp_path / "sheet3")["warnings"]
    assert [w for w in two if w.startswith("No raster")] == [
        "No raster was given for 'radiometrics.tif' (K, Th, U), 'dem.tif' (elevation); every pixel "
        "is mapped from the other rasters, as under a cloud, and is less certain than at training."
    ]
    assert report["sources"][1]["absent"] and report["prediction"]["source_nodata_fraction"][1] == 1
    with (
        rasterio.open(out / "lithology.tif") as full,
        rasterio.open(tmp_path / "sheet2" / "lithology.tif") as part,
        rasterio.open(tmp_path / "sheet2" / "uncertainty.tif") as unc,
    ):
        a, b, missing = full.read(1), part.read(1), unc.read(3)
    assert (b != 255).all() and (missing > 0).all()  # every pixel mapped, from fewer inputs
    assert 0.7 < (a == b).mean() < 1.0


def test_predict_says_which_raster_alone_shrinks_the_map(result, demo_scene, tmp_path):
    """The next sheet's magnetics covers its northern half: the map shrinks, and says why."""
    out, _ = result
    magnetics = demo_scene.rasters[2]
    half = tmp_path / magnetics.name
    with rasterio.open(magnetics) as src:
        profile = src.profile | {"height": src.height // 2}
        with rasterio.open(half, "w", **profile) as dst:
            dst.write(src.read(window=((0, src.height // 2), (0, src.width))))
    rasters = [*demo_scene.rasters[:2], half, demo_scene.rasters[3]]
    report = predict(out / "model.skops", rasters, tmp_path / "sheet2")
    note = [w for w in report["warnings"] if "alone limits the map" in w]
    assert len(note) == 1 and note[0].startswith(f"Raster '{half.name}' alone limits the map to")
    assert "leave it out" in note[0]
    with (
        rasterio.open(out / "lithology.tif") as full,
        rasterio.open(tmp_path / "sheet2" / "lithology.tif") as part,
    ):
        assert part.width == full.width and part.height < 0.6 * full.height


def test_predict_says_when_the_screen_leaves_a_raster_out_over_most_of_the_map(
    result, demo_scene, tmp_path
):
    """The next sheet's Landsat delivered as reflectance 0-1: the model knows 0-10000."""
    out, _ = result
    landsat = demo_scene.rasters[0]
    scaled = tmp_path / landsat.name
    with rasterio.open(landsat) as src:
        data = src.read(masked=True).astype("float32") / 10000
        with rasterio.open(
            scaled, "w", **(src.profile | {"dtype": "float32", "nodata": -1})
        ) as dst:
            dst.write(data.filled(-1))
            dst.descriptions = src.descriptions
    report = predict(out / "model.skops", [scaled, *demo_scene.rasters[1:]], tmp_path / "sheet2")
    (note,) = [w for w in report["warnings"] if "spectra" in w]
    share = report["prediction"]["source_screened_fraction"][0]
    assert share > 0.9 and note.startswith(f"Raster(s) '{landsat.name}': unlike every training")
    assert f"on {share:.0%} of the map" in note and "reflectance 0-1" in note
    assert not [
        w
        for w in predict(out / "model.skops", demo_scene.rasters, tmp_path / "same")["warnings"]
        if "spectra" in w
    ]  # the training rasters: screened only under haze


def test_predict_says_the_map_is_on_the_models_grid_for_rasters_in_another_crs(
    result, demo_scene, tmp_path
):
    """The next sheet in the next UTM zone: mapped on the model's grid, and said so."""
    from rasterio.vrt import WarpedVRT

    out, _ = result
    moved = []
    for path in demo_scene.rasters:
        with rasterio.open(path) as src, WarpedVRT(src, crs="EPSG:32634") as vrt:
            profile = src.profile | {
                "crs": vrt.crs, "transform": vrt.transform, "width": vrt.width,
                "height": vrt.height,
            }  # fmt: skip
            with rasterio.open(tmp_path / path.name, "w", **profile) as dst:
                dst.write(vrt.read())
                dst.descriptions = src.descriptions
        moved.append(tmp_path / path.name)
    report = predict(out / "model.skops", moved, tmp_path / "sheet2")
    (note,) = [w for w in report["warnings"] if "the model's grid" in w]
    assert note.startswith("The map is on the model's grid (EPSG:32633, ")
    assert "the rasters are in EPSG:32634 and are reprojected onto it" in note
    assert report["grid"]["crs"] == "EPSG:32633"
    same = predict(out / "model.skops", demo_scene.rasters, tmp_path / "same")["warnings"]
    assert not [w for w in same if "the model's grid" in w]
    assert not [w for w in same if "outside the area the model was trained on" in w]
    assert (
        json.loads((tmp_path / "same" / "report.json").read_text())["outside_training_fraction"]
        == 0.0
    )


def test_predict_says_how_much_of_the_map_lies_beyond_the_training_area(result, tmp_path):
    """The survey grown to 240 pixels a side around the 160 the model was trained on."""
    from geomap.synthetic import make_scene

    out, _ = result
    bigger = make_scene(tmp_path / "bigger", size=240, n_points=30, seed=3)
    report = predict(out / "model.skops", bigger.rasters, tmp_path / "sheet")
    (note,) = [w for w in report["warnings"] if "outside the area the model was trained" in w]
    west, south, east, north = report["grid"]["bounds"]
    share = 1 - 160 * 160 * 30 * 30 / ((east - west) * (north - south))
    assert note.startswith(f"{share:.0%} of this map lies outside the area the model was")
    assert "expected_accuracy.tif and applicability.tif" in note
    assert report["outside_training_fraction"] == round(share, 4)  # for the CLI's figures


def test_predict_refuses_a_raster_of_another_kind_and_says_which(result, demo_scene, tmp_path):
    out, _ = result
    wrong = [demo_scene.rasters[i] for i in (0, 1, 2, 2)]  # magnetics where the DEM was
    with pytest.raises(ModelError, match="Raster 4 differs: 'dem.tif' .* at training") as info:
        predict(out / "model.skops", wrong, tmp_path / "x")
    assert "'magnetics.tif' (tmi) now" in str(info.value)
    assert not (tmp_path / "x").exists()


def _unnamed_copies(rasters, folder: Path) -> list[Path]:
    """The rasters under other names, their bands described by nothing (sheet_a.tif ...)."""
    folder.mkdir()
    copies = []
    for letter, path in zip("abcd", rasters):
        with rasterio.open(path) as src:
            profile, data = src.profile, src.read()
        copies.append(folder / f"sheet_{letter}.tif")
        with rasterio.open(copies[-1], "w", **profile) as dst:
            dst.write(data)
    return copies


def test_rasters_whose_bands_have_no_names_map_in_the_order_given(result, demo_scene, tmp_path):
    """Copies without band descriptions, in the right order, were refused with no way round
    ('Raster 1 differs: ... Give the same kinds of rasters, in the same order'; user pass)."""
    out, _ = result
    copies = _unnamed_copies(demo_scene.rasters, tmp_path / "copies")
    with pytest.raises(ModelError, match="Raster 1 differs") as info:
        predict(out / "model.skops", copies, tmp_path / "refused")
    assert str(info.value).endswith(
        "If they are, but name their bands otherwise or not at all, give --same-order to take "
        "each for the training raster at its place in the list."
    )
    report = predict(out / "model.skops", copies, tmp_path / "sheet", same_order=True)
    assert report["warnings"][0].startswith(
        "--same-order: each raster was taken for the training raster at its place, without "
        "comparing band names: sheet_a.tif as landsat.tif, sheet_b.tif as radiometrics.tif"
    )
    with (
        rasterio.open(out / "lithology.tif") as a,
        rasterio.open(tmp_path / "sheet" / "lithology.tif") as b,
    ):
        np.testing.assert_array_equal(a.read(), b.read())
    with pytest.raises(ModelError, match="trained on 4 .* and 3 were given"):
        predict(out / "model.skops", copies[:3], tmp_path / "three", same_order=True)
    with pytest.raises(ModelError, match="Raster 2 differs.*with the same number of bands each"):
        swapped = [copies[0], copies[3], copies[2], copies[1]]  # 1 band where 3 were
        predict(out / "model.skops", swapped, tmp_path / "swapped", same_order=True)


def test_named_rasters_swapped_under_the_training_order_are_refused(result, demo_scene, tmp_path):
    """magnetics and dem swapped with --same-order: the whole map fell outside the AOA and the
    report crashed; then a warning came last, under an expected accuracy of 0.00 (user
    passes). Their bands' names say what each is."""
    out, _ = result
    rasters = list(demo_scene.rasters)
    swapped = [rasters[0], rasters[1], rasters[3], rasters[2]]
    with pytest.raises(ModelError) as info:
        predict(out / "model.skops", swapped, tmp_path / "swapped", same_order=True)
    assert str(info.value) == (
        "--same-order would take 'dem.tif' (elevation) for 'magnetics.tif' (tmi), yet its bands "
        "are named as those of 'dem.tif': the rasters look swapped, and the map would be wrong "
        "throughout. Give them in the training order, or leave --same-order out to let the "
        "names order them."
    )
    assert not (tmp_path / "swapped").exists()


def test_ground_lying_much_lower_or_higher_than_at_training_is_told(result, demo_scene, tmp_path):
    """A forest trained on the demo mapped sheets whose ground lay 0.66 to 1.1 training
    standard deviations lower 0.82 to 0.88 right (0.93 for 0.3 and 0.4 lower): their alluvium
    spread over low shale, and nothing said why."""
    out, report = result
    trained = load_model(out / "model.skops")["training"]["elevation"]
    assert trained == pytest.approx(report["prediction"]["elevation"])
    same = predict(out / "model.skops", list(demo_scene.rasters), tmp_path / "same")
    assert same["prediction"]["elevation"] == pytest.approx(trained)
    assert not [w for w in same["warnings"] if "ground of this map" in w]
    for shift, told in ((0.3, False), (-1.5, True)):
        dem = tmp_path / f"shifted_{shift}" / "dem.tif"
        dem.parent.mkdir()
        with rasterio.open(demo_scene.rasters[3]) as src:
            profile, values = src.profile, src.read(1).astype("float32")
        profile.update(dtype="float32")
        with rasterio.open(dem, "w", **profile) as dst:
            gap = values == profile["nodata"]
            dst.write(np.where(gap, values, values + shift * trained["sd"]), 1)
        rasters = [*demo_scene.rasters[:3], dem]
        said = predict(out / "model.skops", rasters, dem.parent / "map")["warnings"]
        notes = [w for w in said if w.startswith("The ground of this map lies")]
        assert bool(notes) == told, (shift, notes)
    assert notes[0].startswith(
        f"The ground of this map lies lower than the training map's: 'dem.tif' averages "
        f"{trained['mean'] - 1.5 * trained['sd']:.4g} here against {trained['mean']:.4g} there "
        "(1.5 standard deviations of the training map's), and "
    )


def test_a_raster_coarser_than_at_training_is_told(result, demo_scene, tmp_path):
    """60 m Landsat for a model trained on 30 m said nothing, while the map lost accuracy at the
    same expected accuracy (user pass)."""
    out, _ = result
    landsat = demo_scene.rasters[0]
    with rasterio.open(landsat) as src:
        profile, names = src.profile, src.descriptions
        data = src.read(out_shape=(src.count, src.height // 2, src.width // 2))
        transform = src.transform @ src.transform.scale(2, 2)
    coarse = tmp_path / "landsat_60m.tif"
    profile.update(width=data.shape[2], height=data.shape[1], transform=transform)
    with rasterio.open(coarse, "w", **profile) as dst:
        dst.write(data)
        for band, name in enumerate(names, start=1):
            dst.set_band_description(band, name)
    report = predict(out / "model.skops", [coarse, *demo_scene.rasters[1:]], tmp_path / "coarse")
    (note,) = [w for w in report["warnings"] if "coarser" in w]
    assert note.startswith(
        "Raster 'landsat_60m.tif' has 60 m pixels, 2.0 times coarser than its training raster "
        "'landsat.tif' (30 m)"
    )
    same = predict(out / "model.skops", list(demo_scene.rasters), tmp_path / "same")
    assert not [w for w in same["warnings"] if "coarser" in w]  # magnetics is 60 m at both


def test_inputs_inside_the_output_folder_are_protected(demo_scene, tmp_path):
    import shutil

    out = tmp_path / "work"
    out.mkdir()
    inside = [Path(shutil.copy(r, out)) for r in demo_scene.rasters]
    config = RunConfig(inside, demo_scene.points_gpkg, "lithology", out, overwrite=True)
    with pytest.raises(OutputExistsError, match="lies inside the output folder"):
        run(config)
    assert all(p.exists() for p in inside)


def test_predict_reproduces_a_grid_in_a_crs_without_authority(tmp_path, raster_factory):
    rng = np.random.default_rng(0)
    proj = "+proj=utm +zone=33 +ellps=WGS84 +towgs84=0,0,0 +units=m +no_defs"
    truth = (np.arange(40)[None, :] // 14).repeat(40, axis=0)
    data = np.stack([truth * 10 + rng.normal(0, 3, truth.shape) for _ in range(2)]).astype(
        "float32"
    )
    transform = Affine(30.0, 0, 500010.0, 0, -30.0, 5200007.0)
    r = raster_factory("a.tif", data, crs=proj, transform=transform)
    rows, cols = rng.integers(0, 40, 50), rng.integers(0, 40, 50)
    pts = gpd.GeoDataFrame(
        {"lithology": np.array(["a", "b", "c"])[truth[rows, cols]]},
        geometry=[Point(500010 + 30 * c + 15, 5200007 - 30 * rr - 15) for rr, c in zip(rows, cols)],
        crs=proj,
    )
    pts.to_file(tmp_path / "obs.gpkg")
    run(RunConfig([r], tmp_path / "obs.gpkg", "lithology", tmp_path / "m", trees=10))
    predict(tmp_path / "m" / "model.skops", [r], tmp_path / "p")
    with (
        rasterio.open(tmp_path / "m" / "lithology.tif") as a,
        rasterio.open(tmp_path / "p" / "lithology.tif") as b,
    ):
        assert a.transform == b.transform == transform
        np.testing.assert_array_equal(a.read(), b.read())


def test_predict_refuses_a_raster_the_model_was_not_trained_on(result, demo_scene, tmp_path):
    out, _ = result
    with rasterio.open(demo_scene.rasters[2]) as src:
        profile, data = src.profile, src.read()
    extra = tmp_path / "Pt_ppb.tif"
    with rasterio.open(extra, "w", **profile) as dst:
        dst.write(data)
        dst.set_band_description(1, "Pt_ppb")
    shuffled = [demo_scene.rasters[i] for i in (3, 1, 0, 2)]
    with pytest.raises(ModelError, match="'Pt_ppb.tif' matches none of them by band names"):
        predict(out / "model.skops", [*shuffled, extra], tmp_path / "p")
    assert not (tmp_path / "p").exists()


def test_predict_matches_a_neighbouring_sheets_rasters_by_their_distinctive_names(
    tmp_path, raster_factory
):
    rng = np.random.default_rng(1)
    truth = (np.arange(40)[None, :] // 14).repeat(40, axis=0)
    vd = (np.array([0.0, 10.0, 10.0])[truth] + rng.normal(0, 1, truth.shape)).astype("float32")
    asig = (np.array([0.0, 0.0, 10.0])[truth] + rng.normal(0, 1, truth.shape)).astype("float32")
    west = [raster_factory("west_1VD.tif", vd), raster_factory("west_AS.tif", asig)]
    rows, cols = rng.integers(0, 40, 60), rng.integers(0, 40, 60)
    pts = gpd.GeoDataFrame(
        {"lithology": np.array(["a", "b", "c"])[truth[rows, cols]]},
        geometry=[Point(500000 + 30 * c + 15, 5200000 - 30 * r - 15) for r, c in zip(rows, cols)],
        crs="EPSG:32633",
    )
    pts.to_file(tmp_path / "obs.gpkg")
    run(RunConfig(west, tmp_path / "obs.gpkg", "lithology", tmp_path / "m", trees=10))
    east = [raster_factory("east_AS.tif", asig), raster_factory("east_1VD.tif", vd)]
    report = predict(tmp_path / "m" / "model.skops", east, tmp_path / "east")
    assert report["warnings"][0].endswith(
        "by their names: east_1VD.tif as west_1VD.tif, east_AS.tif as west_AS.tif."
    )
    with (
        rasterio.open(tmp_path / "m" / "lithology.tif") as a,
        rasterio.open(tmp_path / "east" / "lithology.tif") as b,
    ):
        np.testing.assert_array_equal(a.read(), b.read())
    dem = raster_factory("elevation.tif", asig * 0)  # trained beside them, no sheet word
    run(RunConfig([dem, *west], tmp_path / "obs.gpkg", "lithology", tmp_path / "m3", trees=10))
    report = predict(tmp_path / "m3" / "model.skops", [dem, *east], tmp_path / "east3")
    assert report["warnings"][0].endswith(
        "by their names: east_1VD.tif as west_1VD.tif, east_AS.tif as west_AS.tif."
    )
    report = predict(tmp_path / "m3" / "model.skops", east, tmp_path / "east_no_dem")
    assert report["warnings"][:2] == [  # it was refused: 'Raster 3 differs'
        "The rasters were given in another order than at training; geomap put them in the "
        "training order by their names: east_1VD.tif as west_1VD.tif, east_AS.tif as west_AS.tif.",
        "No raster was given for 'elevation.tif' (elevation); every pixel is mapped from the "
        "other rasters, as under a cloud, and is less certain than at training.",
    ]
    tile = raster_factory("s32_e115_1arc_v3.tif", asig * 0)  # an SRTM tile: no sheet word
    run(RunConfig([*west, tile], tmp_path / "obs.gpkg", "lithology", tmp_path / "m4", trees=10))
    next_tile = raster_factory("s32_e116_1arc_v3.tif", asig * 0)
    report = predict(tmp_path / "m4" / "model.skops", [next_tile, *east], tmp_path / "east4")
    assert report["warnings"][0].endswith(  # it was refused: 'Raster 1 differs'
        "by their names: east_1VD.tif as west_1VD.tif, east_AS.tif as west_AS.tif, "
        "s32_e116_1arc_v3.tif as s32_e115_1arc_v3.tif."
    )
    anonymous = [raster_factory("grid_a.tif", asig), raster_factory("grid_b.tif", vd)]
    report = predict(tmp_path / "m" / "model.skops", anonymous, tmp_path / "anon")
    assert report["warnings"][0].startswith(
        "The rasters' names do not match the training ones, so geomap took them in the order "
        "given: grid_a.tif as west_1VD.tif, grid_b.tif as west_AS.tif. geomap cannot check"
    )


def test_predict_pairs_a_raster_left_over_by_the_kind_of_its_bands(result, demo_scene, tmp_path):
    """A DEM whose band is named after its file ('srtm_dem', no description) beside the
    training's 'elevation', the rasters in another order: no word of the names matched, and the
    refusal named the wrong raster ('Raster 2 differs: magnetics.tif ... dem.tif ...'; user
    pass). Alone of its kind, it is taken for the training DEM."""
    out, _ = result
    dem = next(p for p in demo_scene.rasters if p.name == "dem.tif")
    with rasterio.open(dem) as src:
        profile, data = src.profile, src.read()
    srtm = tmp_path / "srtm_dem.tif"
    with rasterio.open(srtm, "w", **profile) as dst:  # the same values, no band description
        dst.write(data)
    given = [srtm if p == dem else p for p in demo_scene.rasters][::-1]
    report = predict(out / "model.skops", given, tmp_path / "next")
    assert report["warnings"][0].endswith("by their names: srtm_dem.tif as dem.tif.")
    with (
        rasterio.open(out / "lithology.tif") as a,
        rasterio.open(tmp_path / "next" / "lithology.tif") as b,
    ):
        np.testing.assert_array_equal(a.read(), b.read())


def test_predict_names_an_undeclared_dummy_and_takes_the_nodata_given(result, demo_scene, tmp_path):
    out, _ = result
    with rasterio.open(demo_scene.rasters[2]) as src:  # magnetics: float
        profile, tmi = src.profile, src.read(1)
    tmi[20:40, :] = -99999.0  # a flight-line gap filled with the survey's dummy, undeclared
    gap = tmp_path / "magnetics.tif"
    with rasterio.open(gap, "w", **{**profile, "nodata": None}) as dst:
        dst.write(tmi[None])
    rasters = [*demo_scene.rasters[:2], gap, demo_scene.rasters[3]]
    report = predict(out / "model.skops", rasters, tmp_path / "as_given")
    assert any("pass --nodata -99999" in w for w in report["warnings"])
    report = predict(out / "model.skops", rasters, tmp_path / "gap", nodata=-99999)
    assert not any("-99999" in w for w in report["warnings"])
    flagged = {}  # share of pixels mapped from fewer inputs (band 3 of uncertainty.tif)
    for name in ("as_given", "gap"):
        with rasterio.open(tmp_path / name / "uncertainty.tif") as src:
            flagged[name] = (src.read(3) > 0).mean()
    assert flagged["gap"] - flagged["as_given"] > 0.1  # the gap: 20 of 159 rows


def test_a_unit_that_loses_a_raster_on_many_of_its_samples_is_named():
    """Three of ten alluvium points under the Landsat scene's gap; granite loses 2 of 20."""
    from types import SimpleNamespace

    from geomap.workflow import source_gap_notes

    labels = np.array(["alluvium"] * 10 + ["granite"] * 20)
    X = np.ones((30, 4))
    X[[0, 1, 2, 10, 11], :2] = np.nan  # both Landsat bands; column 3 is a derived feature
    recipe = SimpleNamespace(band_source=(0, 0, 1))
    stack = SimpleNamespace(
        sources=[SimpleNamespace(path=Path("landsat.tif")), SimpleNamespace(path=Path("k.tif"))]
    )
    (note,) = source_gap_notes(X, labels, recipe, stack, "field.gpkg")
    assert note.startswith("Observations 'field.gpkg': 'landsat.tif' has no data on many samples")
    assert "('alluvium' 3 of 10)" in note and "granite" not in note
    X[2, :2] = 1.0  # two of ten: under a quarter
    assert source_gap_notes(X, labels, recipe, stack, "field.gpkg") == []
    X[2, :2] = np.nan  # a scene as one file per band: one note for its files, not one each
    scene = SimpleNamespace(band_source=(0, 1, 2))
    stack.sources = [SimpleNamespace(path=Path(f"{b}.tif")) for b in ("B02", "B03", "k")]
    (note,) = source_gap_notes(X, labels, scene, stack, "field.gpkg")
    assert note.startswith(
        "Observations 'field.gpkg': rasters 'B02.tif', 'B03.tif' have no data on many samples "
        "of some units ('alluvium' 3 of 10), so the model learns their look in them from"
    )


def test_a_satellite_scene_of_another_acquisition_than_the_models_is_named():
    """The next sheet's Landsat scene (another path and season) put 92% of it outside the area
    of applicability, and nothing said that the scene was another acquisition."""
    from geomap.bundles import acquisition_notes

    trained = "LC08_L2SP_113081_20190322_20190403_02_T1_SR_B{}.TIF"
    given = "LC08_L2SP_112081_20200712_20200912_02_T1_SR_B{}.TIF"
    bundle = {"inputs": [{"name": trained.format(b)} for b in (2, 3)] + [{"name": "tmi.tif"}]}
    rasters = [Path(given.format(b)) for b in (2, 3)] + [Path("tmi_B.tif")]
    (note,) = acquisition_notes(bundle, rasters)
    assert note.startswith(
        f"'{given.format(2)}' is of a scene acquired on 2020-07-12 (path/row 112081), the "
        "model's on 2019-03-22 (path/row 113081): reflectance changes with the season"
    )
    assert acquisition_notes(bundle, [Path(trained.format(b)) for b in (2, 3)] + [None]) == []
    tile = {"inputs": [{"name": "T33TWM_20230612T100031_B02_10m.jp2"}]}
    (note,) = acquisition_notes(tile, [Path("L2A_T33TWM_20170706T100031_B02_10m.jp2")])
    assert "acquired on 2017-07-06 (tile 33TWM), the model's on 2023-06-12" in note
    # the next tile of the same overpass is no other acquisition
    assert acquisition_notes(tile, [Path("T33TWN_20230612T100031_B02_10m.jp2")]) == []
    product = "S2A_MSIL2A_20230612T100031_N0509_R122_T33TWN_20230701T130000.tif"  # sensing date
    assert acquisition_notes(tile, [Path(product)]) == []


def test_the_labelled_som_draws_more_pixels_per_unit_but_bounded_in_all():
    from geomap.workflow import per_class_cap

    assert per_class_cap("rf", 6) == 2000
    assert per_class_cap("som", 6) == 25_000  # a sheet's few units: many votes each
    assert per_class_cap("som", 40) == 5000  # a regional map: 200,000 in all
    assert per_class_cap("som", 500) == 2000  # never fewer than the forest's
