"""Tables of observations as written: CSV text and workbook sheets, every cell read as text.

:func:`read_table` reads a CSV (any usual separator and encoding), :func:`read_sheet` a sheet of
an Excel workbook or an OpenDocument spreadsheet (:mod:`geomap.opendocument`); both keep cells
as written ("007" stays "007", "2.10" is not "2.1") and number the rows as the file does, so
that messages name the line or row to fix. :func:`decimals` reads coordinate columns, decimal
or degrees, minutes and seconds.
"""

from __future__ import annotations

import codecs
import csv
import datetime
import functools
import io
import re
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import openpyxl
import pandas as pd
from openpyxl.utils import get_column_letter
from openpyxl.utils.exceptions import InvalidFileException

from geomap import opendocument, xls
from geomap.errors import EmptySheetError, LabelError

#: Coordinate column pairs accepted in tables (case-insensitive), in order of preference.
COORD_PAIRS = (
    ("x", "y"),
    ("point_x", "point_y"),  # ArcGIS "Add XY Coordinates"
    ("easting", "northing"),
    ("east", "north"),
    ("lon", "lat"),
    ("long", "lat"),
    ("lng", "lat"),
    ("longitude", "latitude"),
    ("x_wgs84", "y_wgs84"),
    ("utm_x", "utm_y"),
    ("utm_easting", "utm_northing"),
    ("longitud", "latitud"),  # a Spanish field book's
    ("este", "norte"),  # and its UTM coordinates
)
GEOGRAPHIC = {"lon", "long", "lng", "longitude", "longitud", "x_wgs84"}


def coordinate_name(column) -> str:
    """A column's name as :data:`COORD_PAIRS` spell it.

    Lower case, without a trailing unit ("Easting (m)", "Lat [deg]") or "coord" word
    ("X_COORD", "Y coordinate").
    """
    name = str(column).lower().strip()
    name = re.sub(r"\s*[(\[][^)\]]*[)\]]$", "", name)
    return re.sub(r"[\s_-]*coord(inate)?s?$", "", name).strip()


def read_table(path: Path, what: str = "Labels", dtype=None) -> pd.DataFrame:
    """A CSV separated by commas, semicolons, tabs or bars, in UTF-8 or (else) Windows-1252.

    ``what`` starts the error messages ("Labels", "Legend"); ``dtype`` as pandas takes it
    (``str``: every cell as written, "01" stays "01").
    """
    with open(path, "rb") as f:
        utf16 = f.read(2) in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # Excel's "Unicode text"
    for encoding in ("utf-16",) if utf16 else ("utf-8-sig", "cp1252"):
        try:
            with open(path, encoding=encoding, newline="") as f:
                sample = f.read(65536)
            try:
                sep = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
            except csv.Error:  # one column, or nothing to tell: commas
                sep = ","
            table = pd.read_csv(
                path, sep=sep, encoding=encoding, dtype=dtype, na_values=list(EXCEL_ERRORS)
            )
            if not isinstance(table.index, pd.RangeIndex):  # pandas took the extra fields
                _refuse_long_rows(path, what, encoding, sep)  # of every row for an index
            table.attrs["dialect"] = (encoding, sep)
            return table
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error) as exc:
            fields = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", str(exc))
            if fields is None:
                raise LabelError(
                    f"{what} '{path}': the CSV cannot be parsed ({str(exc).strip()})."
                ) from None
            header, line, seen = fields.groups()
            title = title_line(path, encoding, sep)
            if title:
                raise LabelError(f"{what} '{path}': {title}") from None
            raise _long_row(path, what, line, seen, header, sep) from None
    raise LabelError(
        f"{what} '{path}': the CSV is neither UTF-8, UTF-16 nor Windows-1252 text. Save it as "
        "'CSV UTF-8'."
    )


def _refuse_long_rows(path: Path, what: str, encoding: str, sep: str) -> None:
    """Raise for the first row with more fields than the header."""
    with open(path, encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter=sep)
        header = next(reader)
        for row in reader:
            if len(row) > len(header):
                title = title_line(path, encoding, sep)
                if title:
                    raise LabelError(f"{what} '{path}': {title}")
                raise _long_row(path, what, reader.line_num, len(row), len(header), sep)


