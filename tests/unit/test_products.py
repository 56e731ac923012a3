"""Satellite products given whole: a Landsat scene folder or .tar, a Sentinel-2 SAFE or .zip."""

import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geomap.cli import main
from geomap.errors import RasterError
from geomap.masks import mask_file
from geomap.products import expand_rasters
from geomap.stack import RasterStack

SCENE = "LC09_L2SP_190026_20230715_20230717_02_T1"
TILE = "T33TWM_20230612T100031"


def _touch(folder: Path, names: list[str]) -> Path:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    return folder


def test_a_landsat_folder_gives_its_bands_temperature_and_cloud_mask(tmp_path):
    bands = [f"{SCENE}_SR_B{b}.TIF" for b in range(1, 8)]
    aux = ["ST_B10", "QA_PIXEL", "QA_RADSAT", "ST_CDIST", "ST_ATRAN", "SR_QA_AEROSOL"]
    folder = _touch(tmp_path / SCENE, [*bands, *(f"{SCENE}_{a}.TIF" for a in aux)])
    _touch(folder, [f"{SCENE}_MTL.txt", f"{SCENE}_thumb_small.jpeg"])
    plain = tmp_path / "k.tif"
    got = [p.name for p in expand_rasters([folder, plain])]
    assert got == [*bands[1:], f"{SCENE}_ST_B10.TIF", f"{SCENE}_QA_PIXEL.TIF", "k.tif"]
    assert expand_rasters([folder])[0].parent == folder


def test_a_safe_zip_gives_each_band_at_its_own_resolution_as_gdal_names(tmp_path):
    img = "S2A_MSIL2A_20230612T100031_N0509_R122_T33TWM_20230612T130000.SAFE/GRANULE/x/IMG_DATA"
    members = [
        f"{img}/R10m/{TILE}_{b}_10m.jp2" for b in ("B02", "B03", "B04", "B08", "TCI", "AOT")
    ] + [f"{img}/R20m/{TILE}_{b}_20m.jp2" for b in ("B02", "B05", "B8A", "B11", "B12", "SCL")]
    members += [f"{img}/R60m/{TILE}_{b}_60m.jp2" for b in ("B01", "B09", "B02")]
    archive = tmp_path / "S2A_MSIL2A_20230612T100031.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for m in members:
            z.writestr(m, b"")
    got = [str(p) for p in expand_rasters([archive])]
    names = [p.rsplit("/", 1)[-1] for p in got]
    assert names == [
        *(f"{TILE}_{b}_10m.jp2" for b in ("B02", "B03", "B04", "B08")),
        *(f"{TILE}_{b}_20m.jp2" for b in ("B05", "B11", "B12", "B8A", "SCL")),
    ]
    assert all(p.startswith(f"/vsizip/{archive.resolve()}/".replace("//", "/")) for p in got)


def test_a_safe_folder_of_sen2cor_2_4_names_gives_its_bands_and_scene_classification(tmp_path):
    """Products made by Sen2Cor 2.4 to 2.5 (2017-2018) name their files "L2A_T32TQR_...": the
    folder was refused as holding no product."""
    img = "S2A_MSIL2A_20170706T103021_N0205_R108_T32TQR_20170706T103021.SAFE/GRANULE/x/IMG_DATA"
    tile = "L2A_T32TQR_20170706T103021"
    names = [f"R10m/{tile}_{b}_10m.jp2" for b in ("B02", "B04", "TCI")]
    names += [f"R20m/{tile}_{b}_20m.jp2" for b in ("B11", "SCL", "B04")]
    folder = _touch(tmp_path / img, names).parents[2]
    got = [p.name for p in expand_rasters([folder])]
    assert got == [f"{tile}_B02_10m.jp2", f"{tile}_B04_10m.jp2", f"{tile}_B11_20m.jp2"] + [
        f"{tile}_SCL_20m.jp2"
    ]


def test_a_folder_of_no_known_product_is_left_to_gdal_and_refused_with_what_to_do(tmp_path):
    """GDAL reads some folders (an ArcInfo binary grid): they pass; the others are refused."""
    folder = _touch(tmp_path / "survey", ["tmi.ers", "notes.txt"])
    assert expand_rasters([folder]) == [folder]
    with pytest.raises(RasterError) as error:
        RasterStack.open([folder])
    assert str(error.value) == (
        f"Raster '{folder}': it is a folder GDAL does not read as a raster, and it holds no "
        "Landsat Collection 2 scene or Sentinel-2 product whose band files geomap knows "
        "(..._SR_B4.TIF, ..._B04_10m.jp2). Give its raster files one by one with --raster."
    )


def test_a_quality_layer_is_a_mask_only_as_one_integer_band(tmp_path):
    """The stack's test and predict's (which sets masks aside from the inputs' order) agree: a
    QA_PIXEL resampled to float is a feature in both."""
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "crs": "EPSG:32633"}
    for dtype, expected in (("uint16", True), ("float32", False)):
        path = tmp_path / f"{dtype}" / f"{SCENE}_QA_PIXEL.TIF"
        path.parent.mkdir()
        with rasterio.open(path, "w", dtype=dtype, **profile) as dst:
            dst.write(np.full((1, 4, 4), 21824, dtype))
        assert mask_file(path) is expected
    assert not mask_file(tmp_path / "missing_QA_PIXEL.TIF")


