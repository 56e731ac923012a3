"""Field observations kept in Excel 97-2003 workbooks (.xls), written as Excel writes them."""

import datetime

import numpy as np
import pytest
import xlwt
from openpyxl import Workbook

from geomap.errors import LabelError
from geomap.labels import label_columns, label_layers, read_labels
from geomap.tables import read_sheet

DAY = xlwt.easyxf(num_format_str="YYYY-MM-DD")
HOURS = xlwt.easyxf(num_format_str="[h]:mm:ss")  # what Excel makes of 31:57:08 typed in


FIELD_SHEET = [
    ["Field observations, Kalgoorlie sheet 2004"],  # row 1: a title
    ["Geologist:", "A. Smith"],
    [],
    ["Station", "Easting (m)", "Northing (m)", "Rock type", "Date", "Checked"],
    ["KA-001", 500045.0, 5199955, "granite", (datetime.date(2004, 5, 3), DAY), True],
    ["KA-002", 500345.5, 5199655, "2.10", (datetime.date(2004, 5, 4), DAY), False],
    [],
    [(7, xlwt.easyxf(num_format_str="000")), 500645, 5199355, "granite"],  # row 8
]


def test_an_old_excel_field_sheet_is_read_as_its_xlsx_twin(tmp_path, write_xls):
    path = tmp_path / "field book.xls"
    write_xls(path, {"Day 1": FIELD_SHEET, "Empty": []})
    table = read_sheet(path)
    assert (table.attrs["sheet"], table.attrs["header_row"]) == ("Day 1", 4)
    assert table["Date"].tolist()[:2] == ["2004-05-03", "2004-05-04"]
    assert table["Checked"].tolist()[:2] == ["TRUE", "FALSE"]
    labels = read_labels(path, "Rock type", crs="EPSG:32633")
    assert labels["label"].tolist() == ["granite", "2.10", "granite"]
    assert labels["site"].tolist() == ["Station KA-001", "Station KA-002", "Station 007"]
    np.testing.assert_allclose(labels.geometry.x, [500045.0, 500345.5, 500645.0])
    assert label_layers(path) == ["Day 1"]  # the empty sheet is passed over
    assert label_columns(path) == ["Station", "Rock type", "Date", "Checked"]


def test_times_and_degrees_typed_in_an_old_workbook(tmp_path, write_xls):
    path = tmp_path / "obs.xls"
    thirty_one = datetime.timedelta(hours=31, minutes=57, seconds=8).total_seconds() / 86400
    rows = [
        ["lon", "lat", "unit"],
        ["115°51'04.9\"E", (thirty_one, HOURS), "granite"],
        ["115 51 05 E", "31°57.2'N", "schist"],
    ]
    write_xls(path, {"Sheet1": rows})
    labels = read_labels(path, "unit")
    np.testing.assert_allclose(labels.geometry.x, [115.851361, 115.851389], atol=1e-6)
    np.testing.assert_allclose(labels.geometry.y, [31.952222, 31.953333], atol=1e-6)


def test_a_website_export_named_xls_is_read_or_named(tmp_path):
    """Web databases export .xlsx or an HTML table under the name .xls."""
    path = tmp_path / "export.xls"
    book = Workbook()
    for row in (["x", "y", "unit"], [500045, 5199955, "granite"]):
        book.active.append(row)
    book.save(path)
    assert read_labels(path, "unit", crs="EPSG:32633")["label"].tolist() == ["granite"]
    path.write_text("<table><tr><td>x</td><td>y</td><td>unit</td></tr></table>")
    with pytest.raises(LabelError, match="export.xls': the file is not a workbook: it holds XML"):
        read_labels(path, "unit")


def test_coordinates_formatted_as_dates_are_named_as_from_an_xlsx(tmp_path, write_xls):
    """A northing formatted as a date is beyond year 9999: it stopped geomap with a traceback."""
    path = tmp_path / "obs.xls"
    rows = [["x", "y", "unit"], [(500045, DAY), (5199955, DAY), "granite"]]
    write_xls(path, {"Sheet1": rows})
    assert read_sheet(path).loc[2].tolist() == ["3269-01-26", None, "granite"]
    with pytest.raises(LabelError, match="Excel took a coordinate for a date: format the column"):
        read_labels(path, "unit", crs="EPSG:32633")


def test_a_workbook_cut_short_is_named_and_nothing_printed(tmp_path, write_xls, capsys):
    """A small .xls cut short stopped geomap with struct.error; xlrd printed its warnings."""
    whole = write_xls(tmp_path / "whole.xls", {"Sheet1": FIELD_SHEET}).read_bytes()
    path, refused = tmp_path / "obs.xls", 0
    for size in range(512, len(whole), 64):  # xlrd reads some: the end is only padding
        path.write_bytes(whole[:size])
        try:
            read_labels(path, "Rock type", crs="EPSG:32633")
        except LabelError as error:
            assert "obs.xls': the file cannot be read as an Excel 97-2003" in str(error)
            refused += 1
    assert refused > 20
    assert capsys.readouterr().out == ""


def test_a_negative_number_is_padded_as_excel_shows_it(tmp_path, write_xls):
    """Excel shows -7 in the format 000 as -007 (it read -07), and -2.1 in 0.00 as -2.10."""
    path = tmp_path / "obs.xls"
    codes = [(-7, xlwt.easyxf(num_format_str="000")), (-2.1, xlwt.easyxf(num_format_str="0.00"))]
    write_xls(path, {"Sheet1": [["x", "y", "code", "unit"], [1, 2, codes[0], codes[1]]]})
    assert read_sheet(path).loc[2].tolist() == ["1", "2", "-007", "-2.10"]


@pytest.mark.parametrize(
    ("content", "first"),
    [
        ("station\tx\ty\tunit\nKA-1\t1\t2\tgranite\n".encode("utf-16"), "station\tx\ty\tunit"),
        ("Station;Géologue;Unité;Lithologie\nKA-1;Éric;é;à biotite\n".encode(), "Station;Géo"),
    ],
)
def test_a_text_export_named_xls_is_called_text(tmp_path, content, first):
    """Excel's "Unicode Text" and accented field notes were called a download cut short."""
    path = tmp_path / "export.xls"
    path.write_bytes(content)
    with pytest.raises(LabelError, match="name it .csv") as error:
        read_labels(path, "unit")
    assert f"it holds plain text ('{first}" in str(error.value)


def test_elapsed_minutes_are_a_duration_as_in_an_xlsx(tmp_path, write_xls):
    """36 hours in the format [mm]:ss read 1900-01-01T12:00:00 (from an .xlsx: 36:00:00)."""
    path = tmp_path / "obs.xls"
    minutes = xlwt.easyxf(num_format_str="[mm]:ss")
    write_xls(path, {"Sheet1": [["x", "y", "t"], [1, 2, (1.5, minutes)], [1, 2, (0.25, HOURS)]]})
    assert read_sheet(path)["t"].tolist() == ["36:00:00", "6:00:00"]
