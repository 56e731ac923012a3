"""Self-organizing-map runs: unsupervised clusters, semi-supervised lithology and sub-units.

``geomap run --model som-clusters`` (no labels), ``geomap run --model som`` (labels) and
``geomap subunits`` train a SOM on a bounded random sample of stack pixels, stream the whole grid
through it (:mod:`geomap.som_stream`) and write every output into a staged folder that replaces
``out`` only when complete. :func:`write_som_outputs` also serves ``geomap predict``.
"""

from __future__ import annotations

import csv
import platform
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window
from sklearn.frozen import FrozenEstimator

from geomap import __version__
from geomap.applicability import Applicability
from geomap.errors import ModelError
from geomap.export import (
    add_overviews,
    check_out_dir,
    class_colours,
    release_freed_memory,
    save_model,
    staged_output,
    write_json,
    write_legend,
    write_profile_legend,
)
from geomap.features import FeatureRecipe, feature_groups
from geomap.grid import Grid
from geomap.models import SelfOrganizingMap, SOMClassifier, SOMClusters
from geomap.placement import Samples, placement_notes, sample_labels, vote_weights
from geomap.report_html import write_report_html
from geomap.screen import describe_screens, screens_for
from geomap.som_plots import write_som_plots
from geomap.som_stream import SOMLayers, stream_som
from geomap.sources import GDAL_CACHE_BYTES
from geomap.stack import RasterStack
from geomap.trust import SiteRequest, TrustLayers, input_units
from geomap.validate import cross_validate, fold_notes, little_seen_notes, score_by_kind
from geomap.webmap import class_legend, classes_at
from geomap.workflow import (
    MAX_PER_CLASS,
    Progress,
    RunConfig,
    _map_sample,
    encode_classes,
    finalise_class_map,
    input_files,
    input_paths,
    make_bundle,
    map_shares,
    per_class_cap,
    pixel_area,
    prepare_samples,
    read_observations,
    require_labels,
    training_context,
)

#: Side of the square tiles the training sample is drawn from.
SAMPLE_TILE = 64

Within = Callable[[Window], np.ndarray]


