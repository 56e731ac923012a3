"""Per-browser-session state: a private workspace folder, the chosen inputs and the trained runs.

Every browser session gets its own temporary folder for uploads and outputs, so no session sees
another's files. The page's address carries a random token (``?session=...``): reloading the
page, or opening the address again within :data:`KEEP_SECONDS`, finds the uploads, runs and
choices where they were; the folder is removed after that (or when the server stops). Runs are
memoised in the session by a hash of the input files and the parameters, so moving between pages
or layers never trains again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import shutil
import tempfile
import threading
import time
import weakref
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import rasterio
import streamlit as st
from rasterio.crs import CRS

from geomap import report_html
from geomap.errors import GeomapError
from geomap.export import load_model, write_json
from geomap.labels import is_identifier
from geomap.sources import crs_words
from geomap.workflow import sha256

log = logging.getLogger("geomap.app")

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "data_samples" / "demo"
DEMO_RASTERS = ("landsat.tif", "radiometrics.tif", "magnetics.tif", "dem.tif")
DEMO_LABELS = "field_points.gpkg"
RASTER_TYPES = ["tif", "tiff", "jp2", "img", "nc", "hdf", "ers", "bil", "asc"]
#: File types the observation and legend boxes take: Excel workbooks old and new and LibreOffice
#: spreadsheets too (refused by the box itself, the browser showed only
#: "application/vnd.oasis.opendocument.spreadsheet files are not allowed"; user pass).
LABEL_TYPES = ["gpkg", "geojson", "json", "zip", "kml", "kmz", "csv", "xlsx", "xlsm", "xls", "ods"]
LEGEND_TYPES = ["csv", "txt", "xlsx", "xlsm", "xls", "ods"]


class Workspace:
    """A temporary folder owned by one browser session, removed with it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="geomap-session-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)

    def save(self, kind: str, name: str, data: bytes) -> Path:
        """Write uploaded bytes under ``kind/<hash of the bytes>/`` with a safe file name.

        A file uploaded again under its name with other bytes (a corrected DEM, or an upload in
        a duplicated tab of the session) goes beside it, so the file an earlier run or the other
        tab uses stays as it was; the same bytes again are the same file.
        """
        folder = self.root / kind / hashlib.sha256(data).hexdigest()[:16]
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / safe_name(name)
        if not path.exists():
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        return path

    def run_dir(self, key: str) -> Path:
        """The output folder of the run with this key (not created)."""
        return self.root / "runs" / key

    def tidy_report(self, out: Path) -> None:
        """``out``'s report.json with the uploads named as the user's files, not server paths.

        An upload is kept as ``<root>/<kind>/<hash>/<name>``: the report says ``<name>``. The
        run's folder, ``<root>/runs/<key>``, is ``geomap-<key>``, as its zip is named. The
        files a user downloads then say nothing of the server (its temporary folder's name),
        on any system (Windows' separators; macOS's /var and its resolved /private/var).
        """

        def tidy(value):
            if isinstance(value, dict):
                return {k: tidy(v) for k, v in value.items()}
            if isinstance(value, list):
                return [tidy(v) for v in value]
            return without_workspace(value, self.root) if isinstance(value, str) else value

        path = out / "report.json"
        tmp = path.with_name(path.name + ".part")
        write_json(tmp, tidy(json.loads(path.read_text(encoding="utf-8"))))
        tmp.replace(path)

    def zip_run(self, out: Path, key: str) -> Path:
        """A zip of every file of the run in ``out``, written once into the workspace."""
        path = self.root / "zips" / f"geomap-{key}.zip"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_suffix(".part")
            with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
                for f in sorted(out.iterdir()):
                    z.write(f, f.name)
            tmp.replace(path)
        return path

    def close(self) -> None:
        """Remove the folder now."""
        self._cleanup()


def safe_name(name: str) -> str:
    """A file name without folders or characters that file systems or GDAL trip on.

    Letters of any script, digits, spaces and brackets stay: messages and outputs name the
    file as the geologist does ("field book (2024).ods", "carte géologique.tif").
    """
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^\w .()+,-]+", "_", base).strip().lstrip(".").strip()
    return cleaned or "upload"


