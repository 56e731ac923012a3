"""Excel 97-2003 workbooks (.xls), as older field databases and survey offices still keep them.

Read with xlrd, cell by cell, into what :mod:`geomap.tables` reads an .xlsx sheet as: a number
with its number format, a date or a time as Python has it (Excel stores both as numbers of
days, told apart by their format), a truth value, text; error cells are blank. Excel saves a
formula's value with it in an .xls, so a formula is its value.
"""

from __future__ import annotations

import datetime
import io
import struct
from pathlib import Path

import xlrd
from openpyxl.styles.numbers import is_timedelta_format

from geomap.errors import LabelError

_BLANK = (None, None, None)
#: The stream an encrypted .xlsx keeps its workbook in, inside an OLE file as an .xls is.
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
#: What xlrd raises for a workbook cut short or damaged (struct.error: a record cut short).
_DAMAGED = (xlrd.compdoc.CompDocError, struct.error, OSError, ValueError, IndexError, KeyError)


def sheet_names(path: Path, what: str) -> list[str]:
    """The worksheets of a workbook, in order.

    Raises
    ------
    LabelError
        If the file is not an Excel 97-2003 workbook that can be read.
    """
    book = _open(path, what)
    try:
        return book.sheet_names()
    finally:
        book.release_resources()


def sheet_cells(
    path: Path, sheet: str | None, what: str, max_rows: int | None = None
) -> tuple[str, list[list[tuple]]]:
    """The sheet's name (default: the first) and its rows of ``(value, number format, None)``.

    Raises
    ------
    LabelError
        If the file cannot be read or has no sheet ``sheet``.
    """
    book = _open(path, what)
    try:
        names = book.sheet_names()
        sheet = (names[0] if names else "") if sheet is None else sheet
        if sheet not in names:
            raise LabelError(
                f"{what} '{path}': there is no sheet '{sheet}'. Its sheets are: "
                f"{', '.join(names) or '(none)'}."
            )
        try:
            cells = book.sheet_by_name(sheet)
        except (xlrd.XLRDError, *_DAMAGED) as exc:
            raise _unreadable(path, what, exc) from None
        n_rows = cells.nrows if max_rows is None else min(cells.nrows, max_rows)
        rows = [[_cell(book, c) for c in cells.row(r)] for r in range(n_rows)]
    finally:
        book.release_resources()
    return sheet, rows


def _open(path: Path, what: str) -> xlrd.book.Book:
    try:  # xlrd's warnings about the file ("WARNING *** file size ...") are not printed
        return xlrd.open_workbook(path, logfile=io.StringIO(), formatting_info=True, on_demand=True)
    except xlrd.XLRDError as exc:
        if "encrypted" in str(exc).lower() or _ENCRYPTED_PACKAGE in path.read_bytes():
            raise LabelError(
                f"{what} '{path}': the workbook is password-protected (encrypted). Remove its "
                "password (File > Info > Protect Workbook) and save it again, or save the sheet "
                "as CSV UTF-8."
            ) from None
        raise _unreadable(path, what, exc) from None
    except _DAMAGED as exc:
        raise _unreadable(path, what, exc) from None


def _unreadable(path: Path, what: str, exc: Exception) -> LabelError:
    """The error, with xlrd's words up to the bytes it found ("Expected BOF record; found ...")."""
    detail = (str(exc).split(";")[0].strip() or type(exc).__name__)[:80]
    return LabelError(
        f"{what} '{path}': the file cannot be read as an Excel 97-2003 workbook: it is damaged or "
        f"cut short (xlrd: {detail}). If it was copied or downloaded, do that again; else open it "
        "in Excel or LibreOffice and save it as an Excel Workbook (.xlsx), or the sheet as CSV "
        "UTF-8."
    )


def _cell(book: xlrd.book.Book, cell: xlrd.sheet.Cell) -> tuple:
    if cell.ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK, xlrd.XL_CELL_ERROR):
        return _BLANK
    if cell.ctype == xlrd.XL_CELL_TEXT:
        return cell.value, None, None
    if cell.ctype == xlrd.XL_CELL_BOOLEAN:
        return bool(cell.value), None, None
    number_format = book.format_map[book.xf_list[cell.xf_index].format_key].format_str
    if cell.ctype == xlrd.XL_CELL_DATE:
        return _date(cell.value, number_format, book.datemode), None, None
    return cell.value, number_format, None


def _date(days: float, number_format: str, datemode: int):
    """A date cell as Excel shows it: a duration ([h]:mm, [mm]:ss), a time of day, or a date.

    Durations are told by openpyxl's rule, and a date beyond year 9999 (a northing formatted
    as a date, which Excel shows as ####) is None, blank: an .xls reads as its .xlsx twin.
    """
    if is_timedelta_format(number_format):  # hours beyond 24, as "31:57:08" typed in becomes
        return datetime.timedelta(days=days)
    try:
        value = xlrd.xldate.xldate_as_datetime(days, datemode)
    except OverflowError:
        return None
    return value.time() if 0 <= days < 1 else value
