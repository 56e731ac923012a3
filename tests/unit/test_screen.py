"""Spectral screen: optical pixels unlike every observation are mapped from the other sources."""

import numpy as np
from scipy.spatial import cKDTree
from sklearn.base import clone

from geomap.features import FeatureRecipe
from geomap.kernels import SCREEN_CHUNK
from geomap.models import LithologyForest
from geomap.screen import MAX_REFERENCE, SpectralScreen, _thin, describe_screens, screens_for


def _scene(n=300, seed=0):
    """Columns 0-2: an 'optical' image; 3-4: 'geophysics'. Both separate the three classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    optical = y[:, None] * [1.0, -1.0, 0.5] + rng.normal(0, 0.3, (n, 3))
    geophysics = y[:, None] * [0.8, 0.8] + rng.normal(0, 0.3, (n, 2))
    return np.hstack([optical, geophysics]).astype("float32"), y


SCREEN = SpectralScreen(columns=[0, 1, 2], drop=[0, 1, 2], sources=[0])


def test_far_spectra_are_flagged_and_training_like_ones_are_not():
    X, _ = _scene()
    screen = clone(SCREEN).fit(X)
    probe, _ = _scene(200, seed=1)
    assert screen.flag(probe).mean() < 0.02
    hazy = probe.copy()
    hazy[:, :3] = 0.4 * hazy[:, :3] + 0.6 * np.float32([9.0, 9.0, 9.0])  # mixed with a bright cloud
    assert screen.flag(hazy).all()
    hazy[:10, 1] = np.nan  # a pixel missing an optical value is the fallback's already
    assert not screen.flag(hazy)[:10].any()


def test_the_threshold_does_not_depend_on_how_densely_samples_lie():
    X, _ = _scene()
    rng = np.random.default_rng(5)
    dense = np.vstack([X] + [X + rng.normal(0, 0.01, X.shape).astype("float32") for _ in range(9)])
    probe, _ = _scene(400, seed=2)
    probe[:, :3] *= np.linspace(0.5, 3.0, 400)[:, None]  # from training-like to far
    sparse_flags = clone(SCREEN).fit(X).flag(probe)
    dense_flags = clone(SCREEN).fit(dense).flag(probe)
    assert 0.1 < sparse_flags.mean() < 0.9
    assert (sparse_flags != dense_flags).mean() < 0.03


def test_thinning_keeps_every_sample_within_its_radius_and_bounds_the_reference():
    Z = np.random.default_rng(0).normal(size=(3000, 4)).astype("float32")
    kept, radius = _thin(Z, 0.3)
    assert len(kept) <= MAX_REFERENCE and radius > 0.3  # 3000 samples needed a larger radius
    d = np.sqrt(((Z[:, None, :] - kept[None]) ** 2).sum(axis=2)).min(axis=1)
    assert d.max() <= radius
    near, same = _thin(Z[:200], 0.3)
    d = np.sqrt(((Z[:200, None, :] - near[None]) ** 2).sum(axis=2)).min(axis=1)
    assert len(near) < 200 and same == 0.3 and d.max() <= 0.3


def test_thinning_flags_exactly_what_the_full_training_set_would():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4000, 3)).astype("float32")
    screen = SpectralScreen([0, 1, 2], [0, 1, 2], [0]).fit(X)
    sizes = [len(kept) for kept, _ in screen.levels_]
    assert sizes[0] < sizes[1] <= MAX_REFERENCE < sizes[2] == len(X)
    Z = (X - screen.mean_) / screen.scale_
    for kept, radius in screen.levels_:  # every sample lies within the radius of a kept one
        assert (
            np.sqrt(((Z[:, None, :] - kept[None]) ** 2).sum(axis=2)).min(axis=1).max()
            <= radius + 1e-5
        )
    probe = (rng.normal(size=(3 * SCREEN_CHUNK + 5, 3)) * 1.8).astype("float32")  # 4 tasks
    probe[::7, 1] = np.nan  # rows missing a measured feature are never flagged
    flagged = screen.flag(probe)
    P = (probe - screen.mean_) / screen.scale_
    complete = np.isfinite(P).all(axis=1)
    full = np.full(len(P), np.nan)
    full[complete] = cKDTree(Z).query(P[complete])[0]  # the exact nearest training sample
    full_flags = complete & (full > screen.threshold * screen.spread_)
    assert 0 < flagged.sum() < len(probe) and not flagged[::7].any()
    np.testing.assert_array_equal(flagged, full_flags)


def test_too_few_samples_switch_the_screen_off():
    X, _ = _scene(9)
    screen = clone(SCREEN).fit(X)
    assert not screen.active_ and not screen.flag(X * 100).any()
    assert screen.describe()["active"] is False


def test_forest_maps_flagged_pixels_from_the_other_sources():
    X, y = _scene()
    groups = [0, 0, 0, 1, 1]
    model = LithologyForest(
        n_estimators=30, feature_groups=groups, screens=[SCREEN], random_state=0
    )
    model.fit(X, y)
    probe, y_probe = _scene(200, seed=3)
    hazy = probe.copy()
    hazy[:100, :3] = 0.4 * hazy[:100, :3] + 0.6 * np.float32([9.0, 9.0, 9.0])
    before = hazy.copy()
    proba, flags = model.screened_proba(hazy)
    flagged = flags[:, 0]
    np.testing.assert_array_equal(hazy, before)  # the caller's array is left as it was
    assert flagged[:100].all() and flagged[100:].mean() < 0.05
    without = hazy.copy()
    without[:100, :3] = np.nan
    np.testing.assert_array_equal(proba[:100], model.predict_proba(without)[:100])
    np.testing.assert_array_equal(model.predict_proba(hazy), proba)
    assert (model.predict(hazy)[:100] == y_probe[:100]).mean() > 0.8
    unscreened = clone(model).set_params(screens=()).fit(X, y)
    assert unscreened.screens_ == []
    assert (unscreened.predict(hazy)[:100] == y_probe[:100]).mean() < 0.6


def test_a_pixel_with_nothing_else_to_map_it_from_is_not_screened():
    X, y = _scene()
    model = LithologyForest(n_estimators=10, feature_groups=[0, 0, 0, 1, 1], screens=[SCREEN])
    model.fit(X, y)
    probe, _ = _scene(20, seed=6)
    probe[:, :3] = 50.0  # far from every training spectrum
    probe[:10, 3] = np.nan  # and no geophysics either
    proba, flags = model.screened_proba(probe)
    assert not flags[:10, 0].any() and flags[10:, 0].all()
    assert np.isfinite(proba).all()


def test_two_sensors_screens_drop_each_its_own_and_never_every_input():
    """Columns 0-2 and 3-4 are two satellites, 5 the geophysics (groups 0, 1, 2)."""
    X, y = _scene()
    X = np.hstack([X[:, :3], X[:, :2] * 2, X[:, 3:4]])
    first = SpectralScreen(columns=[0, 1, 2], drop=[0, 1, 2], sources=[0])
    second = SpectralScreen(columns=[3, 4], drop=[3, 4], sources=[1])
    groups = [0, 0, 0, 1, 1, 2]
    model = LithologyForest(n_estimators=10, feature_groups=groups, screens=[first, second])
    model.fit(X, y)
    probe, _ = _scene(40, seed=8)
    probe = np.hstack([probe[:, :3], probe[:, :2] * 2, probe[:, 3:4]])
    probe[:10, 3:5] = 40.0  # a cloud in the second image only
    probe[10:20, :5] = 40.0  # in both
    probe[20:30, :5] = 40.0  # in both, and no geophysics there
    probe[20:30, 5] = np.nan
    proba, flags = model.screened_proba(probe)
    assert not flags[:10, 0].any() and flags[:10, 1].all()
    assert flags[10:20].all()  # both dropped: mapped from the geophysics
    assert flags[20:30, 0].all() and not flags[20:30, 1].any()  # the second image is all left
    assert not flags[30:].any() and np.isfinite(proba).all()
    seen, same = model.screened_features(probe)
    np.testing.assert_array_equal(same, flags)
    assert np.isnan(seen[:10, 3:5]).all() and np.isfinite(seen[:10, :3]).all()
    assert np.isnan(seen[10:20, :5]).all() and np.isfinite(seen[20:30, 3:5]).all()
    np.testing.assert_array_equal(model.predict_proba(seen), proba)


def test_model_bundles_saved_before_the_screen_still_load_and_predict(tmp_path):
    from geomap.export import load_model, save_model

    X, y = _scene()
    model = LithologyForest(n_estimators=10, feature_groups=[0, 0, 0, 1, 1]).fit(X, y)
    del model.screens, model.screens_  # as a model of geomap 0.1 was saved
    save_model(tmp_path / "old.skops", {"format": "geomap-model", "estimator": model})
    old = load_model(tmp_path / "old.skops")["estimator"]
    assert old.screens == () and old.screens_ == [] and "LithologyForest" in repr(old)
    proba, flags = old.screened_proba(X)
    assert flags.shape == (len(X), 0)
    np.testing.assert_array_equal(proba, model.forest_.predict_proba(X))


def test_model_bundles_of_one_screen_load_with_it_as_their_only_screen(tmp_path):
    from geomap.export import load_model, save_model

    X, y = _scene()
    model = LithologyForest(n_estimators=10, feature_groups=[0, 0, 0, 1, 1], screens=[SCREEN])
    model.fit(X, y)
    probe, _ = _scene(50, seed=4)
    probe[:25, :3] = 50.0
    expected = model.screened_proba(probe)
    model.screen, model.screen_ = model.screens[0], model.screens_[0]  # as saved before
    del model.screens, model.screens_
    save_model(tmp_path / "one.skops", {"format": "geomap-model", "estimator": model})
    old = load_model(tmp_path / "one.skops")["estimator"]
    assert len(old.screens) == 1 and len(old.screens_) == 1
    proba, flags = old.screened_proba(probe)
    np.testing.assert_array_equal(proba, expected[0])
    np.testing.assert_array_equal(flags, expected[1])
    assert flags[:25, 0].all()
    assert describe_screens(old.screens_)[0]["active"] and describe_screens([]) is None


def test_recipe_screens_the_optical_image_and_nothing_else():
    names = ["blue", "green", "red", "nir", "swir1", "swir2", "K", "Th", "U"]
    source = [0] * 6 + [1] * 3
    recipe = FeatureRecipe.build(names, source, 30.0, "default")
    [(measured, drop, sources)] = recipe.optical_screens()
    assert [recipe.names[i] for i in measured[:6]] == names[:6]
    assert {recipe.names[i] for i in measured[6:]} == {
        f"{b}_kuwahara{k}" for b in names[:6] for k in (3, 5)
    }
    assert sources == [0]
    assert all(0 in recipe.feature_sources[i] for i in drop)
    kept = [recipe.names[i] for i in range(recipe.n_features) if i not in drop]
    assert "K/(K+Th)" in kept and "Th_kuwahara5" in kept and "blue_share_kuwahara3" not in kept
    assert len(kept) + len(drop) == recipe.n_features
    assert FeatureRecipe.build(names, source, 30.0, "raw").optical_screens() == []
    assert screens_for(FeatureRecipe.build(names[6:], [0, 0, 0], 30.0, "default")) == []


def test_optical_bands_in_separate_files_are_screened_together():
    names = ["B02", "B03", "B04", "B08", "tmi"]
    recipe = FeatureRecipe.build(names, [0, 1, 2, 3, 4], 10.0, "default", band_grid=[0, 0, 0, 0, 1])
    [(measured, drop, sources)] = recipe.optical_screens()
    assert sources == [0, 1, 2, 3] and len(measured) == 4 * 3
    assert not any(recipe.names[i].startswith("tmi") for i in drop)
    one_grid = FeatureRecipe.build(names, [0, 1, 2, 3, 4], 10.0, "default", band_grid=[0] * 5)
    [(measured, drop, sources)] = one_grid.optical_screens()
    assert sources == [0, 1, 2, 3]
    dropped = {one_grid.names[i] for i in drop}
    assert not {"tmi", "tmi_mean3", "tmi_std7", "tmi_kuwahara3"} & dropped  # its own image
    unknown = FeatureRecipe.build([*names[:4], "band_5"], [0, 1, 2, 3, 4], 10.0, band_grid=[0] * 5)
    dropped = {unknown.names[i] for i in unknown.optical_screens()[0][1]}
    assert "band_5_kuwahara3" in dropped and "band_5" not in dropped  # may be the same sensor's


def test_a_scenes_other_files_are_dropped_with_its_spectrum():
    """Sentinel-2 as one file per band: haze that the screen finds is in B01 and red edge too.

    Before, a single sensor's screen dropped only the six spectrum files, so the fallback
    that maps hazy pixels used the hazy B01, B05-B07 and B8A.
    """
    bands = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12"]
    names = [f"T33TXM_20230612T100031_{b}" for b in bands] + ["dem", "T33TXM_tmi"]
    recipe = FeatureRecipe.build(names, list(range(13)), 10.0)
    [(measured, drop, sources)] = recipe.optical_screens()
    assert sources == list(range(11))  # the whole scene, not the DEM or the magnetics
    assert len(measured) == 6 * (1 + len(recipe.kuwahara_sizes))  # its spectrum's bands
    kept = {recipe.names[i] for i in range(recipe.n_features) if i not in drop}
    assert {"dem", "dem_slope", "T33TXM_tmi_mean3"} <= kept
    assert not {n for n in kept if n.startswith("T33TXM_2023")}


def test_two_sensors_in_one_composite_file_share_one_screen_of_both_spectra():
    s2 = [f"S2_{b}" for b in ("blue", "green", "red", "nir", "swir1", "swir2")]
    landsat = [f"L8_{b}" for b in ("blue", "green", "red", "nir", "swir1", "swir2")]
    recipe = FeatureRecipe.build([*s2, *landsat, "tmi"], [0] * 12 + [1], 30.0)
    assert len(set(recipe.optical_sets)) == 2
    [(measured, drop, sources)] = recipe.optical_screens()
    assert sources == [0] and set(range(12)) <= set(measured)
    assert len(measured) == 12 * (1 + len(recipe.kuwahara_sizes))


def test_no_screen_where_it_would_drop_geophysics_or_everything():
    one_file = FeatureRecipe.build(["blue", "green", "red", "nir", "K", "Th"], [0] * 6, 30.0)
    assert one_file.optical is not None and one_file.optical_screens() == []
    optical_only = FeatureRecipe.build(["blue", "green", "red", "nir"], [0, 0, 1, 1], 30.0)
    assert optical_only.optical_screens() == []
    thermal = FeatureRecipe.build(["blue", "green", "red", "thermal", "K"], [0, 0, 0, 0, 1], 30.0)
    assert thermal.optical_screens()[0][2] == [0]  # an unrecognised band rides with its image
