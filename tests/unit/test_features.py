import numpy as np
import pytest

from geomap.errors import InputDataError
from geomap.features import (
    FeatureRecipe,
    band_kind,
    band_kinds,
    focal_mean_std,
    slope_roughness,
)
from geomap.kernels import kuwahara, warm_up_in_background


def _recipe(names=("red", "nir", "K", "Th", "U", "dem"), preset="default"):
    return FeatureRecipe.build(list(names), [0, 0, 1, 1, 1, 2][: len(names)], 30.0, preset)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("K", "K"),
        ("k_pct", "K"),
        ("eTh", "Th"),
        ("U ppm", "U"),
        ("dem", "dem"),
        ("srtm_30m", "dem"),
        ("s32_e115_1arc_v3", "dem"),  # USGS's SRTM tiles and .hgt files: named by their corner
        ("n45_e006_3arc_v2", "dem"),
        ("N45E006", "dem"),
        ("N45E006.SRTMGL1", "dem"),
        ("sheet_n45", None),
        ("N45E006_blue", "blue"),
        ("Elevation", "dem"),
        ("red", "red"),
        ("kaolinite", None),
        ("T33TWN_20240611T100559_B11_20m", "swir1"),
        ("B8A", "nir"),
        ("red edge 1", None),
        ("SR_B5", None),  # no sensor in the name: Landsat 5 and 8 number bands differently
        ("LC08_L2SP_190026_20220512_20220519_02_T1_SR_B2", "blue"),
        ("LC09_L2SP_190026_20230507_20230509_02_T1_SR_B7", "swir2"),
        ("LT05_L2SP_190026_19990812_20200908_02_T1_SR_B2", "green"),
        ("LE07_L1TP_190026_20020512_20200917_02_T1_B4", "nir"),
        ("LC08_L2SP_190026_20220512_20220519_02_T1_ST_B10", None),  # thermal
        ("LC08_L1TP_190026_20220512_20220519_02_T1_B11", None),  # thermal, not S-2's SWIR B11
        ("LC08_L2SP_190026_20220512_20220519_02_T1_QA_PIXEL", None),
        ("LC08_L2SP_190026_20220512_20220519_02_T1_stack_b2", None),  # band 2 of a stack file
        ("ImageData1", "green"),  # ASTER's own names
        ("ImageData3N", "nir"),
        ("AST_L1T_00301052024143729_SWIR:ImageData6", "swir2"),
        ("ImageData5", "aster5"),  # a narrow SWIR band: ratios only
        ("ImageData12", "aster12"),  # thermal: ratios only
        ("SWIR_Band8", "aster8"),  # LP DAAC's names of the same bands
        ("AST_L1T_00301052024143729_VNIR_Band3N", "nir"),
        ("VNIR_Band3B", None),  # the backward-looking stereo band
        ("TIR_Band13", "aster13"),
        ("LC08_L1TP_190026_20220512_20220519_02_T1_B10", None),  # Landsat's thermal: no kind
        ("S2_B11", "swir1"),
        ("s2_b04", "red"),  # a file named in lower case
        ("Band 6 - SWIR 1", "swir1"),
        ("swir-2", "swir2"),
    ],
)
def test_band_kind_reads_names(name, kind):
    assert band_kind(name) == kind


def test_bands_named_by_number_alone_are_read_from_their_set():
    earth_engine = ["B2", "B3", "B4", "B8", "B11", "B12"]  # Sentinel-2 as exported from GEE
    assert band_kinds(earth_engine) == ["blue", "green", "red", "nir", "swir1", "swir2"]
    oli = ["SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"]  # Landsat 8/9 Collection 2
    assert band_kinds(oli) == ["blue", "green", "red", "nir", "swir1", "swir2"]
    tm = ["SR_B1", "SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"]  # Landsat 4-7: no SR_B6
    assert band_kinds(tm) == ["blue", "green", "red", "nir", "swir1", "swir2"]
    assert band_kinds(["B2", "B3", "B4"]) == [None, None, None]  # whose, the set does not say
    landsat_toa = [f"B{i}" for i in range(1, 12)]  # Landsat 8 from GEE: B8 pan, B10-11 thermal
    assert set(band_kinds(landsat_toa)) == {None}
    aster = [f"B{i}" for i in range(1, 15)]  # ASTER: B13, B14 thermal
    assert set(band_kinds(aster)) == {None}
    assert band_kinds(["SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B7"]) == [None] * 5  # 8 or 5?
    two_dates = [f"S2_{y}:{b}" for y in (2019, 2023) for b in earth_engine]
    assert band_kinds(two_dates)[6:] == ["blue", "green", "red", "nir", "swir1", "swir2"]
    stack = [f"AST_L1T_003_b{i}" for i in range(1, 15)]  # geomap's names of unnamed bands
    assert set(band_kinds(stack)) == {None}  # its b11 is thermal, not Sentinel-2's SWIR
    recipe = FeatureRecipe.build([*earth_engine, "tmi"], [0] * 6 + [1], 10.0, "default")
    assert len(recipe.ratios) == 4 and len(recipe.optical_screens()) == 1


