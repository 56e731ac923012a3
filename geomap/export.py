"""Files a geologist opens: styled GeoTIFFs, legend, QGIS style, report and the model bundle.

Class maps carry their colours (a GeoTIFF colour table), their class names (a JSON list in the
``CLASS_NAMES`` tag and GDAL category names in the ``.aux.xml`` beside them) and a QGIS paletted
style, so they open styled in QGIS. The model bundle is saved with skops, never pickle, and loading
accepts only the types geomap writes.
"""

from __future__ import annotations

import colorsys
import csv
import ctypes
import io
import json
import os
import re
import shutil
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import rasterio
import rasterio.shutil
import skops.io as sio

from geomap.errors import (
    GeomapError,
    ModelError,
    OutputExistsError,
    OutputWriteError,
    library_reason,
)
from geomap.grid import Grid
from geomap.sources import GDAL_CACHE_BYTES

CLASS_NODATA = 255
_CLASS_MAPS = ("lithology", "clusters", "subunits")

#: Names of the files geomap writes in an output folder (and the side files QGIS or GDAL add to
#: them): ``--overwrite`` replaces a folder that holds nothing else.
OUTPUT_NAMES = re.compile(
    r"(lithology|clusters|subunits|uncertainty|probabilities|applicability|expected_accuracy"
    r"|quantization_error|label_distance)\.tif(\.aux\.xml|\.ovr)?"
    r"|(lithology|clusters|subunits)\.qml|((clusters|subunits)_)?legend\.csv"
    r"|(suggested_samples|observations_to_check)\.(csv|gpkg(-wal|-shm|-journal)?)"
    r"|som_[a-z_]+\.png(\.aux\.xml)?"
    r"|report\.(json|html)|model\.skops"
    r"|\.DS_Store|Thumbs\.db|desktop\.ini"  # what file browsers leave in any folder
)

#: Colours by words commonly found in unit names, after geological map conventions. Any two
#: differ by at least 20 in CIE L*a*b* (alluvium and colluvium, limestone and dolomite, basalt
#: and dolerite are mapped side by side and were 7 to 12 apart).
_NAMED_COLOURS = {
    "granite": (239, 120, 130),
    "granodiorite": (185, 60, 95),
    "rhyolite": (250, 180, 205),
    "basalt": (70, 140, 80),
    "dolerite": (125, 175, 50),
    "gabbro": (20, 85, 85),
    "andesite": (170, 205, 140),
    "ultramafic": (90, 60, 130),
    "sandstone": (245, 205, 60),
    "shale": (180, 180, 185),  # lighter than granite: the two stay apart in protanopia
    "mudstone": (140, 120, 100),
    "siltstone": (190, 160, 90),
    "limestone": (120, 180, 230),
    "dolomite": (140, 215, 215),
    "alluvium": (255, 245, 190),
    "colluvium": (215, 192, 160),
    "gneiss": (200, 120, 200),
    "schist": (150, 145, 230),
    "quartzite": (245, 235, 250),
    "conglomerate": (215, 145, 60),
    "laterite": (180, 85, 45),
    "ironstone": (100, 35, 35),
    "water": (60, 120, 220),
}
#: The same rocks named in French, Spanish, Portuguese or German, by how a word of the name
#: starts ("Grès rouges", "Arenisca", "Kalkstein"), for :data:`_NAMED_COLOURS`.
_OTHER_NAMES = {
    "sandstone": ("grès", "gres", "arenisca", "arenito", "sandstein"),
    "limestone": ("calcaire", "caliza", "calcário", "calcario", "kalkstein"),
    "alluvium": ("alluvion", "aluvi"),
    "shale": ("lutita", "tonschiefer", "argilite", "argillite"),
    "dolomite": ("dolomie", "dolomía"),
    "conglomerate": ("conglomérat", "conglomerado", "konglomerat"),
    "granite": ("granit",),
    "gneiss": ("gneis",),
    "quartzite": ("quarzit", "cuarcita", "quartzito"),
}
#: Names of a greenstone belt's (or any survey's) units that call for a rock's colour, by a phrase
#: they hold: "Mafic volcanics" are mapped green as basalt, "Diabase dyke" as dolerite.
_SAME_COLOUR = {
    "basalt": ("mafic volcanic", "metabasalt", "greenstone"),
    "rhyolite": ("felsic volcanic", "dacite"),
    "dolerite": ("diabase", "dolerite"),
    "granite": ("granitoid", "felsic intrusive", "monzogranite", "syenogranite"),
    "granodiorite": ("tonalite", "trondhjemite"),
    "ultramafic": ("komatiite", "peridotite", "serpentinite", "dunite"),
    "mudstone": ("metasediment", "greywacke", "graywacke"),
    "laterite": ("ferricrete", "duricrete", "lateritic"),
    "ironstone": ("banded iron", "bif", "jaspilite"),
}
_PALETTE = (
    (228, 26, 28),
    (55, 126, 184),
    (77, 175, 74),
    (152, 78, 163),
    (255, 127, 0),
    (255, 255, 51),
    (166, 86, 40),
    (247, 129, 191),
    (153, 153, 153),
    (102, 194, 165),
    (252, 141, 98),
    (141, 160, 203),
    (231, 138, 195),
    (166, 216, 84),
    (255, 217, 47),
    (229, 196, 148),
)


