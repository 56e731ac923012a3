"""A saved model's rasters: put in the training order, opened on the model's grid, checked.

:func:`training_order` orders the rasters given to ``geomap predict`` or ``geomap suggest`` by
their band names (and notes the ones left out); :func:`open_for_bundle` opens them on the
bundle's grid and refuses rasters of other kinds.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from geomap.errors import ModelError
from geomap.features import band_kind
from geomap.grid import res_in
from geomap.masks import mask_file
from geomap.products import acquisition
from geomap.sources import band_names_of, crs_units, crs_words, nodata_values
from geomap.stack import PartialStack, RasterStack, raster_list


def _check_inputs(
    bundle: dict, stack: RasterStack, model_path: Path, same_order: bool = False
) -> None:
    """Refuse rasters of other kinds than at training (``same_order``: of other band counts)."""
    trained = [(i["name"], tuple(i["bands"])) for i in bundle["inputs"]]
    given = [(s.path.name, s.band_names) for s in stack.sources]
    position = _first_difference(trained, given, by_count=same_order)
    if position is None:
        return
    listed = ", ".join(f"{name} ({', '.join(bands)})" for name, bands in trained)
    raise ModelError(
        f"Model '{model_path}' was trained on {len(trained)} rasters, in this order: {listed}. "
        f"Raster {position} differs: {_describe_input(trained, position)} at training, "
        f"{_describe_input(given, position)} now. Give the same kinds of rasters, in the same "
        + (
            "order, with the same number of bands each."
            if same_order
            else "order (rasters whose band names match the training ones are put in order for "
            "you). If they are, but name their bands otherwise or not at all, give --same-order "
            "to take each for the training raster at its place in the list."
        )
    )


def scale_notes(bundle: dict, stack: RasterStack | PartialStack) -> list[str]:
    """Rasters that declare another scale and offset than their training counterpart.

    A scene delivered as stored values without its scale, beside one that declares it, differs
    10,000 times. Where reading it as the training input was read matches the training values
    (:func:`match_scaling`), it is read so and the note says so; else each file's own applies.
    Rasters alike (a scene's band files) share one note.
    """
    groups: dict[tuple, list[str]] = {}
    for trained, source in zip(bundle["inputs"], stack.sources):
        if "scale_offset" not in trained or source.absent:
            continue  # a bundle saved before scales were kept; an absent input
        matched = source.declared_scaling is not None
        declared = source.declared_scaling if matched else source.scaling
        if matched or declared != trained["scale_offset"]:
            key = (matched, _pairs(declared), _pairs(trained["scale_offset"]))
            groups.setdefault(key, []).append(source.path.name)
    notes = []
    for (matched, declared, at_training), names in groups.items():
        one = len(names) == 1
        head = (
            f"{raster_list(names)} {'declares' if one else 'declare'} the scale and offset "
            f"{declared}, "
            f"{'its' if one else 'their'} training input{'' if one else 's'} {at_training}."
        )
        if matched:
            notes.append(
                f"{head} Read as at training, {'its' if one else 'their'} values match the "
                "training ones (the same product, delivered with other metadata), so geomap "
                f"reads {'it' if one else 'them'} so; read with {'its' if one else 'their'} own, "
                "they would differ from every training sample."
            )
        else:
            notes.append(
                f"{head} geomap applies each file's own, which is right only if both files "
                "state what their values mean; if the two were delivered alike, one file's "
                "metadata is wrong and so is the map."
            )
    return notes


#: How much closer to the training values (in spreads of them) a raster read as the training
#: input was must come than read with its own scale, for geomap to read it so.
SCALING_MARGIN = 4.0


def match_scaling(bundle: dict, stack: RasterStack, positions: Sequence[int]) -> None:
    """Read a raster as its training input was read where that matches the training values.

    The next sheet's Landsat bands with USGS's scale and offset declared, the training ones
    without (or the other way): each file's own made the optical bands 10,000 times apart, the
    spectral screen dropped them on 96% of the map and its accuracy fell from 0.908 to 0.791.
    For each raster whose declared scale and offset differ from its training input's, the
    median of each band (the check read's, as stored: ``Source.stored_median``), read both
    ways, is set against the training samples' median; when the training way comes
    :data:`SCALING_MARGIN` times closer (in interquartile ranges of the training values), the
    raster is read that way.
    Only with the training samples at hand (a forest's bundle). ``stack`` holds the rasters
    present; ``positions`` are their training inputs' places in ``bundle["inputs"]``.
    """
    X = getattr(bundle.get("estimator"), "X_train_", None)
    if X is None:
        return
    starts = np.cumsum([0] + [len(i["bands"]) for i in bundle["inputs"]])
    sources = list(stack.sources)
    for n, (source, k) in enumerate(zip(sources, positions)):
        trained = bundle["inputs"][k].get("scale_offset", source.scaling)
        if trained == source.scaling:
            continue
        stored = np.asarray(source.stored_median, dtype=float)
        if not np.isfinite(stored).any():
            continue
        values = X[:, starts[k] : starts[k + 1]]
        median = np.nanmedian(values, axis=0)
        spread = np.nanpercentile(values, 75, axis=0) - np.nanpercentile(values, 25, axis=0)
        spread = np.where(spread > 0, spread, np.maximum(np.abs(median), 1e-9))
        own, theirs = (_scaled(stored, pairs) for pairs in (source.scaling, trained))
        far_own = np.nanmean(np.abs(own - median) / spread)
        far_theirs = np.nanmean(np.abs(theirs - median) / spread)
        if far_theirs * SCALING_MARGIN < far_own:
            sources[n] = replace(
                source,
                scale_offset=tuple(map(tuple, trained or ())),
                declared_scaling=source.scaling or [],
            )
    stack.sources = tuple(sources)


def _scaled(stored: np.ndarray, pairs) -> np.ndarray:
    if not pairs:
        return stored
    scale, offset = np.asarray(pairs, dtype=float).T
    return stored * scale + offset


def _pairs(pairs: list | None) -> str:
    if not pairs:
        return "none (values as stored)"
    return ", ".join(
        f"x {s:g} {'-' if o < 0 else '+'} {abs(o):g}" for s, o in dict.fromkeys(map(tuple, pairs))
    )


def _first_difference(trained: list, given: list, by_count: bool = False) -> int | None:
    """1-based position of the first raster whose band count or band kinds differ, or None.

    ``by_count``: band counts only (``--same-order``: the band names are not compared).
    """
    for position, ((_, want), (_, got)) in enumerate(zip(trained, given), start=1):
        if by_count and len(want) != len(got):
            return position
        if not by_count and [band_kind(b) for b in want] != [band_kind(b) for b in got]:
            return position
    if len(trained) != len(given):
        return min(len(trained), len(given)) + 1
    return None


def _describe_input(inputs: list, position: int) -> str:
    if position > len(inputs):
        return "nothing"
    name, bands = inputs[position - 1]
    return f"'{name}' ({', '.join(bands)})"


def training_order(
    bundle: dict, rasters: Sequence[Path], same_order: bool = False
) -> tuple[list[Path | None], list[str]]:
    """The rasters in the order the model was trained on, when their names say it.

    ``same_order``: the rasters are taken as given, each for the training input at its place
    (files whose band names say nothing, or other names), with a note; then there have to be
    as many as at training.

    A raster matches a training input with the same band names or, failing that, with the same
    name once the words the other unmatched rasters' names share are set aside ("east_AS.tif"
    for "west_AS.tif" from a neighbouring sheet), or, failing that, with bands of the same kinds
    where that pairs them one to one (a DEM's "elevation" for "dem_32634"). When every raster
    matches exactly one training input, the rasters come back in the training order, with None
    for a training input no raster was given for (an area one survey did not cover); otherwise
    as given. Quality layers (:mod:`geomap.masks`) are no training input: they follow, as given.
    Notes say what was reordered, is absent, or could not be checked.
    """
    masks = [p for p in rasters if mask_file(p)]  # no inputs: they mask some
    rasters = [p for p in rasters if p not in masks]
    if same_order:
        return [*rasters, *masks], _same_order_notes(bundle, rasters)
    trained = [tuple(i["bands"]) for i in bundle["inputs"]]
    given = [band_names_of(p) for p in rasters]
    _refuse_extras(bundle, trained, given, rasters)
    ordered = _by_names(trained, given, rasters)
    if ordered is None:
        return [*rasters, *masks], _unchecked_order(bundle, rasters, given)
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
        pairs = [(p.name, i["name"]) for i, p in zip(bundle["inputs"], ordered) if p is not None]
        renamed = ", ".join(f"{a} as {b}" for a, b in pairs if a != b)  # the others: themselves
        notes.insert(
            0,
            "The rasters were given in another order than at training; geomap put them in the "
            "training order by their names" + (f": {renamed}." if renamed else "."),
        )
    return [*ordered, *masks], notes


def _same_order_notes(bundle: dict, rasters: Sequence[Path]) -> list[str]:
    """What --same-order took each raster for.

    Refused unless as many as at training, and when a raster's bands are named as those of
    another training raster than the one at its place (two rasters swapped: magnetics for the
    DEM mapped with an expected accuracy of 0.00, under a warning the page showed last).
    """
    inputs = bundle["inputs"]
    if len(rasters) != len(inputs):
        listed = ", ".join(f"'{i['name']}'" for i in inputs)
        raise ModelError(
            f"--same-order takes each raster for the training raster at its place in the list: "
            f"the model was trained on {len(inputs)} ({listed}), and {len(rasters)} were given. "
            "Give one for each, in that order."
        )
    pairs = [f"{Path(p).name} as {i['name']}" for p, i in zip(rasters, inputs)]
    notes = [
        "--same-order: each raster was taken for the training raster at its place, without "
        f"comparing band names: {', '.join(pairs)}."
    ]
    trained = [tuple(i["bands"]) for i in inputs]
    for k, (path, names) in enumerate(zip(rasters, map(band_names_of, rasters))):
        if names is None or tuple(names) == trained[k] or tuple(names) not in trained:
            continue
        other = inputs[trained.index(tuple(names))]
        raise ModelError(
            f"--same-order would take '{Path(path).name}' ({', '.join(names)}) for "
            f"'{inputs[k]['name']}' ({', '.join(trained[k])}), yet its bands are named as those "
            f"of '{other['name']}': the rasters look swapped, and the map would be wrong "
            "throughout. Give them in the training order, or leave --same-order out to let the "
            "names order them."
        )
    return notes


def acquisition_notes(bundle: dict, rasters: Sequence[Path | None]) -> list[str]:
    """A note per satellite scene of another acquisition than the model's, by file names.

    ``rasters`` in the training order (:func:`training_order`). The next sheet's Landsat scene,
    of another path and season, put 92% of that sheet outside the area of applicability and
    its expected accuracy at 0.67 against a true 0.84, and nothing said why. The next tile or
    row of the same day's overpass is no other acquisition.
    """
    pairs = {}
    for given, trained in zip(rasters, bundle["inputs"]):
        now = acquisition(Path(given).name) if given is not None else None
        then = acquisition(trained["name"])
        if now and then and now[0] == then[0] and now[2] != then[2]:
            pairs.setdefault((then, now), Path(given).name)
    return [
        f"'{name}' is of a scene acquired on {now[2]} ({now[0]} {now[1]}), the model's on "
        f"{then[2]} ({then[0]} {then[1]}): reflectance changes with the season, the sun and the "
        "atmosphere, so ground the model knows can read as unlike every observation (outside "
        "the area of applicability) and be mapped, and its accuracy estimated, less well. A "
        "scene of the training's season matches best; where the training scene covers some of "
        "this ground, compare the two maps there."
        for (then, now), name in pairs.items()
    ]


def _refuse_extras(bundle: dict, trained: list, given: list, rasters: Sequence[Path]) -> None:
    """Refuse rasters beyond the model's inputs that match none of them by band names."""
    if len(rasters) <= len(trained) or None in given:
        return
    extra = [Path(p).name for bands, p in zip(given, rasters) if bands not in trained]
    if extra and len(rasters) - len(extra) <= len(trained):
        raise ModelError(
            f"{len(rasters)} rasters were given for a model of {len(trained)} inputs, and "
            f"{', '.join(repr(n) for n in extra)} match{'es' if len(extra) == 1 else ''} none of "
            "them by band names. A model maps from the inputs it was trained on: leave "
            f"{'it' if len(extra) == 1 else 'them'} out, or train a new model with "
            f"{'it' if len(extra) == 1 else 'them'}."
        )


def _by_names(trained: list[tuple], given: list, rasters: Sequence[Path]) -> list | None:
    """Each training input's raster: by its band names, the rest by their distinctive words.

    None unless every raster finds exactly one training input.
    """
    if None in given or len(set(given)) < len(given) or len(set(trained)) < len(trained):
        return None  # None: a file GDAL cannot open; opening the stack says what is wrong
    found = {trained.index(bands): Path(p) for bands, p in zip(given, rasters) if bands in trained}
    rest = [(bands, Path(p)) for bands, p in zip(given, rasters) if bands not in trained]
    if rest:
        left = [i for i in range(len(trained)) if i not in found]
        want = _distinctive([trained[i] for i in left])
        whole = [_words(trained[i]) for i in left]
        got = _distinctive([bands for bands, _ in rest])
        picks = [_pick(key, want, whole) for key in got]
        if None in picks or len(set(picks)) < len(picks):
            picks = _by_common_words(want, got) or _by_kinds([trained[i] for i in left], rest)
            if picks is None:
                return None
        found.update({left[k]: p for k, (_, p) in zip(picks, rest)})
    return [found.get(i) for i in range(len(trained))]


def _by_kinds(want: list[tuple], rest: list[tuple]) -> list[int] | None:
    """Each raster left's training input by what its bands are; None unless one-to-one.

    The last resort of :func:`_by_names`, for names that share no word: a DEM trained as
    'dem_32634' (a copy reprojected, named after its file) and given as 'elevation' matched
    nothing, and the refusal named the wrong raster (user pass). Bands of unknown kinds match
    nothing.
    """
    kinds = [tuple(map(band_kind, bands)) for bands in want]
    picks = []
    for bands, _ in rest:
        key = tuple(map(band_kind, bands))
        found = [i for i, kind in enumerate(kinds) if kind == key and None not in kind]
        if len(found) != 1:
            return None
        picks.append(found[0])
    return picks if len(set(picks)) == len(picks) else None


def _pick(key: frozenset, want: list, whole: list) -> int | None:
    """The one training input whose words ``key`` names; None if not one.

    The input with the same distinctive words, else the one holding all of ``key`` among its
    distinctive words, else among all its words: a sheet's tile name is no distinctive word of
    its bands when a DEM trained beside them is left out.
    """
    for found in (
        [i for i, w in enumerate(want) if w == key],
        [i for i, w in enumerate(want) if key and key <= w],
        [i for i, w in enumerate(whole) if key and key <= w],
    ):
        if found:
            return found[0] if len(found) == 1 else None
    return None


def _by_common_words(want: list, got: list) -> list | None:
    """Each raster's training input by the words both sides use; None unless one-to-one.

    Words only one side uses are a sheet's own ("west", "east", a DEM tile's "e115" and
    "e116"): set aside, "Kalgoorlie_East_K" and "Kalgoorlie_West_K" are both "kalgoorlie k", and
    "s32_e116_1arc_v3" is "s32_e115_1arc_v3", where no word is shared by every raster.
    """
    ours, theirs = frozenset().union(*want), frozenset().union(*got)
    keys = [w & theirs for w in want]
    picks = []
    for key in (g & ours for g in got):
        found = [i for i, k in enumerate(keys) if key and k == key]
        if len(found) != 1:
            return None
        picks.append(found[0])
    return picks if len(set(picks)) == len(picks) else None


def _words(bands) -> frozenset:
    """The words of a raster's band names, lower case."""
    return frozenset(w for n in bands for w in re.split(r"[\W_]+", n.casefold()) if w)


def _distinctive(names: list) -> list:
    """Each raster's words (from its band names) less those every raster's name holds."""
    words = [_words(bands) for bands in names]
    shared = frozenset.intersection(*words) if len(words) > 1 else frozenset()
    return [w - shared for w in words]


def _unchecked_order(bundle: dict, rasters: Sequence[Path], given: list) -> list[str]:
    """A note when rasters of the same kinds could be swapped and their names do not tell."""
    kinds = [tuple(band_kind(b) for b in bands) if bands else None for bands in given]
    if len(rasters) < 2 or len(set(kinds)) == len(kinds):
        return []
    pairs = ", ".join(f"{Path(p).name} as {i['name']}" for i, p in zip(bundle["inputs"], rasters))
    return [
        "The rasters' names do not match the training ones, so geomap took them in the order "
        f"given: {pairs}. geomap cannot check which is which; if the order is wrong, so is the "
        "map: give them in the training order."
    ]


def grid_notes(stack) -> list[str]:
    """Say so when no raster is in the model's CRS: the map is drawn on the model's grid."""
    present = [s for s in stack.sources if not getattr(s, "absent", False)]
    if not present or any(s.crs == stack.grid.crs for s in present):
        return []
    theirs = sorted({crs_words(s.crs) for s in present})
    res = stack.grid.res[0]
    return [
        f"The map is on the model's grid ({crs_words(stack.grid.crs)}, {res:g} "
        f"{crs_units(stack.grid.crs)} pixels), as at training; the rasters are in "
        f"{', '.join(theirs)} and are reprojected onto it, so where the grid's rectangle "
        "reaches beyond their footprint the map is nodata. To map in their CRS, train a model "
        "on rasters in it."
    ]


#: Share of a map outside the training rasters' footprint from which predict says so.
BEYOND_TRAINING_SHARE = 0.1


def outside_training(bundle: dict, grid) -> float:
    """The share of a map outside the rectangle the model was trained on.

    ``grid`` is the map's, on the model's CRS (:func:`open_for_bundle`); the training grid's
    bounds are the bundle's.
    """
    west, south, east, north = bundle["grid"]["bounds"]
    left, bottom, right, top = grid.bounds
    area = (right - left) * (top - bottom)
    inside = max(0.0, min(right, east) - max(left, west)) * max(
        0.0, min(top, north) - max(bottom, south)
    )
    return 1 - inside / area if area > 0 else 0.0


#: A raster this many times coarser than its training counterpart is told.
COARSER = 1.5


def resolution_notes(bundle: dict, stack: RasterStack | PartialStack) -> list[str]:
    """Rasters coarser than those the model was trained on (a 60 m scene for a 30 m model).

    Their values are smoother than any the model learnt from, and nothing else says so: a
    model trained at 30 m mapped 60 m Landsat and a 90 m DEM 3 points less accurately with
    the same expected accuracy (user pass). Bundles saved before resolutions were kept: none.
    """
    units = crs_units(stack.grid.crs)
    notes = []
    for trained, source in zip(bundle["inputs"], stack.sources):
        if "resolution" not in trained or source.absent:
            continue
        now, then = res_in(source, stack.grid.crs), trained["resolution"]
        if now > COARSER * then:
            notes.append(
                f"Raster '{source.path.name}' has {now:.4g} {units} pixels, {now / then:.1f} "
                f"times coarser than its training raster '{trained['name']}' ({then:.4g} "
                f"{units}): its values are smoother than any the model learnt from, and the map "
                "and its expected accuracy may be too optimistic where it weighs. Give a raster "
                "at the training resolution, or train a model at this one."
            )
    return notes


#: Training-map standard deviations by which a later map's mean elevation has to differ from
#: the training map's for :func:`elevation_notes` to speak. A forest trained on the demo mapped
#: seven generated sheets of the same area (other seeds) 0.932 and 0.930 right where their
#: ground lay 0.29 and 0.40 lower, 0.871, 0.878, 0.864, 0.819 and 0.839 where it lay 0.66 to
#: 1.1 lower: their alluvium spread over low shale (precision 0.41 to 0.62, against 0.78 and
#: 0.85).
ELEVATION_SHIFT = 0.5
#: Share of a forest's importance in absolute elevation below which the shift is not told.
ELEVATION_WEIGHT = 0.05


def elevation_notes(bundle: dict, recipe, elevation: dict | None) -> list[str]:
    """Warn when a map's ground lies much higher or lower than the training map's.

    A DEM's elevation and its local means say where the ground lies, not what rock it is: units
    the training area had on low ground (alluvium on valley floors) are mapped over whatever
    lies as low on another sheet. ``elevation`` is the new map's (mean and sd over its mapped
    pixels, :meth:`geomap.predict.PredictionSummary.elevation_stats`). Forest bundles saved
    before the training map's elevation was kept: none.
    """
    trained = bundle.get("training", {}).get("elevation")
    estimator = bundle.get("estimator")
    if not trained or not elevation or recipe.dem_band is None or not trained["sd"] > 0:
        return []
    shift = (elevation["mean"] - trained["mean"]) / trained["sd"]
    dem = recipe.band_names[recipe.dem_band]
    level = [
        i
        for i, n in enumerate(recipe.names)
        if n == dem or n.startswith((f"{dem}_mean", f"{dem}_kuwahara"))
    ]
    importance = np.asarray(getattr(estimator, "feature_importances_", []), dtype=float)
    weight = float(importance[level].sum() / importance.sum()) if importance.sum() > 0 else 0.0
    if abs(shift) < ELEVATION_SHIFT or weight < ELEVATION_WEIGHT:
        return []
    name = bundle["inputs"][recipe.band_source[recipe.dem_band]]["name"]
    return [
        f"The ground of this map lies {'lower' if shift < 0 else 'higher'} than the training "
        f"map's: '{name}' averages {elevation['mean']:.4g} here against {trained['mean']:.4g} "
        f"there ({abs(shift):.1f} standard deviations of the training map's), and "
        f"{weight:.0%} of the model's importance is in absolute elevation (the DEM and its "
        "local means). Units it told apart partly by how high they lie, such as alluvium on "
        "valley floors, may be mapped over other ground at the same height here: compare each "
        "unit's share of this map with its share at training, and check the units that grew "
        "in the field."
    ]


def training_area_notes(bundle: dict, grid) -> list[str]:
    """Say how much of a map lies outside the rectangle the model was trained on.

    Only when it is :data:`BEYOND_TRAINING_SHARE` or more (see :func:`outside_training`).
    """
    beyond = outside_training(bundle, grid)
    if beyond < BEYOND_TRAINING_SHARE:
        return []
    west, south, east, north = bundle["grid"]["bounds"]
    left, bottom, right, top = grid.bounds
    ratio = (right - left) * (top - bottom) / ((east - west) * (north - south))
    return [
        f"{beyond:.0%} of this map lies outside the area the model was trained on (the map is "
        f"{ratio:.1f} times the size of that area): no observation was made there, and the "
        "training's cross-validation speaks for the training area. Judge that part by "
        "expected_accuracy.tif and applicability.tif, and check it in the field before relying "
        "on it."
    ]


def open_for_bundle(
    bundle: dict,
    rasters: Sequence[Path | None],
    model_path: Path,
    nodata: float | None = None,
    raster_nodata: dict[str, float] | None = None,
    same_order: bool = False,
) -> RasterStack | PartialStack:
    """The rasters on the bundle's grid: its CRS, resolution and pixel lattice.

    ``same_order``: the rasters' band counts are checked against the training inputs', not
    their band names (``--same-order``).

    A None in ``rasters`` (see :func:`training_order`) stands for a training input that is
    absent: its bands read as no data everywhere. ``nodata`` is taken as no data in rasters that
    declare none, ``raster_nodata`` in the rasters it names; by default, each raster takes the
    value its training input was given.

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
        **_given_nodata(bundle, rasters, nodata, raster_nodata),
    )
    absent = {i: tuple(bundle["inputs"][i]["bands"]) for i, p in enumerate(rasters) if p is None}
    try:
        _check_inputs(
            bundle, PartialStack(stack, absent) if absent else stack, model_path, same_order
        )
        match_scaling(bundle, stack, [i for i, p in enumerate(rasters) if p is not None])
    except BaseException:
        stack.close()
        raise
    return PartialStack(stack, absent) if absent else stack


def _given_nodata(bundle: dict, rasters, nodata, raster_nodata) -> dict:
    """The no-data values of the rasters present, as :meth:`RasterStack.open` takes them.

    A raster named in ``raster_nodata`` (by its own name, or by its training input's when no
    raster given has that name: dem.tif for the next sheet's dem_east.tif) takes its value;
    else the value its training input was given alone (``bundle["input_nodata"]``: a DEM's
    -32768 stays when a new Landsat scene gets --nodata 0); else ``nodata`` when given, else
    the training run's plain value: the one for every raster.
    """
    present = [p for p in rasters if p is not None]
    own = bundle.get("input_nodata") or [None] * len(rasters)
    own = [v for v, p in zip(own, rasters) if p is not None]
    given = {Path(p).name for p in present}
    trained = {i["name"]: p for i, p in zip(bundle["inputs"], rasters) if p is not None}
    raster_nodata = {
        str(trained[n]) if n not in given and n in trained else n: v
        for n, v in (raster_nodata or {}).items()
    }
    named = nodata_values(present, None, raster_nodata)
    return {
        "nodata": bundle["nodata"] if nodata is None else nodata,
        "raster_nodata": {
            str(Path(p).resolve()): mine if mine is not None else theirs
            for p, mine, theirs in zip(present, named, own)
            if mine is not None or theirs is not None
        },
    }
