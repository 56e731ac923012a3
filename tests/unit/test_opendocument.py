"""Field observations kept in LibreOffice Calc spreadsheets (.ods), as LibreOffice writes them."""

import datetime
import zipfile

import numpy as np
import pytest

from geomap import opendocument
from geomap.errors import LabelError
from geomap.labels import label_columns, label_layers, read_labels
from geomap.legend import Legend
from geomap.tables import COLUMN_ROWS, read_sheet

FIELD_SHEET = [
    ["Field observations, Kalgoorlie sheet 2024"],  # row 1: a title
    ["Geologist:", "A. Smith"],
    [],
    ["Station", "Easting (m)", "Northing (m)", "Rock type", "Date"],  # row 4: the names
    ["KA-001", 500045.0, 5199955, "granite", datetime.date(2024, 5, 3)],
    ["KA-002", 500345.5, 5199655, "2.10", datetime.date(2024, 5, 3)],  # a code as text
    [],
    [
        {"value": 7, "shown": "007"},
        500645,
        5199355,
        "granite",
        None,
    ],  # row 8: a number shown padded
    [
        {"value": 7, "shown": "007"},
        500645,
        5199355,
        "granite",
        None,
    ],  # the same again: a repeated row
]


def test_a_libreoffice_field_sheet_is_read_as_its_excel_twin(tmp_path, write_ods):
    path = tmp_path / "field book.ods"
    write_ods(path, {"Day 1": FIELD_SHEET, "Notes": [["weather", "fine"]]})
    table = read_sheet(path)
    assert (table.attrs["sheet"], table.attrs["header_row"]) == ("Day 1", 4)
    assert list(table.columns) == ["Station", "Easting (m)", "Northing (m)", "Rock type", "Date"]
    assert table.dropna(how="all").index.tolist() == [5, 6, 8, 9]  # as LibreOffice numbers
    assert table["Date"].tolist()[:2] == ["2024-05-03", "2024-05-03"]
    labels = read_labels(path, "Rock type", crs="EPSG:32633")
    assert labels["label"].tolist() == ["granite", "2.10", "granite", "granite"]
    assert table["Station"].tolist() == ["KA-001", "KA-002", None, "007", "007"]
    np.testing.assert_allclose(labels.geometry.x, [500045.0, 500345.5, 500645.0, 500645.0])
    assert label_layers(path) == ["Day 1", "Notes"]
    assert label_columns(path, layer="Day 1") == ["Station", "Rock type", "Date"]


def test_cells_read_as_a_csv_saved_by_libreoffice_has_them(tmp_path, write_ods):
    path = tmp_path / "obs.ods"
    rows = [
        ["x", "y", "unit", "note", "checked", "lat"],
        [
            1.0,
            2,
            "granite  porphyry",
            {"value": 0, "shown": "#DIV/0!", "kind": "error", "formula": "of:=1/0"},
            True,
            datetime.timedelta(hours=31, minutes=57, seconds=8),
        ],
        [{"value": 2.1, "shown": "2.10"}, 3, "N/A", "ok", False, "31°57'08\"S"],
    ]
    write_ods(path, {"Sheet1": rows})
    table = read_sheet(path)
    assert table.loc[2].tolist() == ["1", "2", "granite  porphyry", None, "TRUE", "31:57:08"]
    assert table.loc[3].tolist() == ["2.10", "3", None, "ok", "FALSE", "31°57'08\"S"]


def test_a_formula_never_calculated_is_refused_and_a_saved_one_read(tmp_path, write_ods):
    path = tmp_path / "obs.ods"
    rows = [["x", "y", "unit"], [{"value": 2, "shown": "2", "formula": "of:=1+1"}, 5, "granite"]]
    write_ods(path, {"Sheet1": rows})
    assert read_sheet(path)["x"].tolist() == ["2"]
    content = zipfile.ZipFile(path).read("content.xml").decode()
    script = content.replace(
        '<table:table-cell office:value-type="float" office:value="5" calcext:value-type="float">'
        "<text:p>5</text:p></table:table-cell>",
        '<table:table-cell table:formula="of:=[.A2]*2"/>',
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", script)
    with pytest.raises(LabelError, match=r"1 formula\(s\) whose values were never saved \(cell B2"):
        read_sheet(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"station,lon,lat\nKA-1,115.8,-31.9\n", r"holds plain text \('station,lon,lat'\).*\.csv"),
        (b"<html><body>Sign in</body></html>", "holds XML or HTML"),
        (b"PK\x03\x04\x14\x00\x00\x00" + bytes(64), "not the zip archive .* cut short"),
    ],
)
def test_files_named_ods_that_are_not_say_what_they_are(tmp_path, content, message):
    path = tmp_path / "obs.ods"
    path.write_bytes(content)
    with pytest.raises(LabelError, match=message) as error:
        read_labels(path, "unit")
    assert "obs.ods" in str(error.value)


