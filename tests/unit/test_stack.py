import re

import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.warp import transform_bounds
from rasterio.windows import Window

from geomap.errors import InputDataError, MissingFileError, RasterError
from geomap.grid import choose_grid
from geomap.sources import inspect_raster, nodata_values, parse_nodata
from geomap.stack import PartialStack, RasterStack

T30 = Affine(30.0, 0, 500000.0, 0, -30.0, 5200000.0)


def ramp(rows, cols, dtype="float32"):
    return np.add.outer(np.arange(rows), np.arange(cols) * 10).astype(dtype)


def test_default_grid_is_first_raster_when_finest_and_inside(raster_factory):
    a = raster_factory("a.tif", ramp(40, 50), transform=T30)
    coarse = Affine(90.0, 0, 499000.0, 0, -90.0, 5201000.0)
    b = raster_factory("b.tif", ramp(30, 30), transform=coarse)
    with RasterStack.open([a, b]) as stack:
        assert stack.grid.transform == T30
        assert stack.grid.shape == (40, 50)
        assert stack.band_names == ("a", "b")
        assert stack.resampling == ("bilinear", "bilinear")
        np.testing.assert_array_equal(stack.read(Window(0, 0, 50, 40))[0], ramp(40, 50))


def test_other_crs_is_warped_bilinear(raster_factory):
    a = raster_factory("a.tif", np.zeros((40, 40), "float32"), transform=T30)
    # same area in WGS84, values = longitude so bilinear warping keeps a smooth ramp
    with rasterio.open(a) as src:
        from rasterio.warp import transform_bounds

        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    pad = 0.01
    cols = 60
    lon = np.linspace(w - pad, e + pad, cols)
    data = np.tile(lon, (60, 1)).astype("float64")
    tr = Affine((e - w + 2 * pad) / cols, 0, w - pad, 0, -(n - s + 2 * pad) / 60, n + pad)
    b = raster_factory("b.tif", data, transform=tr, crs="EPSG:4326")
    with RasterStack.open([a, b]) as stack:
        lonband = stack.read(Window(0, 0, 40, 40))[1]
    assert np.isfinite(lonband).all()
    assert (np.diff(lonband, axis=1) > 0).all()  # longitude increases eastwards
    assert lonband.min() > w - pad and lonband.max() < e + pad


def test_finer_source_is_averaged_onto_a_coarser_grid(raster_factory):
    a = raster_factory("a.tif", np.ones((40, 40), "float32"), transform=T30)
    with RasterStack.open([a], resolution=60.0) as stack:
        assert stack.resampling == ("average",)
        assert stack.grid.shape == (20, 20)


def test_nodata_and_halo_outside_grid_are_nan(raster_factory):
    data = ramp(20, 20, "uint16")
    data[5, 5] = 0
    a = raster_factory("a.tif", data, nodata=0)
    with RasterStack.open([a]) as stack:
        block = stack.read(Window(0, 0, 10, 10), halo=2)
    assert block.shape == (1, 14, 14)
    assert np.isnan(block[0, :2]).all() and np.isnan(block[0, :, :2]).all()
    assert np.isnan(block[0, 7, 7])
    assert np.isnan(block[0, 2, 2])  # the value 0 at (0, 0) is nodata too
    assert block[0, 3, 4] == data[1, 2]


def test_band_names_come_from_descriptions_or_file_names(raster_factory):
    a = raster_factory("scene.tif", np.ones((2, 10, 10), "float32"), descriptions=["red", ""])
    b = raster_factory("other.tif", np.ones((1, 10, 10), "float32"), descriptions=["red"])
    with RasterStack.open([a, b]) as stack:
        assert stack.band_names == ("scene:red", "scene_b2", "other:red")
        assert list(stack.band_source) == [0, 0, 1]


def test_jpeg2000_and_vrt_sources_are_read(raster_factory, tmp_path):
    data = (ramp(64, 64) + 1).astype("uint16")
    jp2 = raster_factory("b04.jp2", data, driver="JP2OpenJPEG", QUALITY=100, REVERSIBLE="YES")
    tif = raster_factory("a.tif", data)
    vrt = tmp_path / "a.vrt"
    with rasterio.open(tif) as src:
        from rasterio.shutil import copy

        copy(src, vrt, driver="VRT")
    with RasterStack.open([tif, jp2, vrt]) as stack:
        block = stack.read(Window(0, 0, 64, 64))
    np.testing.assert_array_equal(block[0], block[2])
    np.testing.assert_array_equal(block[1], block[0])


def test_grid_can_be_reprojected(raster_factory):
    a = raster_factory("a.tif", ramp(40, 40))
    with RasterStack.open([a], crs="EPSG:3857") as stack:
        assert stack.grid.crs.to_epsg() == 3857
        assert np.isfinite(stack.read(Window(5, 5, 10, 10))).all()


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match="does not exist"):
        RasterStack.open([tmp_path / "nope.tif"])


def test_not_a_raster(tmp_path):
    p = tmp_path / "notes.tif"
    p.write_text("this is not a raster")
    with pytest.raises(RasterError, match="cannot read it as a raster") as info:
        inspect_raster(p)
    assert "format.)" not in str(info.value) and "format). Give a GeoTIFF" in str(info.value)


def test_empty_file(tmp_path):
    p = tmp_path / "empty.tif"
    p.touch()
    with pytest.raises(RasterError, match="empty"):
        inspect_raster(p)


def test_truncated_raster(raster_factory):
    p = raster_factory("big.tif", np.random.default_rng(0).random((300, 300)).astype("float32"))
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(RasterError, match="the file is cut short or damaged") as info:
        inspect_raster(p)
    assert "(GDAL: TIFF" in str(info.value)  # GDAL's words, not rasterio's "See previous ..."
    assert "See previous exception" not in str(info.value)
    assert "4294967295" not in str(info.value)  # GDAL's -1 row and column, read unsigned


@pytest.mark.parametrize(
    ("words", "said"),
    [
        ("utm zone 56 south", "UTM zone 56S on WGS 84, give EPSG:32756"),
        ("UTM33", "UTM zone 33 on WGS 84, give EPSG:32633 north of the equator, EPSG:32733 south"),
        ("Lambert 93", None),
    ],
)
def test_a_reference_crs_in_words_is_named_with_what_to_give(raster_factory, words, said):
    a = raster_factory("a.tif", ramp(10, 10))
    with pytest.raises(RasterError, match=f"^The reference CRS '{words}' is not understood") as e:
        RasterStack.open([a], crs=words)
    assert (said in str(e.value)) if said else "If it means" not in str(e.value)


def test_raster_without_crs(raster_factory):
    p = raster_factory("nocrs.tif", ramp(10, 10), crs=None)
    with pytest.raises(RasterError, match="no coordinate reference system"):
        inspect_raster(p)
    # beside rasters with one: the CRS in which its corners fall on them (a .asc without .prj)
    k = raster_factory("K.tif", ramp(10, 10))
    with pytest.raises(RasterError) as info:
        RasterStack.open([k, p])
    assert str(info.value).endswith(
        "Its corners (x 500,000 to 500,300, y 5,199,700 to 5,200,000) fall on 'K.tif' read in "
        "that raster's CRS, EPSG:32633 (WGS 84 / UTM zone 33N): it is likely in that CRS, or "
        "another of the same zone; if so, --crs EPSG:32633."
    )
    far = raster_factory("far.tif", ramp(10, 10), crs=None, transform=Affine(1, 0, 0, 0, -1, 10))
    with pytest.raises(RasterError, match=r"Its corners read x 0 to 10, y 0 to 10\.$"):
        RasterStack.open([k, far])


def test_all_nan_band(raster_factory):
    data = np.ones((2, 10, 10), "float32")
    data[1] = np.nan
    p = raster_factory("nan.tif", data, descriptions=["good", "cloudy"])
    with pytest.raises(RasterError, match=r"band 2 \(cloudy\) holds no valid value.*-b for"):
        inspect_raster(p)
    p = raster_factory("empty.tif", np.full((10, 10), np.nan, "float32"))
    with pytest.raises(RasterError, match=r"Leave this raster out, or fix its nodata value\.$"):
        inspect_raster(p)  # told to remove 'that band' with gdal_translate -b (user pass)
    cube = np.ones((12, 10, 10), "float32")
    cube[[3, 4, 5, 9]] = np.nan  # water-vapour bands of a hyperspectral cube: named at once
    p = raster_factory("cube.tif", cube)
    with pytest.raises(RasterError, match=r"4 bands \(4-6, 10; the first is band 4 \(band 4\)"):
        inspect_raster(p)


