"""The whole path from files to a map, as the CLI and the app run it.

:func:`run` opens the rasters, places the observations, trains, cross-validates, streams the
prediction and writes every output into a staged folder that replaces ``out`` only when complete.
Applying a saved model bundle (``geomap predict``, ``geomap suggest``) is in :mod:`geomap.apply`.
"""

from __future__ import annotations

import hashlib
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import geopandas as gpd
import numpy as np
import rasterio

from geomap import __version__
from geomap.applicability import Applicability
from geomap.errors import GeomapError, LabelError, ModelError
from geomap.export import (
    add_overviews,
    check_out_dir,
    class_colours,
    release_freed_memory,
    save_model,
    staged_output,
    to_cog,
    write_category_names,
    write_json,
    write_legend,
    write_qml,
)
from geomap.features import FeatureRecipe, feature_groups
from geomap.grid import Grid, res_in
from geomap.labels import (
    check_class_count,
    class_name_notes,
    class_order,
    few_sample_notes,
    label_columns,
)
from geomap.legend import Legend, read_named
from geomap.models import LithologyForest
from geomap.placement import Samples, extract_features, placement_notes, sample_labels
from geomap.predict import PredictionSummary, predict_stack
from geomap.recheck import write_observations_to_check
from geomap.report_html import write_report_html
from geomap.screen import describe_screens, screens_for
from geomap.sources import GDAL_CACHE_BYTES, source_file
from geomap.stack import BLOCK_SIZE, RasterStack, distinct_names, missing_sources
from geomap.trust import (
    SiteRequest,
    TrustLayers,
    input_units,
)
from geomap.validate import (
    MAX_FOLDS,
    cross_validate,
    fold_notes,
    little_seen_notes,
    score_by_kind,
)

MODEL_FORMAT = "geomap-model"
MODEL_VERSION = 1
_MAP_SAMPLE = 5000
#: Share of the forest's importance an input outage must carry to be simulated.
OUTAGE_SHARE = 0.1
#: Share of the map's pixels with data a pattern of missing inputs must cover to be simulated,
#: and how many such patterns are (each costs a forest per spatial fold).
MAP_OUTAGE_SHARE = 0.02
MAP_OUTAGES = 3

Progress = Callable[[str, int, int], None]


@dataclass(kw_only=True)
class SOMOptions:
    """Options of the self-organizing map runs (``som``, ``som-clusters``, ``subunits``)."""

    som_size: tuple[int, int] | None = None
    iterations: int | None = None
    sigma: float | None = None
    learning_rate: float = 0.5
    clusters: int | None = None
    cluster_method: str = "kmeans"
    som_samples: int = 100_000

    def to_dict(self) -> dict:
        """JSON-ready configuration: every field (the SOM options last), paths as text."""
        fields = asdict(self)
        som = [k for k in fields if k in SOMOptions.__dataclass_fields__]
        out = {k: fields[k] for k in [*(k for k in fields if k not in som), *som]}
        for key, value in out.items():
            if isinstance(value, Path):
                out[key] = str(value)
            elif isinstance(value, (list, tuple)):
                out[key] = [str(v) if isinstance(v, Path) else v for v in value]
        return out


#: Most polygon pixels drawn per unit by default, by model. The forest's cost grows with its
#: samples, and its classes are balanced anyway. A labelled SOM only counts each sample's vote
#: on its node, at little cost, and each vote it lacks is a node left to its neighbours: on a
#: helper's legacy map of 136 polygons (80,000 pixels) the labelled SOM mapped 0.910 right
#: with 2,000 per unit, 0.930 with 10,000 and 0.947 with 25,000 (granite's precision 0.55,
#: 0.69, 0.95), the run taking 33 s and 39 s for the last two.
MAX_PER_CLASS = {"rf": 2000, "som": 25_000}
#: Most pixels the labelled SOM draws in all by default: a map of many units draws fewer of
#: each (down to the forest's 2,000), so that the samples' features (and the applicability's
#: float64 copy of them) stay within memory: 200,000 x 120 features is 190 MB in float64.
SOM_SAMPLES = 200_000