def test_an_encrypted_or_text_document_is_told_apart(tmp_path):
    path = tmp_path / "obs.ods"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", b"\x8a\x91 encrypted bytes")
        archive.writestr("META-INF/manifest.xml", "<manifest:encryption-data/>")
    said = r"^Labels '[^']*obs.ods': the spreadsheet is password-protected .* untick 'Save with pas"
    with pytest.raises(LabelError, match=said):  # not inside "cannot be read (...)"
        read_labels(path, "unit")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.text")
    with pytest.raises(
        LabelError, match="^Labels '[^']*obs.ods': the file is an OpenDocument 'text',"
    ):
        read_labels(path, "unit")


#: Degrees typed as times: as LibreOffice writes them (timedeltas, "PT115H51M04.5S"), and as
#: other programs do, with days apart or zero parts left out (both were refused).
TIMES = {
    "libreoffice": [
        datetime.timedelta(hours=115, minutes=51, seconds=4.5),
        -datetime.timedelta(hours=31, minutes=57, seconds=8),
        -datetime.timedelta(minutes=30),
    ],
    "days and short forms": [
        {"time": "PT115H51M4.5S", "shown": "115:51:04.5"},
        {"time": "-P1DT7H57M8S", "shown": "-31:57:08"},
        {"time": "-PT30M", "shown": "-0:30:00"},
    ],
}


@pytest.mark.parametrize("times", TIMES.values(), ids=TIMES.keys())
def test_degrees_typed_as_times_keep_their_sign_and_fractions(tmp_path, write_ods, times):
    """LibreOffice makes "-31:57:08" typed in a duration: it read as -32°02'52" (10 km off)."""
    path = tmp_path / "obs.ods"
    hms, south, half = times
    rows = [["lon", "lat", "unit"], [hms, south, "granite"], [115.9, half, "schist"]]
    write_ods(path, {"Sheet1": rows})
    assert read_sheet(path).loc[2].tolist() == ["115:51:04.5", "-31:57:08", "granite"]
    labels = read_labels(path, "unit")
    np.testing.assert_allclose(labels.geometry.x, [115 + 51 / 60 + 4.5 / 3600, 115.9])
    np.testing.assert_allclose(labels.geometry.y, [-(31 + 57 / 60 + 8 / 3600), -0.5])


def test_dates_as_libreoffice_writes_them_with_seconds_and_beyond_year_9999(tmp_path, write_ods):
    """A fraction of a second refused the file on Python 3.10; so did a northing made a date."""
    path = tmp_path / "obs.ods"
    rows = [
        ["x", "y", "unit", "seen"],
        [500045, 5199955, "granite", {"date": "2024-05-03T10:30:00.5", "shown": "03/05/24"}],
        [
            {"date": "3269-01-26", "shown": "26/01/69"},  # 500045 formatted as a date
            {"date": "16136-09-01", "shown": "###"},  # 5199955: no date Excel can show
            "schist",
            {"date": "2024-05-03T10:30:12.345678912", "shown": "03/05/24"},
        ],
    ]
    write_ods(path, {"Sheet1": rows})
    table = read_sheet(path)
    assert table["seen"].tolist() == ["2024-05-03T10:30:00.500000", "2024-05-03T10:30:12.345678"]
    assert table.loc[3, ["x", "y"]].tolist() == ["3269-01-26", None]  # as from an .xlsx
    with pytest.raises(LabelError, match="Excel took a coordinate for a date"):
        read_labels(path, "unit", crs="EPSG:32633")


def test_a_damaged_spreadsheet_is_named(tmp_path, write_ods):
    """A compressed content.xml with damaged bytes stopped geomap with zlib.error."""
    path = write_ods(tmp_path / "obs.ods", {"Sheet1": [["x", "y", "unit"], [1, 2, "granite"]] * 50})
    content = zipfile.ZipFile(path).read("content.xml")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet"
        )
        archive.writestr("content.xml", content)
    data = bytearray(path.read_bytes())
    start = data.index(b"content.xml") + len("content.xml") + 20  # into the compressed bytes
    data[start : start + 16] = bytes(16)
    path.write_bytes(bytes(data))
    with pytest.raises(LabelError, match="obs.ods': the file cannot be read as an OpenDocument"):
        read_labels(path, "unit")