def test_a_small_valid_patch_missed_by_the_decimated_check_is_not_called_empty(raster_factory):
    data = np.full((1, 1500, 1500), np.nan, "float32")
    data[0, 701:704, 701:704] = 5.0  # 3 x 3 pixels between the samples of a 256-px decimation
    p = raster_factory("patch.tif", data, tiled=True, blockxsize=256, blockysize=256)
    with rasterio.open(p) as src:
        decimated = src.read(1, out_shape=(256, 256))
    assert np.isnan(decimated).all()  # the case this test is about
    assert inspect_raster(p).count == 1


def test_rasters_that_do_not_overlap(raster_factory):
    a = raster_factory("a.tif", ramp(10, 10))
    far = Affine(30.0, 0, 600000.0, 0, -30.0, 5200000.0)
    b = raster_factory("b.tif", ramp(10, 10), transform=far)
    with pytest.raises(RasterError, match="do not overlap") as info:
        choose_grid([inspect_raster(a), inspect_raster(b)])
    assert "a.tif" in str(info.value) and "b.tif" in str(info.value)
    assert "lies apart" not in str(info.value)  # of two, either may be the one that is off
    c = raster_factory("c.tif", ramp(10, 10))
    with pytest.raises(RasterError) as info:
        choose_grid([inspect_raster(a), inspect_raster(b), inspect_raster(c)])
    assert (
        "'b.tif' lies apart from the others, which do overlap: its centre is 100 km east of "
        "theirs. Leave it out, or check its CRS and georeferencing."
    ) in str(info.value)


def test_two_tiles_side_by_side_are_named_together(raster_factory):
    """A DEM given as two tiles: every band 'lay apart' in turn, and leaving it out blamed the
    next one."""
    bands = [raster_factory(f"B0{i}.tif", ramp(10, 20)) for i in (2, 3, 4)]
    east = Affine(30.0, 0, 500298.0, 0, -30.0, 5200000.0)  # 2 m over the first, as exported
    tiles = [
        raster_factory("dem_tile1.tif", ramp(10, 10)),
        raster_factory("dem_tile2.tif", ramp(10, 10), transform=east),
    ]
    with pytest.raises(RasterError) as info:
        choose_grid([inspect_raster(p) for p in [*bands, *tiles]])
    assert (
        "'dem_tile1.tif' and 'dem_tile2.tif' do not overlap each other, and the map needs every "
        "raster at each pixel. If they are tiles of one survey side by side, mosaic them into "
        "one raster first (in QGIS: Raster > Miscellaneous > Merge; or gdalbuildvrt mosaic.vrt "
        "dem_tile1.tif dem_tile2.tif, and give mosaic.vrt)"
    ) in str(info.value)
    assert "lies apart" not in str(info.value)


def test_windows_cover_the_grid_once(raster_factory):
    a = raster_factory("a.tif", ramp(70, 45))
    with RasterStack.open([a]) as stack:
        seen = np.zeros(stack.grid.shape, int)
        for w in stack.grid.windows(32):
            seen[w.row_off : w.row_off + w.height, w.col_off : w.col_off + w.width] += 1
    assert (seen == 1).all()


def test_sources_on_the_grid_are_read_directly_like_a_warp(raster_factory):
    data = ramp(50, 60, "uint16")
    data[10:20, 30:40] = 7
    a = raster_factory("a.tif", data, nodata=7)
    shifted = Affine(30.0, 0, 500000.0 + 30 * 5, 0, -30.0, 5200000.0 - 30 * 3)
    b = raster_factory("b.tif", ramp(40, 40), transform=shifted)  # aligned, offset by whole pixels
    with RasterStack.open([a, b]) as stack:
        assert all(type(r).__name__ == "_DirectReader" for r in stack._readers)
        direct = stack.read(Window(0, 0, 40, 30), halo=3)
        with rasterio.open(a) as ds, rasterio.open(b) as ds2:
            from rasterio.vrt import WarpedVRT

            warped = []
            for d in (ds, ds2):
                with WarpedVRT(
                    d,
                    crs=stack.grid.crs,
                    transform=stack.grid.transform,
                    width=stack.grid.width,
                    height=stack.grid.height,
                    nodata=np.nan,
                    dtype="float32",
                    resampling=1,
                ) as vrt:
                    warped.append(vrt.read(1, window=Window(0, 0, 40, 30)))
    np.testing.assert_array_equal(direct[0, 3:-3, 3:-3], warped[0])
    np.testing.assert_array_equal(direct[1, 3:-3, 3:-3], warped[1])
    assert np.isnan(direct[0, 3 + 10, 3 + 35 - 5])  # nodata 7 inside the hole


def test_internal_mask_without_nodata_is_nan(tmp_path):
    path = tmp_path / "masked.tif"
    profile = {
        "driver": "GTiff",
        "width": 20,
        "height": 20,
        "count": 1,
        "dtype": "uint16",
        "crs": "EPSG:32633",
        "transform": T30,
    }
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((1, 20, 20), 5, "uint16"))
        mask = np.full((20, 20), 255, "uint8")
        mask[:5] = 0
        dst.write_mask(mask)
    with RasterStack.open([path]) as stack:
        block = stack.read(Window(0, 0, 20, 20))
    assert np.isnan(block[0, :5]).all() and (block[0, 5:] == 5).all()


def test_overlap_smaller_than_a_pixel_is_refused(raster_factory):
    a = raster_factory("a.tif", ramp(10, 10))
    b = raster_factory(
        "b.tif", ramp(10, 10), transform=Affine(30, 0, 500000 + 30 * 9.5, 0, -30, 5200000)
    )
    with pytest.raises(RasterError, match="do not overlap by a whole pixel"):
        RasterStack.open([a, b])


def test_a_south_up_raster_is_read_the_right_way_up_and_a_rotated_one_refused(raster_factory):
    north = raster_factory("north.tif", ramp(10, 10))  # its first row at 5200000, the top
    up = Affine(30, 0, 500000, 0, 30, 5200000 - 300)  # first row at the bottom
    south = raster_factory("south.tif", ramp(10, 10)[::-1], transform=up)
    with RasterStack.open([north, south]) as stack:
        assert stack.sources[1].bounds == stack.sources[0].bounds
        block = stack.read(Window(0, 0, 10, 10))
    np.testing.assert_allclose(block[1], block[0])
    turned = Affine(30, 5, 500000, 5, -30, 5200000)
    p = raster_factory("turned.tif", ramp(10, 10), transform=turned)
    with pytest.raises(RasterError, match="it is rotated"):
        inspect_raster(p)


def test_grid_origin_can_be_imposed(raster_factory):
    a = raster_factory("a.tif", ramp(20, 20), transform=Affine(30, 0, 500010, 0, -30, 5200007))
    grid = choose_grid([inspect_raster(a)], origin=(500000.0, 5200000.0))
    assert (grid.transform.c - 500000) % 30 == 0 and (5200000 - grid.transform.f) % 30 == 0


def test_the_grid_snaps_to_a_source_on_its_crs_and_pixel_size_wherever_it_is_listed(
    raster_factory,
):
    coarse = raster_factory(
        "rad.tif", ramp(100, 100), crs="EPSG:4326", transform=Affine(0.001, 0, 15, 0, -0.001, 47)
    )
    fine = raster_factory(
        "landsat.tif", ramp(40, 40), transform=Affine(30, 0, 500015, 0, -30, 5205015)
    )
    with RasterStack.open([coarse, fine], crs="EPSG:32633", resolution=30) as stack:
        t = stack.grid.transform
        assert (t.c - 500015) % 30 == pytest.approx(0) and (5205015 - t.f) % 30 == pytest.approx(0)
        block = stack.read(Window(0, 0, stack.grid.width, stack.grid.height))
    with rasterio.open(fine) as src:  # the Landsat values as they are, not resampled
        col, row = ~src.transform @ (t.c, t.f)
        np.testing.assert_array_equal(
            block[1, 0, :5], src.read(1)[int(row), int(col) : int(col) + 5]
        )