def title_line(path: Path, encoding: str, sep: str) -> str | None:
    """What to say of a title above a CSV's column names (a spreadsheet's); None if none is.

    The first line then holds one cell of text and the second the names, coordinates among
    them.
    """
    with open(path, encoding=encoding, newline="") as f:
        rows = [row for _, row in zip(range(2), csv.reader(f, delimiter=sep))]
    cells = [c.strip() for c in rows[0] if c.strip()] if rows else []
    if len(rows) < 2 or len(cells) != 1:
        return None
    names = {coordinate_name(c) for c in rows[1]}
    if not any(a in names and b in names for a, b in COORD_PAIRS):
        return None
    return (
        f"line 1 ('{cells[0]}') looks like a title above the column names on line 2. Delete it, "
        "so that the names come first."
    )


def _long_row(path: Path, what: str, line, seen, header, sep: str) -> LabelError:
    return LabelError(
        f"{what} '{path}': line {line} has {seen} fields where the first row has {header} "
        f"('{sep}' separates them). A cell holding '{sep}', such as a colour written r,g,b or a "
        f'name with a comma, goes in double quotes ("200,20,60"), or separate the columns with '
        "';'."
    )


def record_lines(path: Path, encoding: str, sep: str, n_rows: int) -> pd.Index:
    """The line each data row of a CSV starts on (blank lines and cells over lines counted)."""
    starts, line = [], 1
    with open(path, encoding=encoding, newline="") as f:
        reader = csv.reader(f, delimiter=sep)
        for row in reader:
            if row:  # pandas skips blank lines
                starts.append(line)
            line = reader.line_num + 1
    if len(starts) - 1 != n_rows:  # a dialect the two parsers read differently
        return pd.RangeIndex(2, n_rows + 2)
    return pd.Index(starts[1:])


def decimals(column: pd.Series, numbers: pd.Series | None = None) -> pd.Series:
    """Numbers of a coordinate column: decimals (a decimal point or comma) or DMS text.

    Degrees, minutes and seconds as a field book or GPS writes them (31°57'08"S, 115 51 04.9 E,
    S31°57.142') are read as decimal degrees. Commas are decimal commas when no cell has a
    point; ``numbers`` marks cells that were numbers (a sheet's), whose points do not count.
    """
    if pd.api.types.is_numeric_dtype(column):
        return pd.to_numeric(column, errors="coerce")
    text = column.astype(str).str.strip()
    typed = text[~numbers.reindex(text.index, fill_value=False)] if numbers is not None else text
    if typed.str.fullmatch(r"-?\d+,\d*").any() and not typed.str.contains(r"\.").any():
        text.loc[typed.index] = typed.str.replace(",", ".", regex=False)
    out = pd.to_numeric(text, errors="coerce")
    missing = out.isna() & column.notna()
    return out.where(~missing, text[missing].map(_dms))


#: Characters besides digits that degrees, minutes and seconds are written with (also the
#: curly and accent marks a phone or a word processor puts for ' and ").
_DMS_MARKS = re.compile(r"[°º˚d:'′’‘´`m\"″“”s\s]+", re.I)


_HEMISPHERE_LETTER = {
    **dict.fromkeys(("north", "norte", "nord"), "N"),
    **dict.fromkeys(("south", "sur", "sul", "sud"), "S"),
    **dict.fromkeys(("east", "este", "leste", "est"), "E"),
    **dict.fromkeys(("west", "oeste", "ouest"), "W"),
}
#: Hemispheres written as words, in English, Spanish, Portuguese and French, as their letter.
_HEMISPHERES = re.compile(
    r"(?<![a-z])(north|norte|nord|south|sur|sul|sud|east|este|leste|est|west|oeste|ouest)$", re.I
)