@dataclass
class Inputs:
    """The files and choices the Data page collected."""

    rasters: list[Path] = field(default_factory=list)
    labels: Path | None = None
    label_column: str | None = None
    label_crs: str | None = None
    label_layer: str | None = None
    legend: Path | None = None
    nodata: float | None = None
    #: No-data values of single rasters, by file name ("dem.tif=-32768" in the box).
    raster_nodata: dict[str, float] = field(default_factory=dict)
    demo: bool = False
    #: Why the Data page could not read these inputs (in the app's words); None when it could.
    problem: str | None = None
    #: Why it could not read the observations: the rasters can still be clustered.
    observations_problem: str | None = None
    #: The warnings the Data page showed on these inputs: the Train page folds them away.
    warnings: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        """Whether there is enough to train."""
        return (
            bool(self.rasters)
            and self.labels is not None
            and bool(self.label_column)
            and not self.observations_problem
        )


def problem_files(data: Inputs) -> list[str]:
    """The names of the input files that the Data page's problems are about.

    A name quoted alone or ending a quoted path: 'dem.tif' is not named by 'srtm_dem.tif'.
    """
    files = [*data.rasters, *filter(None, [data.labels, data.legend])]
    problems = " ".join(filter(None, [data.problem, data.observations_problem]))
    named = [p.name for p in files if re.search(rf"['/\\]{re.escape(p.name)}'", problems)]
    return list(dict.fromkeys(named))  # the observations' workbook may hold the legend too


def demo_inputs() -> Inputs:
    """The demo scene shipped in data_samples/ (read in place, never written)."""
    return Inputs(
        rasters=[DEMO / n for n in DEMO_RASTERS],
        labels=DEMO / DEMO_LABELS,
        label_column="lithology",
        demo=True,
    )


SESSION_PARAM = "session"
#: How long a browser session's files, runs and choices wait for its address to be opened again.
KEEP_SECONDS = 12 * 3600
#: What a reload finds again, besides the values of :data:`KEPT_WIDGETS`.
_PERSISTED = (
    *("workspace", "inputs", "runs", "current_run", "source", "saved_uploads", "kept_uploads"),
    "uploaded_model",
    *("map_view", "map_ticks", "map_defaults", "training", "stopped_training"),
)


class _Sessions:
    """The state of every browser session of this server, by token, for a reload to resume."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.saved: dict[str, tuple[float, dict]] = {}

    def get(self, token: str) -> dict | None:
        with self.lock:
            entry = self.saved.get(token)
        return None if entry is None else entry[1]

    def put(self, token: str, state: dict) -> None:
        """Keep ``state``; forget sessions unused for :data:`KEEP_SECONDS` (their folders go)."""
        now = time.monotonic()
        with self.lock:
            self.saved[token] = (now, state)
            for old in [t for t, (seen, _) in self.saved.items() if now - seen > KEEP_SECONDS]:
                del self.saved[old]


@st.cache_resource(show_spinner=False)
def _sessions() -> _Sessions:
    return _Sessions()


def _persisted(key: str) -> bool:
    return key in _PERSISTED or key in KEPT_WIDGETS or key.startswith(KEPT_PREFIXES)


def resume() -> None:
    """Give this browser session its token; after a reload, the state it had under it.

    A copy of that state: a tab duplicated from another (the same address) shares its files but
    not its lists of uploads and runs, which each tab changes on its own.

    Called by the frame at the start of every run, before the page.
    """
    if "token" not in st.session_state:
        token = st.query_params.get(SESSION_PARAM)
        state = _sessions().get(token) if token else None
        if state is None:
            st.session_state.session_lost = bool(token)
            token = secrets.token_urlsafe(16)
        else:
            for key, value in state.items():  # copies: a duplicated tab lives on beside it
                st.session_state[key] = value if isinstance(value, Workspace) else deepcopy(value)
            log.info("a browser session resumed its uploads and runs after a reload")
        st.session_state.token = token
    if st.query_params.get(SESSION_PARAM) != st.session_state.token:
        st.query_params[SESSION_PARAM] = st.session_state.token


def lost() -> bool:
    """Whether the address named a session this server no longer holds; asked once."""
    return bool(st.session_state.pop("session_lost", False))


def remember() -> None:
    """Keep this session's state for :func:`resume` (called by the frame after every run)."""
    if "token" in st.session_state:
        state = {k: st.session_state[k] for k in list(st.session_state.keys()) if _persisted(k)}
        _sessions().put(st.session_state.token, state)