def test_a_geographic_dem_a_little_finer_once_reprojected_keeps_the_landsat_grid(raster_factory):
    """A 1" tile is 26 x 31 m on the ground at 32 S, 28.25 m square reprojected to UTM 50S."""
    landsat = Affine(30, 0, 350000, 0, -30, 6460000)
    bands = raster_factory("SR_B4.TIF", ramp(60, 60), crs="EPSG:32750", transform=landsat)
    arcsec = 1 / 3600
    with rasterio.open(bands) as src:
        w, s, e, n = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    dem = raster_factory(
        "s33_e115_1arc_v3.tif",
        ramp(120, 120),
        crs="EPSG:4326",
        transform=Affine(arcsec, 0, w - 0.005, 0, -arcsec, n + 0.005),
    )
    with RasterStack.open([bands, dem]) as stack:
        assert stack.grid.res == (30.0, 30.0)
        assert stack.resampling == ("bilinear", "average")
    with RasterStack.open([dem, bands], crs="EPSG:32750") as stack:  # the DEM listed first
        assert stack.grid.res == (30.0, 30.0)
    with RasterStack.open([dem], crs="EPSG:32750") as stack:  # the DEM alone: its own size
        assert 25 < stack.grid.res[0] < 29.5


def test_a_resolution_larger_than_the_footprint_says_it_is_in_the_crs_units(raster_factory):
    p = raster_factory(
        "rad.tif", ramp(30, 30), crs="EPSG:4326", transform=Affine(0.001, 0, 15, 0, -0.001, 47)
    )
    with pytest.raises(RasterError, match=r"--resolution 30\) is larger .* degrees here.*--crs"):
        RasterStack.open([p], resolution=30)
    # two rasters whose pixels are not aligned: the common footprint's edge, snapped to a
    # 30-degree pixel, passed the other edge, and the message said they did not overlap
    q = raster_factory(
        "dem.tif",
        ramp(30, 30),
        crs="EPSG:4326",
        transform=Affine(0.001, 0, 15.0123, 0, -0.001, 46.9877),
    )
    with pytest.raises(RasterError, match=r"larger than the rasters' common footprint \(0.0177 x"):
        RasterStack.open([p, q], resolution=30)


def test_undeclared_nodata_can_be_given(raster_factory):
    data = ramp(10, 10, "uint16") + 1
    data[:, :3] = 0  # Sentinel-2 JPEG2000 style: 0 outside the orbit, not declared
    p = raster_factory("b02.tif", data)
    with RasterStack.open([p]) as stack:
        (note,) = stack.notes()
        assert note.startswith("Raster 'b02.tif': 30.0% of its pixels are exactly 0 and it")
        assert "pass --nodata 0" in note
    with RasterStack.open([p], nodata=0) as stack:
        block = stack.read(Window(0, 0, 10, 10))
        assert stack.sources[0].nodata == 0 and stack.notes() == []
    assert np.isnan(block[0, :, :3]).all() and np.isfinite(block[0, :, 3:]).all()
    signed = raster_factory("tmi.tif", (data.astype("float32") - 50)[None, 0])  # zeros, negatives
    with RasterStack.open([signed]) as stack:
        assert stack.notes() == []


def test_a_dummy_of_1e30_is_read_as_no_data_even_undeclared_and_noted(raster_factory):
    tmi = ramp(20, 20) + 55000.0
    tmi[:, 14:] = 1e30  # Geosoft's dummy, no nodata declared
    p = raster_factory("tmi.tif", tmi, transform=Affine(60, 0, 500000, 0, -60, 5200000))
    fine = raster_factory("b.tif", ramp(40, 40))  # 30 m: the 60 m grid is warped bilinearly
    with RasterStack.open([fine, p]) as stack:
        (note,) = stack.notes()
        block = stack.read(Window(0, 0, 40, 40))
    assert note.startswith("Raster 'tmi.tif': 30.0% of its pixels hold 1e+30, a dummy")
    assert "read as no data" in note
    values = block[1][np.isfinite(block[1])]
    assert values.max() < 56000 and np.isnan(block[1, :, 30:]).all()  # no blur of the dummy


def test_an_undeclared_survey_dummy_is_named_with_the_nodata_to_give(raster_factory):
    tmi = ramp(20, 20) - 200.0
    tmi[:4] = -99999.0
    p = raster_factory("tmi.tif", tmi)
    with RasterStack.open([p]) as stack:
        (note,) = stack.notes()
    assert "20.0% of its pixels hold -99999 and it declares no nodata value" in note
    assert "pass --nodata -99999" in note
    with RasterStack.open([p], nodata=-99999) as stack:
        assert stack.notes() == []
        assert np.isnan(stack.read(Window(0, 0, 20, 20))[0, :4]).all()
    k = raster_factory("k.tif", ramp(20, 20) + 1)  # another value for every raster: still said
    with RasterStack.open([p, k], nodata=0) as stack:
        (note,) = [n for n in stack.notes() if "-99999" in n]
    assert "20.0% of its pixels hold -99999, not the no-data value 0 given for it" in note
    assert "pass --nodata tmi.tif=-99999" in note
    declared = raster_factory("declared.tif", tmi, nodata=-99999.0)
    with RasterStack.open([declared]) as stack:
        assert stack.notes() == []


def test_a_survey_dummy_on_few_pixels_is_named_when_far_beyond_the_values(raster_factory):
    """A flight-line gap of -99999 on 0.47% of a radiometric grid (under FILL_SHARE) was read as
    measurements, unsaid: it put 56% of the gap's strip outside the area of applicability."""
    k = ramp(100, 100) / 100.0 + 0.5  # potassium, 0.5 to 1.5%
    k[37, :47] = -99999.0  # 0.47%
    p = raster_factory("radiometrics_k.tif", k)
    with RasterStack.open([p]) as stack:
        (note,) = stack.notes()
    assert "0.5% of its pixels hold -99999 and it declares no nodata value" in note
    assert "pass --nodata -99999" in note
    k[37, :47] = k[0, 0]
    k[5, 5:7] = -99999.0  # 2 pixels of 10,000
    with RasterStack.open([raster_factory("k_few.tif", k)]) as stack:
        (note,) = stack.notes()
    assert "under 0.1% of its pixels hold -99999" in note
    tmi = ramp(100, 100) * 20 - 600.0  # -600 to 1380 nT: a -9999 on a few pixels may be a value
    tmi[37, :47] = -9999.0
    with RasterStack.open([raster_factory("tmi.tif", tmi)]) as stack:
        assert stack.notes() == []


def test_a_band_of_one_value_is_named(raster_factory):
    """A six-band export whose SWIR band was written as its fill value everywhere."""
    bands = np.stack([ramp(20, 20) + 100.0 * i for i in range(3)])
    bands[2] = 7.0
    p = raster_factory("scene.tif", bands, descriptions=["red", "nir", "swir1"])
    with RasterStack.open([p]) as stack:
        (note,) = stack.notes()
    assert note.startswith("Raster 'scene.tif': band 'swir1' (7) holds one value wherever it")
    with RasterStack.open([raster_factory("fine.tif", ramp(20, 20))]) as stack:
        assert stack.notes() == []


LANDSAT = "LC09_L2SP_112075_20240315_20240316_02_T1"


def test_a_quality_band_that_is_no_mask_is_named(raster_factory):
    """Landsat's QA_RADSAT, saturation bit flags, was taken as one more band and mixed by
    resampling."""
    flags = np.where(ramp(20, 20) > 200, 0, 4).astype("uint16")
    qa = raster_factory(f"{LANDSAT}_QA_RADSAT.TIF", flags)
    red = raster_factory(f"{LANDSAT}_SR_B4.TIF", ramp(20, 20))
    with RasterStack.open([red, qa]) as stack:
        (note,) = [n for n in stack.notes() if "quality or mask layer" in n]
    assert note.startswith(
        f"Raster '{LANDSAT}_QA_RADSAT.TIF' looks like a quality or mask layer, not a measurement "
        f"of the ground (its band '{LANDSAT}_QA_RADSAT' has 'QA' in its name)"
    )
    assert "Leave it out" in note