def _dms_parts(text: str) -> tuple[list[float], bool] | None:
    """Degrees, minutes and seconds of a DMS text and whether it is negative; None if not one."""
    text = _HEMISPHERES.sub(lambda m: _HEMISPHERE_LETTER[m[1].lower()], text.strip())
    match = re.fullmatch(r"\s*([NSEWOL])?\s*(-?)(.*?)\s*([NSEWOL])?\s*", text, re.I)
    if match is None or (match.group(1) and match.group(4)):
        return None
    body = match.group(3).replace(",", ".")
    numbers = re.findall(r"\d+(?:\.\d+)?", body)
    marks = re.sub(r"\d+(?:\.\d+)?", " ", body)
    if not 1 <= len(numbers) <= 3 or _DMS_MARKS.sub("", marks):
        return None
    if len(numbers) == 1 and not (match.group(1) or match.group(4)) and "°" not in body:
        return None  # a plain number was read as one already: this is something else
    parts = [float(n) for n in numbers] + [0.0] * (3 - len(numbers))
    hemisphere = (match.group(1) or match.group(4) or "").upper()  # O: oeste, ouest; L: leste
    return parts, bool(match.group(2)) or hemisphere in ("S", "W", "O")


def _dms(text: str) -> float:
    """Decimal degrees of a DMS text (31°57'08.5"S, E115 51 4); NaN if it is not one."""
    read = _dms_parts(text)
    if read is None or read[0][1] >= 60 or read[0][2] >= 60:
        return np.nan
    (degrees, minutes, seconds), negative = read
    value = degrees + minutes / 60 + seconds / 3600
    return -value if negative else value


def coordinate_slip(text: str) -> str | None:
    """What makes a coordinate cell neither a number nor DMS, when it is a common slip."""
    if re.search(r"[Oo]\d|\d[Oo][\d.,]", text):  # not a closing O: oeste, ouest (west)
        return "the letter O where a zero belongs"
    read = _dms_parts(text)
    if read is not None and (read[0][1] >= 60 or read[0][2] >= 60):
        return "minutes or seconds of 60 or more"
    return None