def test_recipe_declares_ratios_terrain_and_halo():
    r = _recipe()
    assert r.ratios == ((2, 3), (4, 3), (4, 2), (1, 0))
    assert r.dem_band == 5
    assert "K/(K+Th)" in r.names and "dem_slope" in r.names and "dem_tpi15" in r.names
    assert r.halo == 7  # tpi window of 15
    assert len(r.feature_sources) == r.n_features
    assert FeatureRecipe.from_dict(r.to_dict()) == r


def test_optical_ratios_where_bands_are_named():
    r = FeatureRecipe.build(["blue", "green", "red", "nir", "swir1", "swir2"], [0] * 6, 30.0)
    raw = [n for n in r.names if "/" in n and "kuwahara" not in n]
    assert raw == ["red/(red+blue)", "swir1/(swir1+nir)", "swir1/(swir1+swir2)", "nir/(nir+red)"]
    assert [n for n in r.names if n.endswith("_kuwahara3") and "/" in n] == [
        f"{n}_kuwahara3" for n in raw
    ]
    block = np.full((6, 1 + 2 * r.halo, 1 + 2 * r.halo), 2.0, dtype="float32")
    block[0] = 6.0  # blue three times as bright as red
    feats = r.compute(block)[:, 0, 0]
    assert feats[r.names.index("red/(red+blue)")] == 0.25
    assert feats[r.names.index("red/(red+blue)_kuwahara5")] == 0.25


def test_ratios_stay_bounded_where_noisy_grids_reach_zero():
    """Airborne K, eTh, eU grids hold pixels at or below 0, where a / b reached 240."""
    r = FeatureRecipe.build(["K", "Th", "U"], [0, 0, 0], 30.0)
    pixels = {  # K, Th, U -> K/(K+Th)
        (1.5, 10.0, 2.0): 1.5 / 11.5,
        (0.39, -1.12, 2.13): 1.0,
        (-0.13, 0.64, 0.98): 0.0,
        (-0.22, -0.28, 3.08): 0.5,  # neither: the middle
    }
    side = 1 + 2 * r.halo
    legacy = {k: v for k, v in r.to_dict().items() if k not in ("ratio_form", "names")}
    old = FeatureRecipe.from_dict(legacy)  # saved before: a / b, as its forest was trained on
    assert old.ratio_form == "quotient" and "K/Th" in old.names
    for values, expected in pixels.items():
        block = np.ones((3, side, side), "float32") * np.array(values, "float32")[:, None, None]
        feats = dict(zip(r.names, r.compute(block)[:, 0, 0]))
        assert feats["K/(K+Th)"] == pytest.approx(expected, rel=1e-6)
        ratios = [v for n, v in feats.items() if "/" in n]
        assert len(ratios) == 3 * (1 + len(r.kuwahara_sizes))  # the pixel and each Kuwahara
        assert all(0 <= v <= 1 for v in ratios)
        quotient = dict(zip(old.names, old.compute(block)[:, 0, 0]))["K/Th"]
        assert quotient == pytest.approx(max(values[0], 1e-3) / max(values[1], 1e-3), rel=1e-5)
    block = np.full((3, side, side), 1.0, "float32")
    block[0, r.halo, r.halo] = np.nan
    assert np.isnan(dict(zip(r.names, r.compute(block)[:, 0, 0]))["K/(K+Th)"])


def test_a_scene_whose_bands_are_not_named_is_said_to_get_no_ratios():
    """A six-band Landsat file without band descriptions: its bands read as W_ls8_b1..b6."""
    names = [f"W_ls8_b{i}" for i in range(1, 7)] + ["K", "Th", "U"] + ["Ag_ppm", "Au_ppb", "Cu"]
    r = FeatureRecipe.build(names, [0] * 6 + [1] * 3 + [2, 3, 4], 30.0)
    (note,) = r.unnamed_notes(["W_ls8.tif", "radiometrics.tif", "Ag.tif", "Au.tif", "Cu.tif"])
    assert note.startswith("Raster 'W_ls8.tif': none of its 6 bands is named as a kind geomap")
    assert "(read as W_ls8_b1, ...)" in note and "blue, green, red, nir" in note
    named = FeatureRecipe.build(["blue", "green", "red", "nir", "swir1", "swir2"], [0] * 6, 30.0)
    assert named.unnamed_notes(["landsat.tif"]) == []
    raw = FeatureRecipe.build(names, [0] * 6 + [1] * 3 + [2, 3, 4], 30.0, "raw")
    assert raw.unnamed_notes(["W_ls8.tif", "r.tif", "a.tif", "b.tif", "c.tif"]) == []