def test_landsats_temperature_intermediates_given_as_rasters_are_named(raster_factory):
    """A scene's *.TIF took ST_CDIST, the distance to the nearest cloud, as a feature."""
    red = raster_factory(f"{LANDSAT}_SR_B4.TIF", ramp(20, 20) + 1)
    cdist = raster_factory(f"{LANDSAT}_ST_CDIST.TIF", ramp(20, 20, "int16"))
    temperature = raster_factory(f"{LANDSAT}_ST_B10.TIF", ramp(20, 20, "uint16") + 40000)
    with RasterStack.open([red, cdist, temperature]) as stack:
        notes = [n for n in stack.notes() if "not a measurement of the ground" in n]
    assert notes == [
        f"Raster '{LANDSAT}_ST_CDIST.TIF' is Landsat's ST_CDIST layer, the distance to the "
        "nearest cloud, not a measurement of the ground: the map would follow the clouds and the "
        "atmosphere of that day. Leave it out (the scene's ST_B10 or ST_B6 is its surface "
        "temperature; give the scene's folder or .tar to have the right files taken)."
    ]


def test_landsats_qa_pixel_masks_the_clouds_of_its_own_scene(raster_factory):
    """Given with the scene's bands, QA_PIXEL was one more feature: its cloud, shadow and snow
    bits now read as no data in that scene's bands only, and it is no feature."""
    flags = np.full((20, 20), 21824, "uint16")  # clear land
    flags[2:6, 2:6] = 22280  # cloud (bit 3) and its confidences
    flags[10:12, 10:14] = 21824 | 16  # cloud shadow
    flags[15, 15] = 21824 | 32  # snow
    flags[18, 0] = 1  # fill, which USGS declares as the layer's no data
    qa = raster_factory(f"{LANDSAT}_QA_PIXEL.TIF", flags, nodata=1)
    bands = [
        raster_factory(f"{LANDSAT}_SR_B{b}.TIF", ramp(20, 20, "uint16") + 7000) for b in (2, 4)
    ]
    other = raster_factory("LC08_L2SP_112075_20240307_20240308_02_T1_SR_B4.TIF", ramp(20, 20) + 1)
    k = raster_factory("radiometrics_K.tif", ramp(20, 20))
    with RasterStack.open([*bands, qa, other, k]) as stack:
        assert [s.path.name for s in stack.sources] == [p.name for p in (*bands, other, k)]
        assert "QA_PIXEL" not in " ".join(stack.band_names)
        block = stack.read(Window(0, 0, 20, 20))
        described = stack.describe()["masks"]
        notes = stack.notes()
    hidden = np.zeros((20, 20), bool)
    hidden[2:6, 2:6] = hidden[10:12, 10:14] = hidden[15, 15] = hidden[18, 0] = True
    for band in block[:2]:  # the bands' values under the fill (no no-data declared) are hidden
        np.testing.assert_array_equal(np.isnan(band), hidden)
    assert np.isfinite(block[2:]).all()  # another acquisition and the radiometrics: untouched
    assert described == [
        {
            "path": str(qa),
            "product": "Landsat Collection 2 QA_PIXEL",
            "flags": "fill, cloud, dilated cloud, cirrus, cloud shadow or snow",
            "masks": [str(p) for p in bands],
        }
    ]
    assert (
        f"Raster '{LANDSAT}_QA_PIXEL.TIF' is a Landsat Collection 2 QA_PIXEL layer: the pixels it "
        "flags (fill, cloud, dilated cloud, cirrus, cloud shadow or snow) read as no data in the "
        f"2 raster(s) of its scene ({LANDSAT}_SR_B2.TIF, {LANDSAT}_SR_B4.TIF)"
    ) in " ".join(notes)
    assert not [n for n in notes if "quality or mask layer" in n]


def test_sentinel2s_scene_classification_masks_its_bands_at_their_own_resolution(
    raster_factory,
):
    """SCL is at 20 m: each 10 m pixel takes the class of the 20 m pixel it lies in."""
    scl = np.full((5, 5), 4, "uint8")  # vegetation
    scl[1, 1], scl[3, 2], scl[0, 4] = 9, 3, 6  # cloud, cloud shadow, water (not hidden)
    coarse = Affine(20.0, 0, 500000.0, 0, -20.0, 5200000.0)
    fine = Affine(10.0, 0, 500000.0, 0, -10.0, 5200000.0)
    name = "T33TWM_20230612T100031"
    mask = raster_factory(f"{name}_SCL_20m.tif", scl, transform=coarse)
    red = raster_factory(f"{name}_B04_10m.tif", ramp(10, 10, "uint16") + 1000, transform=fine)
    with RasterStack.open([red, mask]) as stack:
        assert stack.grid.res == (10.0, 10.0)
        hidden = np.isnan(stack.read(Window(0, 0, 10, 10))[0])
    expected = np.zeros((10, 10), bool)
    expected[2:4, 2:4] = expected[6:8, 4:6] = True
    np.testing.assert_array_equal(hidden, expected)


def test_a_quality_layer_of_no_scene_given_is_left_out_and_alone_is_refused(raster_factory):
    qa = raster_factory(f"{LANDSAT}_QA_PIXEL.TIF", np.full((20, 20), 22280, "uint16"))
    red = raster_factory("LC08_L2SP_112075_20240307_20240308_02_T1_SR_B4.TIF", ramp(20, 20) + 1)
    with RasterStack.open([red, qa]) as stack:
        assert [s.path.name for s in stack.sources] == [red.name]
        assert np.isfinite(stack.read(Window(0, 0, 20, 20))).all()
        (note,) = [n for n in stack.notes() if "QA_PIXEL.TIF" in n]
    assert "no other raster's file name gives its scene" in note and "left out" in note
    with pytest.raises(RasterError, match=r"QA_PIXEL.TIF'?: quality layers .* nothing is left"):
        RasterStack.open([qa])


def test_a_products_fill_value_is_no_data_when_its_file_declares_none(raster_factory):
    """USGS's Landsat Collection 2 Level-2 GeoTIFFs and Sentinel-2's band files fill with 0 and
    often declare nothing: used as data, a scene's edge and cloud mask mapped 0.45 right."""
    data = ramp(20, 20, "uint16") + 7000
    data[:, :5] = 0
    landsat = [
        raster_factory(f"LC09_L2SP_112075_20240315_20240316_02_T1_SR_B{b}.TIF", data)
        for b in (2, 3)
    ]
    s2 = raster_factory("T33TXM_20230612T100031_B02_10m.tif", data)
    sen2cor_2_4 = raster_factory("L2A_T33TXM_20170612T100031_B03_10m.tif", data)
    plain = raster_factory("B02.tif", data)  # no product in the name: 0 stays a value
    with RasterStack.open([*landsat, s2, sen2cor_2_4, plain]) as stack:
        assert [s.nodata for s in stack.sources] == [0.0, 0.0, 0.0, 0.0, None]
        assert np.isnan(stack.read(Window(0, 0, 20, 20))[:4, :, :5]).all()
        notes = stack.notes()
    assert (
        "Rasters 'LC09_L2SP_112075_20240315_20240316_02_T1_SR_B2.TIF', "
        "'LC09_L2SP_112075_20240315_20240316_02_T1_SR_B3.TIF' declare no no-data value; named as "
        "USGS Landsat Collection 2 Level-2 band files, whose fill value is 0, their 0 is read as "
        "no data (a no-data value given for a file reads it otherwise)."
    ) in notes
    assert (
        "Rasters 'T33TXM_20230612T100031_B02_10m.tif', 'L2A_T33TXM_20170612T100031_B03_10m.tif' "
        "declare no no-data value; named as Sentinel-2 band files"
    ) in " ".join(notes)
    assert any("'B02.tif'" in n and "--nodata 0" in n for n in notes)  # the undeclared-0 warning
    with RasterStack.open(landsat, raster_nodata={landsat[0].name: 1}) as stack:
        assert [s.nodata for s in stack.sources] == [1.0, 0.0]


