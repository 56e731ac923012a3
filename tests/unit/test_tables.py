"""Field observations kept in Excel workbooks, as geologists keep them."""

import datetime
import json
import zipfile

import numpy as np
import pandas as pd
import pytest
from msoffcrypto.format.ooxml import OOXMLFile
from openpyxl import Workbook

from geomap.cli import main
from geomap.errors import LabelError
from geomap.labels import label_columns, label_layers, read_labels
from geomap.tables import read_sheet


def _workbook(path, sheets: dict) -> None:
    """A workbook of ``{sheet: rows}``, cells typed as Excel types them (numbers, dates, text)."""
    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)


FIELD_SHEET = [
    ["Field observations, Kalgoorlie sheet 2024"],  # row 1: a title
    ["Geologist:", "A. Smith"],  # row 2: the project's details, two cells
    [],
    ["Station", "Easting (m)", "Northing (m)", "Rock type", "Date"],  # row 4: the names
    ["KA-001", 500045.0, 5199955, "granite", datetime.date(2024, 5, 3)],
    ["KA-002", 500345.5, 5199655, "2.10", datetime.date(2024, 5, 3)],  # a code as text
    [],  # a blank row in the table
    ["007", 500645, 5199355, "granite", None],  # row 8
]


def test_a_field_sheet_is_read_below_its_title_with_rows_numbered_as_excel_shows(tmp_path):
    path = tmp_path / "field book.xlsx"
    _workbook(path, {"Day 1": FIELD_SHEET})
    table = read_sheet(path)
    assert (table.attrs["sheet"], table.attrs["header_row"]) == ("Day 1", 4)
    assert list(table.columns) == ["Station", "Easting (m)", "Northing (m)", "Rock type", "Date"]
    labels = read_labels(path, "Rock type", crs="EPSG:32633")
    assert labels["label"].tolist() == ["granite", "2.10", "granite"]  # "2.10" as written
    assert labels["site"].tolist() == ["Station KA-001", "Station KA-002", "Station 007"]
    np.testing.assert_allclose(labels.geometry.x, [500045.0, 500345.5, 500645.0])
    assert label_columns(path) == ["Station", "Rock type", "Date"]
    unnamed = [row[1:4] for row in FIELD_SHEET[3:]]  # no station column: places are named
    _workbook(path, {"Day 1": [*FIELD_SHEET[:3], *unnamed]})
    sites = read_labels(path, "Rock type", crs="EPSG:32633")["site"].tolist()
    assert sites == ["row 5", "row 6", "row 8"]


def test_a_bad_coordinate_cell_is_named_by_its_row(tmp_path):
    path = tmp_path / "obs.xlsx"
    rows = [["x", "y", "unit"], [500045, 5199955, "granite"], [], ["500 345", 5199655, "schist"]]
    _workbook(path, {"notes": [["by", "A. Smith"]], "obs": rows})
    with pytest.raises(LabelError) as error:
        read_labels(path, "unit", crs="EPSG:32633")
    message = str(error.value)
    assert "obs.xlsx', sheet 'obs': 1 row has empty or non-numeric coordinates" in message
    assert "in 'x'/'y' (row 4;" in message
    assert "'500 345'" in message


def test_a_row_of_units_below_the_column_names_is_passed_over(tmp_path):
    """A field sheet's units under its names ('m', '(m)') were refused as bad coordinates."""
    rows = [["Station", "Easting", "Northing", "Rock"], [None, "m", "(m)", None]]
    rows += [["S1", 500045, 5199955, "granite"], ["S2", 500345, 5199655, "schist"]]
    path = tmp_path / "obs.xlsx"
    _workbook(path, {"obs": rows})
    csv = tmp_path / "obs.csv"
    csv.write_text("station;lon;lat;rock\n;[deg];[deg];\nS1;15.1;46.9;granite\n")
    assert read_labels(path, "Rock", crs="EPSG:32633")["label"].tolist() == ["granite", "schist"]
    assert read_labels(csv, "rock").geometry.x.tolist() == [15.1]
    rows[1] = [None, "m", 5199000, None]  # a unit over one column only: a row to fix
    _workbook(path, {"obs": rows})
    with pytest.raises(LabelError, match=r"non-numeric coordinates .* \(row 2; the first reads"):
        read_labels(path, "Rock", crs="EPSG:32633")