def test_the_share_kernel_equals_its_formula():
    from geomap.kernels import shares

    rng = np.random.default_rng(3)
    a = rng.normal(1, 2, (3, 40, 50)).astype("float32")  # about a third below 0
    a[0, :5] = np.nan
    a[1, 5:10] = 0.0
    a[0, 5:10] = -1.0  # both at or below 0
    pairs = [(0, 1), (2, 1), (2, 0)]
    x, y = (np.maximum(a[[p[i] for p in pairs]], 0) for i in (0, 1))
    with np.errstate(invalid="ignore"):
        expected = np.where(x + y > 0, x / (x + y), 0.5)
    expected[np.isnan(x + y)] = np.nan
    np.testing.assert_allclose(shares(a, pairs), expected, rtol=1e-6)
    assert shares(a, pairs)[0, 7, 0] == 0.5 and np.isnan(shares(a, pairs)[0, 0, 0])


def test_spectral_shape_from_kuwahara_means_ignores_brightness():
    r = FeatureRecipe.build(["blue", "green", "red", "nir", "swir1", "swir2", "K"], [0] * 7, 30.0)
    shares = [r.names.index(f"{b}_share_kuwahara3") for b in r.band_names[:6]]
    rng = np.random.default_rng(0)
    spectrum = np.array([800, 1000, 1200, 2200, 2800, 2100], "float32")[:, None, None]
    size = 1 + 2 * r.halo
    bright = spectrum * rng.uniform(0.5, 2.0, (1, size, size)).astype("float32")  # shade, albedo
    block = np.concatenate([bright, np.ones((1, size, size), "float32")])
    feats = r.compute(block)[:, 0, 0]
    np.testing.assert_allclose(feats[shares], spectrum.ravel() / spectrum.sum(), rtol=1e-5)
    assert not any("K_share" in n for n in r.names)  # optical bands only
    two = FeatureRecipe.build(["red", "nir"], [0, 0], 30.0)
    assert not any("_share" in n for n in two.names)  # a spectrum needs three bands


S2 = [f"T33TWM_20230612T100031_{b}" for b in ("B02_10m", "B03_10m", "B04_10m", "B08_10m")]
S2 += [f"T33TWM_20230612T100031_{b}" for b in ("B8A_20m", "B11_20m", "B12_20m")]
LANDSAT = [f"LC09_L2SP_190027_20230611_20230613_02_T1_SR_B{i}" for i in range(2, 8)]