def test_a_sentinel2_product_from_baseline_04_00_is_read_without_its_undeclared_offset(
    raster_factory,
):
    """ESA adds 1000 to every value from baseline 04.00 and its band files do not say so: a
    2021 product (N0214) beside a model trained on a 2024 one (N0510) mapped 0.725 right."""
    values = ramp(20, 20, "uint16") + 500
    old = "S2B_MSIL2A_20210105T143729_N0214_R096_T19HCD_20210105T171845.SAFE"
    new = "S2B_MSIL2A_20240105T143729_N0510_R096_T19HCD_20240105T171845.SAFE"
    band = "IMG_DATA/R10m/T19HCD_{}T143729_B02_10m.tif"
    before = raster_factory(f"{old}/GRANULE/{band.format('20210105')}", values)
    after = raster_factory(f"{new}/GRANULE/{band.format('20240105')}", values + 1000)
    with RasterStack.open([before]) as a, RasterStack.open([after]) as b:
        window = Window(0, 0, 20, 20)
        np.testing.assert_array_equal(a.read(window), b.read(window))
        assert not [n for n in a.notes() if "baseline" in n]
        (note,) = [n for n in b.notes() if "baseline" in n]
    assert note.startswith(
        "Raster 'T19HCD_20240105T143729_B02_10m.tif' is a band file of a Sentinel-2 product of "
        "processing baseline 05.10, to which ESA adds 1000"
    )


def test_a_float32_survey_dummy_with_decimals_is_found(raster_factory):
    """-99999.99 in float32 is -99999.9921875: compared in float64 it was never a dummy."""
    tmi = (ramp(20, 20) - 200.0).astype("float32")
    tmi[:4] = -99999.99
    p = raster_factory("tmi32.tif", tmi)
    with RasterStack.open([p]) as stack:
        (note,) = stack.notes()
    assert "hold -99999.99 and it declares no nodata value" in note
    with RasterStack.open([p], nodata=-99999.99) as stack:
        assert stack.notes() == []
        assert np.isnan(stack.read(Window(0, 0, 20, 20))[0, :4]).all()


def test_a_band_of_dummies_only_is_refused(raster_factory):
    p = raster_factory("empty.tif", np.full((10, 10), -1e32, "float32"))
    with pytest.raises(RasterError, match="holds no valid value.*dummy"):
        RasterStack.open([p])


def _mosaic_vrt(path, *nodata_per_band, types=()):
    """A VRT over tile.tif with one band per value (None: no NoDataValue), UInt16 or ``types``."""
    bands = "".join(
        f'<VRTRasterBand dataType="{types[i - 1] if types else "UInt16"}" band="{i}">'
        + ("" if v is None else f"<NoDataValue>{v}</NoDataValue>")
        + '<SimpleSource><SourceFilename relativeToVRT="1">tile.tif</SourceFilename>'
        "<SourceBand>1</SourceBand></SimpleSource></VRTRasterBand>"
        for i, v in enumerate(nodata_per_band, start=1)
    )
    path.write_text(
        '<VRTDataset rasterXSize="10" rasterYSize="10"><SRS>EPSG:32633</SRS>'
        f"<GeoTransform>500000, 30, 0, 5200000, 0, -30</GeoTransform>{bands}</VRTDataset>"
    )
    return path


def test_a_vrt_of_bands_of_different_types_or_no_data_values_is_refused(raster_factory, tmp_path):
    """gdalbuildvrt -separate of an int16 DEM and float32 magnetics crashed with a traceback
    ("more than one 'dtype' found"); with one no-data value per raster read, the second band's
    fill would have been read as measurements."""
    raster_factory("tile.tif", ramp(10, 10, "uint16") + 1)
    fix = "Give the files it stacks as rasters of their own: geomap aligns them itself"
    mixed = _mosaic_vrt(tmp_path / "types.vrt", None, None, types=("Int16", "Float32"))
    with pytest.raises(RasterError, match=r"types.vrt'.*different data types \(int16, float32\),"):
        RasterStack.open([mixed])
    fills = _mosaic_vrt(tmp_path / "fills.vrt", 0, 65535)
    with pytest.raises(RasterError, match=r"different no-data values \(0.0, 65535.0\).*" + fix):
        RasterStack.open([fills])
    with RasterStack.open([_mosaic_vrt(tmp_path / "one.vrt", 0, None, 0)]) as stack:
        assert stack.sources[0].nodata == 0  # one value declared, or the same: read as before


def test_a_vrt_nodata_its_band_type_cannot_hold_is_flagged(raster_factory, tmp_path):
    data = ramp(10, 10, "uint16") + 1
    data[:, :4] = 0  # where the mosaic has no tile
    raster_factory("tile.tif", data)
    vrt = _mosaic_vrt(tmp_path / "mosaic.vrt", -9999)
    with RasterStack.open([vrt]) as stack:
        assert stack.sources[0].nodata is None  # GDAL dropped it
        ignored = [n for n in stack.notes() if "-9999" in n]
        assert ignored and "uint16 bands cannot hold" in ignored[0] and "--nodata" in ignored[0]
    with RasterStack.open([vrt], nodata=0) as stack:
        assert stack.notes() == []
        assert np.isnan(stack.read(Window(0, 0, 10, 10))[0, :, :4]).all()
    with RasterStack.open([_mosaic_vrt(vrt, 0)]) as stack:  # a value GDAL keeps
        assert stack.sources[0].nodata == 0 and stack.notes() == []
    with RasterStack.open([_mosaic_vrt(vrt, None, 0)]) as stack:  # band 2's 0 is kept too
        assert not [n for n in stack.notes() if "cannot hold" in n]


@pytest.mark.parametrize(
    ("crs", "res", "expected"),
    [
        ("EPSG:32633", 30.0, (30.0, 30.0)),
        ("EPSG:2227", 100.0, (30.48006, 30.48006)),  # California zone 3, US survey feet
        ("EPSG:4326", 0.001, (0.001 * 111195.08 * np.cos(np.radians(45.0)), 111.19508)),
        ("EPSG:3857", 30.0, (15.0031, 15.0031)),  # Web Mercator at 60 N: scale 2
    ],
)
def test_ground_resolution_in_metres(crs, res, expected):
    from affine import Affine
    from rasterio.crs import CRS

    from geomap.grid import Grid

    top = {"EPSG:4326": 45.05, "EPSG:3857": 8_399_738.0}.get(crs, 5_000_000.0)
    grid = Grid(CRS.from_user_input(crs), Affine(res, 0, 10.0, 0, -res, top), 100, 100)
    assert grid.ground_res == pytest.approx(expected, rel=1e-4)
    assert grid.pixel_area_m2 == pytest.approx(expected[0] * expected[1], rel=1e-4)
    assert grid.pixel_size_m == pytest.approx(np.sqrt(expected[0] * expected[1]), rel=1e-4)
    assert grid.pixel_aspect == pytest.approx(expected[1] / expected[0], rel=1e-4)


def test_a_grid_much_finer_than_the_inputs_is_flagged_and_units_are_named(raster_factory):
    a = raster_factory("a.tif", ramp(20, 20)[None])  # 30 m pixels
    with RasterStack.open([a], resolution=20) as stack:
        assert stack.notes() == []
        assert stack.describe()["grid"]["units"] == "m"
        assert stack.describe()["sources"][0]["units"] == "m"
    with RasterStack.open([a], resolution=3) as stack:
        (note,) = stack.notes()
        assert note.startswith("The grid's pixels (3 m) are 10.0 times finer than the finest")
        assert "200 x 200 pixels" in note and "100 times as many" in note
    with RasterStack.open([a], crs="EPSG:4326") as stack:
        assert stack.describe()["grid"]["units"] == "degrees" and stack.notes() == []
    with RasterStack.open([a], resolution=300) as stack:  # --resolution 300 meant for 3
        (note,) = stack.notes()
        assert note.startswith("The grid's pixels (300 m) are 10.0 times coarser than the")
        assert "the map has only 2 x 2 pixels. Give a finer --resolution" in note


def test_zeros_in_the_bands_of_one_scene_get_one_note(raster_factory):
    data = ramp(10, 10, "uint16") + 1
    data[:, :3] = 0
    paths = [raster_factory(f"{b}.tif", data, descriptions=[b]) for b in ("B02", "B03", "B04")]
    with RasterStack.open(paths) as stack:
        (note,) = stack.notes()
    assert note.startswith("Rasters 'B02.tif', 'B03.tif', 'B04.tif': 30.0% of their pixels")
    assert note.endswith("pass --nodata 0 so those pixels are mapped from the other rasters.")


