import json

import geopandas as gpd
import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.features import rasterize
from shapely.geometry import Point, box

from geomap import webmap
from geomap.errors import RasterError
from geomap.export import style_class_raster
from geomap.webmap import (
    MAPPED_NOTHING,
    MASK_SHADE,
    class_legend,
    class_overlay,
    colour_ramp,
    continuous_overlay,
    mapped_classes,
    mask_overlay,
    observations_geojson,
    to_png,
    zoom_for,
)

COLOURS = [(255, 0, 0), (0, 0, 255)]


@pytest.fixture
def class_map(raster_factory):
    """A 200 x 300 UTM class map: left half code 0, right half code 1, a nodata corner."""
    data = np.zeros((200, 300), dtype="uint8")
    data[:, 150:] = 1
    data[:20, :20] = 255
    path = raster_factory("classes.tif", data, nodata=255)
    with rasterio.open(path, "r+") as dst:
        style_class_raster(dst, ["granite", "basalt"], COLOURS)
        dst.build_overviews([2, 4], rasterio.enums.Resampling.nearest)
    return path


def _utm_to_lonlat(x, y):
    return Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True).transform(x, y)


def test_class_overlay_colours_transparency_and_bounds(class_map):
    overlay = class_overlay(class_map, max_size=100)
    image = overlay.image
    assert image.dtype == np.uint8 and image.shape[2] == 4
    assert max(image.shape[:2]) <= 110  # decimated to about max_size, not full resolution
    rows, cols = image.shape[:2]
    assert tuple(image[rows // 2, cols // 4]) == (255, 0, 0, 255)
    assert tuple(image[rows // 2, 3 * cols // 4]) == (0, 0, 255, 255)
    assert image[1, 1, 3] == 0  # nodata corner is transparent
    (south, west), (north, east) = overlay.bounds
    lon0, lat0 = _utm_to_lonlat(500000.0, 5200000.0)  # top-left corner of the raster
    lon1, lat1 = _utm_to_lonlat(500000.0 + 300 * 30, 5200000.0 - 200 * 30)
    assert west == pytest.approx(lon0, abs=1e-3) and north == pytest.approx(lat0, abs=1e-3)
    assert east == pytest.approx(lon1, abs=2e-3) and south == pytest.approx(lat1, abs=2e-3)


def test_class_overlay_refuses_a_raster_without_colour_table(raster_factory):
    path = raster_factory("plain.tif", np.zeros((10, 10), "uint8"))
    with pytest.raises(RasterError, match="no colour table"):
        class_overlay(path)


def test_class_legend_reads_names_and_colours(class_map):
    assert class_legend(class_map) == [("granite", "#ff0000"), ("basalt", "#0000ff")]


def test_continuous_overlay_scales_between_vmin_and_vmax(raster_factory):
    data = np.tile(np.linspace(0, 1, 100, dtype="float32"), (50, 1))
    data[:, :5] = np.nan
    path = raster_factory("u.tif", data, nodata=np.nan)
    overlay = continuous_overlay(path, cmap="gray", vmin=0.0, vmax=1.0)
    row = overlay.image[overlay.image.shape[0] // 2]
    opaque = row[row[:, 3] == 255, 0].astype(int)
    assert (np.diff(opaque) >= 0).all() and opaque[0] < 30 and opaque[-1] > 225
    assert (row[:3, 3] == 0).all()  # NaN columns are transparent
    assert overlay.value_range == (0.0, 1.0)


def test_a_layer_marking_where_something_is_leaves_the_rest_clear(raster_factory):
    """'Missing inputs' painted pale blue over the 93% of the demo where nothing was missing,
    veiling the layers under it."""
    data = np.zeros((40, 40), dtype="float32")
    data[10:20, 10:20] = 0.5  # a cloud: half the inputs missing
    path = raster_factory("m.tif", data)
    marked = continuous_overlay(path, cmap="Blues", clear=0.0).image
    assert (marked[..., 3] == 0).mean() > 0.8  # transparent where nothing is missing
    assert (marked[15:18, 15:18, 3] == 255).all()  # the cloud drawn
    assert (continuous_overlay(path, cmap="Blues").image[..., 3] == 255).all()  # default: all


def test_the_area_of_applicability_shades_outside_and_leaves_inside_clear(raster_factory):
    """Drawn white inside and black outside, it hid the lithology under it (user pass)."""
    data = np.ones((40, 40), dtype="float32")
    data[:, 25:] = 0.0  # outside the AOA
    data[:5] = np.nan  # not mapped
    image = mask_overlay(raster_factory("aoa.tif", data)).image
    rows, cols = image.shape[:2]
    assert (image[rows // 2, : cols // 2, 3] == 0).all()  # inside: clear
    assert (image[rows // 2, -cols // 4 :] == MASK_SHADE).all()  # outside: shaded
    assert (image[0, :, 3] == 0).all()  # no data: clear


def test_continuous_overlay_takes_percentiles_when_no_range_is_given(raster_factory):
    data = np.tile(np.arange(100, dtype="float32"), (20, 1))
    path = raster_factory("v.tif", data)
    overlay = continuous_overlay(path, vmin=None, vmax=None)
    lo, hi = overlay.value_range
    assert 0 < lo < 5 and 94 < hi < 99
    low, high = overlay.data_range  # what the colour bar marks as beyond its ends
    assert low < lo and high > hi and high == pytest.approx(99)


def test_continuous_overlay_names_a_missing_band(raster_factory):
    path = raster_factory("one.tif", np.zeros((5, 5), "float32"))
    with pytest.raises(RasterError, match="has 1 band"):
        continuous_overlay(path, band=2)


def test_to_png_round_trips(tmp_path):
    from PIL import Image

    image = np.zeros((4, 6, 4), dtype="uint8")
    image[1, 2] = (10, 20, 30, 255)
    (tmp_path / "x.png").write_bytes(to_png(image))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x.png")), image)


def test_colour_ramp_ends():
    assert colour_ramp("gray", 3) == ["#000000", "#808080", "#ffffff"]


def test_zoom_for_fits_the_extent():
    assert zoom_for(((46.8, 15.0), (46.9, 15.15))) in (12, 13)
    assert zoom_for(((-60, -170), (70, 170))) <= 2


def test_observations_geojson_is_in_lonlat_with_class_and_source(demo_scene):
    geojson = observations_geojson(demo_scene.points_gpkg, "lithology")
    feature = geojson["features"][0]
    lon, lat = feature["geometry"]["coordinates"]
    assert -180 <= lon <= 180 and -90 <= lat <= 90
    assert feature["properties"]["source"] == demo_scene.points_gpkg.name
    assert feature["properties"]["site"] == "obs_id 1"
    assert feature["properties"]["label"] in demo_scene.class_names


def test_points_at_one_place_are_one_dot_whose_popup_names_them_all(tmp_path):
    """Only the top dot's popup opens: a station entered twice, as granite and as shale, showed
    one of the two."""
    frame = gpd.GeoDataFrame(
        {"station": ["GM-1", "GM-2", "GM-3", "GM-4"], "lithology": ["granite", "shale"] * 2},
        geometry=[Point(500100, 5199900), Point(500100, 5199900), Point(500400, 5199900),
                  Point(500100, 5199900)],
        crs="EPSG:32633",
    )  # fmt: skip
    frame.to_file(tmp_path / "obs.gpkg")
    features = observations_geojson(tmp_path / "obs.gpkg", "lithology")["features"]
    assert [f["properties"]["site"] for f in features] == [
        "station GM-1 (also here: station GM-2, shale; station GM-4, shale)",
        "station GM-3",
    ]
    assert [f["properties"]["label"] for f in features] == ["granite", "granite"]


def test_observations_carry_the_class_mapped_where_they_are(demo_scene, demo_run, tmp_path):
    out, _ = demo_run
    geojson = observations_geojson(
        demo_scene.points_gpkg, "lithology", class_map=out / "lithology.tif"
    )
    mapped = [f["properties"]["mapped"] for f in geojson["features"]]
    observed = [f["properties"]["label"] for f in geojson["features"]]
    assert set(mapped) <= set(demo_scene.class_names)
    agree = np.mean([m == o for m, o in zip(mapped, observed)])
    assert 0.85 < agree < 1.0  # the map fits its observations, not all of them
    frame = gpd.read_file(demo_scene.points_gpkg).iloc[:3]
    frame.geometry = frame.geometry.translate(1e6, 0)  # far off the map
    frame.to_file(tmp_path / "far.gpkg")
    far = observations_geojson(tmp_path / "far.gpkg", "lithology", class_map=out / "lithology.tif")
    assert [f["properties"]["mapped"] for f in far["features"]] == [MAPPED_NOTHING] * 3
    frame = gpd.read_file(demo_scene.points_gpkg).iloc[:2]
    frame.geometry = [frame.geometry.iloc[0].buffer(100), frame.geometry.iloc[1]]
    frame.to_file(tmp_path / "mixed.gpkg")
    lithology = out / "lithology.tif"
    mixed = observations_geojson(tmp_path / "mixed.gpkg", "lithology", class_map=lithology)
    first, second = (f["properties"]["mapped"] for f in mixed["features"])
    assert first == _shares_by_hand(lithology, frame.geometry.iloc[0], frame.crs)
    assert second in demo_scene.class_names


def _shares_by_hand(class_map, polygon, crs) -> str:
    """The top three classes under a polygon, from the whole map rasterised at full resolution."""
    with rasterio.open(class_map) as src:
        codes = src.read(1)
        names = json.loads(src.tags()["CLASS_NAMES"])
        polygon = gpd.GeoSeries([polygon], crs=crs).to_crs(src.crs).iloc[0]
        inside = rasterize([(polygon, 1)], codes.shape, transform=src.transform) == 1
        inside &= codes != src.nodata
    counts = np.bincount(codes[inside], minlength=len(names))
    order = np.argsort(-counts, kind="stable")
    words = [f"{names[c]} {100 * counts[c] / inside.sum():.0f}%" for c in order[:3] if counts[c]]
    others = counts[order[3:]]
    if others.any():
        words.append(f"{(others > 0).sum()} other(s) {100 * others.sum() / inside.sum():.0f}%")
    return ", ".join(words)


def test_a_polygon_observation_gets_the_classes_mapped_under_it(demo_scene, demo_run, tmp_path):
    """It said "(a polygon: see the map under it)"; a polygon as large as the map is read
    decimated, and one off the map gets nothing."""
    lithology = demo_run[0] / "lithology.tif"
    with rasterio.open(lithology) as src:
        crs, (left, bottom, right, top) = src.crs, src.bounds
    polygons = [
        box(left + 0.3 * (right - left), bottom, left + 0.7 * (right - left), top),
        box(left - 500, bottom - 500, right + 500, top + 500),  # beyond the map on every side
        box(right + 100, bottom, right + 900, top),
    ]
    frame = gpd.GeoDataFrame(
        {"lithology": ["granite", "shale", "basalt"]}, geometry=polygons, crs=crs
    )
    frame.to_file(tmp_path / "patch.gpkg")
    mapped = [
        f["properties"]["mapped"]
        for f in observations_geojson(tmp_path / "patch.gpkg", "lithology", class_map=lithology)[
            "features"
        ]
    ]
    assert mapped[0] == _shares_by_hand(lithology, polygons[0], crs)
    assert mapped[0].split(", ")[3].startswith(("1 other(s)", "2 other(s)", "3 other(s)"))
    assert mapped[1] == _shares_by_hand(lithology, polygons[1], crs)
    assert mapped[2] == MAPPED_NOTHING
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(webmap, "POLYGON_READ", 40)  # 160 pixels a side read as 40
        coarse = mapped_classes(frame.iloc[:2], lithology)
    for fine, rough in zip(mapped[:2], coarse):
        shares = [
            dict(w.rsplit(" ", 1) for w in t.split(", ") if "other" not in w) for t in (fine, rough)
        ]
        assert shares[0].keys() & shares[1].keys()
        for name in shares[0].keys() & shares[1].keys():
            assert abs(int(shares[0][name][:-1]) - int(shares[1][name][:-1])) <= 3
