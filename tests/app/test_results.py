"""How a run's report is put on the Train page."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

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


def _footer(report: dict) -> str:
    def page(report):
        import results

        results.footer(report)

    app = AppTest.from_function(page, args=(report,)).run()
    assert not app.exception
    return app.caption[0].value


def test_the_footer_names_screened_pixels_only_where_a_screen_took_some_out():
    """A magnetics-only run said '0 of them where the optical bands were unlike every
    observation's' (user pass).
    """
    pred = {"mapped_pixels": 1000, "reduced_input_pixels": 20, "nodata_pixels": 5}
    report = {"prediction": pred, "timings_seconds": {"total": 12.34}}
    assert _footer(report) == (
        "Mapped 1,000 pixels (20 from fewer inputs, e.g. under a cloud), 5 without data; 12.3 s."
    )
    pred["screened_pixels"] = 0
    assert "optical" not in _footer(report)
    pred["screened_pixels"] = 7
    assert _footer(report) == (
        "Mapped 1,000 pixels (20 from fewer inputs, e.g. under a cloud; 7 of them where the "
        "optical bands were unlike every observation's), 5 without data; 12.3 s."
    )