def test_a_dem_projected_otherwise_in_metres_keeps_its_pixel_size(raster_factory):
    a = raster_factory("landsat.tif", ramp(40, 40), crs="EPSG:32634")  # 30 m, UTM 34N
    left, bottom, right, top = transform_bounds("EPSG:32634", "EPSG:3035", *_bounds(a))
    transform = Affine(25.0, 0, left - 500, 0, -25.0, top + 500)
    dem = raster_factory(
        "dem.tif", ramp(110, 110), crs="EPSG:3035", transform=transform, descriptions=["dem"]
    )
    with RasterStack.open([a, dem]) as stack:
        assert stack.grid.res == (25.0, 25.0) and stack.grid.crs == "EPSG:32634"


def _bounds(path):
    with rasterio.open(path) as src:
        return src.bounds


@pytest.mark.parametrize("gap", [0, 1, 2])
def test_a_partial_stack_reads_absent_sources_as_no_data(raster_factory, gap):
    a = raster_factory("a.tif", ramp(20, 20))
    c = raster_factory("c.tif", ramp(20, 20) * 2, descriptions=["tmi"])
    with RasterStack.open([a, c]) as there:
        whole = PartialStack(there, {gap: ("K", "Th")})
        names = [("a",), ("tmi",)]
        names.insert(gap, ("K", "Th"))
        assert [s.band_names for s in whole.sources] == names
        block = whole.read(Window(2, 3, 5, 4), halo=1)
        direct = there.read(Window(2, 3, 5, 4), halo=1)
        absent = np.zeros(4, bool)
        absent[gap : gap + 2] = True
        assert block.shape == (4, 6, 7) and np.isnan(block[absent]).all()
        np.testing.assert_array_equal(block[~absent], direct)
        sources = whole.describe()["sources"]
        assert [s.get("absent", False) for s in sources] == [i == gap for i in range(3)]
        assert sources[gap]["bands"] == ["K", "Th"]


def test_a_raster_offset_from_the_others_is_named_as_what_shrinks_the_map(raster_factory):
    bands = [raster_factory(f"{b}.tif", ramp(40, 40), descriptions=[b]) for b in ("B02", "B03")]
    shifted = Affine(30.0, 0, 500000.0 + 600, 0, -30.0, 5200000.0)  # 20 pixels east
    b11 = raster_factory("B11.tif", ramp(40, 40), transform=shifted, descriptions=["B11"])
    with RasterStack.open(bands) as stack:
        assert stack.notes() == []
    with RasterStack.open([*bands, b11]) as stack:
        (note,) = stack.notes()
    assert note.startswith("Raster 'B11.tif' alone limits the map to 50% of the area the other")
    assert "EPSG:32633: 500600, 5.1988e+06, 501800, 5.2e+06" in note


def test_web_mercator_metres_are_not_taken_for_ground_metres(raster_factory):
    a = raster_factory(
        "utm.tif",
        ramp(40, 40),
        crs="EPSG:32633",
        transform=Affine(30.0, 0, 500000.0, 0, -30.0, 6660000.0),
    )  # about 60 degrees north
    left, bottom, right, top = transform_bounds("EPSG:32633", "EPSG:3857", *_bounds(a))
    merc = raster_factory(
        "merc.tif", ramp(500, 500), crs="EPSG:3857",
        transform=Affine(10.0, 0, left - 100, 0, -10.0, top + 100), descriptions=["tmi"],
    )  # fmt: skip
    with RasterStack.open([a, merc]) as stack:
        assert 4.9 < stack.grid.res[0] < 5.1  # "10 m" of Web Mercator is 5 m on the ground here


def _declare(path, scale, offset):
    with rasterio.open(path, "r+") as dst:
        dst.scales = (scale,) * dst.count
        dst.offsets = (offset,) * dst.count
    return path


def test_declared_scale_and_offset_give_the_values_direct_and_warped(raster_factory):
    dn = ramp(20, 20, "uint16") + 1000
    dn[0, 0] = 0
    # Landsat Collection 2 surface reflectance: reflectance = DN * 2.75e-05 - 0.2
    on_grid = _declare(raster_factory("sr_b4.tif", dn, nodata=0), 2.75e-05, -0.2)
    coarse = Affine(60.0, 0, 500000.0, 0, -60.0, 5200000.0)
    off_grid = _declare(
        raster_factory("sr_b5.tif", dn[:10, :10], nodata=0, transform=coarse), 2.75e-05, -0.2
    )
    want = dn.astype("float64") * 2.75e-05 - 0.2
    with RasterStack.open([on_grid, off_grid]) as stack:
        block = stack.read(Window(0, 0, 20, 20))
        sources = stack.describe()["sources"]
    assert np.isnan(block[0, 0, 0])  # no data before scaling, not -0.2
    np.testing.assert_allclose(block[0].ravel()[1:], want.ravel()[1:], rtol=1e-6)
    inside = block[1][np.isfinite(block[1])]  # bilinear between scaled values stays in range
    assert inside.min() >= 1000 * 2.75e-05 - 0.2 - 1e-6 and inside.max() <= want.max() + 1e-6
    assert sources[0]["scale_offset"] == [[2.75e-05, -0.2]]
    plain = raster_factory("plain.tif", dn)
    with RasterStack.open([plain]) as stack:
        assert stack.describe()["sources"][0]["scale_offset"] is None


def _two_grid_netcdf(path, grids: dict):
    """A classic netCDF with several grids on projected x/y: GDAL lists them as subdatasets."""
    from scipy.io import netcdf_file

    rows, cols = next(iter(grids.values())).shape
    with netcdf_file(path, "w") as f:
        f.createDimension("y", rows)
        f.createDimension("x", cols)
        x = f.createVariable("x", "f8", ("x",))
        x[:] = 500000.0 + (np.arange(cols) + 0.5) * 30
        x.standard_name = "projection_x_coordinate"
        y = f.createVariable("y", "f8", ("y",))
        y[:] = 5200000.0 - (np.arange(rows) + 0.5) * 30
        y.standard_name = "projection_y_coordinate"
        crs = f.createVariable("crs", "i4", ())
        crs.grid_mapping_name = "transverse_mercator"
        crs.crs_wkt = rasterio.crs.CRS.from_epsg(32633).to_wkt()
        for name, grid in grids.items():
            v = f.createVariable(name, "f4", ("y", "x"))
            v[:] = grid
            v.grid_mapping = "crs"


def test_gdal_names_of_a_zipped_raster_and_a_netcdf_grid_are_read(raster_factory, tmp_path):
    import zipfile

    from geomap.workflow import input_records

    tif = raster_factory("tmi.tif", ramp(20, 20), transform=T30)
    with zipfile.ZipFile(tmp_path / "mag.zip", "w") as z:
        z.write(tif, "tmi.tif")
    survey = tmp_path / "survey.nc"
    _two_grid_netcdf(survey, {"tmi": ramp(20, 20), "rtp": -ramp(20, 20)})
    with pytest.raises(RasterError, match="(?i)only subdatasets.*netcdf:.*survey.nc:tmi"):
        RasterStack.open([survey])
    zipped, grid = f"/vsizip/{tmp_path}/mag.zip/tmi.tif", f"netcdf:{survey}:rtp"
    with RasterStack.open([zipped, grid]) as stack:
        assert stack.band_names == ("tmi", "rtp")
        block = stack.read(Window(0, 0, 20, 20))
    np.testing.assert_array_equal(block[0], ramp(20, 20))
    np.testing.assert_array_equal(block[1], -ramp(20, 20))
    records = input_records([zipped, grid])
    assert [r["bytes"] for r in records] == [
        (tmp_path / "mag.zip").stat().st_size,
        survey.stat().st_size,
    ]
    with pytest.raises(MissingFileError, match="does not exist"):
        RasterStack.open([f"/vsizip/{tmp_path}/nothing.zip/tmi.tif"])