def test_aster_swir_and_thermal_bands_give_the_ratios_of_clays_carbonates_and_quartz():
    scene = "AST_L1T_00301052024143729"
    bands = ["VNIR_Band1", "VNIR_Band2", "VNIR_Band3N", *(f"SWIR_Band{i}" for i in range(4, 10))]
    names = [f"{scene}_{b}" for b in bands] + [f"{scene}_TIR_Band13"]
    r = FeatureRecipe.build(names, list(range(10)), 15.0)
    short = {n: n.replace(f"{scene}_", "") for n in names}
    ratios = [n for n in r.names if "/" in n and "kuwahara" not in n]
    for name in names:
        ratios = [n.replace(name, short[name]) for n in ratios]
    assert ratios[3:] == [
        "SWIR_Band5/(SWIR_Band5+SWIR_Band6)",  # Al-OH: sericite, illite, smectite
        "SWIR_Band7/(SWIR_Band7+SWIR_Band6)",
        "SWIR_Band4/(SWIR_Band4+SWIR_Band5)",  # kaolinite, alunite
        "SWIR_Band7/(SWIR_Band7+SWIR_Band8)",  # carbonate, chlorite, epidote
        "SWIR_Band9/(SWIR_Band9+SWIR_Band8)",
        # with band 13 alone of the thermal bands, none of their ratios
    ]
    tir = [f"{scene}_TIR_Band{i}" for i in range(10, 15)]
    thermal = FeatureRecipe.build(names[:9] + tir, list(range(14)), 15.0)
    ratios = [n.replace(f"{scene}_", "") for n in thermal.names if "/" in n and "kuw" not in n]
    assert ratios[-5:] == [
        "TIR_Band11/(TIR_Band11+TIR_Band10)",  # quartz: bands 10 and 12 low
        "TIR_Band11/(TIR_Band11+TIR_Band12)",
        "TIR_Band13/(TIR_Band13+TIR_Band14)",  # carbonate: band 14 low
        "TIR_Band12/(TIR_Band12+TIR_Band13)",  # mafic: band 13 low
        "TIR_Band14/(TIR_Band14+TIR_Band13)",
    ]
    assert r.optical == (0, 1, 2, 3, 5)  # the spectrum: green to band 6, as before
    block = np.full((10, 1 + 2 * r.halo, 1 + 2 * r.halo), 2.0, dtype="float32")
    block[5] = 1.0  # band 6 absorbs: muscovite
    feats = dict(zip(r.names, r.compute(block)[:, 0, 0]))
    assert feats[f"{names[4]}/({names[4]}+{names[5]})"] == pytest.approx(2 / 3)
    assert feats[f"{names[6]}/({names[6]}+{names[7]})"] == pytest.approx(0.5)  # band 8: none
    landsat = [f"LC09_L2SP_112075_20240315_20240316_02_T1_SR_B{i}" for i in range(2, 8)]
    both = FeatureRecipe.build(names[:9] + landsat, list(range(15)), 15.0)
    assert both.optical_sets == (0,) * 5 + (1,) * 6  # two sensors, each its own ratios


def test_each_sensor_gets_its_own_ratios_and_spectrum():
    """Sentinel-2 beside Landsat: both scenes' ratios, each spectrum shared out on its own."""
    r = FeatureRecipe.build([*S2, *LANDSAT, "K", "Th"], [*range(14), 13], 10.0)
    ratios = [n for n in r.names if "/" in n and "kuwahara" not in n]
    assert ratios[0] == "K/(K+Th)" and len(ratios) == 1 + 4 + 4
    assert f"{S2[2]}/({S2[2]}+{S2[0]})" in ratios
    assert f"{LANDSAT[2]}/({LANDSAT[2]}+{LANDSAT[0]})" in ratios
    assert not any(S2[4] in n for n in ratios)  # B8A: the scene's second NIR band
    assert r.optical == (0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12)
    assert r.optical_sets == (0,) * 6 + (1,) * 6
    spectrum = np.array([800, 1000, 1200, 2200, 2800, 2100], "float32")
    size = 1 + 2 * r.halo
    block = np.ones((15, size, size), "float32")
    block[[0, 1, 2, 3, 5, 6]] = spectrum[:, None, None]
    block[7:13] = 2 * spectrum[::-1, None, None]  # another sensor, another spectrum
    feats = r.compute(block)[:, 0, 0]
    shares = [feats[r.names.index(f"{b}_share_kuwahara3")] for b in (*S2[:4], *S2[5:], *LANDSAT)]
    np.testing.assert_allclose(shares[:6], spectrum / spectrum.sum(), rtol=1e-5)
    np.testing.assert_allclose(shares[6:], spectrum[::-1] / spectrum.sum(), rtol=1e-5)
    sources = dict(zip(r.names, r.feature_sources))
    assert sources[f"{S2[0]}_share_kuwahara3"] == (0, 1, 2, 3, 5, 6)
    assert sources[f"{LANDSAT[0]}_share_kuwahara3"] == (7, 8, 9, 10, 11, 12)
    again = FeatureRecipe.from_dict(r.to_dict())
    assert again == r and again.names == r.names


def test_outages_take_a_scenes_or_a_surveys_files_together_and_other_sources_alone():
    names = [*S2, *LANDSAT, "K_pct", "eTh_ppm", "dem"]
    r = FeatureRecipe.build(names, [*range(16)], 10.0)
    sources = r.feature_sources
    lost = [{s for i in cols for s in sources[i]} for cols in r.outages()]
    s2, landsat = {0, 1, 2, 3, 4, 5, 6}, {7, 8, 9, 10, 11, 12}  # B8A (4): the scene's too
    units = [s2, landsat, {13, 14}, {15}]
    assert lost == units
    raw = FeatureRecipe.build(names, [*range(16)], 10.0, "raw")  # no spectra: scenes by name
    assert [{int(c) for c in cols} for cols in raw.outages()] == units
    thermal = LANDSAT[0].replace("_SR_B2", "_ST_B10")  # Landsat's surface temperature
    hot = FeatureRecipe.build([*LANDSAT, thermal, "dem"], [*range(8)], 30.0)
    scene = {int(c) for c in hot.outages()[0]}
    assert scene >= set(range(7)) and 7 not in scene  # the 7 bands' own columns, not the DEM's
    for cols, unit in zip(r.outages(), units):
        hit = [i for i, src in enumerate(sources) if set(src) & set(unit)]
        assert list(cols) == hit  # every feature computed from the outage's sources
    alone = FeatureRecipe.build(["blue", "green", "red"], [0, 0, 0], 30.0)
    assert alone.outages() == []  # nothing would be left to map from


