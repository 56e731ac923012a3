"""Apply a saved model bundle to rasters: ``geomap predict`` and ``geomap suggest``.

:func:`predict` puts the rasters in the training order, opens them on the model's grid and
writes the same outputs as ``geomap run`` (for forests and SOMs); :func:`suggest` streams the
trust layers of a forest bundle and writes only the suggested field sites.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import rasterio

from geomap import __version__
from geomap.bundles import (
    acquisition_notes,
    elevation_notes,
    grid_notes,
    open_for_bundle,
    outside_training,
    resolution_notes,
    scale_notes,
    training_area_notes,
    training_order,
)
from geomap.errors import InputDataError, ModelError
from geomap.export import check_out_dir, load_model, staged_output, write_json
from geomap.features import FeatureRecipe
from geomap.products import expand_rasters, taken_from_product
from geomap.report_html import write_report_html
from geomap.screen import describe_screens
from geomap.som_workflow import write_som_outputs
from geomap.sources import GDAL_CACHE_BYTES
from geomap.stack import BLOCK_SIZE
from geomap.trust import (
    SiteRequest,
    TrustLayers,
    bundle_applicability,
    input_units,
    staged_sites,
    stream_sites,
)
from geomap.workflow import MODELS, Progress, input_records, write_forest_outputs


def _predict_outputs(tmp, stack, recipe, bundle, block_size, progress) -> tuple[dict, list]:
    """Write the outputs of a bundle of any kind.

    Returns the report's ``prediction`` entries and the warnings the prediction itself gives.
    """
    kind = bundle.get("kind", "rf")
    if kind == "rf":
        names = bundle["class_names"]
        app = bundle.get("applicability")
        trust = (
            TrustLayers(app, names, stack.grid, inputs=input_units(recipe, _names(stack)))
            if app is not None
            else None
        )
        training = bundle.get("training", {})  # bundles saved before it was kept have none
        per_class = np.asarray(training.get("samples_per_class", np.zeros(len(names), int)))
        summary = write_forest_outputs(
            tmp, stack, recipe, bundle, per_class, block_size, progress, trust
        )
        notes = summary.screen_notes(stack)
        notes += elevation_notes(bundle, recipe, summary.elevation_stats())
        return {
            **({"training": training} if training else {}),
            "prediction": summary.to_dict(names),
            "spectral_screen": describe_screens(bundle["estimator"].screens_),
            **(trust.finish(tmp) if trust is not None else {}),
        }, notes
    if kind not in MODELS:
        raise ModelError(
            f"Model bundle of kind '{kind}' cannot be applied with `geomap predict`; run "
            f"`geomap {kind}` again on the new rasters."
        )
    return write_som_outputs(tmp, stack, recipe, bundle, block_size, progress)


def _product_bands(bundle: dict, rasters: Sequence[Path]) -> tuple[list[Path], list[str]]:
    """The rasters with each product replaced by its band files, and those the model needs.

    A model trained on a Sentinel-2 tile's band files, B01 and B09 among them, is applied to
    the next tile's product: the product gives the bands a run takes, which leave out the
    atmosphere's, so B01 and B09 were missing on the whole sheet. They are taken too, with a
    note.
    """
    taken = expand_rasters(rasters, [i["name"] for i in bundle["inputs"]])
    given = {Path(p) for p in rasters}
    more = [p.name for p in taken if p not in given and not taken_from_product(p)]
    if not more:
        return taken, []
    one = len(more) == 1
    return taken, [
        f"The model was trained on {'a band' if one else 'bands'} that geomap leaves out of a "
        f"satellite product (such as Sentinel-2's atmospheric B01 and B09), given as files: "
        f"{', '.join(more)} {'is' if one else 'are'} taken from the product too."
    ]


def _names(stack) -> list[str]:
    return [s.path.name for s in stack.sources]


def suggest(
    model_path: Path,
    rasters: Sequence[Path],
    out: Path,
    sites: SiteRequest,
    *,
    block_size: int = BLOCK_SIZE,
    overwrite: bool = False,
    nodata: float | None = None,
    raster_nodata: dict[str, float] | None = None,
    same_order: bool = False,
) -> dict:
    """Suggest field sites from a saved forest bundle: ``out`` (GeoPackage) and its .csv.

    ``nodata`` is taken as no data in rasters that declare none, ``raster_nodata`` in those it
    names by file name (default: the values the training inputs were given). ``same_order``
    takes each raster for the training input at its place, as :func:`predict`.

    Raises
    ------
    GeomapError
        For a bundle without applicability, rasters that do not fit it, bad site options or an
        existing ``out``; nothing is written then.
    """
    out = Path(out)
    if out.suffix.lower() != ".gpkg":
        raise InputDataError(
            f"Sites output '{out}': the sites are written as a GeoPackage, with a .csv beside it; "
            f"give a name ending in .gpkg, e.g. '{out.with_suffix('.gpkg')}'."
        )
    bundle = load_model(model_path)
    if bundle.get("kind", "rf") != "rf":
        raise ModelError(
            f"Model '{model_path}' is a '{bundle['kind']}' bundle; `geomap suggest` streams a "
            "random forest's trust layers. For a labelled SOM, give --suggest N to `geomap run "
            "--model som`, or suggest from a forest run (`geomap run --model rf`)."
        )
    applicability = bundle_applicability(bundle, Path(model_path))
    recipe = FeatureRecipe.from_dict(bundle["recipe"])
    rasters, taken = _product_bands(bundle, rasters)
    rasters, notes = training_order(bundle, rasters, same_order)
    notes = taken + notes + acquisition_notes(bundle, rasters)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        with open_for_bundle(
            bundle, rasters, Path(model_path), nodata, raster_nodata, same_order
        ) as stack:
            notes += stack.file_notes() + stack.footprint_notes() + scale_notes(bundle, stack)
            notes += training_area_notes(bundle, stack.grid) + resolution_notes(bundle, stack)
            trust = TrustLayers(
                applicability, bundle["class_names"], stack.grid, sites, write_maps=False
            )
            with staged_sites(out, overwrite) as tmp:
                stream_sites(stack, recipe, bundle, trust, block_size)
                report = trust.finish(tmp)
    return {**report, "warnings": notes}


def predict(
    model_path: Path,
    rasters: Sequence[Path],
    out: Path,
    *,
    block_size: int = BLOCK_SIZE,
    overwrite: bool = False,
    progress: Progress | None = None,
    nodata: float | None = None,
    raster_nodata: dict[str, float] | None = None,
    same_order: bool = False,
) -> dict:
    """Apply a saved model bundle to rasters and write the maps into ``out``.

    The grid takes the model's CRS and resolution and the rasters' common footprint, so the
    training rasters give back the training map exactly. ``nodata`` is taken as no data in
    rasters that declare none, ``raster_nodata`` in those it names by file name (default: the
    values the training inputs were given). ``same_order`` takes each raster for the training
    input at its place in the list, whatever its band names (checking only band counts): files
    whose bands carry no names, which cannot be matched otherwise.
    """
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES):
        return _predict(
            model_path,
            rasters,
            out,
            block_size,
            overwrite,
            progress,
            nodata,
            raster_nodata,
            same_order,
        )


def _predict(
    model_path, rasters, out, block_size, overwrite, progress, nodata, raster_nodata, same_order
) -> dict:
    t_start = time.perf_counter()
    out = Path(out)
    check_out_dir(out, overwrite, [*rasters, Path(model_path)])
    bundle = load_model(model_path)
    configuration = {  # as given: the rasters in the caller's order, before matching
        "model": bundle.get("kind", "rf"),
        "model_file": str(model_path),
        "rasters": [str(p) for p in rasters],
        "out": str(out),
        "nodata": nodata,
        "raster_nodata": dict(raster_nodata or {}),
        "same_order": same_order,
        "block_size": block_size,
    }
    recipe = FeatureRecipe.from_dict(bundle["recipe"])
    rasters, taken = _product_bands(bundle, rasters)
    rasters, notes = training_order(bundle, rasters, same_order)
    notes = taken + notes + acquisition_notes(bundle, rasters)
    with open_for_bundle(
        bundle, rasters, Path(model_path), nodata, raster_nodata, same_order
    ) as stack:
        with staged_output(out, overwrite) as tmp:
            prediction, screened = _predict_outputs(
                tmp, stack, recipe, bundle, block_size, progress
            )
            report = {
                "geomap_version": __version__,
                "model": str(model_path),
                "configuration": configuration,
                "inputs": {"rasters": input_records([p for p in rasters if p is not None])},
                **stack.describe(),
                "outside_training_fraction": round(outside_training(bundle, stack.grid), 4),
                "warnings": notes
                + grid_notes(stack)
                + training_area_notes(bundle, stack.grid)
                + stack.file_notes()
                + stack.footprint_notes()
                + scale_notes(bundle, stack)
                + resolution_notes(bundle, stack)
                + screened,
                **prediction,
                "timings_seconds": {"total": round(time.perf_counter() - t_start, 3)},
            }
            write_json(tmp / "report.json", report)
            write_report_html(tmp / "report.html", report, Path(out).resolve().name)
    return report