def test_same_named_files_of_two_dates_are_told_apart_by_their_folders(raster_factory):
    from geomap.features import FeatureRecipe

    paths = [
        raster_factory(f"{date}/{band}.tif", ramp(10, 10))
        for date in ("2019-06-01", "2023-06-01")
        for band in ("B02", "B04", "B08", "B11")
    ]
    with RasterStack.open(paths) as stack:
        names = stack.band_names
    assert names[:2] == ("2019-06-01/B02", "2019-06-01/B04")
    assert names[4:6] == ("2023-06-01/B02", "2023-06-01/B04")
    recipe = FeatureRecipe.build(list(names), list(range(8)), 10.0, "default")
    assert len(recipe._spectra()) == 2  # two acquisitions: two spectra, two screens
    deeper = [raster_factory(f"{a}/2019/B02.tif", ramp(10, 10)) for a in ("east", "west")]
    with RasterStack.open(deeper) as stack:
        assert stack.band_names == ("east/2019/B02", "west/2019/B02")
    from types import SimpleNamespace

    from geomap.workflow import _importance

    two = [raster_factory(f"{y}/landsat.tif", ramp(10, 10)) for y in ("d2019", "d2020")]
    with RasterStack.open(two) as stack:
        recipe = FeatureRecipe.for_stack(stack, "raw")
        model = SimpleNamespace(feature_importances_=np.array([0.7, 0.3]))
        importance = _importance(model, recipe, stack)
    assert importance["by_source"] == {"d2019/landsat.tif": 0.7, "d2020/landsat.tif": 0.3}
    colon = raster_factory("T10:30.tif", ramp(10, 10))  # a file, not a GDAL driver's name
    assert inspect_raster(colon).band_names == ("T10:30",)


def test_a_complex_raster_is_refused_with_what_to_give(raster_factory):
    p = raster_factory("slc.tif", (ramp(10, 10) + 1j * ramp(10, 10)).astype("complex64"))
    with pytest.raises(RasterError, match=r"complex numbers \(complex64\).*amplitude"):
        inspect_raster(p)


def test_a_raster_without_a_crs_is_read_in_the_crs_given(raster_factory):
    a = raster_factory("a.tif", ramp(10, 10))
    grd = raster_factory("tmi.tif", ramp(10, 10) * 2, crs=None)  # a Surfer grid: no CRS
    with pytest.raises(RasterError, match="no coordinate reference system.*--crs EPSG:32633"):
        RasterStack.open([a, grd])
    with RasterStack.open([a, grd], crs="EPSG:32633") as stack:
        block = stack.read(Window(0, 0, 10, 10))
        notes = [n for n in stack.notes() if "CRS" in n]
    np.testing.assert_array_equal(block[1], ramp(10, 10) * 2)
    (note,) = notes
    assert note.startswith("Raster 'tmi.tif' states no CRS; it is read in EPSG:32633, the map's")


def test_an_alpha_band_masks_the_others_and_is_no_band(raster_factory):
    from rasterio.enums import ColorInterp

    data = np.stack([ramp(10, 10, "uint8") + 1, ramp(10, 10, "uint8") + 2, np.full((10, 10), 255)])
    data[:, :, :4] = 0  # transparent: no data there, 0 in every band as QGIS writes it
    p = raster_factory("rgba.tif", data.astype("uint8"), descriptions=["red", "nir"])
    with rasterio.open(p, "r+") as dst:
        dst.colorinterp = (ColorInterp.red, ColorInterp.green, ColorInterp.alpha)
    coarse = raster_factory("dem.tif", ramp(5, 5), transform=Affine(60, 0, 500000, 0, -60, 5200000))
    with RasterStack.open([p, coarse]) as stack:
        assert stack.band_names == ("red", "nir", "dem")
        block = stack.read(Window(0, 0, 10, 10))
        assert not [n for n in stack.notes() if "rgba.tif" in n]  # its alpha says the 0s
    assert np.isnan(block[:2, :, :4]).all()
    np.testing.assert_array_equal(block[0, :, 4:], ramp(10, 10)[:, 4:] + 1)
    with RasterStack.open([coarse, p], resolution=60.0) as stack:  # warped, alpha as mask
        block = stack.read(Window(0, 0, 5, 5))
        assert stack.band_names == ("dem", "red", "nir") and stack.resampling[1] == "average"
    assert np.isnan(block[1:, :, :2]).all() and np.isfinite(block[1:, :, 2:]).all()


def test_a_cint16_radar_raster_is_refused_too(tmp_path):
    p = tmp_path / "slc.tif"
    profile = {"driver": "GTiff", "width": 4, "height": 4, "count": 1, "dtype": "complex_int16"}
    with rasterio.open(p, "w", crs="EPSG:32633", transform=T30, **profile) as dst:
        dst.write(np.ones((1, 4, 4), "complex64"))
    with pytest.raises(RasterError, match=r"complex numbers \(complex_int16\)"):
        inspect_raster(p)


def test_an_alpha_band_and_a_nodata_value_both_mask_on_the_grid(raster_factory):
    from rasterio.enums import ColorInterp

    data = np.stack([np.full((10, 10), 5), ramp(10, 10, "uint8") + 9, np.full((10, 10), 255)])
    data[2, :, :4] = 0  # transparent
    data[0, 5:, :] = 7  # no data in band 1's lower half
    p = raster_factory("rgba.tif", data.astype("uint8"), nodata=7)
    with rasterio.open(p, "r+") as dst:
        dst.colorinterp = (ColorInterp.red, ColorInterp.green, ColorInterp.alpha)
    with RasterStack.open([p]) as stack:
        block = stack.read(Window(0, 0, 10, 10))
    assert np.isnan(block[:, :, :4]).all()  # the alpha
    assert np.isnan(block[0, 5:]).all() and np.isfinite(block[0, :5, 4:]).all()  # the nodata


def test_a_raster_placed_by_gcps_only_is_told_to_be_warped(raster_factory):
    from rasterio.control import GroundControlPoint

    p = raster_factory("gcps.tif", ramp(10, 10), crs=None, transform=Affine.identity())
    gcps = [
        GroundControlPoint(r, c, 500000 + 30 * c, 5200000 - 30 * r)
        for r, c in ((0, 0), (0, 9), (9, 0))
    ]
    with rasterio.open(p, "r+") as dst:
        dst.gcps = (gcps, rasterio.crs.CRS.from_epsg(32633))
    with pytest.raises(RasterError, match=r"placed by 3 ground control points.*gdalwarp"):
        inspect_raster(p, assume_crs="EPSG:32633")


def test_a_many_band_pixel_interleaved_file_is_checked_tile_by_tile_as_gdal_decimates(
    raster_factory,
):
    """GDAL's decimated read of such a file decompresses every tile once per band."""
    from geomap.sources import _decimated, _interleaved

    rng = np.random.default_rng(0)
    cube = rng.integers(1, 1000, (20, 300, 280)).astype("int16")
    cube[:, :40] = -9999  # a strip without data
    path = raster_factory(
        "cube.tif", cube, nodata=-9999, tiled=True, blockxsize=128, blockysize=128,
        compress="deflate", interleave="pixel",
    )  # fmt: skip
    with rasterio.open(path) as src:
        assert _interleaved(src)
        ours = _decimated(src, (20, 256, 239))
        gdal = src.read(out_shape=(20, 256, 239), masked=True)
    np.testing.assert_array_equal(ours.data, gdal.data)
    np.testing.assert_array_equal(np.ma.getmaskarray(ours), np.ma.getmaskarray(gdal))
    source = inspect_raster(path)
    assert source.coverage[:30].sum() == 0 and source.coverage[40:].all()


def test_a_class_map_input_is_read_with_nearest_resampling_and_named(raster_factory):
    """An older geological map (codes with a colour table) at 150 m onto a 30 m grid."""
    from affine import Affine

    codes = np.repeat(np.repeat(np.array([[0, 2], [2, 4]], "uint8"), 5, axis=0), 5, axis=1)
    fine = raster_factory("optical.tif", np.ones((50, 50), "float32"))
    geology = raster_factory(
        "regional_geology.tif", codes, transform=Affine(150.0, 0, 500000.0, 0, -150.0, 5200000.0)
    )
    with rasterio.open(geology, "r+") as dst:
        dst.write_colormap(1, {0: (255, 0, 0, 255), 2: (0, 255, 0, 255), 4: (0, 0, 255, 255)})
    with RasterStack.open([fine, geology]) as stack:
        assert stack.resampling == ("bilinear", "nearest")
        read = stack.read(Window(0, 0, 50, 50))[1]
        assert set(np.unique(read[np.isfinite(read)])) <= {0.0, 2.0, 4.0}  # no 1 or 3 invented
        assert any("is a class map" in n for n in stack.notes())


