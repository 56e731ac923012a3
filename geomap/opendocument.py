"""OpenDocument spreadsheets (.ods, LibreOffice Calc's own format) read cell by cell.

An .ods file is a zip archive whose ``content.xml`` holds every sheet; it is streamed with the
standard library's XML parser, one row at a time. Each cell gives its value as stored (a number,
a date, a time, a truth value, text), the saved value of a formula, and, for a number, the
digits LibreOffice shows, from which :mod:`geomap.tables` keeps padding and decimals ("007",
"2.10") as it does for an Excel number format of zeros. Runs of repeated cells and rows, which
LibreOffice writes for identical neighbours and for the empty rest of a sheet, are unfolded
where they hold values and dropped at the ends of rows and of the sheet.
"""

from __future__ import annotations

import datetime
import re
import zipfile
import zlib
from pathlib import Path
from xml.etree.ElementTree import ParseError, iterparse

from geomap.errors import LabelError

_NS = {
    "table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
    "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
    "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0",
    "calcext": "urn:org:documentfoundation:names:experimental:calc:xmlns:calcext:1.0",
}


def _name(qualified: str) -> str:
    prefix, local = qualified.split(":")
    return f"{{{_NS[prefix]}}}{local}"


TABLE, ROW, CELL, COVERED = map(
    _name, ("table:table", "table:table-row", "table:table-cell", "table:covered-table-cell")
)
PARAGRAPH, SPACES, TAB, BREAK = map(_name, ("text:p", "text:s", "text:tab", "text:line-break"))
MIMETYPE = "application/vnd.oasis.opendocument.spreadsheet"
#: Columns a run of one repeated value is unfolded to at most (Excel's width).
MAX_COLUMNS = 16384
#: An ISO 8601 duration as time cells hold it: LibreOffice writes "PT31H57M08S", other programs
#: "P1DT7H57M8S" (days apart) or leave out zero parts ("PT2H").
_DURATION = re.compile(r"(-?)P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")
_DIGITS = re.compile(r"-?(\d+(?:\.\d+)?)")
_DATE = re.compile(r"(-?\d{4,})-(\d\d)-(\d\d)(?:T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?)?")
_BLANK = (None, None, None)
#: What a file that is not a spreadsheet, or one cut short or damaged, raises when read.
_DAMAGED = (ParseError, KeyError, zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError)


def sheet_names(path: Path, what: str) -> list[str]:
    """The sheets of a spreadsheet, in order.

    Raises
    ------
    LabelError
        If the file is not an OpenDocument spreadsheet that can be read.
    """
    return _read(path, what)[0]


def sheet_cells(
    path: Path, sheet: str | None, what: str, max_rows: int | None = None
) -> tuple[str, list[list[tuple]]]:
    """The sheet's name (default: the first) and its rows of cells, the first ``max_rows`` only.

    A cell is ``(value, number_format, kind)``: the value as Python has it (float, str,
    date, datetime, timedelta, bool; None when blank or an error), the digits shown for a
    number with each digit written 0 ("000" for a 7 shown "007"), and ``"f"`` for a formula
    whose value was never saved (its value is then the formula).

    Raises
    ------
    LabelError
        If the file cannot be read or has no sheet ``sheet``.
    """
    names, name, rows = _read(path, what, sheet, max_rows, want=True)
    if name is None:
        raise LabelError(
            f"{what} '{path}': there is no sheet '{sheet}'. Its sheets are: "
            f"{', '.join(names) or '(none)'}."
        )
    return name, rows


