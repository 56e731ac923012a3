"""A geologist's legend: unit names for the values in the observations, their order and colours.

Surveys often code units as integers in their field database (1 = granite, 2 = basalt, ...) and
keep a house legend with fixed colours. ``--legend FILE`` reads a CSV with a column of the values
found in the observations' class column, a column of unit names and, optionally, a column of
colours. The maps, ``legend.csv``, the QGIS style and the report then carry the names and colours
in the legend's row order (a stratigraphic column reads top to bottom). Values given the same name
are mapped as one unit. A previous run's ``legend.csv`` (with its colours edited) serves as one:
its ``name`` column holds the observations' values.

The column of values is the one that holds the most values of the observations (cells read as
written: "01" stays "01"); on a tie, one named like the observations' own ``--label-column``,
then like a code (``code``, ``value``, ``id``, ``class``), then like a name. In a geomap
``legend.csv`` it is the ``name`` column (its ``code`` column holds the map's codes).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from matplotlib.colors import to_rgb

from geomap.errors import LabelError, MissingFileError
from geomap.export import hex_colour
from geomap.labels import class_name, class_order, read_labels
from geomap.tables import SHEET_SUFFIXES, read_sheet, read_table, sheet_columns, sheet_names

KEY_COLUMNS = ("code", "value", "id", "class", "unit_code", "lith_code")
NAME_COLUMNS = ("name", "unit", "unit_name", "lithology", "rock", "description", "label")
#: The same headers in Spanish, Portuguese, French and German, by how they start ("UNIDAD",
#: "NOMBRE_UNIDAD", "litología", "unité", "Gestein").
NAME_STARTS = ("nom", "unidad", "unidade", "unité", "unite", "litolog", "lithol", "descrip")
NAME_STARTS += ("denomina", "roca", "rocha", "roche", "gestein", "einheit", "bezeichnung")
COLOUR_COLUMNS = ("colour", "color", "rgb", "hex")


@dataclass(frozen=True)
class Legend:
    """Unit names for observation values, the units' order and their colours.

    Attributes
    ----------
    path : Path
        The legend file (for messages).
    rename : dict
        Observation value (as text) -> unit name.
    order : tuple of str
        Unit names in the legend's row order, each once.
    colours : dict
        Unit name -> (r, g, b) 0..255, for units whose row gives a colour.
    named : bool
        Whether a column gives the units' names (else the legend gives colours only and the
        units keep their values as names).
    """

    path: Path
    rename: dict[str, str]
    order: tuple[str, ...]
    colours: dict[str, tuple[int, int, int]]
    named: bool = True

    @classmethod
    def read(
        cls, path: str | Path, values: Iterable[str], label_column: str | None = None
    ) -> Legend:
        """Read a legend (CSV, or a workbook's sheet) for observations holding ``values``.

        Raises
        ------
        MissingFileError
            If the file does not exist.
        LabelError
            If no column holds any of the values, a value has two names, or a colour cannot be
            read.
        """
        path = Path(path)
        if not path.is_file():
            raise MissingFileError(f"Legend '{path}': the file does not exist.")
        table = _legend_table(path)
        if table.empty:
            raise LabelError(f"Legend '{path}': the table has no rows.")
        columns = {str(c).strip().casefold(): c for c in table.columns}
        values = {_code(v) for v in values}
        own = {"code", "name", "training_samples"} <= set(columns)  # a geomap legend.csv
        key = _key_column(table, columns, values, label_column, path, own)
        name = next((columns[c] for c in columns if _is_name(c) and columns[c] != key), None)
        colour = next((columns[c] for c in columns if _is_colour(c) and columns[c] != key), None)
        channels = _channel_columns(columns, key) if colour is None else None
        if channels is not None:  # RED, GREEN, BLUE columns, as GIS tools export a palette
            table["_colour"] = _channel_colours(table[list(channels)], path, _places(table))
            colour = "_colour"
        if name is None and colour is None:
            raise LabelError(
                f"Legend '{path}': column '{key}' holds the observations' values, but no column "
                f"holds names or colours (columns: {', '.join(map(str, table.columns))}). Head "
                "them 'name' and 'colour'."
            )
        rename: dict[str, str] = {}
        order: list[str] = []
        colours: dict[str, tuple[int, int, int]] = {}
        merged = own and str(key).casefold() == "value"  # "1; 7": two values of one unit
        for line, row in zip(_places(table), table.to_dict("records")):
            cells = str(row[key]).split(";") if merged and _text(row[key]) else [row[key]]
            value = _code(cells[0])
            if not value:
                continue
            unit = (_text(row[name]) if name is not None else "") or value
            for value in map(_code, cells):
                if rename.get(value, unit) != unit:
                    raise LabelError(
                        f"Legend '{path}': value {value!r} has two names, {rename[value]!r} and "
                        f"{unit!r} ({line}). Give each value one name."
                    )
                rename[value] = unit
            if unit not in order:
                order.append(unit)
            if colour is not None and _text(row[colour]):
                rgb = parse_colour(row[colour], path, line)
                if colours.setdefault(unit, rgb) != rgb:
                    raise LabelError(
                        f"Legend '{path}': unit {unit!r} has two colours ({line}). Give "
                        "values of one unit the same colour, or leave all but one blank."
                    )
        # values that are words, in a column headed as names ("name" of a run's legend.csv):
        # the units' names already
        words = not all(re.fullmatch(r"-?\d+", v) for v in values)
        named = name is not None or (words and _is_name(str(key).strip().casefold()))
        return cls(path, rename, tuple(order), colours, named=named)

    def apply(self, labels: gpd.GeoDataFrame) -> tuple[gpd.GeoDataFrame, list[str]]:
        """Observations with their unit names, and warnings.

        The warnings name values the legend lacks, units of the legend without observations and
        values it merges into one unit.
        """
        values = labels["label"].astype(str)
        missing = class_order(v for v in set(values) if _code(v) not in self.rename)
        out = labels.copy()
        out["label"] = values.map(lambda v: self.rename.get(_code(v), v))
        notes = []
        if not self.named:
            notes.append(
                f"The legend '{self.path.name}' gives colours but no names (no column headed "
                "'name', 'unit' or 'lithology'): the units keep their values as names. Add such "
                "a column to name them."
            )
        if missing:
            notes.append(
                f"{len(missing)} class value(s) of the observations are not in the legend "
                f"'{self.path.name}' ({', '.join(map(repr, missing[:8]))}); they are mapped under "
                "their own names. Add them to the legend to name them."
            )
        unseen = [u for u in self.order if u not in set(out["label"])]
        if unseen:
            notes.append(
                f"Units of the legend '{self.path.name}' with no observation cannot be mapped: "
                f"{', '.join(map(repr, unseen[:8]))}{' ...' if len(unseen) > 8 else ''}."
            )
        present = class_order(set(values))
        merges = [
            f"{', '.join(map(repr, merged))} as {unit!r}"
            for unit in self.order
            if len(merged := [v for v in present if self.rename.get(_code(v)) == unit]) > 1
        ]
        if merges:  # one note: a legend written to merge spellings merges many
            notes.append(
                f"The legend '{self.path.name}' maps several values as one unit: "
                f"{'; '.join(merges)}."
            )
        return out, notes

    def values_of(self, names: Sequence[str]) -> list[str] | None:
        """The observation values of each unit (several joined by '; '), as the legend maps them.

        A unit the legend does not name keeps its own name as its value. None when every value
        is its unit's name: the legend only orders or colours the units.
        """
        values = [
            "; ".join(v for v, unit in self.rename.items() if unit == name) or name
            for name in names
        ]
        return None if values == list(names) else values

    def sort(self, names: Iterable[str]) -> list[str]:
        """Unit names in legend order; names the legend lacks after them, in natural order."""
        names = set(names)
        known = [u for u in self.order if u in names]
        return known + class_order(names - set(known))

    def to_dict(self) -> dict:
        """The legend as ``report.json`` shows it: file, units in order, colours."""
        return {
            "file": self.path.name,
            "units": list(self.order),
            "colours": {u: hex_colour(c) for u, c in self.colours.items()},
        }


def _places(table: pd.DataFrame) -> list[str]:
    """Each row's place as the file numbers it: "row 5" of a sheet, "line 2" of a CSV."""
    if "sheet" in table.attrs:
        return [f"row {i}" for i in table.index]
    return [f"line {i}" for i in range(2, len(table) + 2)]


#: Words a legend sheet's name holds (in English, Spanish, French, Portuguese, German).
LEGEND_SHEETS = ("legend", "leyenda", "légende", "legende", "legenda")


def _legend_table(path: Path):
    """A legend's table: a CSV, or a workbook's sheet named like "Legend", else its first.

    Empty sheets are passed over (Excel's Sheet1 left blank before the legend's).

    In a sheet, the columns are named by the first row with a name or colour column, below a
    title and the legend's details.
    """
    suffix = path.suffix.lower()
    if suffix in SHEET_SUFFIXES:
        sheets = [n for n in sheet_names(path, "Legend") if sheet_columns(path, n, "Legend")]
        named = [n for n in sheets if any(w in n.casefold() for w in LEGEND_SHEETS)]
        return read_sheet(path, (named or sheets or [None])[0], "Legend", _names_units)
    if suffix not in (".csv", ".txt", ".tsv"):
        raise LabelError(
            f"Legend '{path}': give the legend as a CSV table, an Excel workbook or an .ods "
            "spreadsheet (columns such as code, name, colour)."
        )
    return read_table(path, "Legend", dtype=str)  # "01" stays "01", "2.10" is not "2.1"


def _names_units(cells: pd.Series) -> bool:
    """Whether a row of a legend sheet names its columns: one of them holds names or colours."""
    return any(
        _is_name(str(c).strip().casefold()) or _is_colour(str(c).strip().casefold()) for c in cells
    )


def read_named(
    path: str | Path,
    column: str,
    legend: str | Path | None = None,
    *,
    crs: str | None = None,
    layer: str | None = None,
    grid=None,
) -> tuple[gpd.GeoDataFrame, Legend | None, list[str]]:
    """:func:`geomap.labels.read_labels`, with the ``legend``'s unit names when one is given.

    Returns the observations, the legend (None without one) and its warnings.
    """
    labels = read_labels(path, column, crs=crs, layer=layer, grid=grid)
    if legend is None:
        return labels, None, []
    key = Legend.read(legend, labels["label"].unique(), column)
    named, notes = key.apply(labels)
    return named, key, notes


def _is_name(column: str) -> bool:
    named = column in NAME_COLUMNS or "name" in column or column.startswith(NAME_STARTS)
    return named and not _is_colour(column)


def _is_colour(column: str) -> bool:
    return column in COLOUR_COLUMNS or column.startswith(("colour", "color"))


#: Column names of a colour given as three columns, from the most to the least usual.
CHANNEL_COLUMNS = (("red", "green", "blue"), ("r", "g", "b"))


def _channel_columns(columns: dict, key) -> tuple | None:
    """The red, green and blue columns of a legend (by casefolded name), if it has them."""
    for names in CHANNEL_COLUMNS:
        if all(n in columns and columns[n] != key for n in names):
            return tuple(columns[n] for n in names)
    return None


def _channel_colours(cells: pd.DataFrame, path: Path, places: list[str]) -> pd.Series:
    """'r,g,b' of each row of red, green, blue columns ('' for a row without a colour).

    Values from 0 to 1 in every cell (a fraction, as some tools write) are scaled to 0..255;
    40.0 from a spreadsheet is 40.
    """
    text = cells.fillna("").map(lambda v: v.strip())
    given = (text != "").sum(axis=1)
    partial = np.flatnonzero((given > 0) & (given < 3))
    if len(partial):
        raise LabelError(
            f"Legend '{path}': {places[int(partial[0])]} gives {int(given.iloc[partial[0]])} "
            "of the colour's "
            f"three columns ({', '.join(map(str, cells.columns))}). Fill all three, or none for "
            "a unit without a colour."
        )
    numbers = text.map(lambda v: float(v) if re.fullmatch(r"\d*\.?\d+", v) else np.nan)
    filled = numbers[given == 3]
    if len(filled) and filled.notna().all().all() and (filled.to_numpy() <= 1).all():
        text = (numbers * 255).round().map(lambda v: "" if np.isnan(v) else str(int(v)))
    text = text.map(lambda v: re.sub(r"\.0*$", "", v))
    return text.agg(",".join, axis=1).where(given == 3, "")


def _text(value) -> str:
    """A cell as text; "3.0" as "3", as an observation value read as a number gives it."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return class_name(value)


def _code(value) -> str:
    """A class value as legend and observations are matched: "01" and "1" are one code."""
    text = _text(value)
    return str(int(text)) if re.fullmatch(r"-?\d+", text) else text


def _key_column(
    table, columns: dict, values: set[str], label_column: str | None, path: Path, own: bool
):
    """The column holding the most observation values; code-like names win ties.

    In a geomap ``legend.csv`` (``own``) the values are the names: its ``code`` column holds the
    map's codes 0..n-1, not the observations'.
    """
    preferred = [label_column.casefold()] if label_column else []
    ranked = ["value", "name"] if own else [*preferred, *KEY_COLUMNS]
    ranked += [] if own else [c for c in columns if _is_name(c)]
    ranked += [] if own else list(columns)  # any other column may hold them too
    candidates = list(dict.fromkeys(columns[c] for c in ranked if c in columns))
    hits = [len(values & {_code(v) for v in table[c]}) for c in candidates]
    if max(hits, default=0) == 0:
        shown = ", ".join(map(repr, class_order(values)[:6]))
        raise LabelError(
            f"Legend '{path}': none of the observations' class values ({shown}) appears in its "
            f"columns {', '.join(map(str, table.columns))}. Give a column 'code' (or 'value') "
            "with the values as they are in the observations, a column 'name' and optionally "
            "'colour' (#rrggbb)."
            + (
                " This is a geomap legend.csv: its 'code' column holds the map's codes 0..n-1, "
                "not yours; its 'name' column (and 'value', where a legend named your values) "
                "must hold the observations' values."
                if own
                else ""
            )
        )
    return candidates[int(np.argmax(hits))]


_RGB = re.compile(
    r"^(?:rgba?\s*\()?\s*(\d{1,3})\s*[,; ]\s*(\d{1,3})\s*[,; ]\s*(\d{1,3})"
    r"(?:\s*[,; ]\s*(?:\d{1,3}|[01]?\.\d+|[01]))?\s*\)?$"  # an alpha (QGIS: r,g,b,a) is ignored
)


def parse_colour(value, path: Path, where: str) -> tuple[int, int, int]:
    """(r, g, b) 0..255 of a legend's colour cell; ``where`` names its row ("line 4").

    Accepted: '#rrggbb', '#rgb', '#rrggbbaa', 'rrggbb', 'r,g,b' (0..255) with or without an
    alpha ('r,g,b,a', as QGIS writes), 'rgb(r, g, b)', 'rgba(r, g, b, a)' or a colour name.
    """
    text = str(value).strip()
    numbers = _RGB.match(text)
    if numbers and all(int(n) <= 255 for n in numbers.groups()):
        r, g, b = (int(n) for n in numbers.groups())
        return r, g, b
    if re.fullmatch(r"[0-9a-fA-F]{6}", text):
        text = "#" + text
    try:
        return tuple(int(round(255 * c)) for c in to_rgb(text))  # type: ignore[return-value]
    except ValueError:
        raise LabelError(
            f"Legend '{path}': the colour {text!r} on {where} is not understood. Write it "
            "as #rrggbb (e.g. #e4781e), as r,g,b from 0 to 255, or as a colour name."
        ) from None