def workspace() -> Workspace:
    """The workspace of the current browser session, made on first use."""
    if "workspace" not in st.session_state:
        st.session_state.workspace = Workspace()
    return st.session_state.workspace


def inputs() -> Inputs:
    """The inputs of the current session."""
    if "inputs" not in st.session_state:
        st.session_state.inputs = Inputs()
    return st.session_state.inputs


def file_digest(path: Path) -> str:
    """SHA-256 of a file, memoised by path, size and modification time."""
    stat = path.stat()
    return _digest(str(path), stat.st_size, stat.st_mtime_ns)


@st.cache_data(max_entries=256, show_spinner=False)
def _digest(path: str, size: int, mtime_ns: int) -> str:
    return sha256(Path(path))


def run_key(data: Inputs, params: dict) -> str:
    """A short hash of the input files' contents, the label choices and the parameters."""
    files = [*data.rasters, *(p for p in (data.labels, data.legend) if p is not None)]
    payload = {
        "files": [file_digest(p) for p in files],
        "label_column": data.label_column,
        "label_crs": data.label_crs,
        "label_layer": data.label_layer,
        "nodata": data.nodata,
        "raster_nodata": data.raster_nodata,
        "params": params,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def runs() -> dict:
    """Finished runs of the current session: key -> {"out", "report", "params"}."""
    return st.session_state.setdefault("runs", {})


def current_run() -> dict | None:
    """The run the Map and Export pages show, if any."""
    key = st.session_state.get("current_run")
    return runs().get(key) if key else None


#: Widgets whose values outlive their page: Streamlit forgets a widget's value when the page
#: showing it is left, so a no-data value, a CRS or the number of trees would silently go back to
#: its default after a visit to the map.
KEPT_WIDGETS = (
    *("label_crs", "label_layer", "nodata"),
    *("model", "trees", "suggest", "smooth", "screen", "clusters", "som_side", "iterations"),
    *("features", "cv_folds", "random_state", "max_per_class", "resolution", "map_crs"),
    *("apply_from", "same_order"),
    *("map_layers", "opacity", "basemap"),
)
KEPT_PREFIXES = ("label_column:",)


def keep_widget_values() -> None:
    """Make the values of :data:`KEPT_WIDGETS` the session's own, so leaving a page keeps them.

    Called by the frame on every run, before the page (Streamlit's documented way).
    """
    for key in list(st.session_state.keys()):
        if key in KEPT_WIDGETS or str(key).startswith(KEPT_PREFIXES):
            st.session_state[key] = st.session_state[key]


def map_view(run_key: str, drawn: tuple) -> tuple[tuple[float, float] | None, int | None]:
    """The view (centre, zoom) to give the map about to be drawn; (None, None) leaves it be.

    ``drawn`` is what the map shows (layers, opacity, basemap). A map that replaces the one on
    screen, or is drawn on coming back to the page, opens where the user left this run's map
    (none yet: the whole survey). While the same map stays on screen the browser holds its
    view and gets the view it was drawn with again: sending the last reported one would undo
    a zoom still under way, and sending none would change the component's arguments, which
    draws it anew, fitted to the whole survey.
    """
    if st.session_state.get("map_on_screen") == drawn:  # the same arguments: nothing moves
        return st.session_state.get("map_sent", (None, None))
    st.session_state.map_on_screen = drawn
    view = st.session_state.get("map_view")
    sent = (None, None) if not view or view["run"] != run_key else (view["center"], view["zoom"])
    st.session_state.map_sent = sent
    return sent


def remember_map_view(run_key: str, state: dict | None) -> None:
    """Keep the map's view (centre, zoom) as the browser last reported it."""
    center = (state or {}).get("center")
    if center and (state or {}).get("zoom") is not None:
        st.session_state.map_view = {
            "run": run_key,
            "center": (center["lat"], center["lng"]),
            "zoom": int(state["zoom"]),
        }


def layer_ticks(run_key: str, chosen: list[str], rasters: list[str]) -> dict:
    """How the Map page's layer control starts, kept from one drawing of the map to the next.

    The browser keeps the control's ticks under ``memory`` and, for the run, under ``latest``
    (see ``mapview.layer_control``). Each change of the ``chosen`` layers starts a new memory,
    which takes the run's latest ticks with the layers just chosen ticked (``fresh``): a layer
    the user adds is shown at once, and one ticked or unticked earlier stays so, even when a
    selection was changed again before its map reached the browser. A first raster layer (of
    the run's ``rasters``) other than the one before is fresh too, so the map never opens on
    no raster. ``shown``: the raster layers drawn ticked before the browser's memory applies
    (a new run: the first). Memories are named by run, by a token of this session's state and
    by generation, so a run drawn again, or a session begun anew in the same tab, never takes
    a memory left for other layers.
    """
    first = next((t for t in chosen if t in rasters), None)
    runs = st.session_state.setdefault("map_ticks", {})
    drawn = runs.get(run_key)
    if drawn is None:
        drawn = {"token": secrets.token_hex(4), "generation": 0, "fresh": []}
        drawn["shown"] = [first] if first else []
    elif drawn["chosen"] != list(chosen):
        before = drawn["chosen"]
        fresh = [t for t in chosen if t not in before]
        was_first = next((t for t in before if t in rasters), None)
        if first and first not in fresh and first != was_first:
            fresh.append(first)
        kept = [t for t in drawn["shown"] if t in chosen]
        drawn = {
            "token": drawn["token"],
            "generation": drawn["generation"] + 1,
            "fresh": fresh,
            "shown": kept + [t for t in fresh if t in rasters and t not in kept],
        }
    drawn["chosen"] = list(chosen)
    runs[run_key] = drawn
    latest = f"geomap-ticks:{run_key}"
    return {
        "memory": f"{latest}:{drawn['token']}:{drawn['generation']}",
        "latest": latest,
        "moved": f"geomap-moved:{run_key}:{drawn['token']}",
        "fresh": drawn["fresh"],
        "shown": drawn["shown"],
    }


def map_left() -> None:
    """The Map page is not shown: its map is drawn anew when the user comes back."""
    st.session_state.pop("map_on_screen", None)


def stop() -> NoReturn:
    """End the page here, as ``st.stop()``, once the session's state is kept for a reload.

    After ``st.stop()`` every read of the session state stops again, so the frame's ``finally``
    cannot keep it: a page that stopped early (Train before any run) lost its settings on a
    reload. The map is not drawn on a stopped page.
    """
    map_left()
    remember()
    st.stop()


#: The command line's options in core messages, and the app's controls that do the same.
_CONTROLS = (
    (r"with --label-crs, e\.g\. --label-crs (\S+?)([.,])", r"in the box '{crs}', e.g. \1\2"),
    (r"--label-crs, e\.g\. --label-crs (\S+?)([.,])", r"the box '{crs}', e.g. \1\2"),
    (r"give it with --label-crs (\S+?)([.,])", r"enter \1 in the box '{crs}'\2"),
    (r"with --label-crs", "in the box '{crs}'"),
    (r"--label-crs", "the box '{crs}'"),
    (r"check --label-column", "check the choice of '{column}'"),
    (r"Pass (.{0,40}?) with --label-column", r"Choose \1 in '{column}'"),
    (r"pass (.{0,40}?) with --label-column", r"choose \1 in '{column}'"),
    (r"--label-column( NAME)?", "the box '{column}'"),
    (r"\bLabels '", "Field observations '"),  # the box's name; --labels on the command line
    (
        r"Name the sheet \(--label-layer on the command line\)",
        "Choose the sheet in the box 'Sheet holding the observations'",
    ),
    (r"\(--label-layer on the command line\)", "(in the box 'Layer holding the observations')"),
    (r"--label-layer", "the box 'Layer holding the observations'"),
    (r"Give the CRS it is in with --crs \([^)]*\), or export", "Export"),  # no such box
    (r"if so, --crs (\S+)\.", r"if so, export it with \1 as its CRS."),
    (r"--legend", "the 'Legend' upload"),
    (r"pass --nodata '([^']+)'", r"enter \1 in the box '{nodata}'"),  # a name with spaces
    (r"pass --nodata (\S+)", r"enter \1 in the box '{nodata}'"),
    (r"give it its own: --nodata '([^']+)'\.", r"give it its own: enter \1 in the box '{nodata}'."),
    (r"give it its own: --nodata (\S+)\.", r"give it its own: enter \1 in the box '{nodata}'."),
    (r"e\.g\. --nodata 0 --nodata dem\.tif=-32768", "e.g. 0; dem.tif=-32768"),  # its separator
    (r"and each value as its own entry", "and separate the values with ';'"),
    (
        r"Name it as its file is named\.",
        "Name it as its file is named; separate the values with ';'.",
    ),
    (r"with --nodata", "in the box '{nodata}'"),
    (r"--nodata", "the box '{nodata}'"),
    (  # a VRT points to other files: the uploader takes none
        r"Give a GeoTIFF, JPEG2000, VRT or another format GDAL opens\.",
        "Upload a GeoTIFF, JPEG2000 or another single-file format GDAL opens (a VRT only points "
        "to other files: save it as a GeoTIFF first, in QGIS with Export > Save As).",
    ),
    (r"; or gdalbuildvrt [^)]*?, and give mosaic\.vrt\)", ", then upload the merged GeoTIFF)"),
    (
        r"give --same-order to take each for the training raster at its place in the list",
        "tick '{order}' on the Train page to take each for the training raster at its place in "
        "the Data page's list",
    ),
    (
        r"--same-order takes each raster (.*?) in the list",
        r"'{order}' takes each raster \1 in the Data page's list",
    ),
    (r"--same-order:", "'{order}':"),
    (r"--same-order would take", "'{order}' would take"),
    (r"leave --same-order out to let", "untick '{order}' to let"),
)
CRS_BOX = "CRS of the observations' coordinates"
ORDER_BOX = "Take the rasters in the order the model was trained on"
NODATA_BOX = "No-data value of rasters that declare none"
COLUMN_BOX = "Column holding the rock type"


def user_message(text: str, root: Path | None) -> str:
    """A core message in the app's words.

    The workspace's private folders are taken out of uploaded files' paths, and command-line
    options are replaced by the controls that do the same.
    """
    for pattern, words in _CONTROLS:
        boxes = {"crs": CRS_BOX, "nodata": NODATA_BOX, "column": COLUMN_BOX, "order": ORDER_BOX}
        text = re.sub(pattern, words.format(**boxes), text)
    return text if root is None else without_workspace(text, root)


def without_workspace(text: str, root: Path) -> str:
    """``text`` with the workspace ``root``'s private folders taken out of paths.

    An upload, ``<root>/<kind>/<hash>/<name>``, becomes ``<name>``; a run's folder,
    ``<root>/runs/<key>``, ``geomap-<key>`` as its zip is named. Windows' separators and the
    resolved root (macOS's /private/var for /var) are found too.
    """
    roots = "|".join(re.escape(str(r)) for r in {root, root.resolve()})
    text = re.sub(rf"(?:{roots})[\\/]runs[\\/]([^\\/'\"\s]+)", r"geomap-\1", text)
    return re.sub(rf"(?:{roots})[\\/][^\\/'\"\s]+[\\/](?:[0-9a-f]{{16}}[\\/])?", "", text)


def projected_first(rasters: list[Path]) -> list[Path]:
    """The rasters with those in a projected CRS first, else in their order.

    The grid takes the first raster's CRS. Uploads come in whatever order the browser gives
    them, so radiometrics in degrees could put the whole map on a degree grid.
    """
    return sorted(rasters, key=_geographic)


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


@st.cache_data(max_entries=256, show_spinner=False)
def _crs_of(path: str, mtime_ns: int) -> CRS | None:
    """A raster's CRS; None if it states none or GDAL cannot read it (then kept in place)."""
    try:
        with rasterio.open(path) as src:
            return src.crs
    except (rasterio.errors.RasterioError, OSError):
        return None


def _geographic(path: Path) -> bool:
    crs = _crs_of(str(path), _mtime(path))
    return crs is not None and crs.is_geographic


def map_crs_choices(rasters: list[Path]) -> dict[str, str]:
    """The projected CRSs of the rasters, the map's by default first: CRS -> words for a box.

    The words name the CRS and the files in it ("EPSG:32633 (landsat.tif, dem.tif)").
    """
    files: dict[str, list[str]] = {}
    for path in rasters:
        crs = _crs_of(str(path), _mtime(path))
        if crs is not None and crs.is_projected:
            code = crs.to_epsg()  # as --crs takes it
            files.setdefault(f"EPSG:{code}" if code else crs.to_wkt(), []).append(path.name)
    return {crs: f"{crs_words(crs)} ({', '.join(names)})" for crs, names in files.items()}


def in_app_words(text: str) -> str:
    """:func:`user_message` for this session's workspace."""
    root = st.session_state["workspace"].root if "workspace" in st.session_state else None
    return user_message(text, root)


_CLASS_NAMES = (
    *("lithology", "lith", "rock", "rock_type", "unit", "class", "geology", "formation", "code"),
)
_CLASS_PREFIXES = ("lith", "rock", "unit", "class", "formation", "geol")
_NOT_CLASSES = ("geologist", "observer", "author", "collector", "date", "time")


def guess_class_column(columns: list[str]) -> str:
    """The column most likely to hold the rock type.

    A usual name, then a usual prefix (not a person's or a date's column), else the first
    that is neither an identifier's (``station``, ``obs_id``) nor a person's or a date's.
    """
    folded = [c.casefold() for c in columns]
    for name in _CLASS_NAMES:
        if name in folded:
            return columns[folded.index(name)]
    for column, low in zip(columns, folded):
        if low.startswith(_CLASS_PREFIXES) and not any(w in low for w in _NOT_CLASSES):
            return column
    plain = [
        c for c, low in zip(columns, folded) if not is_identifier(c) and low not in _NOT_CLASSES
    ]
    return (plain or columns)[0]


def same_bands(sources: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    """A note per set of rasters holding bands of the same names, (file, band names) each.

    A renamed file of the next sheet (L8_sheet2.tif) uploaded after the first sheet's
    landsat.tif left both in use: two scenes of one sensor, from two sheets.
    """
    groups: dict[tuple[str, ...], list[str]] = {}
    for name, bands in sources:
        groups.setdefault(bands, []).append(name)
    return [
        f"{listed(names)} hold the same bands ({', '.join(bands)}): they are taken as "
        f"{len(names)} scenes of one sensor, each with its own ratios and spectral screen. If "
        "one replaces another (the next sheet's), remove the one not wanted with its × in "
        "'Rasters uploaded earlier in this session, in use'."
        for bands, names in groups.items()
        if len(names) > 1
    ]


def listed(words: list[str]) -> str:
    """Words listed: "a", "a and b", "a, b and c"."""
    return " and ".join([", ".join(words[:-1]), words[-1]] if len(words) > 2 else words)


def observations_shown(config: dict) -> dict | None:
    """The observations a run's map shows: the run's own, else the Data page's.

    A run of clusters is made without observations; those on the Data page, when they read,
    are shown on its map with the cluster each lies in. None when there are none to show (a
    model applied to rasters: the Data page's observations are not its own).
    """
    if config.get("labels"):
        return config
    if config.get("model") != "som-clusters":
        return None
    data = inputs()
    if data.labels is None or data.label_column is None or data.observations_problem:
        return None
    return {
        "labels": str(data.labels),
        "label_column": data.label_column,
        "label_crs": data.label_crs,
        "label_layer": data.label_layer,
        "legend": None if data.legend is None else str(data.legend),
    }


def stale_note(run: dict, data: Inputs) -> str | None:
    """Why ``run`` no longer matches the Data page's inputs, or None when it does."""
    config = run["report"]["configuration"]
    changed = []
    if list(map(str, data.rasters)) != list(config["rasters"]):
        changed.append("rasters")
    if data.nodata != config.get("nodata") or data.raster_nodata != config.get("raster_nodata", {}):
        changed.append("no-data value")
    if config.get("labels") is not None:
        if str(data.labels) != config["labels"]:
            changed.append("observations")
        elif data.label_layer != config.get("label_layer"):
            changed.append("observations' layer")
        elif data.label_column != config.get("label_column"):
            changed.append("class column")
        if (data.label_crs or None) != (config.get("label_crs") or None):
            changed.append("observations' CRS")
        if (str(data.legend) if data.legend else None) != config.get("legend"):
            changed.append("legend")
    if not changed:
        return None
    applied = run.get("params", {}).get("model") == "apply"
    again = "press Map with this model again" if applied else "train again"
    return (
        f"This run was made before the {listed(changed)} changed on the Data page; {again} "
        "to map the new inputs."
    )


#: Each model in a few words: report.html's, and a model applied to other rasters.
MODEL_WORDS = {**report_html.MODEL_WORDS, "apply": "a model trained earlier"}


def model_words(path: Path) -> str:
    """What a model file holds, in a line: "Random forest: 6 units (...), trained on ...".

    Raises
    ------
    GeomapError
        For a file that is not a geomap model bundle (said as the upload comes, not at mapping).
    """
    return _model_words(str(path), _mtime(path))


@st.cache_data(max_entries=16, show_spinner=False)
def _model_words(path: str, mtime_ns: int) -> str:
    bundle = load_model(path)
    kind = bundle.get("kind", "rf")
    names, inputs = bundle["class_names"], [i["name"] for i in bundle["inputs"]]
    units = "clusters" if kind == "som-clusters" else "units"
    words = MODEL_WORDS.get(kind, kind)
    return (
        f"{words[:1].upper()}{words[1:]}: {len(names)} {units} "
        f"({', '.join(names)}), trained on {', '.join(inputs)}."
    )


def describe_params(params: dict) -> str:
    """A run's parameters in a few words: "random forest, 200 trees, default features, 5 folds".

    A model applied to other rasters: "run 1f2e...'s model applied to the rasters".
    """
    if params["model"] == "apply":
        order = ", taken in the training order" if params.get("same_order") else ""
        return f"{params['applied']} applied to the rasters{order}"
    parts = [MODEL_WORDS.get(params["model"], params["model"])]
    if "trees" in params:
        parts.append(f"{params['trees']} trees")
    if "clusters" in params:  # a SOM's: runs of several cluster counts read alike (user pass)
        n = params["clusters"]
        parts.append(f"{n} clusters" if n else "clusters chosen from the data")
    if params.get("som_size"):
        parts.append(" x ".join(map(str, params["som_size"])) + " nodes")
    parts.append(f"{params['features']} features")
    if "cv_folds" in params:
        parts.append(f"{params['cv_folds']} folds")
    if params.get("max_per_class"):  # set by hand (None: the model's default)
        parts.append(f"at most {params['max_per_class']:,} polygon pixels per class")
    if params.get("crs"):  # chosen (None: the first raster's)
        parts.append(f"map in {crs_words(params['crs'])}")
    if params.get("resolution"):
        parts.append(f"pixel size {params['resolution']:g}")
    return ", ".join(parts)


def begin_training(key: str) -> None:
    """Note that a run started: a page that finds it unfinished says it was stopped.

    Kept for a reload at once: a reload stops the training, and the stopped page keeps nothing.
    """
    st.session_state.training = key
    st.session_state.pop("stopped_training", None)
    remember()


def end_training() -> None:
    """The run finished (or failed with a message)."""
    st.session_state.pop("training", None)


def interrupted() -> bool:
    """Whether the last run of this session was stopped before it finished.

    Streamlit stops a page's run when the user leaves the page or changes a control on it.
    Said on every page until a training starts again: said once, the Map page's own rerun (its
    map reporting the view) took it away after a second.
    """
    key = st.session_state.pop("training", None)
    if key is not None and key not in runs():
        st.session_state.stopped_training = key
    return "stopped_training" in st.session_state


def show_error(action: str, exc: GeomapError) -> str:
    """Show "<action> failed: <message>" in the app's words; returns the message."""
    message = in_app_words(str(exc))
    st.error(f"{action} failed: {message}", icon=":material/error:")
    return message


@contextmanager
def reported(action: str) -> Iterator[None]:
    """Show a GeomapError as its message and any other exception as a bug; the session goes on."""
    try:
        yield
    except GeomapError as exc:
        show_error(action, exc)
    except MemoryError:
        st.error(
            f"{action} ran out of the server's memory. Choose the 'raw' feature preset, or give "
            "fewer rasters or bands; larger scenes: the `geomap` command line with a smaller "
            "--block-size. Your session and files are still here.",
            icon=":material/memory:",
        )
    except Exception:
        log.exception("%s failed with an unexpected error", action)
        st.error(
            f"{action} failed because of a bug in geomap, not in your data. The details are in "
            "the server log; please report them. Your session and files are still here.",
            icon=":material/bug_report:",
        )