def class_colours(
    names: Sequence[str],
    fixed: Mapping[str, tuple[int, int, int]] | None = None,
    samples: Sequence[int] | None = None,
) -> list[tuple[int, int, int]]:
    """An RGB colour per class: the ``fixed`` one, a rock name's conventional one, or a palette's.

    ``fixed`` (a user's legend) maps class names to colours. A class it leaves out takes no
    colour within :data:`MIN_COLOUR_GAP` of one it gives, whether or not that class was
    observed, nor of another class's: a unit missing from a legend of reds and greens is not
    mapped in a red one cannot tell from the legend's. Where two names call for one
    conventional colour ("Aluvión" and a typo "Aluvion"), the class of most ``samples`` takes it
    (else the first).
    """
    legend = {n: tuple(c) for n, c in (fixed or {}).items()}
    fixed = {n: c for n, c in legend.items() if n in names}
    taken = set(legend.values())
    weights = np.asarray(samples if samples is not None else [0] * len(names))
    order = np.argsort(-weights, kind="stable")
    conventional: dict[int, tuple[int, int, int]] = {}
    for i in order:
        match = _rock_colour(names[i])
        if names[i] not in fixed and match is not None and _apart(match, taken):
            conventional[int(i)] = match
            taken.add(match)
    palette = (c for c in _PALETTE if _apart(c, taken))
    out: list[tuple[int, int, int]] = []
    for i, name in enumerate(names):
        if name in fixed:
            out.append(fixed[name])
        elif i in conventional:
            out.append(conventional[i])
        else:
            out.append(next(palette, None) or _farthest_colour(taken))
        taken.add(out[-1])
    return out


#: Least CIE76 (L*a*b*) distance of a colour geomap chooses from every colour already taken.
MIN_COLOUR_GAP = 20.0


def lab_colour(rgb) -> np.ndarray:
    """CIE L*a*b* (D65) of an sRGB triple of 0-255 values."""
    c = np.asarray(rgb, dtype=float) / 255
    c = np.where(c > 0.04045, ((c + 0.055) / 1.055) ** 2.4, c / 12.92)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    xyz = xyz @ c / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16 / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _apart(colour, taken) -> bool:
    """Whether ``colour`` lies at least :data:`MIN_COLOUR_GAP` from every colour ``taken``."""
    lab = lab_colour(colour)
    return all(np.linalg.norm(lab - lab_colour(t)) >= MIN_COLOUR_GAP for t in taken)


def _rock_colour(name: str) -> tuple[int, int, int] | None:
    """The conventional map colour a unit's name calls for, in English or another language."""
    lowered = name.lower()
    match = next((c for word, c in _NAMED_COLOURS.items() if word in lowered), None)
    if match is None:
        said = (r for r, phrases in _SAME_COLOUR.items() if any(p in lowered for p in phrases))
        match = _NAMED_COLOURS.get(next(said, None))
    if match is None:
        words = re.split(r"\W+", lowered)
        rock = next(
            (r for r, starts in _OTHER_NAMES.items() for w in words if w.startswith(starts)),
            None,
        )
        match = _NAMED_COLOURS.get(rock)
    return match