def test_the_first_rows_of_a_long_sheet_are_read_without_the_rest(tmp_path, write_ods, monkeypatch):
    """Listing a sheet's columns parsed the whole file: 1 s per sheet of 20,000 rows in the app."""
    rows = [["x", "y", "unit"]] + [[i, i, f"unit {i}"] for i in range(3000)]
    path = write_ods(tmp_path / "obs.ods", {"Obs": rows, "Notes": [["by", "A. Smith"]]})
    tables, parse = [], opendocument.iterparse

    def counted(*args, **kwargs):
        for event, element in parse(*args, **kwargs):
            if element.tag == opendocument.TABLE and event == "start":
                tables.append(element.get(opendocument._name("table:name")))
            yield event, element
            rows_seen.append(element.tag == opendocument.ROW and event == "end")

    rows_seen: list[bool] = []
    monkeypatch.setattr(opendocument, "iterparse", counted)
    assert read_sheet(path, "Obs", max_rows=COLUMN_ROWS).index[-1] == COLUMN_ROWS
    assert sum(rows_seen) <= COLUMN_ROWS  # not the 3,001 rows of the sheet
    assert read_sheet(path, "Obs").index[-1] == 3001
    assert tables == ["Obs", "Obs"]  # the sheet after it was not parsed


def test_observations_beside_an_empty_first_sheet_are_found(tmp_path, write_ods):
    """The first sheet was read though empty: 'sheet 'Cover' holds no cell with a value'."""
    rows = [["x", "y", "unit"], [500045, 5199955, "granite"]]
    path = write_ods(tmp_path / "obs.ods", {"Cover": [], "Day 1": rows})
    assert label_layers(path) == ["Day 1"]
    assert label_columns(path) == ["unit"]
    assert read_labels(path, "unit", crs="EPSG:32633")["label"].tolist() == ["granite"]


def test_a_legend_beside_an_empty_first_sheet_is_found(tmp_path, write_ods):
    """The legend's workbook was read from its first sheet, though empty."""
    rows = [["code", "name", "colour"], [1, "Granite", "#ff0000"], [2, "Schist", "#00ff00"]]
    path = write_ods(tmp_path / "legend.ods", {"Sheet1": [], "Sheet2": rows})
    legend = Legend.read(path, ["1", "2"], "code")
    assert legend.rename == {"1": "Granite", "2": "Schist"}


def test_the_sheets_of_a_spreadsheet_are_listed_once_per_version(tmp_path, write_ods, monkeypatch):
    """The Data page lists them on every rerun: 1 s each time for a 20,000-row field book."""
    import geomap.opendocument as opendocument

    path = write_ods(tmp_path / "book.ods", {"Day 1": FIELD_SHEET, "Day 2": FIELD_SHEET})
    calls = []
    real = opendocument.sheet_names
    monkeypatch.setattr(opendocument, "sheet_names", lambda *a: calls.append(a) or real(*a))
    assert label_layers(path) == label_layers(path) == ["Day 1", "Day 2"]
    assert len(calls) == 1
    write_ods(path, {"Day 1": FIELD_SHEET, "Day 2": FIELD_SHEET, "Day 3": FIELD_SHEET[:5]})
    assert label_layers(path) == ["Day 1", "Day 2", "Day 3"] and len(calls) == 2


def test_a_spreadsheet_damaged_after_its_first_sheet_is_named_as_damaged(tmp_path, write_ods):
    """Its cover sheet read well, and was taken for the observations: 'no coordinate columns'."""
    path = write_ods(tmp_path / "book.ods", {"Notes": [["by", "A. Smith"]], "Day 1": FIELD_SHEET})
    with zipfile.ZipFile(path) as archive:
        content = archive.read("content.xml").decode()
    cut = content.rindex("<table:table-row>")  # a row of the second sheet, broken
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content[:cut] + "<table:table-row<" + content[cut + 17 :])
    for read in (label_layers, lambda p: read_labels(p, "Rock type", crs="EPSG:32633")):
        with pytest.raises(LabelError, match="book.ods': the file cannot be read as an OpenDoc"):
            read(path)


def test_a_time_cell_that_holds_no_duration_is_named(tmp_path, write_ods):
    path = tmp_path / "obs.ods"
    rows = [["lon", "lat", "unit"], [115.9, {"time": "PT", "shown": "?"}, "granite"]]
    write_ods(path, {"Sheet1": rows})
    with pytest.raises(LabelError, match="PT"):
        read_labels(path, "unit")
