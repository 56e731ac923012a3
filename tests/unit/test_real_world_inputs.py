"""Inputs shaped like real deliveries: Sentinel-2 JPEG2000 bands at 10/20/60 m, single-band
Landsat files with different nodata values, and zipped-shapefile polygons as ground truth."""

import json
import zipfile

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.features import shapes
from shapely.geometry import shape

from geomap.apply import predict
from geomap.synthetic import CLASS_NAMES, ORIGIN, truth_at
from geomap.workflow import RunConfig, run

X0, Y0 = ORIGIN
EXTENT = 3000.0  # metres
SEED = 7


def _truth(res: float, pad: float = 0.0) -> tuple[np.ndarray, Affine]:
    n = int(round((EXTENT + 2 * pad) / res))
    transform = Affine(res, 0, X0 - pad, 0, -res, Y0 + pad)
    cols, rows = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
    x, y = transform @ (cols, rows)
    return truth_at(x, y, seed=SEED), transform


def _band(path, res, offset, nodata, dtype, driver="GTiff", pad=0.0, hole=False, **options):
    codes, transform = _truth(res, pad)
    rng = np.random.default_rng(int(res) + offset)
    means = rng.uniform(500, 3000, len(CLASS_NAMES))
    data = means[codes] + rng.normal(0, 150, codes.shape)
    if hole:  # a cloud: nodata in the middle of the scene
        c = codes.shape[0] // 2
        data[c - 10 : c + 10, c - 10 : c + 10] = nodata
    profile = {
        "driver": driver,
        "width": codes.shape[1],
        "height": codes.shape[0],
        "count": 1,
        "dtype": dtype,
        "crs": "EPSG:32633",
        "transform": transform,
        **options,
    }
    if nodata is not None and driver == "GTiff":
        profile["nodata"] = nodata
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data.astype(dtype)[None])
    return path


@pytest.fixture(scope="module")
def delivery(tmp_path_factory):
    d = tmp_path_factory.mktemp("delivery")
    jp2 = {"driver": "JP2OpenJPEG", "QUALITY": 100, "REVERSIBLE": "YES"}
    rasters = [
        _band(d / "T33TWN_20240611T100559_B02_10m.jp2", 10, 2, None, "uint16", **jp2),
        _band(d / "T33TWN_20240611T100559_B04_10m.jp2", 10, 4, None, "uint16", **jp2),
        _band(d / "T33TWN_20240611T100559_B11_20m.jp2", 20, 11, None, "uint16", pad=40, **jp2),
        _band(d / "T33TWN_20240611T100559_B09_60m.jp2", 60, 9, None, "uint16", pad=120, **jp2),
        _band(d / "LC09_L2SP_190027_SR_B5.TIF", 30, 5, 0, "uint16", pad=60, hole=True),
        _band(d / "LC09_L2SP_190027_ST_B10.TIF", 30, 10, -9999, "float32", pad=60),
    ]
    codes, transform = _truth(60)
    patch = np.zeros_like(codes, bool)
    patch[10:40, 5:45] = True
    polys = [
        {"lithology": CLASS_NAMES[int(v)], "geometry": shape(g)}
        for g, v in shapes(codes.astype("int16"), mask=patch, transform=transform)
    ]
    frame = gpd.GeoDataFrame(polys, crs="EPSG:32633").to_crs("EPSG:4326")
    frame.to_file(d / "old_map.shp")
    with zipfile.ZipFile(d / "old_map.zip", "w") as z:
        for ext in ("shp", "shx", "dbf", "prj", "cpg"):
            z.write(d / f"old_map.{ext}", f"old_map.{ext}")
    out = d / "map"
    report = run(RunConfig(rasters, d / "old_map.zip", "lithology", out, trees=40, block_size=128))
    return rasters, out, report


def test_grid_is_the_finest_input_and_each_source_is_reported(delivery):
    rasters, out, report = delivery
    assert report["grid"]["resolution"] == [10.0, 10.0]
    assert report["grid"]["width"] == 300
    res = {
        s["path"].split("/")[-1]: (s["resolution"][0], s["resampling"]) for s in report["sources"]
    }
    assert res["T33TWN_20240611T100559_B09_60m.jp2"] == (60.0, "bilinear")
    assert res["LC09_L2SP_190027_SR_B5.TIF"] == (30.0, "bilinear")
    nodata = {s["path"].split("/")[-1]: s["nodata"] for s in report["sources"]}
    assert (
        nodata["LC09_L2SP_190027_SR_B5.TIF"] == 0 and nodata["LC09_L2SP_190027_ST_B10.TIF"] == -9999
    )


def test_polygons_from_a_zipped_shapefile_train_the_map(delivery):
    _, out, report = delivery
    assert report["samples"]["by_kind"]["polygon"] > 500
    codes, _ = _truth(10)
    with rasterio.open(out / "lithology.tif") as src:
        mapped = src.read(1)
        names = json.loads(src.tags()["CLASS_NAMES"])
    truth = np.array(
        [names.index(CLASS_NAMES[c]) if CLASS_NAMES[c] in names else 255 for c in range(6)]
    )[codes]
    known = truth != 255
    assert (mapped[known] == truth[known]).mean() > 0.6