def _colour_pool() -> np.ndarray:
    """Candidate colours after the palette: 36 hues at three saturations and brightnesses."""
    return np.array(
        [
            [round(255 * v) for v in colorsys.hsv_to_rgb(h / 36, s, v)]
            for h in range(36)
            for s in (0.95, 0.7, 0.45)
            for v in (0.95, 0.8, 0.6)
        ],
        dtype=float,
    )


_POOL = _colour_pool()


def _farthest_colour(taken: set) -> tuple[int, int, int]:
    """The candidate farthest (RGB distance) from every colour taken.

    A legacy map of 40 units gets colours as unlike the palette's and each other as the pool
    allows.
    """
    used = np.array(sorted(taken), dtype=float).reshape(-1, 3)
    gaps = np.sqrt(((_POOL[:, None, :] - used[None]) ** 2).sum(axis=2)).min(axis=1)
    return tuple(int(v) for v in _POOL[int(np.argmax(gaps))])


def hex_colour(rgb: Sequence[int]) -> str:
    """'#rrggbb' of an RGB triple."""
    return "#{:02x}{:02x}{:02x}".format(*rgb[:3])


def raster_profile(grid: Grid, count: int, dtype: str, nodata: float | None) -> dict:
    """Creation options of an output GeoTIFF on the grid.

    Tiled, ZSTD (five times faster to write than DEFLATE and as small for probabilities), with the
    predictor that suits the data type.
    """
    return {
        "driver": "GTiff",
        "width": grid.width,
        "height": grid.height,
        "count": count,
        "dtype": dtype,
        "nodata": nodata,
        "crs": grid.crs,
        "transform": grid.transform,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "zstd",
        "zstd_level": 1,
        "predictor": 3 if dtype.startswith("float") else 2,
        "BIGTIFF": "IF_SAFER",
    }


def style_class_raster(dataset, names: Sequence[str], colours: Sequence[tuple]) -> None:
    """Set the colour table, the ``CLASS_NAMES`` tag and the band description of a class map."""
    table = {i: (*c, 255) for i, c in enumerate(colours)}
    table[CLASS_NODATA] = (0, 0, 0, 0)
    dataset.write_colormap(1, table)
    dataset.update_tags(CLASS_NAMES=json.dumps(list(names)))
    dataset.set_band_description(1, "class")


def to_cog(tmp_path: Path, out_path: Path) -> None:
    """Copy a tiled class map to a DEFLATE Cloud-Optimised GeoTIFF with nearest overviews."""
    with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        rasterio.shutil.copy(
            tmp_path,
            out_path,
            driver="COG",
            compress="DEFLATE",
            predictor="NO",
            overview_resampling="NEAREST",
            blocksize=256,
            BIGTIFF="IF_SAFER",
        )