@pytest.mark.parametrize(
    "names",
    [
        ["Band 2 - Blue", "Band 3 - Green", "Band 4 - Red", "Band 5 - NIR", "Band 6 - SWIR1"],
        ["blue_490nm", "green_560nm", "red_665nm", "nir_842nm", "swir1_1610nm"],
        ["blue_jan", "green_jan", "red_feb", "nir_feb", "swir1_feb"],  # a "scene" of 2 kinds
    ],
)
def test_one_scenes_bands_named_otherwise_stay_one_spectrum(names):
    r = FeatureRecipe.build(names, [0] * 5, 30.0)
    assert len([n for n in r.names if "/" in n and "kuwahara" not in n]) == 3
    assert r.optical == (0, 1, 2, 3, 4) and set(r.optical_sets) == {0}


def test_with_two_sensors_each_has_its_screen_and_is_mapped_from_the_other():
    r = FeatureRecipe.build([*S2, *LANDSAT], list(range(13)), 10.0)
    (s2, s2_drop, s2_files), (ls, ls_drop, ls_files) = r.optical_screens()
    assert s2_files == [0, 1, 2, 3, 4, 5, 6]  # Sentinel-2's files, its second NIR (B8A) too
    assert ls_files == list(range(7, 13))
    assert len(s2) == len(ls) == 6 * (1 + len(r.kuwahara_sizes))
    kept = {r.names[i] for i in set(range(r.n_features)) - set(s2_drop)}
    assert kept >= {f"{LANDSAT[0]}_share_kuwahara3", LANDSAT[3]}
    assert not kept & {r.names[i] for i in set(range(r.n_features)) - set(ls_drop)}


def test_two_landsat_dates_are_two_scenes_with_their_own_spectrum_screen_and_outage():
    june = [f"LC09_L2SP_190027_20230611_20230613_02_T1_SR_B{i}" for i in range(2, 8)]
    august = [f"LC09_L2SP_190027_20230814_20230816_02_T1_SR_B{i}" for i in range(2, 8)]
    r = FeatureRecipe.build([*june, *august, "K"], list(range(13)), 30.0, band_grid=[0] * 13)
    assert r.optical_sets == (0,) * 6 + (1,) * 6
    assert len(r.optical_screens()) == 2
    scenes = [{s for c in cols for s in r.feature_sources[c]} for cols in r.outages()]
    assert set(range(6)) in scenes and set(range(6, 12)) in scenes  # a cloud on one date
    assert r.kuwahara_groups[0] != r.kuwahara_groups[6]


def test_two_sensors_on_one_grid_choose_their_kuwahara_squares_apart():
    """A cloud in one scene must not take the other's Kuwahara means with it."""
    one_grid = [0] * 14
    r = FeatureRecipe.build([*S2, *LANDSAT, "K"], list(range(14)), 30.0, band_grid=one_grid)
    groups = r.kuwahara_groups
    assert len({groups[b] for b in range(7)}) == 1 and len({groups[b] for b in range(7, 13)}) == 1
    assert len({groups[0], groups[7], groups[13]}) == 3
    s2_cols = {c for c, src in enumerate(r.feature_sources) if set(src) & set(range(7))}
    assert not any(LANDSAT[0] in r.names[c] for c in s2_cols)  # no Landsat feature uses S2
    single = FeatureRecipe.build([*LANDSAT, "K"], list(range(7)), 30.0, band_grid=[0] * 7)
    assert len(set(single.kuwahara_groups[:6])) == 1  # one sensor: as before


def test_models_saved_before_sensor_sets_keep_one_spectrum():
    saved = FeatureRecipe.build(["blue", "green", "red", "nir"], [0] * 4, 30.0).to_dict()
    del saved["optical_sets"]
    old = FeatureRecipe.from_dict(saved)
    block = np.full((4, 1 + 2 * old.halo, 1 + 2 * old.halo), 2.0, dtype="float32")
    shares = old.compute(block)[
        [old.names.index(f"{b}_share_kuwahara3") for b in "blue red".split()]
    ]
    np.testing.assert_allclose(shares[:, 0, 0], 0.25)