def test_landsat_hole_is_filled_from_other_sources_and_flagged(delivery):
    _, out, report = delivery
    with rasterio.open(out / "uncertainty.tif") as src:
        missing = src.read(3)
    with rasterio.open(out / "lithology.tif") as src:
        mapped = src.read(1)
    assert (mapped != 255).all()
    assert report["prediction"]["reduced_input_pixels"] > 0
    centre = missing[140:160, 140:160]
    assert (centre > 0).mean() > 0.5 and np.isclose(centre.max(), 1 / 6)


def test_a_band_reprocessed_with_a_declared_offset_predicts_the_same_map(delivery, tmp_path):
    """Sentinel-2 baseline 04.00 adds 1000 to every DN and declares the offset: same ground."""
    rasters, out, _ = delivery
    with rasterio.open(rasters[4]) as src:
        profile, dn = src.profile, src.read(1)
    shifted = tmp_path / rasters[4].name
    with rasterio.open(shifted, "w", **profile) as dst:
        dst.write(np.where(dn == 0, 0, dn + 1000).astype("uint16")[None])
        dst.offsets = (-1000.0,)
    given = [*rasters[:4], shifted, rasters[5]]
    report = predict(out / "model.skops", given, tmp_path / "again")
    with (
        rasterio.open(out / "lithology.tif") as a,
        rasterio.open(tmp_path / "again" / "lithology.tif") as b,
    ):
        assert (a.read(1) == b.read(1)).mean() > 0.999
    assert report["sources"][4]["scale_offset"] == [[1.0, -1000.0]]


def test_a_band_declaring_another_scale_than_at_training_is_read_as_at_training(delivery, tmp_path):
    """The next sheet's Landsat with USGS's scale declared, the training's without: each file's
    own made the bands 10,000 times apart (the sheet's accuracy 0.908 -> 0.791)."""
    rasters, out, _ = delivery
    with rasterio.open(rasters[4]) as src:
        profile, dn = src.profile, src.read()
    declared = tmp_path / rasters[4].name  # the same DN, now said to be reflectance x 1e-4
    with rasterio.open(declared, "w", **profile) as dst:
        dst.write(dn)
        dst.scales = (1e-4,)
    report = predict(out / "model.skops", [*rasters[:4], declared, rasters[5]], tmp_path / "p")
    (note,) = [w for w in report["warnings"] if "scale and offset" in w]
    assert note.startswith(
        "Raster 'LC09_L2SP_190027_SR_B5.TIF' declares the scale and offset x 0.0001 + 0, its "
        "training input none (values as stored). Read as at training, its values match"
    )
    assert report["sources"][4]["scale_offset"] is None
    assert report["sources"][4]["declared_scale_offset"] == [[1e-4, 0.0]]
    with (
        rasterio.open(out / "lithology.tif") as a,
        rasterio.open(tmp_path / "p" / "lithology.tif") as b,
    ):
        assert (a.read(1) == b.read(1)).all()


def test_landsats_qa_pixel_masks_a_cloud_at_prediction(delivery, tmp_path):
    """A bright cloud in the Landsat bands, flagged in the scene's QA_PIXEL: given with the
    bands, its pixels read as no data in both of the scene's files and are mapped from the
    other rasters (and flagged); without it, only the spectral screen stands between the map
    and the cloud's spectrum."""
    rasters, out, _ = delivery
    with rasterio.open(rasters[4]) as src:
        profile, dn = src.profile, src.read(1)
    cloud = np.zeros(dn.shape, bool)
    cloud[10:40, 60:95] = True
    cloudy = tmp_path / rasters[4].name
    with rasterio.open(cloudy, "w", **profile) as dst:
        dst.write(np.where(cloud, 9000, dn).astype("uint16")[None])
    qa = tmp_path / "LC09_L2SP_190027_QA_PIXEL.TIF"
    with rasterio.open(qa, "w", **{**profile, "nodata": 1}) as dst:
        dst.write(np.where(cloud, 22280, 21824).astype("uint16")[None])
    given = [*rasters[:4], cloudy, rasters[5]]
    masked = predict(out / "model.skops", [*given, qa], tmp_path / "masked")
    plain = predict(out / "model.skops", given, tmp_path / "plain")
    assert [m["product"] for m in masked["masks"]] == ["Landsat Collection 2 QA_PIXEL"]
    assert [p.split("/")[-1] for p in masked["masks"][0]["masks"]] == [r.name for r in given[4:]]
    assert plain["masks"] == []
    codes, _ = _truth(10)
    under = (slice(24, 114), slice(174, 279))  # the cloud's 30 m pixels on the 10 m grid
    right = {}
    for name in ("masked", "plain"):
        with rasterio.open(tmp_path / name / "lithology.tif") as src:
            mapped, names = src.read(1), json.loads(src.tags()["CLASS_NAMES"])
        truth = np.array([names.index(n) if n in names else 255 for n in CLASS_NAMES])[codes]
        right[name] = (mapped == truth)[under].mean()
    with rasterio.open(tmp_path / "masked" / "uncertainty.tif") as src:
        assert (src.read(3)[under][5:-5, 5:-5] > 0).all()  # two of six inputs flagged
    assert right["masked"] > right["plain"], right  # 0.95 against 0.92 (the screen's)
    thermal = [f["source_nodata_fraction"][5] for f in (masked["prediction"], plain["prediction"])]
    assert thermal[0] == pytest.approx(90 * 105 / 300**2, abs=0.005) and thermal[1] == 0