#: Workbooks read as tables of observations.
SHEET_SUFFIXES = (".xlsx", ".xlsm", ".xls", ".ods")
#: Rows searched for the row naming the columns: a sheet may start with a title and the
#: project's details above its table.
HEADER_ROWS = 20
#: Rows read to list a sheet's columns (a sheet of assays need not be read whole for it).
COLUMN_ROWS = 200
#: Excel's error values: blank cells in a sheet and in a CSV saved by Excel.
EXCEL_ERRORS = frozenset(
    {"#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A", "#GETTING_DATA"}
    | {"#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!", "#UNKNOWN!"}
)
#: Cells read as blank in a sheet: Excel's error values and what pandas.read_csv reads as
#: missing by default, so that a sheet and the same table saved as CSV give the same cells.
BLANK_CELLS = EXCEL_ERRORS | frozenset(
    {"#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>"}
    | {"N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)
#: A number format of zeros ("000", "0.00"): padding and decimals a CSV saved by Excel keeps.
_ZEROS = re.compile(r"(0+)(?:\.(0+))?")
#: First bytes of an OLE file: an Excel 97-2003 workbook, or an encrypted one.
_OLE = b"\xd0\xcf\x11\xe0"


def sheet_names(path: Path, what: str = "Labels") -> list[str]:
    """The worksheets of a workbook or OpenDocument spreadsheet, in order (chart sheets left out).

    Remembered per file version: the app lists them on every rerun of its Data page.

    Raises
    ------
    LabelError
        If the file is not a workbook that can be read.
    """
    info = Path(path).stat()
    return list(_sheet_names(str(path), (info.st_mtime_ns, info.st_size), what))


@functools.lru_cache(maxsize=64)
def _sheet_names(path: str, stamp: tuple, what: str) -> tuple[str, ...]:
    path = Path(path)
    reader = _reader(path, what)
    if reader is not None:
        return tuple(reader.sheet_names(path, what))
    book = _open(path, what, data_only=True)
    try:
        return tuple(sheet.title for sheet in book.worksheets)
    finally:
        book.close()


def read_sheet(
    path: Path,
    sheet: str | None = None,
    what: str = "Labels",
    names_columns: Callable[[pd.Series], bool] | None = None,
    max_rows: int | None = None,
) -> pd.DataFrame:
    """A worksheet of a workbook (.xlsx, .xls, .ods), every cell as text, indexed by its row number.

    Numbers read as Excel shows them in its General format (15 significant digits: "2.1",
    "500345.5", "7"), or padded as a number format of zeros says ("007", "2.10"), as a CSV
    saved by Excel has them, unless the format rounds the value (a coordinate shown "15.1");
    dates as ISO dates, times as hours:minutes:seconds (a "31:57:08" typed into a cell
    becomes a time), a formula as its saved value, and
    :data:`BLANK_CELLS` as blank. The column names are the first row of the first
    :data:`HEADER_ROWS` for which ``names_columns`` is true (default: it names a pair of
    coordinate columns, :data:`COORD_PAIRS`), else the widest of them: a title and a project's
    details above the table are passed over. A column without a name is named by its letter
    ("column F"), a repeated name gets its letter ("Easting, column D"); empty columns are
    dropped. ``attrs``: ``sheet``, ``header_row``, and ``numbers`` (which cells held numbers).
    ``what`` starts the error messages ("Labels", "Legend"); ``max_rows`` reads only the first
    rows (to list the columns).

    Raises
    ------
    LabelError
        If the file cannot be read, the sheet does not exist or holds no cell, or formulas in
        it have no saved value.
    """
    sheet, cells = _cells(path, sheet, what, max_rows)
    width = max((len(r) for r in cells), default=0)
    cells = [r + [(None, None)] * (width - len(r)) for r in cells]  # rows end at their last cell
    index = pd.RangeIndex(1, len(cells) + 1)
    raw = pd.DataFrame([[_text(*c) for c in r] for r in cells], index=index, dtype=object)
    numbers = pd.DataFrame([[_is_number(c[0]) for c in r] for r in cells], index=index)
    filled = raw.notna().sum(axis=1)
    if raw.empty or not filled.any():
        raise EmptySheetError(f"{what} '{path}': sheet '{sheet}' holds no cell with a value.")
    header = _header_row(raw, filled, names_columns or coordinate_pair)
    keep = raw.loc[header:].notna().any()
    table = raw.loc[header + 1 :, keep].copy()
    table.columns = _column_names(raw.loc[header, keep], table.columns)
    table.attrs.update(
        sheet=sheet,
        header_row=header,
        numbers=numbers.loc[header + 1 :, keep].set_axis(table.columns, axis=1),
    )
    return table


@functools.lru_cache(maxsize=64)
def _sheet_columns(path: str, stamp: tuple, sheet: str, what: str) -> tuple[str, ...]:
    try:
        return tuple(read_sheet(Path(path), sheet, what, max_rows=COLUMN_ROWS).columns)
    except EmptySheetError:
        return ()  # a sheet that cannot be read says so: it is not taken for an empty one


def sheet_columns(path: Path, sheet: str, what: str = "Labels") -> list[str]:
    """The column names of a worksheet (none for an empty one), from its first rows.

    Raises
    ------
    LabelError
        If the sheet cannot be read (a damaged workbook), or does not exist.
    """
    info = Path(path).stat()
    return list(_sheet_columns(str(path), (info.st_mtime_ns, info.st_size), sheet, what))


def _cells(path: Path, sheet: str | None, what: str, max_rows: int | None) -> tuple[str, list]:
    """The sheet's name and its rows of (value, number format), formulas as saved values.

    A workbook is read for its formulas first; only one that has some is read again for
    their saved values (openpyxl gives either, not both). Other workbooks give saved values,
    and mark a formula "f" only if it has none.
    """
    reader = _reader(path, what)
    saving = reader is not None  # a reader that gives saved values
    if saving:
        sheet, cells = reader.sheet_cells(path, sheet, what, max_rows)
    else:
        sheet, cells = _sheet_cells(path, sheet, what, max_rows, data_only=False)
    formulas = [
        (r, c) for r, row in enumerate(cells) for c, cell in enumerate(row) if cell[2] == "f"
    ]
    saved = cells if saving or not formulas else _sheet_cells(path, sheet, what, max_rows, True)[1]
    unsaved = [
        (r, c)
        for r, c in formulas
        if saving or r >= len(saved) or c >= len(saved[r]) or saved[r][c][0] is None
    ]
    if unsaved:
        r, c = unsaved[0]
        raise LabelError(
            f"{what} '{path}': sheet '{sheet}' holds {len(unsaved)} formula(s) whose values were "
            f"never saved (cell {get_column_letter(c + 1)}{r + 1}: '{cells[r][c][0]}'), as a "
            "workbook written by a script has them. Open it in Excel or LibreOffice and save it, "
            "so that their values are stored with them."
        )
    return sheet, [[cell[:2] for cell in row] for row in saved]


def _sheet_cells(path, sheet, what, max_rows, data_only) -> tuple[str, list]:
    book = _open(path, what, data_only)
    try:
        names = [s.title for s in book.worksheets]
        sheet = (names[0] if names else "") if sheet is None else sheet
        if sheet not in names:
            raise LabelError(
                f"{what} '{path}': there is no sheet '{sheet}'. Its sheets are: "
                f"{', '.join(names) or '(none)'}."
            )
        cells = book[sheet]
        cells.reset_dimensions()  # some writers state a wrong extent: read every row
        rows = [
            [(c.value, getattr(c, "number_format", None), getattr(c, "data_type", None)) for c in r]
            for r in cells.iter_rows(min_row=1, max_row=max_rows)
        ]
    except LabelError:
        raise
    except _DAMAGED as exc:  # a sheet's compressed rows damaged: read only now
        raise _unreadable(path, what, exc) from None
    finally:
        book.close()
    return sheet, rows


def _reader(path: Path, what: str):
    """The module that reads a workbook, by what the file holds, not its name.

    :mod:`geomap.opendocument` for an OpenDocument spreadsheet, :mod:`geomap.xls` for an Excel
    97-2003 workbook (and an encrypted one, which that module names), None for an Excel
    workbook (.xlsx, read here with openpyxl).

    Raises
    ------
    LabelError
        If the file is none of these: a table saved as text, a web page, a file cut short.
    """
    with open(path, "rb") as f:
        head = f.read(256)
    if head.startswith(_OLE):
        return xls
    if not zipfile.is_zipfile(path):
        kind = {".ods": "spreadsheet (.ods)"}.get(path.suffix.lower(), "workbook")
        raise LabelError(f"{what} '{path}': the file is not a {kind}: {_what_it_is(head)}")
    with zipfile.ZipFile(path) as archive:
        odf = "mimetype" in archive.namelist()
    return opendocument if odf else None


def _what_it_is(head: bytes) -> str:
    """What a file named as a workbook holds instead, and what to do (see :func:`_reader`)."""
    text = _head_text(head)
    if text.lstrip().startswith("<"):
        return (
            "it holds XML or HTML, as a web page or an XML spreadsheet saved under this name "
            "does. Open it and save it as an Excel Workbook (.xlsx), or the sheet as CSV UTF-8."
        )
    if text.strip() and sum(c.isprintable() or c in "\t\r\n" for c in text) >= 0.9 * len(text):
        first = text.strip().splitlines()[0][:60]
        return (
            f"it holds plain text ('{first}'), as a CSV does. If it is the table, name it .csv; "
            "else open it and save it as an Excel Workbook (.xlsx) or CSV UTF-8."
        )
    return (
        "it is not the zip archive a workbook is, perhaps a copy or download cut short. Open "
        "the original and save it again (.xlsx or .ods), or save the sheet as CSV UTF-8."
    )


def _head_text(head: bytes) -> str:
    """A file's first bytes as text.

    UTF-16 after its mark (Excel's "Unicode Text"), else UTF-8 (a character cut at the end left
    out), else Windows-1252.
    """
    if head[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return head[: len(head) // 2 * 2].decode("utf-16", "replace")
    try:
        return codecs.getincrementaldecoder("utf-8-sig")().decode(head)
    except UnicodeDecodeError:
        return head.decode("cp1252", "replace")


def _open(path: Path, what: str, data_only: bool):
    """An Excel workbook opened with openpyxl, also one named otherwise (.xls from a website)."""
    named = path.suffix.lower() in (".xlsx", ".xlsm")
    try:
        return openpyxl.load_workbook(
            path if named else io.BytesIO(path.read_bytes()), read_only=True, data_only=data_only
        )
    except _DAMAGED as exc:
        raise _unreadable(path, what, exc) from None


#: What openpyxl raises on a file that is not a workbook, or one cut short or damaged (XML
#: parsers' errors are SyntaxErrors).
_DAMAGED = (
    SyntaxError,
    zipfile.BadZipFile,
    InvalidFileException,
    KeyError,
    ValueError,
    OSError,
    EOFError,
    zlib.error,
)


def _unreadable(path: Path, what: str, exc: Exception) -> LabelError:
    return LabelError(
        f"{what} '{path}': the file cannot be read as an Excel workbook "
        f"({str(exc).strip() or type(exc).__name__}). Open it in Excel and save it again as "
        "an Excel Workbook (.xlsx), or save the sheet as CSV UTF-8."
    )


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text(value, number_format: str | None = None) -> str | None:
    """A cell as Excel shows it (see :func:`read_sheet`), or None if it is blank."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).upper()
    if _is_number(value):
        zeros = _ZEROS.fullmatch(number_format or "")
        if zeros:  # padding and trailing zeros kept; a value rounded to show is not taken
            places = len(zeros.group(2) or "")
            width = len(zeros.group(1)) + places + bool(places) + (value < 0)  # "-007"
            shown = f"{value:0{width}.{places}f}"
            if float(shown) == value:
                return shown
        return format(value, ".15g") if isinstance(value, float) else str(value)
    if isinstance(value, datetime.datetime) and value.time() == datetime.time():
        return value.date().isoformat()
    if isinstance(value, datetime.date):  # a datetime too
        return value.isoformat()
    if isinstance(value, (datetime.time, datetime.timedelta)):
        return _hours(value)
    text = str(value).strip()
    return None if not text or text in BLANK_CELLS else text


def _hours(value) -> str:
    """A time or duration as hours:minutes:seconds, hours beyond 24 kept ("31:57:08").

    A negative duration ("-31:57:08" typed into LibreOffice) keeps its digits after the sign;
    fractions of a second follow two digits ("10:30:00.5").
    """
    if isinstance(value, datetime.time):
        value = datetime.timedelta(
            hours=value.hour,
            minutes=value.minute,
            seconds=value.second,
            microseconds=value.microsecond,
        )
    sign = "-" if value < datetime.timedelta(0) else ""
    minutes, seconds = divmod(abs(value).total_seconds(), 60)
    hours, minutes = divmod(int(minutes), 60)
    seconds_text = f"{seconds:09.6f}".rstrip("0").rstrip(".")
    return f"{sign}{hours}:{minutes:02d}:{seconds_text}"


def coordinate_pair(columns) -> bool:
    """Whether ``columns`` name a pair of coordinate columns (:data:`COORD_PAIRS`)."""
    names = {coordinate_name(c) for c in columns}
    return any(a in names and b in names for a, b in COORD_PAIRS)


def _header_row(raw: pd.DataFrame, filled: pd.Series, names_columns) -> int:
    """The row naming the columns.

    The first of the top non-empty rows that ``names_columns``, else the widest of them.
    """
    top = filled[filled > 0].index[:HEADER_ROWS]
    for row in top:
        if names_columns(raw.loc[row].dropna()):
            return int(row)
    return int(filled.loc[top].idxmax())


def _column_names(names: pd.Series, positions) -> list[str]:
    """Names of a sheet's columns: as written, else by letter; a repeated name gets its letter.

    ", column D", not " (column D)": a bracketed ending reads as a unit ("Easting (m)"), and a
    second Easting would be taken for the first.
    """
    letters = [get_column_letter(int(p) + 1) for p in positions]
    out = [n.strip() if n else f"column {c}" for n, c in zip(names, letters)]
    seen = pd.Series(out).duplicated(keep="first")
    return [f"{n}, column {c}" if twice else n for n, c, twice in zip(out, letters, seen)]
