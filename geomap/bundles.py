"""A saved model's rasters: put in the training order, opened on the model's grid, checked.

:func:`training_order` orders the rasters given to ``geomap predict`` or ``geomap suggest`` by
their band names (and notes the ones left out); :func:`open_for_bundle` opens them on the
bundle's grid and refuses rasters of other kinds.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from geomap.errors import ModelError
from geomap.features import band_kind
from geomap.sources import band_names_of
from geomap.stack import PartialStack, RasterStack


def _check_inputs(bundle: dict, stack: RasterStack, model_path: Path) -> None:
    trained = [(i["name"], tuple(i["bands"])) for i in bundle["inputs"]]
    given = [(s.path.name, s.band_names) for s in stack.sources]
    position = _first_difference(trained, given)
    if position is None:
        return
    listed = ", ".join(f"{name} ({', '.join(bands)})" for name, bands in trained)
    raise ModelError(
        f"Model '{model_path}' was trained on {len(trained)} rasters, in this order: {listed}. "
        f"Raster {position} differs: {_describe_input(trained, position)} at training, "
        f"{_describe_input(given, position)} now. Give the same kinds of rasters, in the same "
        "order (rasters whose band names match the training ones are put in order for you)."
    )


def _first_difference(trained: list, given: list) -> int | None:
    """1-based position of the first raster whose band count or band kinds differ, or None."""
    for position, ((_, want), (_, got)) in enumerate(zip(trained, given), start=1):
        if [band_kind(b) for b in want] != [band_kind(b) for b in got]:
            return position
    if len(trained) != len(given):
        return min(len(trained), len(given)) + 1
    return None


def _describe_input(inputs: list, position: int) -> str:
    if position > len(inputs):
        return "nothing"
    name, bands = inputs[position - 1]
    return f"'{name}' ({', '.join(bands)})"


def training_order(bundle: dict, rasters: Sequence[Path]) -> tuple[list[Path | None], list[str]]:
    """The rasters in the order the model was trained on, when their band names say it.

    When every raster's band names match exactly one training input's, the rasters come back in
    the training order, with None for a training input no raster was given for (an area one
    survey did not cover); otherwise as given. Notes say what was reordered or is absent.
    """
    trained = [tuple(i["bands"]) for i in bundle["inputs"]]
    named = {band_names_of(p): Path(p) for p in rasters}
    matched = len(named) == len(rasters) and set(named) <= set(trained)
    if not matched or len(set(trained)) < len(trained):
        return list(rasters), []
    ordered = [named.get(bands) for bands in trained]
    absent = [
        f"'{i['name']}' ({', '.join(i['bands'])})"
        for i, path in zip(bundle["inputs"], ordered)
        if path is None
    ]
    notes = (
        [
            f"No raster was given for {', '.join(absent)}; every pixel is mapped from the other "
            "rasters, as under a cloud, and is less certain than at training."
        ]
        if absent
        else []
    )
    present = [p for p in ordered if p is not None]
    if present != [Path(p) for p in rasters]:
        notes.insert(
            0,
            "The rasters were given in another order than at training; geomap put them in the "
            f"training order by their band names: {', '.join(p.name for p in present)}.",
        )
    return ordered, notes


def open_for_bundle(
    bundle: dict, rasters: Sequence[Path | None], model_path: Path
) -> RasterStack | PartialStack:
    """The rasters on the bundle's grid: its CRS, resolution and pixel lattice.

    A None in ``rasters`` (see :func:`training_order`) stands for a training input that is
    absent: its bands read as no data everywhere.

    Raises
    ------
    ModelError
        If the rasters are not of the kinds, in the order, the model was trained on.
    """
    grid = bundle["grid"]
    stack = RasterStack.open(
        [p for p in rasters if p is not None],
        crs=grid["crs_wkt"],
        resolution=grid["resolution"][0],
        origin=(grid["transform"][2], grid["transform"][5]),
        nodata=bundle["nodata"],
    )
    absent = {i: tuple(bundle["inputs"][i]["bands"]) for i, p in enumerate(rasters) if p is None}
    whole = PartialStack(stack, absent) if absent else stack
    try:
        _check_inputs(bundle, whole, model_path)
    except BaseException:
        stack.close()
        raise
    return whole
