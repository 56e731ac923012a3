"""What geomap makes of a set of inputs, before any training: grid, sources, samples, warnings.

The app shows it on its Data page; it reads only the rasters' headers and the observations.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from geomap.labels import check_class_count, class_name_notes, class_order, few_sample_notes
from geomap.legend import read_named
from geomap.placement import placement_notes, sample_labels
from geomap.stack import RasterStack


def describe_inputs(
    rasters: Sequence[str | Path],
    labels: str | Path | None = None,
    label_column: str | None = None,
    *,
    label_crs: str | None = None,
    label_layer: str | None = None,
    legend: str | Path | None = None,
    nodata: float | None = None,
    raster_nodata: dict[str, float] | None = None,
    max_per_class: int = 2000,
) -> dict:
    """The reference grid, each source and, with labels, the samples per class and warnings.

    With a ``legend`` (see :mod:`geomap.legend`) the classes carry its names, in its order.
    ``nodata`` and ``raster_nodata`` are as :meth:`geomap.stack.RasterStack.open` takes them:
    the value for every raster that declares none, and values by raster file name.

    Raises
    ------
    GeomapError
        For any input that ``geomap run`` would refuse for the same reason.
    """
    with RasterStack.open(rasters, nodata=nodata, raster_nodata=raster_nodata) as stack:
        out = {**stack.describe(), "warnings": stack.notes()}
        if labels is None or label_column is None:
            return out
        frame, key, notes = read_named(
            labels, label_column, legend, crs=label_crs, layer=label_layer, grid=stack.grid
        )
        out["warnings"] += notes
        samples = sample_labels(frame, stack.grid, max_per_class=max_per_class, random_state=0)
    names = key.sort(samples.labels) if key is not None else class_order(samples.labels)
    check_class_count(names, Path(labels))
    counts = {str(n): int(np.sum(samples.labels == n)) for n in names}
    out["samples"] = {"counts": samples.counts, "per_class": counts}
    out["warnings"] += _sample_warnings(Path(labels), samples.counts, counts)
    return out


def _sample_warnings(path: Path, placed: dict, per_class: dict) -> list[str]:
    notes = few_sample_notes(per_class) + class_name_notes(list(per_class), path, per_class)
    return notes + placement_notes(path, placed)