def sample_pixels(
    stack: RasterStack,
    recipe: FeatureRecipe,
    n: int,
    random_state: int | None,
    within: Within | None = None,
) -> np.ndarray:
    """Features of about ``n`` random pixels with every feature, from random tiles of the grid.

    Tiles of ``SAMPLE_TILE`` pixels are visited in random order and at most
    ``max(256, n / tiles)`` pixels are taken from each, until ``n`` are collected: reading stays a
    small share of the scene and the sample does not depend on the streaming block size.

    Parameters
    ----------
    within : callable, optional
        Given a window, a boolean (height, width) array of the pixels that may be sampled.

    Returns
    -------
    ndarray of float32 (m, n_features), m <= n
    """
    grid, t = stack.grid, SAMPLE_TILE
    rng = np.random.default_rng(random_state)
    tiles = [(r, c) for r in range(0, grid.height, t) for c in range(0, grid.width, t)]
    per_tile = max(256, -(-n // len(tiles)))
    parts, total = [], 0
    for i in rng.permutation(len(tiles)):
        if total >= n:
            break
        r, c = tiles[i]
        win = Window(c, r, min(t, grid.width - c), min(t, grid.height - r))
        keep = np.ones(int(win.width * win.height), bool) if within is None else within(win).ravel()
        if not keep.any():
            continue
        X = recipe.compute_pixels(stack.read(win, halo=recipe.halo))
        idx = np.flatnonzero(keep & np.isfinite(X).all(axis=1))
        if len(idx) > per_tile:
            idx = np.sort(rng.choice(idx, per_tile, replace=False))
        parts.append(X[idx])
        total += len(idx)
    X = np.concatenate(parts) if parts else np.empty((0, recipe.n_features), "float32")
    del parts
    release_freed_memory()
    return X[np.sort(rng.choice(len(X), n, replace=False))] if len(X) > n else X


def make_som(config, random_state: int | None) -> SelfOrganizingMap:
    """The (unfitted) map a run's SOM options describe."""
    return SelfOrganizingMap(
        shape=None if config.som_size is None else tuple(config.som_size),
        n_iterations=config.iterations,
        sigma=config.sigma,
        learning_rate=config.learning_rate,
        max_samples=config.som_samples,
        random_state=random_state,
    )


def fit_clusters(config, sample: np.ndarray, som: SelfOrganizingMap) -> SOMClusters:
    """Cluster the codebook of a fitted map; ``sample`` gives the clusters' mean profiles."""
    return SOMClusters(
        som=FrozenEstimator(som),
        n_clusters=config.clusters,
        method=config.cluster_method,
        random_state=config.random_state,
    ).fit(sample)


def cluster_names(prefix: str, k: int) -> list[str]:
    """``"<prefix> 1"`` .. ``"<prefix> k"``."""
    return [f"{prefix} {i + 1}" for i in range(k)]


def som_report(clusters: SOMClusters, classifier: SOMClassifier | None = None) -> dict:
    """The map's size, training and clustering, for ``report.json``."""
    som = clusters.som_
    out = {
        "shape": list(som.shape_),
        "nodes": int(len(som.codebook_)),
        "iterations": som.n_iterations_,
        "sigma": som.sigma_,
        "learning_rate": som.learning_rate,
        "training_pixels": som.n_train_,
        "mean_quantization_error": som.quantization_error_,
        "empty_nodes": int((som.hits_ == 0).sum()),
        "clusters": {
            "n_clusters": clusters.n_clusters_,
            "method": clusters.method,
            "chosen_by": "the number asked for"
            if clusters.n_clusters is not None
            else f"best {clusters.criterion} index of 2..{clusters.max_clusters} clusters "
            "(codebook nodes holding training pixels)",
            "scores": {str(k): v for k, v in clusters.scores_.items()},
            "training_pixels": clusters.cluster_hits_.tolist(),
        },
    }
    if classifier is not None:
        out["labelled_nodes"] = int((classifier.node_counts_.sum(axis=1) > 0).sum())
        out["label_bandwidth"] = classifier.bandwidth_
    return out


def write_som_outputs(
    tmp: Path,
    stack: RasterStack,
    recipe: FeatureRecipe,
    bundle: dict,
    block_size: int,
    progress: Progress | None,
    within: Within | None = None,
    sites: SiteRequest | None = None,
    applicability: bool = True,
    training_map: bool = False,
) -> tuple[dict, list[str]]:
    """Stream a SOM bundle over the stack and write its maps, legends, plots and model.

    A ``som`` bundle with an applicability also gets ``applicability.tif``,
    ``expected_accuracy.tif`` and, with ``sites``, the suggested field sites, unless
    ``applicability`` is False (the bundle keeps what `geomap suggest` needs). The map of the
    run that trained the bundle (``training_map``) records its class shares in the bundle's
    ``training``; a map made later reports that ``training`` (samples, validation, shares).

    Returns
    -------
    entries : dict
        ``prediction`` (and ``clusters`` for the semi-supervised model) for the report, and
        ``training`` for a map made later with a labelled SOM.
    notes : list of str
        The report's warnings from the prediction (pixels the spectral screen set aside).
    """
    clusters = bundle["clusters"]
    classifier = bundle["estimator"] if bundle["kind"] == "som" else None
    layers = SOMLayers(
        clusters,
        bundle["cluster_names"],
        [tuple(c) for c in bundle["cluster_colours"]],
        bundle["cluster_stem"],
        classifier,
        bundle["class_names"] if classifier is not None else (),
        [tuple(c) for c in bundle["colours"]] if classifier is not None else (),
        bundle.get("class_values") if classifier is not None else None,
        bundle.get("screens", []) if classifier is not None else (),  # older bundles: none
    )

    def tick(done: int, total: int) -> None:
        if progress is not None:
            progress("predict", done, total)

    app = bundle.get("applicability") if classifier is not None and applicability else None
    inputs = input_units(recipe, [s.path.name for s in stack.sources])
    trust = (
        TrustLayers(app, bundle["class_names"], stack.grid, sites, inputs=inputs) if app else None
    )
    t0 = time.perf_counter()
    summary = stream_som(
        stack, recipe, layers, tmp, block_size=block_size, within=within, progress=tick,
        hooks=[trust] if trust else [],
    )  # fmt: skip
    t1 = time.perf_counter()
    _finalise(tmp, stack, recipe, layers, summary)
    training = bundle.get("training") if classifier is not None else None
    if training is not None and training_map:  # the run's own map: its shares, for predict
        training["map_share_per_class"] = map_shares(summary.classes.class_pixels)
    save_model(tmp / "model.skops", bundle)
    summary.seconds.update(finalise=time.perf_counter() - t1, wall=time.perf_counter() - t0)
    summary.clusters.seconds = summary.seconds
    clusters_part = summary.clusters.to_dict(layers.cluster_names)
    if classifier is None:
        return {"prediction": clusters_part}, []
    summary.classes.seconds = summary.seconds
    out = {
        **({"training": training} if training is not None and not training_map else {}),
        "prediction": summary.classes.to_dict(layers.class_names),
        "clusters": clusters_part,
        "spectral_screen": describe_screens(layers.screens),
    }
    return {**out, **(trust.finish(tmp) if trust else {})}, summary.classes.screen_notes(stack)


def _finalise(tmp, stack, recipe, layers: SOMLayers, summary) -> None:
    stem, area = layers.stem, pixel_area(stack)
    finalise_class_map(tmp, stem, layers.cluster_names, layers.cluster_colours)
    clusters = layers.clusters
    write_profile_legend(
        tmp / f"{stem}_legend.csv",
        layers.cluster_names,
        layers.cluster_colours,
        clusters.cluster_hits_,
        summary.clusters.class_pixels,
        area,
        recipe.names,
        clusters.cluster_profile_,
    )
    add_overviews(tmp / "quantization_error.tif")
    title = "Sub-units" if stem == "subunits" else "SOM"
    write_som_plots(clusters, recipe.names, tmp, title)
    clf = layers.classifier
    if clf is None:
        return
    add_overviews(tmp / "label_distance.tif")
    finalise_class_map(tmp, "lithology", layers.class_names, layers.class_colours)
    for kind in ("uncertainty", "probabilities"):
        add_overviews(tmp / f"{kind}.tif")
    samples = clf.node_counts_.sum(axis=0)
    write_legend(
        tmp / "legend.csv",
        layers.class_names,
        layers.class_colours,
        samples,
        summary.classes.class_pixels,
        area,
        layers.class_values,
    )


def _check_som_run(config: RunConfig) -> None:
    if config.model == "som":
        require_labels(config)
    if config.smooth != 1:
        raise ModelError(
            f"--smooth {config.smooth} applies to the random forest only; SOM models map each "
            "pixel from its best matching unit. Leave --smooth out with --model "
            f"{config.model}."
        )
    if not config.spectral_screen and config.model == "som-clusters":
        raise ModelError(
            "--no-spectral-screen applies to models learnt from observations (--model rf or "
            "som): the screen compares each pixel's spectrum with the observations'. Leave it "
            "out with --model som-clusters."
        )


#: Where ``geomap run --model som-clusters --labels`` says which clusters each unit lies in.
CLUSTER_TABLE = "clusters_by_unit.csv"


def observed_clusters(placed: Samples, grid: Grid, clusters_tif: Path) -> dict:
    """Samples of each observed unit per cluster, the clusters it lies in most first.

    The clusters are found without the observations; where each unit's observations fall names
    the clusters (Carneiro et al. 2012) and shows the units they do not tell apart. A point
    counts once, a polygon once per pixel (at most the forest's draw per unit); samples on the
    clusters' nodata count in ``samples`` only.
    """
    shown = np.array(classes_at(clusters_tif, *grid.xy(placed.rows, placed.cols)), dtype=object)
    units = {}
    for unit in sorted(set(placed.labels.tolist()), key=str):
        here = shown[placed.labels == unit]
        found = Counter(name for name in here if name is not None)
        units[str(unit)] = {"samples": int(len(here)), "clusters": dict(found.most_common())}
    return units


def write_cluster_table(path: Path, units: dict, clusters: list[str]) -> None:
    """The table of :func:`observed_clusters` as CSV: a row per unit, a column per cluster."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["unit", "samples", *clusters])
        for unit, row in units.items():
            out.writerow([unit, row["samples"], *(row["clusters"].get(c, 0) for c in clusters)])


def run_som(config: RunConfig, progress: Progress | None = None) -> dict:
    """Train a SOM on a sample of the stack and map it: ``som-clusters`` or ``som`` runs.

    Called by :func:`geomap.workflow.run` for ``config.model`` ``"som"`` and ``"som-clusters"``.

    Returns
    -------
    dict
        The report also written to ``report.json``.

    Raises
    ------
    GeomapError
        For any problem with the inputs, the options or the output folder; nothing is written.
    """
    t_start = time.perf_counter()
    _check_som_run(config)
    config.out = Path(config.out)
    check_out_dir(config.out, config.overwrite, input_paths(config))
    with (
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES),
        RasterStack.open(
            config.rasters,
            crs=config.crs,
            resolution=config.resolution,
            nodata=config.nodata,
            raster_nodata=config.raster_nodata,
        ) as stack,
    ):
        recipe = FeatureRecipe.for_stack(stack, config.features)
        report = {
            "geomap_version": __version__,
            "python": platform.python_version(),
            "configuration": config.to_dict(),
            "inputs": input_files(config),
            **stack.describe(),
            "features": recipe.to_dict(),
            "warnings": stack.notes() + recipe.unnamed_notes([s.path for s in stack.sources]),
        }
        observed = None  # som-clusters with observations: placed now, a bad file refused first
        if config.model == "som-clusters" and config.labels is not None:
            labels, _, notes = read_observations(config, stack.grid)
            observed = sample_labels(
                labels,
                stack.grid,
                max_per_class=MAX_PER_CLASS["rf"],
                random_state=config.random_state,
            )
            report["warnings"] += notes
        sites = SiteRequest(config.suggest, config.access, config.max_walk)
        if config.model == "som" and config.applicability:
            sites.check(stack.grid)  # a bad access layer is refused before the training
        bundle = _fit(config, stack, recipe, report, progress)
        report["timings_seconds"] = {"fit": round(time.perf_counter() - t_start, 3)}
        with staged_output(config.out, config.overwrite) as tmp:
            outputs, notes = write_som_outputs(
                tmp,
                stack,
                recipe,
                bundle,
                config.block_size,
                progress,
                sites=sites,
                applicability=config.applicability,
                training_map=True,
            )
            report["warnings"] += notes
            report.update(outputs)
            if observed is not None:
                table = observed_clusters(observed, stack.grid, tmp / "clusters.tif")
                names = [name for name, _ in class_legend(tmp / "clusters.tif")]
                write_cluster_table(tmp / CLUSTER_TABLE, table, names)
                report["som"]["clusters"]["observed"] = {
                    "file": Path(config.labels).name,
                    "table": CLUSTER_TABLE,
                    "pixels_per_unit": MAX_PER_CLASS["rf"],  # polygons' pixels drawn, at most
                    "units": table,
                }
            report["timings_seconds"]["total"] = round(time.perf_counter() - t_start, 3)
            write_json(tmp / "report.json", report)
            write_report_html(tmp / "report.html", report, Path(config.out).resolve().name)
    return report


def _fit(config: RunConfig, stack, recipe, report: dict, progress) -> dict:
    """Fit the map, its clusters and (for ``som``) the node labels; fill the report."""
    sample = sample_pixels(stack, recipe, config.som_samples, config.random_state)
    labelled = _labelled(config, stack, recipe, report) if config.model == "som" else None
    train = sample if labelled is None else np.concatenate([sample, labelled["X"]])
    if progress is not None:
        progress("fit", 0, 1)
    som = make_som(config, config.random_state).fit(train)
    clusters = fit_clusters(config, sample if len(sample) else train, som)
    names = cluster_names("cluster", clusters.n_clusters_)
    extra = {
        "kind": config.model,
        "clusters": clusters,
        "cluster_names": names,
        "cluster_colours": [list(c) for c in class_colours(names)],
        "cluster_stem": "clusters",
    }
    if labelled is None:
        report["som"] = som_report(clusters)
        return make_bundle(clusters, recipe, names, stack, 1, config.nodata, **extra)
    classifier = SOMClassifier(som=FrozenEstimator(som))
    cv = cross_validate(
        classifier,
        labelled["X"],
        labelled["y"],
        labelled["xy"],
        labelled["names"],
        map_xy=_map_sample(stack, config.random_state),
        sample_weight=labelled["vote"],
        n_folds=config.cv_folds,
        random_state=config.random_state,
        progress=None if progress is None else partial(progress, "validate"),
    )
    report["warnings"] += fold_notes(cv, config.cv_folds, Path(config.labels).name)
    report["warnings"] += score_by_kind(
        cv, labelled["y"], labelled["kind"], Path(config.labels).name
    ) + little_seen_notes(
        cv, labelled["y"], labelled["names"], Path(config.labels).name, checks=False
    )
    report["validation"] = {k: cv[k] for k in ("random", "spatial", "by_kind", "summary")}
    classifier.fit(labelled["X"], labelled["y"], sample_weight=labelled["vote"])
    if config.spectral_screen:
        extra["screens"] = [screen.fit(labelled["X"]) for screen in screens_for(recipe)]
    report["som"] = som_report(clusters, classifier)
    per_class = np.bincount(labelled["y"], minlength=len(labelled["names"]))
    extra["training"] = training_context(cv, per_class)
    extra["applicability"] = Applicability(
        feature_groups=feature_groups(recipe), random_state=config.random_state
    ).fit(
        labelled["X"],
        labelled["y"],
        folds=cv["spatial_folds"],
        oof_proba=cv["spatial_oof_proba"],
        sample_weight=labelled["weight"],
    )
    return make_bundle(
        classifier,
        recipe,
        labelled["names"],
        stack,
        1,
        config.nodata,
        labelled["legend"],
        samples=per_class,
        **extra,
    )


def _labelled(config: RunConfig, stack, recipe, report: dict) -> dict:
    """Features, codes and coordinates of the observations (as the forest run places them)."""
    labels, legend, legend_notes = read_observations(config, stack.grid)
    cap = config.max_per_class or per_class_cap(config.model, labels["label"].nunique())
    report["configuration"]["max_per_class"] = cap  # the draw used, as for the forest
    placed = sample_labels(labels, stack.grid, max_per_class=cap, random_state=config.random_state)
    samples, X, counts = prepare_samples(stack, recipe, Path(config.labels), placed)
    names, y, notes = encode_classes(samples.labels, Path(config.labels), legend)
    report["samples"] = {
        "counts": counts,
        "per_class": dict(zip(names, np.bincount(y, minlength=len(names)).tolist())),
    }
    report["warnings"] += legend_notes + placement_notes(Path(config.labels), counts) + notes
    report["legend"] = None if legend is None else legend.to_dict()
    xy = np.column_stack(stack.grid.xy(samples.rows, samples.cols))
    return {
        "X": X,
        "y": y,
        "xy": xy,
        "names": names,
        "legend": legend,
        "kind": samples.kind,
        "weight": samples.weight,  # what each counts for: a polygon's pixels share its worth
        "vote": vote_weights(
            samples.kind, samples.labels, samples.weight, counts.get("polygon_area_pixels", {})
        ),
    }