def add_overviews(path: Path) -> None:
    """Build internal averaged overviews (factors 2, 4, ...) down to one 256-pixel tile."""
    with (
        rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS", GDAL_CACHEMAX=GDAL_CACHE_BYTES),
        rasterio.open(path, "r+") as dst,
    ):
        factors, f = [], 2
        while max(dst.width, dst.height) / (f // 2) > 256:
            factors.append(f)
            f *= 2
        if factors:
            dst.build_overviews(factors, rasterio.enums.Resampling.average)


def write_category_names(raster_path: Path, names: Sequence[str]) -> Path:
    """Write GDAL category names for band 1 in the PAM ``.aux.xml`` file beside the raster."""
    cats = "".join(f"      <Category>{escape(n)}</Category>\n" for n in names)
    text = (
        '<PAMDataset>\n  <PAMRasterBand band="1">\n    <CategoryNames>\n'
        f"{cats}    </CategoryNames>\n  </PAMRasterBand>\n</PAMDataset>\n"
    )
    aux = raster_path.with_name(raster_path.name + ".aux.xml")
    aux.write_text(text, encoding="utf-8")
    return aux


def write_qml(path: Path, names: Sequence[str], colours: Sequence[tuple]) -> None:
    """A QGIS paletted-raster style with the class names and colours."""
    entries = "".join(
        f'          <paletteEntry value="{i}" color="{hex_colour(c)}" alpha="255" '
        f'label="{escape(n, {chr(34): "&quot;"})}"/>\n'
        for i, (n, c) in enumerate(zip(names, colours))
    )
    path.write_text(
        "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
        '<qgis version="3.28.0" styleCategories="AllStyleCategories">\n'
        "  <pipe>\n"
        '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" '
        'nodataColor="">\n'
        "      <rasterTransparency/>\n"
        "      <colorPalette>\n"
        f"{entries}"
        "      </colorPalette>\n"
        "    </rasterrenderer>\n"
        "  </pipe>\n"
        "</qgis>\n",
        encoding="utf-8",
    )


def write_legend(
    path: Path,
    names: Sequence[str],
    colours: Sequence[tuple],
    samples: Sequence[int],
    mapped_pixels: Sequence[int],
    pixel_area: float,
    values: Sequence[str] | None = None,
) -> None:
    """``legend.csv``: code, name, colour, training samples, mapped pixels and area.

    ``values`` (the observations' value of each unit, where a legend named them: integer codes
    of a company table) come in a column ``value`` after the name; the ``code`` is the map's.
    """
    head = ["code", "name", *(["value"] if values is not None else [])]
    rows = [[*head, "colour", "training_samples", "mapped_pixels", "mapped_area_km2"]]
    for i, (n, c, s, m) in enumerate(zip(names, colours, samples, mapped_pixels)):
        own = [values[i]] if values is not None else []
        area = round(m * pixel_area / 1e6, 6)
        rows.append([i, n, *own, hex_colour(c), int(s), int(m), area])
    write_table(path, rows)


def write_profile_legend(
    path: Path,
    names: Sequence[str],
    colours: Sequence[tuple],
    training: Sequence[int],
    mapped_pixels: Sequence[int],
    pixel_area: float,
    feature_names: Sequence[str],
    profiles: np.ndarray,
) -> None:
    """A cluster legend: code, name, colour, pixels, area and the mean of every feature."""
    rows = [
        ["code", "name", "colour", "training_pixels", "mapped_pixels", "mapped_area_km2"]
        + [f"mean_{n}" for n in feature_names]
    ]
    for i, (n, c, s, m) in enumerate(zip(names, colours, training, mapped_pixels)):
        means = [None if not np.isfinite(v) else float(f"{v:.6g}") for v in profiles[i]]
        area = round(m * pixel_area / 1e6, 6)
        rows.append([i, n, hex_colour(c), int(s), int(m), area, *means])
    write_table(path, rows)


def write_table(path: Path, rows: Sequence[Sequence]) -> None:
    """Write ``rows`` as a CSV for people: UTF-8, with a byte-order mark where not plain ASCII.

    Excel reads UTF-8 only with the mark (a unit "Grès" showed as "GrÃ¨s"); Python's csv
    module and some GPS tools read the mark into the first header, so an ASCII table, the same
    in either encoding, goes without it.
    """
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    write_csv_text(path, buffer.getvalue())


def write_csv_text(path: Path, text: str) -> None:
    """Write a CSV's ``text`` as :func:`write_table` does."""
    Path(path).write_bytes(text.encode("utf-8" if text.isascii() else "utf-8-sig"))


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_json(path: Path, data: dict) -> None:
    """JSON with numpy values and paths converted, NaN written as null."""
    path.write_text(json.dumps(_jsonable(data), indent=2, allow_nan=False), encoding="utf-8")


def save_model(path: Path, bundle: dict) -> None:
    """Save a model bundle (estimator, feature recipe, class names, expected inputs) with skops.

    Compressed: a forest's node tables are mostly zeros when it has many classes (a 100-unit
    legacy map's bundle, 254 MB stored, is 60 MB), and skops builds the whole file in memory.
    """
    sio.dump(bundle, path, compression=zipfile.ZIP_DEFLATED, compresslevel=1)
    release_freed_memory()


#: Types a geomap model bundle may hold beyond skops' defaults.
TRUSTED_TYPES = (
    "geomap.applicability.AccuracyCalibration",
    "geomap.applicability.Applicability",
    "geomap.models.forest.LithologyForest",
    "geomap.models.som.SOMClassifier",
    "geomap.models.som.SelfOrganizingMap",
    "geomap.models.som_clusters.SOMClusters",
    "geomap.screen.SpectralScreen",
    "sklearn.frozen._frozen.FrozenEstimator",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
)


def load_model(path: str | Path) -> dict:
    """Load a model bundle written by :func:`save_model`, refusing any type geomap does not write.

    Raises
    ------
    ModelError
        If the file is missing, is not a skops bundle or holds untrusted types.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"Model '{path}' does not exist; give the model.skops of a geomap run.")
    try:
        untrusted = sio.get_untrusted_types(file=path)
    except zipfile.BadZipFile:  # a skops file is a zip archive
        raise ModelError(
            f"Model '{path}' is not a geomap model bundle: it is not even a skops file (a zip "
            "archive), or it was cut short. Give the model.skops of a geomap run (the web app's "
            "Export page, or the output folder of `geomap run`); if it was copied or "
            "downloaded, do that again."
        ) from None
    except KeyError:  # a zip archive without skops' schema
        raise ModelError(
            f"Model '{path}' is not a geomap model bundle: it is a zip archive, not a skops "
            "file. Give the model.skops of a geomap run (the web app's Export page, or the "
            "output folder of `geomap run`), not the zip of all its files."
        ) from None
    except Exception as exc:  # skops raises JSON errors for other zip files
        raise ModelError(
            f"Model '{path}' is not a geomap model bundle ({type(exc).__name__}: {exc})."
        ) from None
    refused = sorted(set(untrusted) - set(TRUSTED_TYPES))
    if refused:
        raise ModelError(
            f"Model '{path}' holds types geomap does not trust and will not load: {refused}. "
            "Only load bundles written by geomap."
        )
    bundle = sio.load(path, trusted=list(untrusted))
    if not isinstance(bundle, dict) or bundle.get("format") != "geomap-model":
        raise ModelError(f"Model '{path}' is a skops file but not a geomap model bundle.")
    release_freed_memory()  # what reading the file took: 430 MB for a 100-unit forest bundle
    return bundle


def release_freed_memory() -> None:
    """Hand freed heap back to the system, which glibc does not do by itself.

    Windows are allocated and freed from several threads; without this, fragments of every
    thread's heap pile up over a long scene (peak RSS 795 to 983 MB between two 8000 x 8000 runs)
    and the steps after streaming (overviews, COG) add their memory on top. The same after
    cross-validation's forests and reading or writing a model bundle.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


#: glibc's mallopt parameter for the most heaps its threads allocate from.
_M_ARENA_MAX = -8


def limit_malloc_arenas(arenas: int = 4) -> None:
    """Let the process's threads share at most ``arenas`` glibc heaps.

    By default each new thread may get a heap of its own, 64 MB of address space each: a
    200-band run reached 3.0 GB of virtual memory for 0.76 GB resident, and under a virtual
    memory limit (a cluster's ``ulimit -v`` 2 GB) could not start its threads. With 4 it ran.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_ARENA_MAX, int(arenas))
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def check_out_dir(out: Path, overwrite: bool, inputs: Sequence[Path] = ()) -> None:
    """Refuse an output folder that holds files, unless overwriting a previous run was asked for.

    ``overwrite`` replaces only geomap's own outputs (:data:`OUTPUT_NAMES`): a folder that also
    holds anything else (survey data, notes, subfolders) is refused, so nothing of the user's is
    deleted.

    Raises
    ------
    OutputExistsError
        If ``out`` is a file, a non-empty folder and ``overwrite`` is false, holds files geomap did
        not write, or holds an input.
    """
    root = Path(out).resolve()
    for path in inputs:
        if root in Path(path).resolve().parents:
            raise OutputExistsError(
                f"Input '{path}' lies inside the output folder '{out}', which the run replaces. "
                "Give another --out."
            )
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"Output '{out}' is a file; give a folder path for --out.")
    if not out.is_dir() or not any(out.iterdir()):
        return
    if not overwrite:
        raise OutputExistsError(
            f"Output folder '{out}' already holds files; give a new or empty folder, or pass "
            "--overwrite to replace them."
        )
    foreign = sorted(
        p.name + ("/" if p.is_dir() else "")
        for p in out.iterdir()
        if p.is_dir() or not OUTPUT_NAMES.fullmatch(p.name)
    )
    if foreign:
        shown = ", ".join(foreign[:5]) + (
            f" and {len(foreign) - 5} more" if len(foreign) > 5 else ""
        )
        raise OutputExistsError(
            f"Output folder '{out}' holds {len(foreign)} item(s) geomap did not write ({shown}); "
            "--overwrite replaces only the outputs of an earlier geomap run, so nothing was "
            "written or deleted. Give a new or empty folder for --out, or move those files."
        )


@contextmanager
def staged_output(out: Path, overwrite: bool):
    """Yield a temporary folder beside ``out``; move its files in only if the block succeeds.

    A failed run leaves ``out`` as it was and no temporary folder behind. A folder that exists
    (empty, or a previous run's when overwriting) is kept, itself: its old files are set aside and
    the new ones moved in, the class maps last, so ``--out .`` works and a shell inside the folder
    sees the new files.
    """
    out = Path(out).resolve()  # a link's target: the temporary folder goes on its filesystem
    check_out_dir(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private; the output folder is the user's
    try:
        yield tmp
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, GeomapError):
            raise OutputWriteError(write_failed_message(out, exc)) from None
        raise
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
    moved_in: list[str] = []
    try:
        for path in out.iterdir():
            os.replace(path, old / path.name)
        for path in sorted(
            tmp.iterdir(), key=lambda p: p.suffix == ".tif" and p.stem in _CLASS_MAPS
        ):
            os.replace(path, out / path.name)
            moved_in.append(path.name)
    except BaseException:  # put everything back as it was
        for name in moved_in:
            os.replace(out / name, tmp / name)
        for path in old.iterdir():
            os.replace(path, out / path.name)
        shutil.rmtree(tmp, ignore_errors=True)
        old.rmdir()
        raise
    tmp.rmdir()
    shutil.rmtree(old, ignore_errors=True)


def write_failed_message(out: Path, exc: OSError) -> str:
    """Why writing the files of ``out`` (a folder or a file) failed, with the free space there."""
    try:
        free = f"{shutil.disk_usage(out.parent).free / 2**20:,.0f} MB"
    except OSError:
        free = "an unknown amount of space"
    return (
        f"Writing the outputs in '{out.parent}' failed ({library_reason(exc)}); nothing was "
        f"written{f' and {out.name!r} is as it was' if out.exists() else ''}. That disk has "
        f"{free} free now: a full disk, a quota or a limit on the size of a file stops a write. "
        "Free some space, or give an output folder on another disk."
    )


def _umask() -> int:
    """The process's umask, read without setting it where the system tells it (Linux).

    Setting it to read it back would, for that instant, let another thread (a second session of
    the app) create files anyone can write.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o077)  # elsewhere: read it back, the instant between as private as can be
    os.umask(umask)
    return umask


def write_points(points, gpkg: str | Path, csv_path: str | Path, layer: str) -> None:
    """Write points to a GeoPackage layer (their CRS) and to a CSV for a GPS.

    The CSV's first column stays first, then ``lon`` and ``lat`` (WGS 84), then the other
    columns; columns ``x`` and ``y`` (the map's coordinates) are followed by ``xy_crs``, the CRS
    they are in (its EPSG code when it has one, as a file may state it by its WKT alone).
    """
    points.to_file(gpkg, driver="GPKG", layer=layer)
    lonlat = points.geometry.to_crs("EPSG:4326")
    table = points.drop(columns=points.geometry.name).copy()
    table.insert(1, "lon", np.round(lonlat.x.to_numpy(), 7))
    table.insert(2, "lat", np.round(lonlat.y.to_numpy(), 7))
    if {"x", "y"} <= set(table.columns):
        code = points.crs.to_epsg()  # a CRS read from a file without its code (ER Mapper's)
        named = f"EPSG:{code}" if code else points.crs.to_string()
        table.insert(table.columns.get_loc("y") + 1, "xy_crs", named)
    write_csv_text(csv_path, table.to_csv(index=False))