def test_the_sheet_holding_the_column_is_chosen_and_two_such_are_asked_for(tmp_path):
    path = tmp_path / "project.xlsx"
    obs = [["lon", "lat", "lithology"], [15.1, 46.9, "granite"], [15.2, 46.8, "schist"]]
    notes = [["Notes"], ["Traverse 3 washed out"]]
    _workbook(path, {"Notes": notes, "Observations": obs})
    assert label_layers(path) == ["Notes", "Observations"]
    assert read_labels(path, "lithology")["label"].tolist() == ["granite", "schist"]
    _workbook(path, {"2023": obs, "2024": obs})
    with pytest.raises(
        LabelError,
        match=r"hold 2 sheets \(2023, 2024\) and 2 of them .* Name the "
        r"sheet \(--label-layer",
    ):
        read_labels(path, "lithology")
    assert len(read_labels(path, "lithology", layer="2024")) == 2
    with pytest.raises(LabelError, match="there is no sheet '2025'. Its sheets are: 2023, 2024"):
        read_labels(path, "lithology", layer="2025")


def test_workbooks_that_cannot_be_read_say_what_to_save(tmp_path):
    fake = tmp_path / "obs.xlsx"
    fake.write_text("station,lon,lat\n")  # a CSV renamed
    with pytest.raises(LabelError, match=r"not a workbook: it holds plain text .* name it \.csv"):
        read_labels(fake, "unit")
    cut = tmp_path / "obs.xls"
    cut.write_bytes(b"\xd0\xcf\x11\xe0")  # a workbook cut short
    with pytest.raises(LabelError, match=r"not be read as an Excel 97-2003 .* as CSV UTF-8"):
        read_labels(cut, "unit")
    empty = tmp_path / "empty.xlsx"
    _workbook(empty, {"Sheet1": []})
    with pytest.raises(LabelError, match="sheet 'Sheet1' holds no cell with a value"):
        read_labels(empty, "unit")