def test_raw_preset_is_bands_only():
    r = _recipe(preset="raw")
    assert r.names == r.band_names and r.halo == 0


def test_unknown_preset_lists_choices():
    with pytest.raises(InputDataError, match="Available: raw, default, rich"):
        _recipe(preset="fancy")


def test_focal_mean_std_matches_hand_values():
    a = np.array([[[1, 2, 3], [4, 5, 6], [7, 8, np.nan]]], dtype="float32")
    mean, std = focal_mean_std(a, 3)
    vals = np.array([1, 2, 3, 4, 5, 6, 7, 8], dtype=float)
    assert mean[0, 0, 0] == pytest.approx(vals.mean())
    assert std[0, 0, 0] == pytest.approx(vals.std(), rel=1e-6)


def test_slope_of_a_plane_and_roughness():
    # plane rising 1 m per 30 m pixel to the east: slope atan(1/30)
    dem = np.tile(np.arange(5, dtype="float32"), (5, 1))
    slope, rough = slope_roughness(dem, 30.0)
    assert np.allclose(slope, np.degrees(np.arctan(1 / 30)), atol=1e-4)
    assert np.allclose(rough, 2.0)


def test_streamed_features_equal_whole_image_exactly():
    rng = np.random.default_rng(0)
    r = _recipe()
    h = r.halo
    img = rng.normal(100, 20, size=(6, 90, 110)).astype("float32")
    img[0, 30:40, 50:70] = np.nan  # a cloud in one band
    padded = np.pad(img, ((0, 0), (h, h), (h, h)), constant_values=np.nan)
    whole = r.compute(padded)
    assert whole.shape == (r.n_features, 90, 110)
    for r0, c0, hh, ww in [(0, 0, 32, 32), (17, 41, 25, 30), (58, 80, 32, 30)]:
        block = padded[:, r0 : r0 + hh + 2 * h, c0 : c0 + ww + 2 * h]
        part = r.compute(block)
        np.testing.assert_array_equal(part, whole[:, r0 : r0 + hh, c0 : c0 + ww])


def test_missing_centre_makes_that_sources_features_nan_only():
    r = _recipe()
    block = np.ones((6, 1 + 2 * r.halo, 1 + 2 * r.halo), dtype="float32")
    block[0, r.halo, r.halo] = np.nan
    feats = r.compute(block)[:, 0, 0]
    # red's own features, and the Kuwahara means of its image (red and nir choose together)
    missing = [i for i, n in enumerate(r.names) if "red" in n or n.startswith("nir_kuwahara")]
    assert np.isnan(feats[missing]).all()
    others = [i for i in range(r.n_features) if i not in missing]
    assert np.isfinite(feats[others]).all()


def test_wrong_band_count_is_refused():
    with pytest.raises(InputDataError, match="Expected a block of 6 bands"):
        _recipe().compute(np.zeros((3, 20, 20), "float32"))


def test_pixel_table_holds_the_same_features():
    rng = np.random.default_rng(1)
    r = _recipe()
    block = rng.normal(50, 5, size=(6, 30 + 2 * r.halo, 20 + 2 * r.halo)).astype("float32")
    block[2, 10:15, 10:15] = np.nan
    planes = r.compute(block)
    table = r.compute_pixels(block)
    assert table.flags.c_contiguous and table.shape == (600, r.n_features)
    np.testing.assert_array_equal(table, planes.reshape(r.n_features, -1).T)


def test_kuwahara_keeps_a_contact_sharp_and_smooths_noise():
    rng = np.random.default_rng(3)
    img = np.where(np.arange(12) < 6, 100.0, 200.0)[None, None, :].repeat(12, axis=1)
    noisy = (img + rng.normal(0, 5, img.shape)).astype("float32")
    out = kuwahara(noisy, [0], 3)  # 5 x 5 window, 3 x 3 squares
    inner = img[:, 2:-2, 2:-2]
    # every pixel keeps its own side of the contact, including those next to it
    assert np.abs(out - inner).max() < 15
    assert np.abs(out - inner).std() < 0.6 * np.abs(noisy[:, 2:-2, 2:-2] - inner).std()
    mean, _ = focal_mean_std(noisy, 5)  # a plain mean puts the contact pixels half-way
    assert np.abs(mean - inner).max() > 30


