"""Shared fixtures: small real GeoTIFFs, vector files and workbooks written in tmp_path."""

from __future__ import annotations

import datetime
import re
import zipfile
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import numpy as np
import pytest
import rasterio
import xlwt
from affine import Affine


def write_raster(
    path: Path,
    data: np.ndarray,
    *,
    crs: str | None = "EPSG:32633",
    transform: Affine | None = None,
    nodata: float | None = None,
    descriptions: list[str] | None = None,
    driver: str = "GTiff",
    **options,
) -> Path:
    """Write a (bands, rows, cols) array as a raster and return its path."""
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    transform = transform or Affine(30.0, 0, 500000.0, 0, -30.0, 5200000.0)
    profile = {
        "driver": driver,
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
        "transform": transform,
        "nodata": nodata,
        **options,
    }
    if crs is not None:
        profile["crs"] = crs
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        for i, d in enumerate(descriptions or [], start=1):
            dst.set_band_description(i, d)
    return path


@pytest.fixture
def raster_factory(tmp_path):
    """Call with (name, data, **kwargs) to write a raster in tmp_path."""

    def make(name: str, data, **kwargs) -> Path:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        return write_raster(tmp_path / name, data, **kwargs)

    return make


#: Namespaces of an OpenDocument spreadsheet's content.xml.
ODS_NAMESPACES = (
    'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" '
    'xmlns:calcext="urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0" '
    'office:version="1.3"'
)


def _cell(value) -> str:
    """A cell's XML as LibreOffice Calc 7 writes it."""
    if value is None:
        return "<table:table-cell/>"
    if isinstance(value, dict) and "date" in value:  # {"date": "2024-05-03T10:30:00.5", ...}
        return (
            f'<table:table-cell office:value-type="date" office:date-value="{value["date"]}"'
            f' calcext:value-type="date"><text:p>{escape(value["shown"])}</text:p>'
            "</table:table-cell>"
        )
    if isinstance(value, dict) and "time" in value:  # {"time": "P1DT02H00M00S", "shown": ...}
        return (
            f'<table:table-cell office:value-type="time" office:time-value="{value["time"]}"'
            f' calcext:value-type="time"><text:p>{escape(value["shown"])}</text:p>'
            "</table:table-cell>"
        )
    if isinstance(value, dict):  # {"value": 7, "shown": "007"}; "kind": "error", "formula"
        formula = f" table:formula={quoteattr(value['formula'])}" if "formula" in value else ""
        return (
            f'<table:table-cell{formula} office:value-type="float" office:value="{value["value"]}"'
            f' calcext:value-type="{value.get("kind", "float")}">'
            f"<text:p>{escape(value['shown'])}</text:p></table:table-cell>"
        )
    if isinstance(value, bool):
        word = str(value).lower()
        return (
            f'<table:table-cell office:value-type="boolean" office:boolean-value="{word}">'
            f"<text:p>{str(value).upper()}</text:p></table:table-cell>"
        )
    if isinstance(value, (int, float)):
        return (
            f'<table:table-cell office:value-type="float" office:value="{value}" '
            f'calcext:value-type="float"><text:p>{value:g}</text:p></table:table-cell>'
        )
    if isinstance(value, datetime.date):
        return (
            f'<table:table-cell office:value-type="date" office:date-value="{value.isoformat()}"'
            f' calcext:value-type="date"><text:p>{value:%d/%m/%y}</text:p></table:table-cell>'
        )
    if isinstance(value, datetime.timedelta):  # "-PT31H57M08S", "PT00H30M00.5S"
        sign = "-" if value < datetime.timedelta(0) else ""
        hours, rest = divmod(abs(value).total_seconds(), 3600)
        minutes, seconds = divmod(rest, 60)
        second = f"{int(seconds):02d}{f'{seconds % 1:g}'[1:]}"
        hms = f"{int(hours)}:{int(minutes):02d}:{second}"
        iso = f"{sign}PT{int(hours):02d}H{int(minutes):02d}M{second}S"
        return (
            f'<table:table-cell office:value-type="time" office:time-value="{iso}" '
            f'calcext:value-type="time"><text:p>{sign}{hms}</text:p></table:table-cell>'
        )
    text = escape(str(value)).replace("  ", ' <text:s text:c="1"/>')
    return (
        '<table:table-cell office:value-type="string" calcext:value-type="string">'
        f"<text:p>{text}</text:p></table:table-cell>"
    )


