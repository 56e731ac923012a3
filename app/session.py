"""Per-browser-session state: a private workspace folder, the chosen inputs and the trained runs.

Every browser session gets its own temporary folder for uploads and outputs; it is removed when
Streamlit drops the session (or the server stops), so no session sees another's files. Runs are
memoised in the session by a hash of the input files and the parameters, so moving between pages
or layers never trains again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
import weakref
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from geomap.errors import GeomapError

log = logging.getLogger("geomap.app")

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "data_samples" / "demo"
DEMO_RASTERS = ("landsat.tif", "radiometrics.tif", "magnetics.tif", "dem.tif")
DEMO_LABELS = "field_points.gpkg"
RASTER_TYPES = ["tif", "tiff", "jp2", "img", "nc", "hdf", "ers", "bil", "asc"]
LABEL_TYPES = ["gpkg", "geojson", "json", "zip", "csv"]
LEGEND_TYPES = ["csv", "txt"]


class Workspace:
    """A temporary folder owned by one browser session, removed with it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="geomap-session-"))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.root, ignore_errors=True)

    def save(self, kind: str, name: str, data: bytes) -> Path:
        """Write uploaded bytes under ``kind/`` with a safe file name; returns the path."""
        folder = self.root / kind
        folder.mkdir(exist_ok=True)
        path = folder / safe_name(name)
        tmp = path.with_name(path.name + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path

    def clear(self, kind: str) -> None:
        """Remove the files saved under ``kind/``."""
        shutil.rmtree(self.root / kind, ignore_errors=True)

    def run_dir(self, key: str) -> Path:
        """The output folder of the run with this key (not created)."""
        return self.root / "runs" / key

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
    """A file name without folders or characters that file systems or GDAL trip on."""
    base = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")
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
    demo: bool = False

    @property
    def ready(self) -> bool:
        """Whether there is enough to train."""
        return bool(self.rasters) and self.labels is not None and bool(self.label_column)


def demo_inputs() -> Inputs:
    """The demo scene shipped in data_samples/ (read in place, never written)."""
    return Inputs(
        rasters=[DEMO / n for n in DEMO_RASTERS],
        labels=DEMO / DEMO_LABELS,
        label_column="lithology",
        demo=True,
    )


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
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_key(data: Inputs, params: dict) -> str:
    """A short hash of the input files' contents, the label choices and the parameters."""
    files = [*data.rasters, *(p for p in (data.labels, data.legend) if p is not None)]
    payload = {
        "files": [file_digest(p) for p in files],
        "label_column": data.label_column,
        "label_crs": data.label_crs,
        "label_layer": data.label_layer,
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


def user_message(text: str, root: Path | None) -> str:
    """A core message with the workspace's private folders taken out of uploaded files' paths."""
    if root is None:
        return text
    return re.sub(re.escape(str(root)) + r"/[^/'\s]+/", "", text)


@contextmanager
def reported(action: str) -> Iterator[None]:
    """Show a GeomapError as its message and any other exception as a bug; the session goes on."""
    try:
        yield
    except GeomapError as exc:
        root = st.session_state["workspace"].root if "workspace" in st.session_state else None
        st.error(f"{action} failed: {user_message(str(exc), root)}", icon=":material/error:")
    except Exception:
        log.exception("%s failed with an unexpected error", action)
        st.error(
            f"{action} failed because of a bug in geomap, not in your data. The details are in "
            "the server log; please report them. Your session and files are still here.",
            icon=":material/bug_report:",
        )
