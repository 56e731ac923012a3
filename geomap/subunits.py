"""Sub-units of one mapped unit: a SOM and codebook clustering of that unit's pixels only.

After a map is made, the pixels of one unit (say basalt) often still hold compositional
variation worth mapping (Cracknell et al. 2014). :func:`subunits` trains a SOM on the unit's pixels
of a geomap class map and writes ``subunits.tif`` (every other pixel is nodata) with its legend,
QGIS style, quantization error and SOM plots.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import rasterio

from geomap import __version__
from geomap.errors import InputDataError, MissingFileError, ModelError
from geomap.export import check_out_dir, class_colours, staged_output, write_json
from geomap.features import FeatureRecipe
from geomap.grid import Grid
from geomap.report_html import write_report_html
from geomap.som_workflow import (
    cluster_names,
    fit_clusters,
    make_som,
    sample_pixels,
    som_report,
    write_som_outputs,
)
from geomap.sources import GDAL_CACHE_BYTES
from geomap.stack import BLOCK_SIZE, RasterStack
from geomap.workflow import Progress, SOMOptions, input_records, make_bundle


@dataclass
class SubunitConfig(SOMOptions):
    """Everything that defines a sub-unit run; saved in ``report.json``."""

    map: Path
    unit: str
    rasters: list[Path]
    out: Path
    features: str = "default"
    random_state: int = 0
    block_size: int = BLOCK_SIZE
    nodata: float | None = None
    raster_nodata: dict[str, float] = field(default_factory=dict)
    overwrite: bool = False


def unit_code(dataset, path: Path, unit: str) -> int:
    """The code of ``unit`` in a geomap class map.

    Raises
    ------
    InputDataError
        If the map has no class names or none is ``unit``.
    """
    tag = dataset.tags().get("CLASS_NAMES")
    if tag is None:
        raise InputDataError(
            f"Map '{path}' has no class names (CLASS_NAMES tag); give the lithology.tif of a "
            "geomap run."
        )
    names = json.loads(tag)
    unit = _named(path, unit) if unit not in names else unit
    if unit not in names:
        listed = ", ".join(repr(n) for n in names)
        alike = [n for n in names if n.casefold() == unit.strip().casefold()]
        hint = f" Did you mean {alike[0]!r}?" if alike else ""
        raise InputDataError(
            f"Unit {unit!r} is not in the map '{path}'.{hint} Its units are: {listed}. Give one "
            "of them with --unit (names are case-sensitive)."
        )
    return names.index(unit)


def _named(path: Path, unit: str) -> str:
    """The unit an observation value stands for in the run's legend.csv, else ``unit`` itself.

    The legend.csv beside the map gives the user's codes in its ``value`` column ("4", or
    "11; 12" for values merged into one unit).
    """
    legend = path.with_name("legend.csv")
    if not legend.is_file():
        return unit
    with open(legend, encoding="utf-8-sig", newline="") as f:
        for row in csv.DictReader(f):
            values = [v.strip() for v in (row.get("value") or "").split(";")]
            if unit.strip() in values and row.get("name"):
                return row["name"]
    return unit


def open_class_map(path: Path):
    """The class map opened with rasterio, or a message saying what to give instead.

    Raises
    ------
    MissingFileError
        If ``path`` does not exist, or is a folder (the message names its lithology.tif).
    InputDataError
        If GDAL cannot read it as a raster (observations, a report, a style file).
    """
    if path.is_dir():
        inside = path / "lithology.tif"
        there = f": give its class map, '{inside}'" if inside.is_file() else ""
        raise MissingFileError(
            f"Map '{path}' is a folder{there}. --map takes the lithology.tif of a geomap run."
        )
    if not path.is_file():
        raise MissingFileError(f"Map '{path}' does not exist; give a geomap lithology.tif.")
    try:
        return rasterio.open(path)
    except rasterio.errors.RasterioIOError as exc:
        raise InputDataError(
            f"Map '{path}' is not a raster GDAL can read ({exc}). --map takes the class map a "
            "geomap run wrote, its lithology.tif (or clusters.tif); polygons of a legacy map "
            "are observations for `geomap run --labels`, not a map to split."
        ) from None


def subunits(config: SubunitConfig, progress: Progress | None = None) -> dict:
    """Map the sub-units of one unit of a class map.

    Returns
    -------
    dict
        The report also written to ``report.json``.

    Raises
    ------
    GeomapError
        For a missing map, an unknown unit, a unit with too few pixels, bad rasters or options,
        or an output folder that holds files; nothing is written then.
    """
    t_start = time.perf_counter()
    config.out, config.map = Path(config.out), Path(config.map)
    with (
        rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_BYTES),
        open_class_map(config.map) as class_map,
    ):
        check_out_dir(config.out, config.overwrite, [config.map, *config.rasters])
        code = unit_code(class_map, config.map, config.unit)
        grid = Grid(class_map.crs, class_map.transform, class_map.width, class_map.height)

        def within(win):
            return class_map.read(1, window=win) == code

        with RasterStack.open(
            config.rasters, grid=grid, nodata=config.nodata, raster_nodata=config.raster_nodata
        ) as stack:
            recipe = FeatureRecipe.for_stack(stack, config.features)
            bundle = _fit(config, stack, recipe, within)
            report = {
                "geomap_version": __version__,
                "configuration": config.to_dict(),
                "inputs": {
                    "rasters": input_records(config.rasters),
                    "map": input_records([config.map]),
                },
                **stack.describe(),
                "features": recipe.to_dict(),
                "som": som_report(bundle["clusters"]),
                "subunits_of": {"unit": config.unit, "map": config.map.name},
            }
            with staged_output(config.out, config.overwrite) as tmp:
                entries, _ = write_som_outputs(  # a clusters bundle: no screen, no notes
                    tmp, stack, recipe, bundle, config.block_size, progress, within
                )
                report.update(entries)
                report["timings_seconds"] = {"total": round(time.perf_counter() - t_start, 3)}
                write_json(tmp / "report.json", report)
                write_report_html(tmp / "report.html", report, Path(config.out).resolve().name)
    return report


def _fit(config: SubunitConfig, stack: RasterStack, recipe: FeatureRecipe, within) -> dict:
    sample = sample_pixels(stack, recipe, config.som_samples, config.random_state, within)
    if len(sample) < 8:
        raise ModelError(
            f"Unit {config.unit!r} has {len(sample)} pixels with data in every raster in "
            f"'{config.map}'; sub-units need at least 8 (more than 100 to mean much). Choose a "
            "larger unit or check the rasters cover the map."
        )
    som = make_som(config, config.random_state).fit(sample)
    clusters = fit_clusters(config, sample, som)
    names = cluster_names(f"{config.unit} subunit", clusters.n_clusters_)
    extra = {
        "kind": "subunits",
        "unit": config.unit,
        "clusters": clusters,
        "cluster_names": names,
        "cluster_colours": [list(c) for c in class_colours(names)],
        "cluster_stem": "subunits",
    }
    return make_bundle(clusters, recipe, names, stack, 1, config.nodata, **extra)