def _runs(items: list[str], attribute: str) -> str:
    """Identical neighbours folded into one element repeated, as LibreOffice writes them."""
    out, i = [], 0
    while i < len(items):
        j = i
        while j + 1 < len(items) and items[j + 1] == items[i]:
            j += 1
        item = items[i]
        if j > i:
            item = re.sub(r"^<([\w:-]+)", rf'<\1 table:{attribute}="{j - i + 1}"', item)
        out.append(item)
        i = j + 1
    return "".join(out)


def write_ods(path: Path, sheets: dict) -> Path:
    """An .ods of ``{sheet: rows}`` as LibreOffice saves one: repeated runs, sheet's empty rest."""
    tables = []
    for name, rows in sheets.items():
        xml_rows = []
        for row in rows:
            cells = [_cell(v) for v in row] + [
                '<table:table-cell table:number-columns-repeated="1010"/>'
            ]
            xml_rows.append(
                f"<table:table-row>{_runs(cells, 'number-columns-repeated')}</table:table-row>"
            )
        xml_rows.append(
            '<table:table-row table:number-rows-repeated="1048560">'
            '<table:table-cell table:number-columns-repeated="1024"/></table:table-row>'
        )
        body = _runs(xml_rows, "number-rows-repeated")
        tables.append(f"<table:table table:name={quoteattr(name)}>{body}</table:table>")
    content = (
        f'<?xml version="1.0" encoding="UTF-8"?><office:document-content {ODS_NAMESPACES}>'
        f"<office:body><office:spreadsheet>{''.join(tables)}</office:spreadsheet></office:body>"
        "</office:document-content>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", content)
        archive.writestr("META-INF/manifest.xml", "<manifest:manifest/>")
    return path


@pytest.fixture(name="write_ods")
def write_ods_fixture():
    """Call with (path, {sheet: rows}) to write an OpenDocument spreadsheet."""
    return write_ods


def write_xls(path: Path, sheets: dict) -> Path:
    """An .xls of ``{sheet: rows}``; a cell is a value or (value, xlwt style)."""
    book = xlwt.Workbook()
    for name, rows in sheets.items():
        sheet = book.add_sheet(name)
        for r, row in enumerate(rows):
            for c, cell in enumerate(row):
                if cell is not None:
                    sheet.write(r, c, *(cell if isinstance(cell, tuple) else (cell,)))
    book.save(str(path))
    return path


@pytest.fixture(name="write_xls")
def write_xls_fixture():
    """Call with (path, {sheet: rows}) to write an Excel 97-2003 workbook."""
    return write_xls


@pytest.fixture(scope="session")
def demo_scene(tmp_path_factory):
    """A small synthetic scene with known truth, made once per test session."""
    from geomap.synthetic import make_scene

    return make_scene(tmp_path_factory.mktemp("scene"), size=160, n_points=220, seed=3)


@pytest.fixture(scope="session")
def demo_run(demo_scene, tmp_path_factory):
    """``geomap run`` on the demo scene with its defaults (60 trees, 12 sites): (out, report)."""
    from geomap.workflow import RunConfig, run

    out = tmp_path_factory.mktemp("run") / "map"
    config = RunConfig(
        rasters=list(demo_scene.rasters),
        labels=demo_scene.points_gpkg,
        label_column="lithology",
        out=out,
        trees=60,
        block_size=64,
        suggest=12,
    )
    return out, run(config)
