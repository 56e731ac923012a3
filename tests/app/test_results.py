"""How a run's report is put on the Train page."""

from __future__ import annotations

import results


def test_the_bands_of_one_scene_are_charted_without_their_shared_beginning():
    names = [f"T33TWM_20230612T100031_{b}" for b in ("B02_10m.jp2", "B11_20m.jp2", "B01_60m.jp2")]
    assert results.common_beginning(names) == "T33TWM_20230612T100031_"
    assert results.common_beginning(["landsat.tif", "dem.tif"]) == ""
    assert results.common_beginning(["grid_K.tif", "grid_U.tif"]) == ""  # "grid_": too short
    assert results.common_beginning(["LC09_SR_", "LC09_SR_B2"]) == ""  # one would be empty
    assert results.common_beginning(["T33TWM_20230612T100031_B02.jp2"]) == ""


def test_a_ratio_of_two_bands_loses_the_shared_beginning_of_both():
    prefix = "T33TWM_20230612T100031_"
    names = [f"{prefix}B04_10m/{prefix}B02_10m_kuwahara5", f"{prefix}B04_10m_kuwahara3", "K"]
    shown = ["B04_10m/B02_10m_kuwahara5", "B04_10m_kuwahara3", "K"]
    assert results.shown_names(names, prefix) == shown
    assert results.shown_names(names, "") == names