def test_kuwahara_bands_of_a_group_choose_one_square():
    band = np.where(np.indices((5, 5)).sum(axis=0) % 2, 1.0, 20.0).astype("float32")
    band[:3, :3] = 7.0  # the top-left square is uniform, the others vary a lot
    other = np.arange(1, 26, dtype="float32").reshape(5, 5)  # bottom-right: least relative spread
    together = kuwahara(np.stack([band, other]), [0, 0], 3)
    assert together[0, 0, 0] == 7.0
    assert together[1, 0, 0] == other[:3, :3].mean()  # follows the first band's choice
    alone = kuwahara(np.stack([band, other]), [0, 1], 3)
    # alone, one band chooses by variance: equal in every square, so the first (top-left) wins
    assert alone[1, 0, 0] == other[:3, :3].mean()
    assert kuwahara(np.stack([other, other]), [0, 0], 3)[0, 0, 0] == other[2:, 2:].mean()


def test_kuwahara_skips_squares_mostly_without_data():
    a = np.ones((1, 5, 5), "float32")
    a[0, :3, :3] = np.nan
    a[0, 2, 2] = 1.0
    a[0, 2:, 2:] = 5.0
    a[0, 2, 2] = 1.0
    out = kuwahara(a, [0], 3)
    assert np.isfinite(out).all() and out[0, 0, 0] != 5.0  # the top-left square is skipped
    a[0, 2, 2] = np.nan
    assert np.isnan(kuwahara(a, [0], 3)).all()  # no data at the pixel: none out


def test_stack_bands_on_one_native_grid_are_one_image(tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    from geomap.stack import RasterStack

    def write(name, transform, width):
        profile = dict(driver="GTiff", width=width, height=width, count=1, dtype="float32")
        profile.update(crs="EPSG:32633", transform=transform)
        with rasterio.open(tmp_path / name, "w", **profile) as dst:
            dst.write(np.ones((1, width, width), "float32"))
        return tmp_path / name

    b4 = write("B04.tif", from_origin(500000, 5200000, 10, 10), 20)
    b8 = write("B08.tif", from_origin(500000, 5200000, 10, 10), 20)
    b11 = write("B11.tif", from_origin(500000, 5200000, 20, 20), 10)
    k = write("K.tif", from_origin(500000, 5200000, 10, 10), 20)  # regridded onto the 10 m bands
    with RasterStack.open([b4, b8, b11, k]) as stack:
        recipe = FeatureRecipe.for_stack(stack)
    assert recipe.kuwahara_groups == (0, 0, 1, 2)  # geophysics is never the satellite's image
    sources = dict(zip(recipe.names, recipe.feature_sources))
    assert sources["B04_kuwahara3"] == (0, 1) and sources["B11_kuwahara5"] == (2,)
    assert sources["K_kuwahara3"] == (3,)
    assert sources["B04_share_kuwahara3"] == (0, 1, 2)  # the spectrum needs every optical band


def test_models_saved_before_kuwahara_features_load_without_them():
    saved = _recipe().to_dict()
    for key in ("kuwahara_sizes", "kuwahara_groups"):
        del saved[key]
    old = FeatureRecipe.from_dict(saved)
    assert old.kuwahara_sizes == () and not any("kuwahara" in n for n in old.names)


def test_kernels_compile_in_a_child_process_into_numbas_disk_cache(tmp_path, monkeypatch):
    cache, elsewhere = tmp_path / "cache", tmp_path / "srv"
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))  # read by the child only
    # a second copy of geomap in the working directory (a source tree beside the installed
    # package, as in the Docker image): the child must compile the copy the caller imports
    decoy = elsewhere / "geomap"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("")
    (decoy / "kernels.py").write_text(
        f"def warm_up():\n    open({str(tmp_path / 'decoy_ran')!r}, 'w').close()\n"
    )
    monkeypatch.chdir(elsewhere)
    waiter = warm_up_in_background()
    waiter.join(timeout=600)
    assert not waiter.is_alive()
    assert not (tmp_path / "decoy_ran").exists()
    cached = {p.name.split("-")[0] for p in cache.rglob("*.nbi")}
    assert {"kernels._box_stats", "kernels._pick_squares"} <= cached


def test_composites_of_two_years_are_two_scenes():
    names = [f"S2_{year}:{b}" for year in (2019, 2023) for b in ("B02", "B03", "B04", "B08")]
    r = FeatureRecipe.build(names, [0] * 4 + [1] * 4, 10.0)
    assert r._spectra() == [(0, 1, 2, 3), (4, 5, 6, 7)]
    wavelengths = ["blue_490", "green_560", "red_665", "nir_842"]  # numbers, not years
    assert len(FeatureRecipe.build(wavelengths, [0] * 4, 10.0)._spectra()) == 1