def test_each_raster_gets_the_nodata_it_needs(raster_factory):
    """Landsat's 0 and a DEM's -32768, both undeclared: one --nodata could not serve both, and
    -32768 for all silenced the Landsat's warning while its zeros were read as reflectance."""
    landsat = ramp(10, 10, "uint16") + 1
    landsat[:, :3] = 0
    dem = (ramp(10, 10) + 300).astype("int16")
    dem[:2] = -32768
    paths = [raster_factory("landsat.tif", landsat), raster_factory("dem.tif", dem)]
    with RasterStack.open(paths) as stack:
        zeros, dummy = stack.notes()
    assert "pass --nodata landsat.tif=0 so those pixels" in zeros  # a plain 0 would hit the DEM
    assert "pass --nodata dem.tif=-32768 so those pixels" in dummy
    with RasterStack.open(paths, nodata=-32768) as stack:
        block = stack.read(Window(0, 0, 10, 10))
        notes = stack.notes()
        assert stack.sources[0].nodata is None and stack.sources[1].nodata == -32768
    assert np.isnan(block[1, :2]).all() and np.isfinite(block[0]).all()  # uint16 cannot be -32768
    (zeros,) = [n for n in notes if "30.0% of its pixels are exactly 0" in n]  # still told
    assert "pass --nodata landsat.tif=0 so" in zeros  # a second plain value contradicts the first
    (unheld,) = [n for n in notes if "cannot be" in n]
    assert unheld.startswith("Raster 'landsat.tif': its uint16 values cannot be -32768, so")
    assert "--nodata landsat.tif=VALUE" in unheld
    with RasterStack.open(paths, raster_nodata={"landsat.tif": 0, "dem.tif": -32768}) as stack:
        block = stack.read(Window(0, 0, 10, 10))
        assert stack.notes() == []
    assert np.isnan(block[0, :, :3]).all() and np.isnan(block[1, :2]).all()
    assert np.isfinite(block[0, :, 3:]).all() and np.isfinite(block[1, 2:]).all()


def test_a_value_given_for_every_raster_amid_a_grids_measurements_is_named(raster_factory):
    """A plain --nodata 0 meant for a Landsat band's fill also took a magnetic grid's 0 nT
    readings as missing, and nothing said so."""
    landsat = ramp(10, 10, "uint16") + 1
    landsat[:, :3] = 0
    tmi = ramp(10, 10) - 50  # -50 to 49 nT, 0 at row 0, column 5
    reflectance = ramp(10, 10) + 1  # its 0 below every value: fill, as for the Landsat band
    reflectance[:2] = 0.0
    paths = [
        raster_factory("landsat.tif", landsat),
        raster_factory("tmi.tif", tmi),
        raster_factory("refl.tif", reflectance),
    ]
    with RasterStack.open(paths, nodata=0) as stack:
        assert np.isnan(stack.read(Window(0, 0, 10, 10))[1, 0, 5])  # as the note says
        (note,) = stack.notes()
    assert note.startswith(
        "Raster 'tmi.tif' declares no no-data value, so it took the --nodata 0 given for every "
        "raster: 1.00% of its pixels hold 0, amid values on both sides of it,"
    )
    assert note.endswith("(--nodata landsat.tif=0) instead of for every raster.")
    with RasterStack.open(paths, nodata=0, raster_nodata={"tmi.tif": 0}) as stack:
        assert stack.notes() == []  # named: meant
    with RasterStack.open(paths[:2], raster_nodata={"landsat.tif": 0}) as stack:
        assert stack.notes() == []
        assert stack.read(Window(0, 0, 10, 10))[1, 0, 5] == 0.0


def test_a_value_named_for_a_raster_that_declares_its_own_is_told_unused(raster_factory):
    """'0; dem_tile1.tif=0' was taken silently, though the file's own -32768 wins."""
    dem = (ramp(10, 10) + 1).astype("int16")
    dem[:2] = -32768
    dem[2, :3] = 0
    paths = [raster_factory("dem_tile1.tif", dem, nodata=-32768)]
    with RasterStack.open(paths, nodata=0, raster_nodata={"dem_tile1.tif": 0}) as stack:
        assert stack.read(Window(0, 0, 10, 10))[0, 2, 0] == 0.0  # as the note says
        (note,) = stack.notes()
    assert note.startswith(
        "Raster 'dem_tile1.tif' declares its own no-data value, -32768, so the value 0 given "
        "for it is not used."
    )
    for given in ({"nodata": 0}, {"raster_nodata": {"dem_tile1.tif": -32768}}):
        with RasterStack.open(paths, **given) as stack:
            assert stack.notes() == []  # for the rasters that declare none; or the same value


def test_nodata_values_are_parsed_and_matched_by_file_name(tmp_path):
    assert parse_nodata([]) == (None, {})
    assert parse_nodata(["0", "dem.tif=-32768", " b 8.jp2 = 0.5", "my=dem.tif=-1", "0"]) == (
        0.0,
        {"dem.tif": -32768.0, "b 8.jp2": 0.5, "my=dem.tif": -1.0},  # a value given twice: once
    )
    for bad, words in [
        (["zero"], "No-data value 'zero' is not a number: give one, e.g. 0, or"),
        (["dem.tif=nan"], "NaN is read as no data in every raster already"),
        (["0,5"], "write a decimal with a point (0.5), and each value as its own entry"),
        (["0", "-32768"], "Two no-data values for every raster (0 and -32768)"),
        (["a.tif=0", "a.tif=1"], "Two no-data values for raster 'a.tif' (0 and 1)"),
    ]:
        with pytest.raises(InputDataError, match=re.escape(words)):
            parse_nodata(bad)
    paths = [tmp_path / "landsat.tif", tmp_path / "dem.tif"]
    assert nodata_values(paths, 0.0, {"dem.tif": -32768.0}) == [0.0, -32768.0]
    assert nodata_values(paths, None, {str(paths[0]): 1.0}) == [1.0, None]
    assert nodata_values(paths, None, {f"{tmp_path}/./dem.tif": 2.0}) == [None, 2.0]  # any path
    with pytest.raises(InputDataError, match=r"'dme.tif': no raster .* landsat.tif, dem.tif\)"):
        nodata_values(paths, None, {"dme.tif": 0.0})


def test_the_nodata_advice_quotes_a_file_name_with_spaces(raster_factory):
    landsat = ramp(10, 10, "uint16") + 1
    landsat[:, :3] = 0
    paths = [raster_factory("land sat.tif", landsat), raster_factory("mag.tif", ramp(10, 10) + 1)]
    with RasterStack.open(paths) as stack:
        (zeros,) = stack.notes()
    assert "pass --nodata 'land sat.tif=0' so those pixels" in zeros  # pasted into a shell
    with RasterStack.open(paths, nodata=-1) as stack:
        (unheld,) = [n for n in stack.notes() if "cannot be" in n]
    assert unheld.endswith("give it its own: --nodata 'land sat.tif=VALUE'.")


def test_an_er_mapper_header_without_its_data_file_says_so(raster_factory, tmp_path):
    """The web app took an .ers upload alone: GDAL's 'not a supported format' hid the cause."""
    header = raster_factory("tmi.ers", ramp(20, 20), driver="ERS")
    assert (tmp_path / "tmi").is_file()  # ER Mapper writes the values beside the header
    with RasterStack.open([header]) as stack:
        assert stack.grid.width == 20
    (tmp_path / "tmi").unlink()
    with pytest.raises(RasterError) as error:
        RasterStack.open([header])
    assert str(error.value) == (
        f"Raster '{header}': it is an ER Mapper header, and its data file 'tmi' is not beside "
        "it: the grid's values are in that file. Put the data file beside the header, in the "
        "same folder (the web app takes one file per raster: give it a GeoTIFF, gdal_translate "
        "tmi.ers tmi.tif)."
    )


def test_a_quality_layer_hides_nothing_beyond_its_own_footprint(raster_factory):
    """A QA_PIXEL clipped to half its scene: its fill (1) hides the bands, the other half not."""
    flags = np.full((20, 10), 21824, "uint16")
    flags[:, 0] = 1  # fill, declared as the layer's no data
    qa = raster_factory(f"{LANDSAT}_QA_PIXEL.TIF", flags, nodata=1)
    band = raster_factory(f"{LANDSAT}_SR_B4.TIF", ramp(20, 20, "uint16") + 7000)
    k = raster_factory("radiometrics_K.tif", ramp(20, 20))
    with RasterStack.open([band, qa, k]) as stack:
        block = stack.read(Window(0, 0, 20, 20))
    assert np.isnan(block[0][:, 0]).all()
    assert np.isfinite(block[0][:, 1:]).all()  # the layer's clear half and beyond it