def test_an_archive_is_hashed_once_for_all_the_bands_it_gives(tmp_path, monkeypatch):
    import geomap.workflow as workflow

    archive = tmp_path / f"{SCENE}.tar"
    with tarfile.open(archive, "w") as tar:
        for b in (2, 3):
            (tmp_path / f"b{b}").write_bytes(b"x" * 10)
            tar.add(tmp_path / f"b{b}", arcname=f"{SCENE}_SR_B{b}.TIF")
    calls = []
    real = workflow.sha256
    monkeypatch.setattr(workflow, "sha256", lambda p: calls.append(p) or real(p))
    members = [Path(f"/vsitar/{archive}/{SCENE}_SR_B{b}.TIF") for b in (2, 3)]
    records = workflow.input_records(members)
    assert calls == [archive] and records[0]["sha256"] == records[1]["sha256"]


def test_a_landsat_tar_maps_and_predicts_with_its_cloud_masked(demo_scene, tmp_path):
    """The scene's .tar as USGS delivers it: its six bands read from inside, its QA_PIXEL
    masking the cloud the demo's Landsat has, and predict given the same .tar."""
    with rasterio.open(demo_scene.rasters[0]) as src:
        profile, data = src.profile, src.read()
    profile.update(count=1, nodata=None)
    cloud = (data == 0).all(axis=0)
    data[:, cloud] = 9000  # the cloud is in the bands; only QA_PIXEL says so
    files = []
    for i, b in enumerate(range(2, 8)):
        files.append(tmp_path / f"{SCENE}_SR_B{b}.TIF")
        with rasterio.open(files[-1], "w", **profile) as dst:
            dst.write(data[i][None])
    files.append(tmp_path / f"{SCENE}_QA_PIXEL.TIF")
    with rasterio.open(files[-1], "w", **{**profile, "nodata": 1}) as dst:
        dst.write(np.where(cloud, 22280, 21824).astype("uint16")[None])
    files.append(tmp_path / f"{SCENE}_ST_CDIST.TIF")  # distance to cloud: no feature
    with rasterio.open(files[-1], "w", **profile) as dst:
        dst.write(data[0][None])
    archive = tmp_path / f"{SCENE}.tar"
    with tarfile.open(archive, "w") as tar:
        for f in files:
            tar.add(f, arcname=f.name)
            f.unlink()
    others = [str(p) for p in demo_scene.rasters[1:]]
    rasters = sum((["--raster", r] for r in [str(archive), *others]), [])
    args = ["--labels", str(demo_scene.points_gpkg), "--label-column", "lithology"]
    assert (
        main(["run", *rasters, *args, "--out", str(tmp_path / "a"), "--trees", "20", "--quiet"])
        == 0
    )
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    sources = [s["path"].rsplit("/", 1)[-1] for s in report["sources"]]
    assert sources[:6] == [f"{SCENE}_SR_B{b}.TIF" for b in range(2, 8)]
    assert len(sources) == 9 and report["masks"][0]["path"].endswith("QA_PIXEL.TIF")
    assert report["prediction"]["source_nodata_fraction"][0] == pytest.approx(
        cloud.mean(), abs=0.01
    )
    model = str(tmp_path / "a" / "model.skops")
    assert (
        main(["predict", "--model", model, *rasters, "--out", str(tmp_path / "b"), "--quiet"]) == 0
    )
    with (
        rasterio.open(tmp_path / "a" / "lithology.tif") as a,
        rasterio.open(tmp_path / "b" / "lithology.tif") as b,
    ):
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_predict_takes_from_a_product_the_bands_a_model_was_trained_on(demo_scene, tmp_path):
    """Trained on band files, the coastal SR_B1 among them, the model was given the scene's
    folder: a product gives no SR_B1 (the atmosphere's band), so it was missing on the whole
    sheet and every pixel was mapped with an input missing."""
    with rasterio.open(demo_scene.rasters[0]) as src:
        profile, data = {**src.profile, "count": 1}, src.read()
    folder = tmp_path / SCENE
    folder.mkdir()
    for b, band in zip(range(1, 8), [data[0], *data]):  # SR_B1 a copy of the blue band
        with rasterio.open(folder / f"{SCENE}_SR_B{b}.TIF", "w", **profile) as dst:
            dst.write(band[None])
    files = sorted(str(p) for p in folder.iterdir())
    others = [str(p) for p in demo_scene.rasters[1:]]
    labels = ["--labels", str(demo_scene.points_gpkg), "--label-column", "lithology"]
    given = sum((["--raster", r] for r in [*files, *others]), [])
    assert main(["run", *given, *labels, "--out", str(tmp_path / "a"), "--trees", "20"]) == 0
    product = sum((["--raster", r] for r in [str(folder), *others]), [])
    model = str(tmp_path / "a" / "model.skops")
    assert main(["predict", "--model", model, *product, "--out", str(tmp_path / "b")]) == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert not [w for w in report["warnings"] if "No raster was given" in w]
    assert (
        "The model was trained on a band that geomap leaves out of a satellite product (such as "
        f"Sentinel-2's atmospheric B01 and B09), given as files: {SCENE}_SR_B1.TIF is taken from "
        "the product too."
    ) in report["warnings"]
    with (
        rasterio.open(tmp_path / "a" / "lithology.tif") as a,
        rasterio.open(tmp_path / "b" / "lithology.tif") as b,
    ):
        np.testing.assert_array_equal(a.read(1), b.read(1))