@pytest.mark.parametrize(
    "setting",
    [
        {"NUMBA_THREADING_LAYER": "workqueue"},
        {"NUMBA_THREADING_LAYER_PRIORITY": "workqueue omp tbb"},
    ],
)
def test_kernels_from_several_threads_survive_numbas_workqueue_layer(setting):
    """numba's fallback layer (no libgomp, as in python:3.11-slim) aborts on concurrent kernels."""
    import os
    import subprocess
    import sys

    script = """
import threading, numba, numpy as np
from geomap.kernels import focal_mean_std, kuwahara
a = np.random.default_rng(0).random((4, 120, 120)).astype("float32")
def work():
    for _ in range(15):
        focal_mean_std(a, 7)
        kuwahara(a, [0, 0, 1, 1], 3)
threads = [threading.Thread(target=work) for _ in range(3)]
[t.start() for t in threads]
[t.join() for t in threads]
print(numba.threading_layer())
"""
    env = {**os.environ, **setting, "NUMBA_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "workqueue"


def test_slope_of_pixels_taller_than_wide_is_the_same_in_every_direction():
    """A degree grid at 60 N: pixels 10 m wide and 20 m tall, a 30% gradient east or north."""
    import math

    i, j = np.mgrid[0:6, 0:6].astype("float64")
    east, north = 0.3 * 10.0 * j, -0.3 * 20.0 * i  # rows run south
    size = math.sqrt(10.0 * 20.0)
    for dem in (east, north):
        slope, _ = slope_roughness(dem, size, aspect=2.0)
        np.testing.assert_allclose(slope, np.degrees(np.arctan(0.3)), rtol=1e-6)
    square, _ = slope_roughness(east, size)  # taken as square: 0.3 * 10 / 14.1 per metre
    assert abs(float(square[0, 0]) - np.degrees(np.arctan(0.3))) > 4


def test_modis_surface_reflectance_bands_are_read_as_modis():
    """sur_refl_b02 is MODIS's NIR: read as Sentinel-2's B02 it was taken for blue."""
    appeears = [f"MOD09A1.061_sur_refl_b0{i}_doy2021161_aid0001" for i in range(1, 8)]
    expected = ["red", "nir", "blue", "green", None, "swir1", "swir2"]
    assert band_kinds(appeears) == expected
    assert band_kinds([f"sur_refl_b0{i}" for i in range(1, 8)]) == expected
    assert band_kinds(["B02", "B03", "B04", "B08"]) == ["blue", "green", "red", "nir"]


def test_bands_named_by_their_wavelength_get_optical_kinds():
    """A hyperspectral cube's bands: ENVI wavelengths as GDAL names them, nm or micrometres."""
    names = [
        "Band 10 (480.0 nm)",
        "Band 30 (560 nm)",
        "Band 50 (660.0 nm) (660.00 Nanometers)",
        "Band 70 (850 nm)",
        "Band 90 (1360.3 nm)",  # water vapour: no kind
        "Band 120 (1.65 um)",
        "Band 180 (2200 nm)",
    ]
    assert band_kinds(names) == ["blue", "green", "red", "nir", None, "swir1", "swir2"]
    recipe = FeatureRecipe.build(names, [0] * len(names), 30.0)
    assert len(recipe.ratios) >= 3  # iron (red/blue), clay (swir1/swir2), vegetation ...


def test_a_cubes_kinds_go_to_the_bands_nearest_each_kinds_centre():
    names = [f"Band {i} ({nm}.0 nm)" for i, nm in enumerate(range(443, 2331, 10))]
    kinds = {k: n for n, k in zip(names, band_kinds(names)) if k}
    assert kinds["red"] == "Band 22 (663.0 nm)" and kinds["nir"] == "Band 39 (833.0 nm)"
    assert kinds["swir2"] == "Band 176 (2203.0 nm)"  # in the clay absorption, not at 2083 nm


def test_airborne_thorium_and_uranium_make_the_ratios_beside_assay_grids():
    names = ["K_pct", "Th_ppm", "U_ppm", "eTh_ppm", "eU_ppm"]  # geochemistry listed first
    assert band_kinds(names) == ["K", None, None, "Th", "U"]
    recipe = FeatureRecipe.build(names, [0, 1, 2, 3, 4], 30.0)
    assert (0, 3) in recipe.ratios and (4, 3) in recipe.ratios  # K/eTh, eU/eTh
    assert band_kinds(["K_pct", "Th_ppm", "U_ppm"]) == ["K", "Th", "U"]  # alone: as before