def per_class_cap(model: str, units: int) -> int:
    """The default ``max_per_class`` of a model for observations of ``units`` units."""
    if model != "som":
        return MAX_PER_CLASS["rf"]
    return max(MAX_PER_CLASS["rf"], min(MAX_PER_CLASS["som"], SOM_SAMPLES // max(units, 1)))


@dataclass
class RunConfig(SOMOptions):
    """Everything that defines a run; saved in ``report.json`` so the run can be repeated."""

    rasters: list[Path]
    labels: Path | None
    label_column: str | None
    out: Path
    model: str = "rf"
    trees: int = 200
    random_state: int = 0
    crs: str | None = None
    resolution: float | None = None
    block_size: int = BLOCK_SIZE
    cv_folds: int = 5
    features: str = "default"
    label_crs: str | None = None
    label_layer: str | None = None
    legend: Path | None = None
    #: Most polygon pixels drawn per unit; None: the model's default (:func:`per_class_cap`).
    max_per_class: int | None = None
    smooth: int = 1
    nodata: float | None = None
    #: No-data values of single rasters that declare none, by file name (``--nodata
    #: dem.tif=-32768``); ``nodata`` is for the others.
    raster_nodata: dict[str, float] = field(default_factory=dict)
    overwrite: bool = False
    suggest: int = 30
    access: Path | None = None
    max_walk: str = "2km"
    applicability: bool = True
    spectral_screen: bool = True


MODELS = ("rf", "som", "som-clusters")


def input_paths(config: RunConfig) -> list[Path]:
    """Every file the run reads (none may lie inside ``--out``)."""
    files = [config.labels, config.legend, config.access]
    return [*map(Path, config.rasters), *(Path(f) for f in files if f is not None)]


def input_files(config: RunConfig) -> dict:
    """Names, sizes and checksums of the rasters, the observations and the legend."""
    out = {"rasters": input_records(config.rasters)}
    for key in ("labels", "legend"):
        if getattr(config, key) is not None:
            out[key] = input_records([Path(getattr(config, key))], rasters=False)
    return out


def require_labels(config: RunConfig) -> None:
    """Refuse a model that learns from observations when none are given.

    Raises
    ------
    ModelError
        If ``labels`` or ``label_column`` is missing.
    """
    if config.labels is not None and not config.label_column:
        try:
            columns = label_columns(config.labels, crs=config.label_crs, layer=config.label_layer)
        except GeomapError:  # reading the labels says what is wrong with them
            columns = []
        listed = f" Their columns: {', '.join(columns)}." if columns else ""
        raise ModelError(
            f"Labels '{config.labels}' are given without --label-column: name the column that "
            f"holds each observation's unit.{listed}"
        )
    if config.labels is None:
        raise ModelError(
            f"Model '{config.model}' learns from field observations; give --labels FILE and "
            "--label-column NAME, or use --model som-clusters, which maps units without labels."
        )


def sha256(path: Path) -> str:
    """SHA-256 of a file, read in 4 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def input_records(paths: Sequence[Path], rasters: bool = True) -> list[dict]:
    """Path, size and SHA-256 of each input file, for the report.

    For a GDAL name (``/vsizip/maps.zip/tmi.tif``, ``netcdf:survey.nc:tmi``) the size and hash
    are those of the file it points into. The other files of a dataset (an ER Mapper grid's
    data beside its ``.ers`` header, a ``.prj``, a Shapefile's ``.dbf``) are listed under
    ``side_files``, the same way; ``rasters``: the files are rasters (else vector data or
    tables, of which only a Shapefile has such files).
    """
    records, hashed = [], {}
    for p in paths:
        main = source_file(Path(p)) or Path(p)
        if main not in hashed:  # once per archive, whatever number of bands it gives
            hashed[main] = sha256(main)
        record = {"path": str(p), "bytes": main.stat().st_size, "sha256": hashed[main]}
        side = [f for f in _dataset_files(main, rasters) if f != main]
        if side:
            record["side_files"] = [
                {"path": str(f), "bytes": f.stat().st_size, "sha256": sha256(f)} for f in side
            ]
        records.append(record)
    return records


#: The files of a Shapefile beside its .shp.
_SHAPEFILE_PARTS = (".shx", ".dbf", ".prj", ".cpg")


def _dataset_files(path: Path, raster: bool) -> list[Path]:
    """The files GDAL reads for the dataset at ``path`` (a Shapefile: its parts), on disk."""
    if path.suffix.lower() == ".shp":
        files = [path.with_suffix(ext) for ext in _SHAPEFILE_PARTS]
    elif not raster:
        return []
    else:
        try:
            with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="NO"), rasterio.open(path) as src:
                files = [Path(f) for f in src.files]
        except (rasterio.errors.RasterioError, OSError):
            return []
    return [f for f in files if f.is_file()]


def prepare_samples(
    stack: RasterStack, recipe: FeatureRecipe, labels_path: Path, samples: Samples
) -> tuple[Samples, np.ndarray, dict]:
    """Features of the labelled pixels; drops those where no source has data."""
    X = extract_features(stack, recipe, samples.rows, samples.cols)
    has_data = np.isfinite(X).any(axis=1)
    counts = dict(
        samples.counts,
        on_nodata=int((~has_data).sum()),
        used=int(has_data.sum()),
        classes_on_nodata=class_order(set(samples.labels) - set(samples.labels[has_data])),
    )
    if not has_data.any():
        raise LabelError(
            f"Labels '{labels_path}': all {len(samples)} labelled pixels fall on nodata in every "
            "raster. Check the rasters' nodata values, or give observations inside the data."
        )
    return samples.subset(has_data), X[has_data], counts


#: Share of a class's samples on which one raster has no data from which the class is named.
GAP_SHARE = 0.25


def source_gap_notes(
    X: np.ndarray, labels: np.ndarray, recipe: FeatureRecipe, stack: RasterStack, name: str
) -> list[str]:
    """Name the units that lose one raster on a large share of their samples.

    A cloud over the traverse that holds most of a rare unit's observations leaves the model
    to learn that unit's look in the satellite bands from the few others (three of ten alluvium
    points on a gap of the Landsat scene: the unit's recall on the map fell from 0.62 to 0.33).
    """
    source = np.asarray(recipe.band_source)
    raw = X[:, : len(source)]
    hits: dict[tuple, list[str]] = {}  # the rasters of one gap (a scene's band files) together
    for s, src in enumerate(stack.sources):
        lost = np.isnan(raw[:, source == s]).all(axis=1)
        hit = []
        for unit in class_order(set(labels[lost])):
            mine = labels == unit
            n_lost = int((lost & mine).sum())
            if n_lost >= 2 and n_lost / mine.sum() >= GAP_SHARE:
                hit.append(f"'{unit}' {n_lost} of {int(mine.sum())}")
        if hit:
            hits.setdefault(tuple(hit), []).append(src.path.name)
    notes = []
    for hit, files in hits.items():
        one, listed = len(files) == 1, ", ".join(f"'{f}'" for f in files)
        notes.append(
            f"Observations '{name}': {'' if one else 'rasters '}"
            f"{listed} {'has' if one else 'have'} no data on many "
            f"samples of some units ({', '.join(hit)}), so the model learns their look in "
            f"{'it' if one else 'them'} from the others alone. Add observations of them where "
            f"{'it has' if one else 'they have'} data, or check {'its' if one else 'their'} "
            "nodata value."
        )
    return notes


def neighbourhood_features(
    stack: RasterStack, recipe: FeatureRecipe, samples: Samples, size: int
) -> np.ndarray:
    """Features of the ``size`` x ``size`` pixels around each sample, (n, size**2, n_features).

    Pixels beyond the grid are NaN, as in the streamed prediction.
    """
    r = size // 2
    dr, dc = (a.ravel() for a in np.mgrid[-r : r + 1, -r : r + 1])
    rows = (samples.rows[:, None] + dr).ravel()
    cols = (samples.cols[:, None] + dc).ravel()
    inside = (rows >= 0) & (rows < stack.grid.height) & (cols >= 0) & (cols < stack.grid.width)
    out = np.full((len(rows), recipe.n_features), np.nan, dtype="float32")
    out[inside] = extract_features(stack, recipe, rows[inside], cols[inside])
    return out.reshape(len(samples), size * size, recipe.n_features)


def encode_classes(
    labels: np.ndarray, labels_path: Path, legend: Legend | None = None
) -> tuple[list[str], np.ndarray, list]:
    """Class names in order, integer codes, and notes on classes too thin to validate.

    The order is the ``legend``'s, else natural ("2" before "10").

    Raises
    ------
    LabelError
        If there is a single class, or more than a map holds.
    """
    names = legend.sort(labels) if legend is not None else class_order(labels)
    check_class_count(names, labels_path)
    unique, inverse = np.unique(labels, return_inverse=True)
    codes = np.array([names.index(u) for u in unique])[inverse.ravel()]
    counts = np.bincount(codes, minlength=len(names))
    per_class = dict(zip(names, counts.tolist()))
    notes = class_name_notes(names, labels_path, per_class) + few_sample_notes(per_class)
    return names, codes, notes


def _map_sample(stack: RasterStack, random_state: int) -> np.ndarray:
    rng = np.random.default_rng(random_state)
    grid = stack.grid
    n = min(_MAP_SAMPLE, grid.width * grid.height)
    flat = rng.choice(grid.width * grid.height, size=n, replace=False)
    return np.column_stack(grid.xy(flat // grid.width, flat % grid.width))


def _importance(model: LithologyForest, recipe: FeatureRecipe, stack: RasterStack) -> dict:
    imp = model.feature_importances_
    order = np.argsort(imp)[::-1]
    paths = [s.path for s in stack.sources]
    files = distinct_names(paths, [p.name for p in paths])  # two dates' landsat.tif apart
    by_source: dict[str, float] = {}
    for value, sources in zip(imp, recipe.feature_sources):
        for s in sources:
            by_source[files[s]] = by_source.get(files[s], 0.0) + float(value) / len(sources)
    return {
        "method": "mean decrease in impurity of the main forest",
        "features": {recipe.names[i]: float(imp[i]) for i in order},
        "by_source": dict(sorted(by_source.items(), key=lambda kv: -kv[1])),
    }


def pixel_area(stack: RasterStack) -> float:
    """Ground area of one grid pixel in square metres (degree grids: at the grid's centre)."""
    return stack.grid.pixel_area_m2


def finalise_class_map(
    tmp: Path, stem: str, names: Sequence[str], colours: Sequence[tuple]
) -> None:
    """Turn ``<stem>.stream.tif`` into the COG ``<stem>.tif`` with category names and a QML."""
    to_cog(tmp / f"{stem}.stream.tif", tmp / f"{stem}.tif")
    (tmp / f"{stem}.stream.tif").unlink()
    write_category_names(tmp / f"{stem}.tif", names)
    write_qml(tmp / f"{stem}.qml", names, colours)


def write_forest_outputs(
    tmp: Path,
    stack: RasterStack,
    recipe: FeatureRecipe,
    bundle: dict,
    samples_per_class: np.ndarray,
    block_size: int,
    progress: Progress | None,
    trust: TrustLayers | None = None,
    training_map: bool = False,
) -> PredictionSummary:
    """Stream a forest bundle over the stack into ``tmp``: the maps, legend and model file.

    ``training_map``: this is the map of the training itself, whose share of each class and
    elevation (``training["map_share_per_class"]``, ``["elevation"]``) the bundle keeps, to set
    beside a map made later with it (:func:`geomap.bundles.elevation_notes`).
    """
    names, colours = bundle["class_names"], bundle["colours"]

    def tick(done: int, total: int) -> None:
        if progress is not None:
            progress("predict", done, total)

    t_wall = time.perf_counter()
    summary = predict_stack(
        stack,
        recipe,
        bundle["estimator"],
        names,
        colours,
        tmp,
        block_size=block_size,
        smooth=bundle["smooth"],
        progress=tick,
        hooks=[trust] if trust is not None else [],
    )
    t0 = time.perf_counter()
    finalise_class_map(tmp, "lithology", names, colours)
    for kind in ("uncertainty", "probabilities"):
        add_overviews(tmp / f"{kind}.tif")
    write_legend(
        tmp / "legend.csv",
        names,
        colours,
        samples_per_class,
        summary.class_pixels,
        pixel_area(stack),
        bundle.get("class_values"),
    )
    if training_map and "training" in bundle:
        bundle["training"]["map_share_per_class"] = map_shares(summary.class_pixels)
        bundle["training"]["elevation"] = summary.elevation_stats()
    save_model(tmp / "model.skops", bundle)
    summary.seconds["finalise"] = time.perf_counter() - t0
    summary.seconds["wall"] = time.perf_counter() - t_wall
    return summary


def run(config: RunConfig, progress: Progress | None = None) -> dict:
    """Train on the observations, validate, map the whole stack and write every output.

    Returns
    -------
    dict
        The report also written to ``report.json``.

    Raises
    ------
    GeomapError
        For any problem with the inputs or the output folder; nothing is written then.
    """
    if config.max_per_class is None and config.model != "som":  # the report says what was used
        config = replace(config, max_per_class=per_class_cap(config.model, 0))
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        return _run(config, progress)


@dataclass
class _Trained:
    """What training a forest on the observations gives."""

    recipe: FeatureRecipe
    samples: Samples
    counts: dict
    names: list[str]
    y: np.ndarray
    notes: list[str]
    cv: dict
    model: LithologyForest
    applicability: Applicability
    legend: Legend | None


def read_observations(
    config: RunConfig, grid: Grid | None = None
) -> tuple[gpd.GeoDataFrame, Legend | None, list[str]]:
    """The observations (unit names from ``config.legend`` if given), the legend, its warnings.

    ``grid``: the rasters', for the CRS to suggest to a CSV that states none.
    """
    return read_named(
        config.labels,
        config.label_column,
        config.legend,
        crs=config.label_crs,
        layer=config.label_layer,
        grid=grid,
    )


def _train_forest(config: RunConfig, stack: RasterStack, progress, timings: dict) -> _Trained:
    """Place the observations, fit the forest, cross-validate it, fit its applicability.

    The cross-validation also simulates input outages and units no observation holds (each
    unit held out in turn) for the accuracy calibration.
    """
    t0 = time.perf_counter()
    labels, legend, legend_notes = read_observations(config, stack.grid)
    placed = sample_labels(
        labels, stack.grid, max_per_class=config.max_per_class, random_state=config.random_state
    )
    recipe = FeatureRecipe.for_stack(stack, config.features)
    samples, X, counts = prepare_samples(stack, recipe, Path(config.labels), placed)
    names, y, notes = encode_classes(samples.labels, Path(config.labels), legend)
    notes = legend_notes + placement_notes(Path(config.labels), counts) + notes
    notes += recipe.unnamed_notes([s.path for s in stack.sources])
    notes += source_gap_notes(X, samples.labels, recipe, stack, Path(config.labels).name)
    estimator = LithologyForest(
        n_estimators=config.trees,
        feature_groups=feature_groups(recipe),
        screens=screens_for(recipe) if config.spectral_screen else (),
        feature_names=recipe.names,
        random_state=config.random_state,
    )
    timings["samples"] = time.perf_counter() - t0
    if progress is not None:
        progress("fit", 0, 1)
    t0 = time.perf_counter()
    weight = None if (samples.weight == 1).all() else samples.weight
    model = estimator.fit(X, y, sample_weight=weight)
    timings["fit"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    map_xy = _map_sample(stack, config.random_state)
    outages = simulated_outages(recipe, model.feature_importances_, stack, map_xy)
    cv = cross_validate(
        estimator,
        X,
        y,
        np.column_stack(stack.grid.xy(samples.rows, samples.cols)),
        names,
        map_xy=map_xy,
        X_eval=neighbourhood_features(stack, recipe, samples, config.smooth)
        if config.smooth > 1
        else None,
        outages=outages,
        sample_weight=weight,
        n_folds=config.cv_folds,
        random_state=config.random_state,
        progress=None if progress is None else partial(progress, "validate"),
        units_out=True,
    )
    timings["cross_validation"] = time.perf_counter() - t0
    notes += score_by_kind(cv, y, samples.kind, Path(config.labels).name)
    notes += fold_notes(cv, config.cv_folds, Path(config.labels).name)
    notes += little_seen_notes(cv, y, names, Path(config.labels).name, weight=samples.weight)
    release_freed_memory()  # the folds' forests
    t0 = time.perf_counter()
    applicability = Applicability(
        weights=model.feature_importances_,
        feature_groups=feature_groups(recipe),
        random_state=config.random_state,
    ).fit(
        X,
        y,
        folds=cv["spatial_folds"],
        oof_proba=cv["spatial_oof_proba"],
        outages=list(zip(outages, cv.get("spatial_outage_oof_proba", []))),
        units_out=(cv["unit_folds"], cv["unit_oof_proba"]) if "unit_folds" in cv else None,
        sample_weight=weight,
    )
    timings["fit"] += time.perf_counter() - t0
    return _Trained(recipe, samples, counts, names, y, notes, cv, model, applicability, legend)


def simulated_outages(
    recipe: FeatureRecipe, importance, stack: RasterStack | None = None, map_xy=None
) -> list:
    """Input outages whose cost the cross-validation simulates for the accuracy calibration.

    Each outage (:meth:`FeatureRecipe.outages`) carrying at least :data:`OUTAGE_SHARE` of the
    forest's importance (losing less changes little, and each costs a forest per fold). Even
    with observations under a cloud: the few there are gave the cloud's pixels an expected
    accuracy 0.09 from their true one on average (tuning scenes 0-6), the simulation 0.045.

    With ``stack`` and ``map_xy`` (pixels of the map), also the outages the map itself has
    (:func:`map_outages`): 40 geochemistry grids over a survey's outline, each of little
    importance, leave a DEM alone beyond it, which no single outage simulates.
    """
    out = [cols for cols in recipe.outages() if importance[cols].sum() >= OUTAGE_SHARE]
    if stack is not None:
        known = {tuple(cols) for cols in out}
        out += [c for c in map_outages(recipe, stack, map_xy) if tuple(c) not in known]
    return out


def map_outages(recipe: FeatureRecipe, stack: RasterStack, map_xy: np.ndarray) -> list:
    """The feature columns lost where sources lack data over the map, most frequent first.

    Patterns of missing sources at the map's pixels (by each source's decimated check read)
    covering at least :data:`MAP_OUTAGE_SHARE` of the pixels with any data, at most
    :data:`MAP_OUTAGES` of them; a pattern that leaves no feature is not one.
    """
    missing = missing_sources(stack, map_xy)
    missing = missing[~missing.all(axis=1)]
    if not len(missing):
        return []
    patterns, counts = np.unique(missing, axis=0, return_counts=True)
    sources = [set(s) for s in recipe.feature_sources]
    out = []
    for k in np.argsort(-counts, kind="stable"):
        lost = set(np.flatnonzero(patterns[k]).tolist())
        if counts[k] < MAP_OUTAGE_SHARE * len(missing) or len(out) == MAP_OUTAGES:
            break
        cols = np.array([i for i, s in enumerate(sources) if s & lost], dtype=int)
        if 0 < len(cols) < recipe.n_features:
            out.append(cols)
    return out


def _forest_report(config: RunConfig, stack: RasterStack, t: _Trained) -> dict:
    """The report of a forest run before its prediction."""
    return {
        "geomap_version": __version__,
        "python": platform.python_version(),
        "configuration": config.to_dict(),
        "inputs": input_files(config),
        "legend": None if t.legend is None else t.legend.to_dict(),
        **stack.describe(),
        "features": t.recipe.to_dict(),
        "samples": {
            "counts": t.counts,
            "per_class": dict(zip(t.names, np.bincount(t.y, minlength=len(t.names)).tolist())),
            "by_kind": {k: int((t.samples.kind == k).sum()) for k in ("point", "polygon")},
        },
        "warnings": stack.notes() + t.notes,
        "validation": {k: t.cv[k] for k in ("random", "spatial", "by_kind", "summary")},
        "importance": _importance(t.model, t.recipe, stack),
        "spectral_screen": describe_screens(t.model.screens_),
    }


def _run(config: RunConfig, progress: Progress | None) -> dict:
    t_start = time.perf_counter()
    if config.model not in MODELS:
        raise ModelError(
            f"Model '{config.model}' is not supported. Available: {', '.join(MODELS)}."
        )
    if config.legend is not None and config.labels is None:
        raise LabelError(
            f"Legend '{config.legend}' names the classes of observations, and no --labels are "
            "given. Give --labels with --label-column, or leave --legend out."
        )
    if not 2 <= config.cv_folds <= MAX_FOLDS:
        raise ModelError(
            f"cv_folds has to be 2 to {MAX_FOLDS}, as each fold costs a model; got "
            f"{config.cv_folds!r}."
        )
    if config.model != "rf":
        from geomap.som_workflow import run_som  # here: som_workflow builds on this module

        return run_som(config, progress)
    require_labels(config)
    if int(config.smooth) != config.smooth or config.smooth < 1 or config.smooth % 2 == 0:
        raise ModelError(
            f"smooth has to be an odd number of pixels (1: no smoothing, 3, 5, ...); got "
            f"{config.smooth!r}."
        )
    config.out = Path(config.out)
    check_out_dir(config.out, config.overwrite, input_paths(config))
    timings: dict[str, float] = {}
    with RasterStack.open(
        config.rasters,
        crs=config.crs,
        resolution=config.resolution,
        nodata=config.nodata,
        raster_nodata=config.raster_nodata,
    ) as stack:
        sites = SiteRequest(config.suggest, config.access, config.max_walk)
        if config.applicability:
            sites.check(stack.grid)  # a bad access layer is refused before the training
        t = _train_forest(config, stack, progress, timings)
        trust = (
            TrustLayers(
                t.applicability,
                t.names,
                stack.grid,
                sites,
                inputs=input_units(t.recipe, [s.path.name for s in stack.sources]),
            )
            if config.applicability
            else None
        )
        per_class = np.bincount(t.y, minlength=len(t.names))
        bundle = make_bundle(
            t.model, t.recipe, t.names, stack, config.smooth, config.nodata,
            applicability=t.applicability, training=training_context(t.cv, per_class),
            legend=t.legend, samples=per_class,
        )  # fmt: skip
        report = _forest_report(config, stack, t)
        with staged_output(config.out, config.overwrite) as tmp:
            summary = write_forest_outputs(
                tmp, stack, t.recipe, bundle, per_class, config.block_size, progress, trust,
                training_map=True,
            )  # fmt: skip
            report["prediction"] = summary.to_dict(t.names)
            report["warnings"] += summary.screen_notes(stack)
            checks = write_observations_to_check(
                tmp,
                t.samples,
                t.y,
                t.cv["spatial_oof_proba"],
                t.names,
                stack.grid.crs,
                t.cv["spatial_folds"],
            )
            if checks is not None:
                report["observations_to_check"] = checks
            if trust is not None:
                report.update(trust.finish(tmp))
                timings["applicability_stream"] = trust.seconds
            timings.update({f"predict_{k}": v for k, v in summary.seconds.items()})
            timings["total"] = time.perf_counter() - t_start
            report["timings_seconds"] = {k: round(v, 3) for k, v in timings.items()}
            write_json(tmp / "report.json", report)
            write_report_html(tmp / "report.html", report, config.out.resolve().name)
    return report


def map_shares(class_pixels: np.ndarray) -> list[float]:
    """Each class's share of the mapped pixels, as a bundle keeps it from its training map."""
    shares = class_pixels / max(int(class_pixels.sum()), 1)
    return [round(float(v), 6) for v in shares]


def training_context(cv: dict, per_class: np.ndarray) -> dict:
    """What a map made later from the bundle tells about its training: samples, validation."""
    return {
        "samples_per_class": np.asarray(per_class).tolist(),
        "validation": {
            kind: {"overall_accuracy": cv[kind]["overall_accuracy"]}
            for kind in ("random", "spatial")
        }
        | {"summary": cv["summary"]},
    }


def make_bundle(
    model,
    recipe: FeatureRecipe,
    names: Sequence[str],
    stack: RasterStack,
    smooth: int,
    nodata: float | None,
    legend: Legend | None = None,
    samples: Sequence[int] | None = None,
    **extra,
) -> dict:
    """What ``model.skops`` holds: the estimator and everything needed to apply it again.

    ``nodata`` is the no-data value given for every raster that declares none; each input's
    own value given by name is kept from the stack's sources (``input_nodata``).

    Class colours are the ``legend``'s where it gives them; of two names that call for one rock
    colour, the class of most training ``samples`` takes it. ``extra`` entries (the SOM
    bundles' ``kind``, ``clusters``, ...) are added as they are.
    """
    return {
        **extra,
        "format": MODEL_FORMAT,
        "version": MODEL_VERSION,
        "geomap_version": __version__,
        "estimator": model,
        "recipe": recipe.to_dict(),
        "class_names": list(names),
        "colours": [
            list(c)
            for c in class_colours(names, None if legend is None else legend.colours, samples)
        ],
        "class_values": None if legend is None else legend.values_of(names),
        "smooth": int(smooth),
        "nodata": nodata,
        "input_nodata": [s.named_nodata for s in stack.sources],
        "inputs": [
            {
                "name": s.path.name,
                "bands": list(s.band_names),
                "scale_offset": s.scaling,
                "resolution": res_in(s, stack.grid.crs),  # its own pixel, in the grid's units
            }
            for s in stack.sources
        ],
        "grid": stack.grid.to_dict(),
    }