@pytest.mark.parametrize("suffix", [".xlsx", ".xls", ".ods"])
def test_the_demo_points_from_a_workbook_map_as_from_their_csv(
    demo_scene, tmp_path, suffix, request
):
    """Excel's workbooks, old and new, and LibreOffice's spreadsheet."""
    write = _writer(suffix, request)
    table = pd.read_csv(demo_scene.points_csv)
    path = tmp_path / f"field_points{suffix}"
    write(path, {"points": [list(table.columns), *table.itertuples(index=False)]})
    from_csv = read_labels(demo_scene.points_csv, "lithology")
    from_sheet = read_labels(path, "lithology")
    assert from_sheet["label"].tolist() == from_csv["label"].tolist()
    np.testing.assert_allclose(from_sheet.get_coordinates(), from_csv.get_coordinates())
    if suffix != ".xlsx":
        return  # read alike: mapped alike
    argv = ["run", "--labels", str(path), "--label-column", "lithology", "--trees", "10"]
    argv += ["--out", str(tmp_path / "out"), "--no-applicability", "--cv-folds", "3", "--quiet"]
    assert main([*argv, *(a for r in demo_scene.rasters for a in ("--raster", str(r)))]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    counts = report["samples"]["counts"]
    assert counts["observations"] == len(table) and counts["site_key"] == "obs_id"
    assert sum(report["samples"]["per_class"].values()) == counts["used"] > 0.9 * len(table)


def _writer(suffix: str, request):
    """The writer of a workbook of ``{sheet: rows}`` (.xlsx, .xls, .ods)."""
    fixtures = {".xls": "write_xls", ".ods": "write_ods"}
    return request.getfixturevalue(fixtures[suffix]) if suffix in fixtures else _workbook


@pytest.mark.parametrize("suffix", [".xlsx", ".xls", ".ods"])
def test_a_legend_sheet_beside_the_observations_names_and_colours_the_codes(
    tmp_path, suffix, request
):
    from geomap.legend import Legend

    _workbook = _writer(suffix, request)
    path = tmp_path / f"field book{suffix}"
    obs = [["lon", "lat", "unit"], [15.1, 46.9, 1], [15.2, 46.8, 2], [15.3, 46.7, 2]]
    legend = [["Unit legend"], ["code", "name", "colour"], [1, "granite", "#e4781e"]]
    _workbook(path, {"Observations": obs, "Legend": [*legend, [2, "schist", "0,128,0"]]})
    values = read_labels(path, "unit")["label"]
    assert values.tolist() == ["1", "2", "2"]  # numbers as Excel shows them
    read = Legend.read(path, set(values), "unit")
    assert read.rename == {"1": "granite", "2": "schist"}
    assert read.colours == {"granite": (228, 120, 30), "schist": (0, 128, 0)}
    keyed = [["unit", "name"], [1, "granite"], [2, "schist"]]  # keyed by the class column
    _workbook(path, {"Legend": keyed, "Observations": obs})
    assert read_labels(path, "unit")["label"].tolist() == ["1", "2", "2"]  # the placed sheet
    assert Legend.read(path, set(values), "unit").rename == {"1": "granite", "2": "schist"}
    _workbook(path, {"Observations": obs, "Legend": [*legend, [2, "schist", "greenish"]]})
    with pytest.raises(LabelError, match="Legend .* the colour 'greenish' on row 4 is not under"):
        Legend.read(path, set(values), "unit")


def test_empty_and_chart_sheets_beside_the_observations_are_passed_over(tmp_path):
    """Excel's empty Sheet2 and Sheet3 stopped the choice of sheet; a chart sheet crashed it."""
    from openpyxl.chart import BarChart, Reference

    book = Workbook()
    sheet = book.active
    sheet.title = "Sheet1"
    for row in [["x", "y", "unit"], [500045, 5199955, "granite"], [500345, 5199655, "schist"]]:
        sheet.append(row)
    book.create_sheet("Sheet2")
    chart = BarChart()
    chart.add_data(Reference(sheet, min_col=1, min_row=1, max_row=3))
    book.create_chartsheet("Chart").add_chart(chart)
    path = tmp_path / "obs.xlsx"
    book.save(path)
    assert label_layers(path) == ["Sheet1"]
    assert label_columns(path) == ["unit"]
    assert len(read_labels(path, "unit", crs="EPSG:32633")) == 2


def test_cells_read_as_a_csv_saved_by_excel_has_them(tmp_path):
    """Number formats of zeros, blank markers and error values, as in the CSV Excel saves."""
    rows = [["station", "lon", "lat", "unit"], [7, 15.12, 46.9, 2.1], [8, 15.25, 46.8, 3]]
    rows += [[9, 15.3, 46.7, "n/a"], [10, 15.4, 46.6, "#N/A"], [11, 15.5, 46.5, "#DIV/0!"]]
    book = Workbook()
    for row in rows:
        book.active.append(row)
    for r in range(2, 7):
        book.active[f"A{r}"].number_format = "000"
        book.active[f"D{r}"].number_format = "0.00"
        book.active[f"B{r}"].number_format = "0.0"  # shown rounded, not rounded when read
    path = tmp_path / "obs.xlsx"
    book.save(path)
    csv = tmp_path / "obs.csv"  # what Excel's "Save as CSV" writes of it
    csv.write_text(
        "station,lon,lat,unit\n007,15.1,46.9,2.10\n008,15.2,46.8,3.00\n009,15.3,46.7,n/a\n"
        "010,15.4,46.6,#N/A\n011,15.5,46.5,#DIV/0!\n"
    )
    sheet, table = read_labels(path, "unit"), read_labels(csv, "unit")
    assert sheet["label"].tolist() == ["2.10", "3"] == table["label"].tolist()  # 3.00 is 3
    assert sheet["site"].tolist() == ["station 007", "station 008"]
    assert sheet.geometry.x.tolist() == [15.12, 15.25]  # Excel's CSV would have 15.1, 15.3
    assert sheet.attrs["blank_classes"] == 3 == table.attrs["blank_classes"]


def test_coordinates_typed_as_excel_keeps_them(tmp_path):
    """A decimal comma typed as text beside numbers; 31:57:08 made a time; a date."""
    rows = [["lon", "lat", "unit"], [115.5, -31.8, "granite"], ["115,6", "-31,9", "schist"]]
    rows += [[115.7, datetime.timedelta(hours=31, minutes=57, seconds=8), "basalt"]]
    rows += [[115.8, datetime.time(10, 30), "shale"]]
    path = tmp_path / "obs.xlsx"
    _workbook(path, {"obs": rows})
    labels = read_labels(path, "unit")
    np.testing.assert_allclose(labels.geometry.x, [115.5, 115.6, 115.7, 115.8])
    np.testing.assert_allclose(labels.geometry.y, [-31.8, -31.9, 31 + 57 / 60 + 8 / 3600, 10.5])
    _workbook(path, {"obs": [*rows, [115.9, datetime.date(2024, 1, 15), "dolerite"]]})
    with pytest.raises(LabelError) as error:
        read_labels(path, "unit")
    assert "(row 6; the first reads '115.9', '2024-01-15'). " in str(error.value)
    assert "Excel took a coordinate for a date: format the column as Number" in str(error.value)
    _workbook(path, {"obs": [*rows, [115.9, None, "dolerite"]]})
    with pytest.raises(LabelError, match=r"\(row 6; the first reads '115.9', \(empty\)\)\. Wr"):
        read_labels(path, "unit")


def test_the_first_of_two_easting_columns_holds_the_coordinates(tmp_path):
    path = tmp_path / "obs.xlsx"
    rows = [["Station", "Easting", "Northing", "Easting", "Northing", "Rock"]]
    rows += [["S1", 500000, 5200000, 1, 2, "granite"], ["S2", 500100, 5200100, 3, 4, "schist"]]
    _workbook(path, {"s": rows})
    assert list(read_sheet(path).columns)[3:5] == ["Easting, column D", "Northing, column E"]
    labels = read_labels(path, "Rock", crs="EPSG:32633")
    assert labels.geometry.x.tolist() == [500000.0, 500100.0]


def test_formulas_are_read_as_their_saved_values_and_unsaved_ones_are_refused(tmp_path):
    path = tmp_path / "obs.xlsx"
    rows = [["x", "y", "unit"], [500045, "=5199955+0", "granite"], [500345, 5199655, "schist"]]
    _workbook(path, {"obs": rows})  # openpyxl saves no value with a formula, as Excel does
    with pytest.raises(
        LabelError,
        match=r"1 formula\(s\) whose values were never saved \(cell "
        r"B2: '=5199955\+0'\).* Open it in Excel or LibreOffice and save it",
    ):
        read_labels(path, "unit", crs="EPSG:32633")
    saved = tmp_path / "saved.xlsx"  # the same with the value Excel stores beside the formula
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(saved, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<f>5199955+0</f><v />", b"<f>5199955+0</f><v>5199955</v>")
                assert b"<v>5199955</v>" in data
            dst.writestr(item, data)
    labels = read_labels(saved, "unit", crs="EPSG:32633")
    np.testing.assert_allclose(labels.geometry.y, [5199955, 5199655])


def test_a_workbook_damaged_anywhere_in_its_sheet_is_named_without_a_traceback(tmp_path):
    """Bytes damaged inside the sheet's compressed rows gave zlib's or the XML parser's error."""
    path = tmp_path / "obs.xlsx"
    _workbook(
        path, {"obs": [["x", "y", "unit"]] + [[5e5 + i, 52e5, "granite"] for i in range(300)]}
    )
    data = path.read_bytes()
    info = zipfile.ZipFile(path).getinfo("xl/worksheets/sheet1.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for offset in range(start + 10, start + info.compress_size - 10, info.compress_size // 20):
        path.write_bytes(data[:offset] + b"\xff\x00\xff\x00" + data[offset + 4 :])
        with pytest.raises(LabelError, match="obs.xlsx': the file cannot be read as an Excel"):
            read_labels(path, "unit", crs="EPSG:32633")


def test_a_password_protected_workbook_is_told_apart(tmp_path):
    plain, path = tmp_path / "plain.xlsx", tmp_path / "obs.xlsx"
    _workbook(plain, {"Sheet1": [["x", "y", "unit"], [500045, 5199955, "granite"]]})
    with open(plain, "rb") as f, open(path, "wb") as out:
        OOXMLFile(f).encrypt("field camp", out)  # as Excel's File > Info > Protect Workbook
    with pytest.raises(LabelError, match="password-protected .* Remove its password"):
        read_labels(path, "unit")


def test_a_legend_sheet_below_its_title_and_version(tmp_path):
    from geomap.legend import Legend

    path = tmp_path / "book.xlsx"
    legend = [["House legend"], ["Version:", "2024-05"], [], ["code", "name", "colour"]]
    legend += [[1, "granite", "#e4781e"], [2, "schist", "#00ff00"]]
    obs = [["lon", "lat", "unit"], [15.1, 46.9, 1], [15.2, 46.8, 2]]
    _workbook(path, {"Observations": obs, "Leyenda": legend})
    assert Legend.read(path, {"1", "2"}, "unit").rename == {"1": "granite", "2": "schist"}
    assert label_columns(path) == ["unit"]  # the legend sheet's columns are not offered
    from geomap.labels import observation_layer

    _workbook(path, {"Leyenda": legend, "Observations": obs})
    assert observation_layer(path) == "Observations"