def _read(path, what, sheet=None, max_rows=None, want=False):
    """(the sheets' names, the sheet read, its rows); the sheet read is None if not found.

    Reading stops at the end of the sheet read, or at its ``max_rows``-th row (the first rows
    that list a sheet's columns of a 20,000-row sheet in 0.01 s, not 1 s): the names are then
    those up to it, and all of them when the sheet is not found.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            _check(archive, path, what)
            with archive.open("content.xml") as content:
                return _parse(content, sheet, max_rows, want)
    except LabelError:  # a ValueError too: what _check says stands alone
        raise
    except _DAMAGED as exc:
        raise LabelError(
            f"{what} '{path}': the file cannot be read as an OpenDocument spreadsheet "
            f"({str(exc).strip() or type(exc).__name__}). Open it in LibreOffice Calc and save "
            "it again (.ods), or save the sheet as CSV UTF-8."
        ) from None


def _check(archive: zipfile.ZipFile, path: Path, what: str) -> None:
    names = set(archive.namelist())
    kind = (
        archive.read("mimetype").decode("ascii", "replace").strip() if "mimetype" in names else ""
    )
    if kind and kind != MIMETYPE:
        raise LabelError(
            f"{what} '{path}': the file is an OpenDocument '{kind.rsplit('.', 1)[-1]}', not a "
            "spreadsheet. Give the spreadsheet (.ods) that holds the table."
        )
    manifest = archive.read("META-INF/manifest.xml") if "META-INF/manifest.xml" in names else b""
    if b"encryption-data" in manifest:
        raise LabelError(
            f"{what} '{path}': the spreadsheet is password-protected (encrypted). Save it again "
            "in LibreOffice Calc without a password (File > Save As, untick 'Save with "
            "password'), or save the sheet as CSV UTF-8."
        )


def _parse(content, sheet, max_rows, want):
    names, found, rows, blank_rows = [], None, [], 0
    reading = False
    for event, element in iterparse(content, events=("start", "end")):
        if element.tag == TABLE and event == "start":
            names.append(element.get(_name("table:name")))
            reading = want and found is None and names[-1] == (sheet or names[0])
            if reading:
                found = names[-1]
        elif element.tag == TABLE:
            if reading:  # the sheet is read: the rest of the file is not needed
                break
            element.clear()
        elif element.tag == ROW and event == "end":
            if reading:
                cells = _row(element)
                repeat = int(element.get(_name("table:number-rows-repeated"), 1))
                if cells:
                    rows.extend([[]] * blank_rows + [cells] * repeat)
                    blank_rows = 0
                else:
                    blank_rows += repeat
                if max_rows is not None and len(rows) >= max_rows:
                    break
            element.clear()
    return names, found, rows[:max_rows]


def _row(row) -> list[tuple]:
    """The cells of a row up to its last one with a value (repeats unfolded)."""
    cells, blank = [], 0
    for cell in row:
        if cell.tag not in (CELL, COVERED):
            continue
        repeat = min(int(cell.get(_name("table:number-columns-repeated"), 1)), MAX_COLUMNS)
        value = _cell(cell) if cell.tag == CELL else _BLANK
        if value == _BLANK:
            blank += repeat
            continue
        cells.extend([_BLANK] * blank + [value] * repeat)
        blank = 0
    return cells


def _cell(cell) -> tuple:
    """(value, number format, kind) of a cell; see :func:`sheet_cells`."""
    kind = cell.get(_name("office:value-type"))
    if cell.get(_name("calcext:value-type")) == "error":
        return _BLANK
    text = "\n".join(_paragraph(p) for p in cell if p.tag == PARAGRAPH)
    if kind is None:
        formula = cell.get(_name("table:formula"))
        return (formula, None, "f") if formula else (text or None, None, None)
    if kind in ("float", "percentage", "currency"):
        digits = _DIGITS.fullmatch(text) if kind == "float" else None
        shown = re.sub(r"\d", "0", digits.group(1)) if digits else None
        return float(cell.get(_name("office:value"))), shown, None
    if kind == "date":
        return _date(cell.get(_name("office:date-value"))), None, None
    if kind == "time":
        return _duration(cell.get(_name("office:time-value"))), None, None
    if kind == "boolean":
        return cell.get(_name("office:boolean-value")) == "true", None, None
    return cell.get(_name("office:string-value")) or text or None, None, None


def _paragraph(element) -> str:
    """The text of a paragraph, with its runs of spaces, tabs and line breaks."""
    parts = [element.text or ""]
    for child in element:
        if child.tag == SPACES:
            parts.append(" " * int(child.get(_name("text:c"), 1)))
        elif child.tag == TAB:
            parts.append("\t")
        elif child.tag == BREAK:
            parts.append("\n")
        else:  # a span, a link: its text
            parts.append(_paragraph(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _date(text: str) -> datetime.datetime | None:
    """A date cell's value ("2024-05-03", "2024-05-03T10:30:00.5"); None beyond year 9999.

    LibreOffice writes as many decimals of a second as there are (Python 3.10 reads only 3
    or 6), and the year of a large number formatted as a date as it comes ("16137-02-18" for a
    northing): Excel shows such a date as ####, and it is read as blank, as from an .xlsx.
    """
    match = _DATE.fullmatch(text or "")
    if match is None:
        raise ValueError(f"a date cell holds '{text}', not a date such as 2024-05-03")
    *parts, fraction = match.groups()
    micro = int((fraction or "").ljust(6, "0")[:6])
    try:
        return datetime.datetime(*(int(p or 0) for p in parts), micro)
    except ValueError:  # a year beyond 9999 or before 1
        return None


def _duration(text: str) -> datetime.timedelta:
    """A time cell's ISO 8601 duration ("PT31H57M08S") as a timedelta."""
    match = _DURATION.fullmatch(text or "")
    if match is None or text.endswith(("P", "T")):  # "P" and "PT" alone name no duration
        raise ValueError(f"a time cell holds '{text}', not a duration such as PT10H30M00S")
    sign = -1 if match.group(1) else 1
    days, hours, minutes, seconds = (float(part or 0) for part in match.groups()[1:])
    return sign * datetime.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
