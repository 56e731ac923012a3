"""Observations on the grid: points give their pixel, polygons their pixels, features there.

:func:`sample_labels` places what :func:`geomap.labels.read_labels` read on the stack's grid:
points give their pixel, polygons are rasterised block by block with a per-class cap and a
round-robin draw across polygons, so one large polygon does not swamp the others.
:func:`extract_features` computes the features at those pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer
from rasterio.features import rasterize
from rasterio.windows import Window

from geomap.errors import LabelError
from geomap.features import FeatureRecipe
from geomap.grid import Grid, extent_text
from geomap.labels import class_order, collection_parts
from geomap.stack import RasterStack

_EXTRACT_BLOCK = 64
_RASTERISE_BLOCK = 2048


@dataclass
class Samples:
    """Labelled pixels of the reference grid.

    ``site`` names each sample's observation as its file does and ``site_key`` is that name's
    value alone (the column it comes from is ``counts["site_key"]``). ``xy`` is where it was
    observed (a point's, or a multipoint part's, own coordinates in the grid's CRS; a polygon
    pixel's centre). ``weight`` is what each sample counts for in training (see
    :func:`observation_weights`).
    """

    rows: np.ndarray
    cols: np.ndarray
    labels: np.ndarray
    kind: np.ndarray
    source: np.ndarray
    site: np.ndarray
    site_key: np.ndarray
    xy: np.ndarray
    weight: np.ndarray
    counts: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, keep: np.ndarray) -> Samples:
        """The samples where ``keep`` is true, with the same counts."""
        return Samples(
            self.rows[keep],
            self.cols[keep],
            self.labels[keep],
            self.kind[keep],
            self.source[keep],
            self.site[keep],
            self.site_key[keep],
            self.xy[keep],
            self.weight[keep],
            dict(self.counts),
        )


def sample_labels(
    labels: gpd.GeoDataFrame,
    grid: Grid,
    *,
    max_per_class: int = 2000,
    random_state: int | None = 0,
) -> Samples:
    """Place observations on the grid's pixels.

    Raises
    ------
    LabelError
        If no observation falls on the grid.
    """
    given = as_read = labels
    labels = labels.to_crs(grid.crs).reset_index(drop=True)
    fids = (labels.index + 1).astype(str)  # the file's feature ids, before any row is dropped
    if "site" not in labels:
        labels["site"] = "fid " + fids
    if "site_key" not in labels:
        labels["site_key"] = fids
    repeats = _repeats(labels, _at_zero(given.geometry.values))
    kept = ~repeats.pop("mask")
    in_file = _point_count(labels)  # points (parts) as the file holds them
    if not kept.all():
        attrs, n_rows = labels.attrs, len(labels)
        labels = labels[kept].reset_index(drop=True)
        labels.attrs = attrs
        given = given.iloc[np.flatnonzero(kept)]
    else:
        n_rows = len(labels)
    rng = np.random.default_rng(random_state)
    is_point = labels.geom_type.isin(["Point", "MultiPoint"]).to_numpy()
    broken = np.flatnonzero(~is_point)[~shapely.is_valid(labels.geometry.values[~is_point])]
    labels.loc[~is_point, labels.geometry.name] = _valid(labels.geometry.values[~is_point])
    flat = np.flatnonzero(~is_point)[shapely.is_empty(labels.geometry.values[~is_point])]
    if len(flat) == len(labels):
        raise LabelError(
            f"Labels '{labels['source'].iloc[0]}': every polygon has no area once repaired "
            f"(drawn along a line or onto a point, e.g. {_site_of(labels, flat[0])}), so none "
            "covers a pixel. Redraw them as areas, or give points."
        )
    drawn, unit_pixels = _polygon_pixels(labels[~is_point], grid, max_per_class, rng)
    parts = [_point_pixels(labels[is_point], grid), drawn]
    rows, cols, idx, kind, xy = (np.concatenate(p) for p in zip(*parts))
    if len(rows) == 0:
        raise LabelError(_no_overlap_message(labels, grid, as_read))
    sites, keys = labels["site"], labels["site_key"]
    samples = Samples(
        rows=rows,
        cols=cols,
        labels=labels["label"].to_numpy()[idx].astype(str),
        kind=kind,
        source=labels["source"].to_numpy()[idx].astype(str),
        site=sites.to_numpy()[idx].astype(str),
        site_key=keys.to_numpy()[idx].astype(str),
        xy=xy,
        weight=observation_weights(kind, idx, _area_on(labels, grid), grid),
    )
    n_points = _point_count(labels)
    samples.counts = {
        "observations": n_rows,
        "repeated_rows": repeats,
        "points": in_file,
        "polygons": int((~is_point).sum()),
        "points_outside_grid": n_points - int((kind == "point").sum()),
        **_outside(given, labels, is_point, idx[kind == "point"], grid),
        "polygon_pixels": int((kind == "polygon").sum()),
        "polygon_area_pixels": unit_pixels,
        "polygon_worth": float(samples.weight[kind == "polygon"].sum()),
        "blank_classes": int(labels.attrs.get("blank_classes", 0)),
        "no_geometry": int(labels.attrs.get("no_geometry", 0)),
        "classes_without_geometry": list(labels.attrs.get("classes_without_geometry", [])),
        "site_key": labels.attrs.get("site_key", "fid"),
        "classes_off_grid": class_order(
            set(labels["label"].drop(flat)) - set(samples.labels)  # not those said as flat
        ),
        "conflicting_pixels": _conflicts(samples),
        "overlapping_polygons": _overlaps(labels[~is_point], grid),
        "repaired_polygons": {
            "count": len(broken),
            "example": [_site_of(labels, i) for i in broken[:3]],
        },
        "flat_polygons": {
            "count": len(flat),
            "example": [_site_of(labels, i) for i in flat[:3]],
            "classes_lost": class_order(set(labels["label"][flat]) - set(samples.labels)),
        },
    }
    for name in ("ignored_crs", "assumed_crs", "folders"):
        if name in labels.attrs:
            samples.counts[name] = labels.attrs[name]
    if given.crs is not None and _ballpark(given.crs, grid.crs):
        named = given.crs.name if given.crs.name != "unknown" else given.crs.srs
        samples.counts["ballpark_datum"] = [named, CRS(grid.crs).name]
    return samples


#: What a mapped polygon counts for beside field points: this many times the points the survey
#: gives, on average, to an area of its size (see :func:`observation_weights`).
POLYGON_WORTH = 3.0


def observation_weights(
    kind: np.ndarray, idx: np.ndarray, area: np.ndarray, grid: Grid
) -> np.ndarray:
    """What each sample counts for in training: 1 for a point; a polygon's pixels share its worth.

    Beside field points, a mapped polygon counts :data:`POLYGON_WORTH` times as many
    observations as the points give, on average, to an area of its size on the map, and at
    least one: its pixels are one place seen many times, not that many observations. Counted
    pixel for pixel, a legacy patch's 4,032 pixels beside 300 points made a sheet's basalt the
    look of a 0.09 km² sliver of it, whose pixels all lie near its contacts (107 pixels against
    14 basalt points): basalt's recall on the map fell from 0.73 to 0.22, its accuracy from 0.909
    (the points alone) to 0.880. So weighted (with the forest's leaves holding at least half an
    observation's worth, :class:`geomap.models.LithologyForest`), 0.920. On seven generated
    scenes with their legacy patch the map's accuracy went from 0.935 (points alone) to 0.937
    pixel for pixel, whose worst scene lost 4.4 points, and 0.937 so weighted, whose worst lost
    1.1. Without the leaf bound: three times 0.939 and 0.917 on the sheet; once, 0.936 and
    0.915; ten times, 0.941 but 0.895. Without points every sample counts 1.
    ``idx`` is each sample's row of the observations, ``area`` each row's area on the grid.
    """
    weight = np.ones(len(kind))
    polygon = kind == "polygon"
    n_points = int((~polygon).sum())
    if n_points == 0 or not polygon.any():
        return weight
    pixels = np.bincount(idx[polygon], minlength=len(area))  # each polygon's samples
    per_point = grid.width * grid.height / n_points  # map pixels per field point
    worth = np.maximum(POLYGON_WORTH * area / (grid.res[0] * grid.res[1]) / per_point, 1.0)
    weight[polygon] = worth[idx[polygon]] / pixels[idx[polygon]]
    return weight


def vote_weights(
    kind: np.ndarray, labels: np.ndarray, weight: np.ndarray, class_pixels: dict
) -> np.ndarray:
    """What each sample weighs in the vote of a SOM node: as in training, but by mapped area.

    The per-class cap (``max_per_class``) draws as many pixels of a small unit of a legacy map
    as of a large one, which the forest's balanced classes expect. A SOM node's classes are the
    votes of the samples on it, so there the drawn pixels of each unit stand for its mapped
    area: ``class_pixels[unit]`` (the pixels its polygons hold on the grid, where polygons
    overlap the smallest one's, see ``counts["polygon_area_pixels"]``) over its drawn
    pixels, scaled so that the polygons together weigh what :func:`observation_weights` gives
    them beside field points (which weigh as they do). On a helper's legacy map whose granite
    covers 4% of the sheet, the labelled SOM mapped granite on twice its true area (precision
    0.43) with equal draws.
    """
    out = np.asarray(weight, dtype=float).copy()
    polygon = kind == "polygon"
    if not polygon.any():
        return out
    units, inverse, drawn = np.unique(labels[polygon], return_inverse=True, return_counts=True)
    area = np.fmax([float(class_pixels.get(str(u), 0.0)) for u in units], 1.0)
    stands = (area / drawn)[inverse]
    out[polygon] = stands * out[polygon].sum() / stands.sum()
    return out


def _ballpark(source, target) -> bool:
    """Whether PROJ moves the observations by a ballpark datum shift that matters.

    Their CRS names an ellipsoid but no datum (ED50's International ellipsoid without ED50),
    another than the map's. Not when the map's CRS is the one without a datum (a raster's),
    nor on one ellipsoid (no shift at all), nor onto a sphere (MODIS sinusoidal: its grid has
    no datum to be exact in).
    """
    own, theirs = CRS(source), CRS(target)
    if not own.datum.name.lower().startswith("unknown") or own.ellipsoid == theirs.ellipsoid:
        return False
    if theirs.ellipsoid.inverse_flattening == 0:  # a sphere
        return False
    moved = Transformer.from_crs(own, theirs, always_xy=True)  # as GeoDataFrame.to_crs
    return "ballpark" in moved.description.lower()


def _conflicts(samples: Samples) -> dict:
    """Pixels where points name different units: how many, and the first one's sites."""
    point = np.flatnonzero(samples.kind == "point")
    frame = pd.DataFrame(
        {"pixel": samples.rows[point] * (samples.cols.max() + 1) + samples.cols[point]}
    )
    frame["label"], frame["site"] = samples.labels[point], samples.site[point]
    units = frame.groupby("pixel")["label"].nunique()
    mixed = units.index[units > 1]
    if not len(mixed):
        return {"pixels": 0}
    first = frame[frame["pixel"] == mixed[0]].drop_duplicates("label")
    return {
        "pixels": int(len(mixed)),
        "example": [f"{site} ({label})" for site, label in zip(first["site"], first["label"])],
    }


def placement_notes(path: Path, counts: dict) -> list[str]:
    """Warnings on observations read but not used, and on classes left with none.

    Observations with a blank class, off the rasters or on nodata are not used; a class of the
    file may be left with no observation. ``counts`` is :attr:`Samples.counts`, with
    ``on_nodata`` and ``classes_on_nodata`` once features were extracted.
    """
    notes = []
    if counts.get("ballpark_datum"):
        own, theirs = counts["ballpark_datum"]
        notes.append(
            f"'{path.name}' is in {own}, the map in {theirs}, and PROJ knows no datum shift "
            "between them here: it applied a ballpark one, which can put the observations tens "
            "to hundreds of metres off. Give their CRS with its datum, as an EPSG code (ED50 / "
            "UTM zone 31N is EPSG:23031), rather than an ellipsoid alone."
        )
    if counts.get("ignored_crs"):
        given, own = counts["ignored_crs"]
        notes.append(
            f"The CRS given for '{path.name}' ({given}) is not used: the file states its own, "
            f"{own}. Clear --label-crs, or correct the file's CRS if that one is wrong."
        )
    if counts.get("assumed_crs"):
        notes.append(
            f"'{path.name}' states no CRS: its coordinates are read in {counts['assumed_crs']}, "
            "as given with --label-crs. If they are in another, give that one."
        )
    if counts.get("folders"):
        folders = counts["folders"]
        notes.append(
            f"'{path.name}': its {len(folders)} folders ({', '.join(folders)}) are read together "
            "as one set of observations."
        )
    blank = counts.get("blank_classes", 0)
    if blank:
        notes.append(f"{blank} observations in '{path.name}' have a blank class and are not used.")
    unplaced = counts.get("no_geometry", 0)
    if unplaced:
        notes.append(
            f"{unplaced} observations in '{path.name}' have no geometry (no point or polygon: a "
            "lost GPS fix, a row never placed) and are not used; give them coordinates."
        )
    outside = counts.get("points_outside_grid", 0)
    if outside:
        named = counts.get("outside_example", [])
        zero = counts.get("outside_at_zero", 0)
        notes.append(
            f"{outside} of {counts.get('points', 0)} points in '{path.name}' fall outside the "
            "grid (the rasters' common footprint, in whole pixels of the grid) and are not used"
            + (f" ({'e.g. ' if outside > len(named) else ''}{', '.join(named)})" if named else "")
            + "."
            + (
                f" {zero} of them {'lies' if zero == 1 else 'lie'} at 0, 0: a position never "
                "recorded (a GPS without a fix)."
                if zero
                else ""
            )
            + _slip_text(counts.get("outside_slips", {}))
        )
    nodata = counts.get("on_nodata", 0)
    if nodata:
        what = "samples (points or polygon pixels)" if counts.get("polygon_pixels") else "points"
        notes.append(
            f"{nodata} {what} of '{path.name}' fall where no raster has data and are not used."
        )
    conflicts = counts.get("conflicting_pixels", {}).get("pixels", 0)
    if conflicts:
        example = ", ".join(counts["conflicting_pixels"]["example"])
        notes.append(
            f"{conflicts} pixel(s) of the grid hold points of '{path.name}' that name different "
            f"units (e.g. {example}): a contact inside one pixel, a duplicate entry or a wrong "
            "label. They are all kept; check them."
        )
    worth, pixels = counts.get("polygon_worth", 0.0), counts.get("polygon_pixels", 0)
    if pixels and worth < pixels:  # beside points: the polygons' pixels share their worth
        notes.append(
            f"In training the model, the {counts['polygons']} polygon(s) of '{path.name}' count "
            f"as {worth:,.0f} observations beside its {counts['points']:,} points, not as their "
            f"{pixels:,} pixels, since a polygon's pixels are one place seen many times: each "
            f"polygon counts {POLYGON_WORTH:g} times as many observations as the survey's "
            "points put, on average, in an area of its size (at least one). The accuracy "
            "figures still score every pixel and every point once. To train on polygons pixel "
            "by pixel, give them in a file of their own."
        )
    repeated = counts.get("repeated_rows", {}).get("count", 0)
    if repeated:
        notes.append(
            f"{repeated} row(s) of '{path.name}' repeat an earlier row exactly, the same place "
            f"and unit (e.g. {counts['repeated_rows']['example']}): an entry made twice. Each "
            "is used once, so that it does not count double in the model and its validation."
        )
    repaired = counts.get("repaired_polygons", {}).get("count", 0)
    if repaired:
        example = ", ".join(counts["repaired_polygons"]["example"])
        notes.append(
            f"{repaired} polygon(s) of '{path.name}' are not valid shapes: their outlines cross "
            f"or touch themselves ({'e.g. ' if repaired > 3 else ''}{example}). geomap repaired "
            "them as GIS tools do (a bow-tie becomes its two triangles; a spike, having no "
            "area, is dropped) and used the repaired shapes. Check those outlines (in QGIS: "
            "Vector > Geometry Tools > Check Validity)."
        )
    flat = counts.get("flat_polygons", {})
    if flat.get("count"):
        lost = flat["classes_lost"]
        notes.append(
            f"{flat['count']} polygon(s) of '{path.name}' have no area once repaired (drawn "
            f"along a line or onto a point: {', '.join(flat['example'])}) and are not used"
            + (
                f"; unit(s) {', '.join(repr(c) for c in lost)} are left with no observation."
                if lost
                else "."
            )
        )
    overlap = counts.get("overlapping_polygons", {}).get("pixels", 0)
    if overlap:
        example = " and ".join(counts["overlapping_polygons"]["example"])
        notes.append(
            f"Polygons of different units in '{path.name}' overlap over about {overlap} pixel(s) "
            f"of the grid (the most: {example}). Each such pixel takes the unit of the smallest "
            "polygon over it, as the most detailed mapping; if a large outline (a regional unit, "
            "a map sheet) sits over detailed units by mistake, remove it or clip it."
        )
    unplaced_classes = counts.get("classes_without_geometry", [])
    if unplaced_classes:
        notes.append(
            f"Class(es) {', '.join(repr(str(c)) for c in unplaced_classes)} of '{path.name}' "
            "have observations only without a geometry, so the map cannot show them. Give "
            "them coordinates."
        )
    lost = [*counts.get("classes_off_grid", []), *counts.get("classes_on_nodata", [])]
    if lost:
        notes.append(
            f"Class(es) {', '.join(repr(str(c)) for c in lost)} of '{path.name}' have no "
            "observation where the rasters have data, so the map cannot show them. Add "
            "observations of them inside the rasters."
        )
    return notes


def _point_pixels(points: gpd.GeoDataFrame, grid: Grid) -> tuple[np.ndarray, ...]:
    exploded = points.explode(index_parts=False)
    x, y = exploded.geometry.x.to_numpy(), exploded.geometry.y.to_numpy()
    fx, fy = (x - grid.transform.c) / grid.transform.a, (y - grid.transform.f) / grid.transform.e
    placed = np.isfinite(fx) & np.isfinite(fy)  # inf: not valid in their stated CRS
    # A point on the grid's right or bottom edge belongs to the last pixel, not beyond it.
    fx = np.where(np.isclose(fx, grid.width, rtol=0, atol=1e-6), grid.width - 0.5, fx)
    fy = np.where(np.isclose(fy, grid.height, rtol=0, atol=1e-6), grid.height - 0.5, fy)
    col = np.floor(np.where(placed, fx, -1)).astype("int64")
    row = np.floor(np.where(placed, fy, -1)).astype("int64")
    inside = (row >= 0) & (row < grid.height) & (col >= 0) & (col < grid.width)
    idx = exploded.index.to_numpy()[inside]
    xy = np.column_stack([x[inside], y[inside]])  # where it was observed, not the pixel centre
    return row[inside], col[inside], idx, np.full(len(idx), "point"), xy


def _polygon_pixels(
    polygons: gpd.GeoDataFrame, grid: Grid, cap: int, rng: np.random.Generator
) -> tuple[tuple[np.ndarray, ...], dict]:
    """The pixels drawn from the polygons, and the pixels each unit holds on the grid.

    The draw is (rows, cols, polygon, kind, centres); a unit holds the pixels its polygons burnt
    (where polygons overlap, the smallest one's) and one per polygon too small to burn any.
    """
    empty = (np.empty(0, "int64"),) * 3 + (np.empty(0, "<U7"), np.empty((0, 2)))
    polygons = polygons[~polygons.geometry.is_empty.to_numpy()]  # repairs that left no area
    if polygons.empty:
        return empty, {}
    left, bottom, right, top = polygons.total_bounds
    c0 = max(0, int(np.floor((left - grid.transform.c) / grid.res[0])))
    r0 = max(0, int(np.floor((grid.transform.f - top) / grid.res[1])))
    c1 = min(grid.width, int(np.ceil((right - grid.transform.c) / grid.res[0])))
    r1 = min(grid.height, int(np.ceil((grid.transform.f - bottom) / grid.res[1])))
    if c1 <= c0 or r1 <= r0:
        return empty, {}
    pixel_area = grid.res[0] * grid.res[1]
    area = _area_on(polygons, grid)
    expected = np.maximum(area / pixel_area, 1.0)
    # Thin big polygons while burning: each keeps four times its share of its class's cap, and
    # a class four times its cap in all (small polygons beside a big one do not starve it), so
    # memory is bounded per class, not by the mapped area.
    class_pixels = (
        polygons["label"]
        .map(pd.Series(expected).groupby(polygons["label"].to_numpy()).sum())
        .to_numpy()
    )
    per_class = polygons["label"].map(polygons["label"].value_counts()).to_numpy()
    fair = 4.0 * np.maximum(cap / per_class, 16) / expected  # each its share of the draw
    p_by_polygon = np.minimum(1.0, np.maximum(4.0 * cap / class_pixels, fair))
    # Burnt largest first: where polygons overlap, the smallest (the most detailed mapping) wins.
    order = np.argsort(-area, kind="stable")
    shapes = list(zip(polygons.geometry.values[order], polygons.index.to_numpy()[order] + 1))
    found, won = [], np.zeros(len(polygons), "int64")  # pixels each polygon holds
    for row in range(r0, r1, _RASTERISE_BLOCK):
        for col in range(c0, c1, _RASTERISE_BLOCK):
            win = Window(col, row, min(_RASTERISE_BLOCK, c1 - col), min(_RASTERISE_BLOCK, r1 - row))
            burnt = rasterize(
                shapes,
                out_shape=(int(win.height), int(win.width)),
                transform=grid.transform @ grid.transform.translation(win.col_off, win.row_off),
                fill=0,
                dtype="int32",
            )
            rr, cc = np.nonzero(burnt)
            ids = burnt[rr, cc] - 1
            where = polygons.index.get_indexer(ids)
            won += np.bincount(where, minlength=len(polygons))
            keep = rng.random(len(ids)) < p_by_polygon[where]
            found.append((rr[keep] + row, cc[keep] + col, ids[keep]))
    rows, cols, ids = (np.concatenate(p) for p in zip(*found))
    burnt_ids = len(ids)
    rows, cols, ids = _add_unburnt(polygons, grid, rows, cols, ids)
    won += np.bincount(polygons.index.get_indexer(ids[burnt_ids:]), minlength=len(polygons))
    held = pd.Series(won).groupby(polygons["label"].astype(str).to_numpy()).sum()
    unit_pixels = {str(u): int(n) for u, n in held.items() if n > 0}
    if len(ids) == 0:
        return empty, unit_pixels
    chosen = _round_robin(polygons.loc[ids, "label"].to_numpy(), ids, cap, rng)
    rows, cols = rows[chosen], cols[chosen]
    centres = np.column_stack(grid.xy(rows, cols))
    return (rows, cols, ids[chosen], np.full(len(chosen), "polygon"), centres), unit_pixels


def _valid(polygons: np.ndarray) -> np.ndarray:
    """Polygons as drawn, repaired where they cross themselves (a digitised bowtie).

    A repair that leaves a collection (an area and a stray line) keeps only the area; one that
    leaves no area (a polygon drawn back and forth along a line) leaves an empty polygon, not a
    line burnt as pixels of its unit.
    """
    fixed = shapely.make_valid(polygons)
    out = np.array(fixed, dtype=object)
    for i in np.flatnonzero(shapely.get_type_id(fixed) == 7):  # a collection: its areas
        areas = collection_parts(fixed[i], (2,))
        out[i] = shapely.Polygon() if areas is None else areas
    flat = (shapely.get_dimensions(fixed) < 2) & (shapely.get_type_id(fixed) != 7)
    out[flat] = shapely.Polygon()
    return out


def _area_on(polygons: gpd.GeoDataFrame, grid: Grid) -> np.ndarray:
    """Each polygon's area inside the grid (a regional outline may be far larger)."""
    return shapely.area(shapely.intersection(polygons.geometry.values, shapely.box(*grid.bounds)))


def _overlaps(polygons: gpd.GeoDataFrame, grid: Grid) -> dict:
    """Where polygons of different units overlap on the grid: pixels' worth, and the first pair.

    Neighbours of a mapped patch touch along their shared borders: only pairs whose insides
    meet (a DE-9IM test, far cheaper than their intersection) are intersected.
    """
    pairs = gpd.sjoin(polygons, polygons, predicate="intersects")
    pairs = pairs[
        (pairs.index < pairs["index_right"]) & (pairs["label_left"] != pairs["label_right"])
    ]
    left = polygons.geometry.loc[pairs.index].values
    right = polygons.geometry.loc[pairs["index_right"]].values
    inside = shapely.relate_pattern(left, right, "T********")
    if not inside.any():
        return {"pixels": 0}
    pairs = pairs[inside]
    common = shapely.intersection(
        shapely.intersection(left[inside], right[inside]), shapely.box(*grid.bounds)
    )
    pixels = shapely.area(common) / (grid.res[0] * grid.res[1])
    if pixels.sum() < 0.5:  # shared borders only
        return {"pixels": 0}
    first = int(np.argmax(pixels))
    named = [
        f"{_site_of(polygons, i)} ({polygons.at[i, 'label']})"
        for i in (pairs.index[first], pairs["index_right"].iloc[first])
    ]
    return {"pixels": round(float(pixels.sum())), "example": named}


def _point_count(labels: gpd.GeoDataFrame) -> int:
    """Points in ``labels``, each part of a multipoint counted."""
    point = labels.geom_type.isin(["Point", "MultiPoint"]).to_numpy()
    return int(shapely.get_num_geometries(labels.geometry[point].values).sum())


def _repeats(labels: gpd.GeoDataFrame, at_zero: np.ndarray) -> dict:
    """Point rows that repeat an earlier row: the same place and unit (an entry made twice).

    Points at 0, 0 as given (``at_zero``) are no repeats: GPS fixes that failed, told as such
    among the points off the grid. Returns their ``mask``, ``count`` and the first repeat,
    "line 40 repeats line 12".
    """
    point = labels.geom_type.isin(["Point", "MultiPoint"]).to_numpy() & ~at_zero
    key = pd.DataFrame({"where": labels.geometry.to_wkb(), "label": labels["label"].astype(str)})
    again = point & key.duplicated().to_numpy()
    out = {"mask": again, "count": int(again.sum())}
    if out["count"]:
        first = int(np.flatnonzero(again)[0])
        earlier = int(np.flatnonzero(key.eq(key.iloc[first]).all(axis=1).to_numpy())[0])
        out["example"] = f"{_site_of(labels, first)} repeats {_site_of(labels, earlier)}"
    return out


#: How each slip of :data:`SLIPS` reads in a note, and what to check.
_SLIP_WORDS = {
    "swapped": ("with their two coordinates swapped", "which column holds which"),
    "longitude_sign": (
        "with the sign of their longitude changed",
        "the longitude's sign (a minus sign, or W, O and E)",
    ),
    "latitude_sign": (
        "with the sign of their latitude changed",
        "the latitude's sign (a minus sign, or S and N)",
    ),
    "both_signs": (
        "with the signs of their longitude and latitude changed",
        "both signs (minus signs, or the hemisphere letters)",
    ),
}


def _slip_text(slips: dict) -> str:
    """Sentences naming the points off the grid that a typing slip undone puts on it."""
    text = ""
    for slip, found in slips.items():
        n, named = found["count"], found["example"]
        words, check = _SLIP_WORDS[slip]
        some = "e.g. " if n > len(named) else ""
        rows = "that row" if n == 1 else "those rows"
        text += (
            f" {n} of them {'falls' if n == 1 else 'fall'} on the rasters {words} "
            f"({some}{', '.join(named)}): check {check} in {rows}."
        )
    return text


def _outside(given, labels, is_point, placed, grid: Grid) -> dict:
    """The first few points off the grid by name, how many sit at 0, 0 (no GPS fix), and slips.

    ``outside_slips`` names the points off the grid that fall on it with their coordinates
    swapped or a sign changed (see :func:`_slips`).
    """
    off = np.setdiff1d(np.flatnonzero(is_point), placed)
    geometries = given.geometry.values[off]
    return {
        "outside_example": [_site_of(labels, i) for i in off[:3]],
        "outside_at_zero": int(_at_zero(geometries).sum()),
        "outside_slips": {
            slip: {"count": len(which), "example": [_site_of(labels, i) for i in off[which][:3]]}
            for slip, which in _slips(geometries, given.crs, grid).items()
        },
    }


#: Typing slips that put a point off the rasters, tried on each point off them, in this order.
SLIPS = ("swapped", "longitude_sign", "latitude_sign", "both_signs")


def _slips(geometries: np.ndarray, crs, grid: Grid) -> dict[str, np.ndarray]:
    """Points (positions in ``geometries``) that fall on the grid once a typing slip is undone.

    Their x and y swapped (any CRS); in longitude and latitude, also the sign of either or both
    changed (a minus sign, or the S or W it stands for, lost or added). Each point is put down
    to the first slip that places it. Multipoints are not tried.
    """
    x, y = shapely.get_x(geometries), shapely.get_y(geometries)  # NaN for a multipoint
    if crs is None or not np.isfinite(x).any():
        return {}
    trials = {"swapped": (y, x)}
    if CRS(crs).is_geographic:
        trials |= {"longitude_sign": (-x, y), "latitude_sign": (x, -y), "both_signs": (-x, -y)}
    to_grid = Transformer.from_crs(CRS(crs), CRS(grid.crs.to_wkt()), always_xy=True)
    free = np.isfinite(x) & np.isfinite(y)
    found = {}
    for slip, (tx, ty) in trials.items():
        with np.errstate(all="ignore"):
            gx, gy = to_grid.transform(tx, ty, errcheck=False)
        on = free & _on_grid(grid, gx, gy)
        if on.any():
            found[slip] = np.flatnonzero(on)
            free &= ~on
    return found


def _at_zero(geometries: np.ndarray) -> np.ndarray:
    """Which geometries are the point 0, 0 (a GPS without a fix); NaN, so False, for others."""
    return (shapely.get_x(geometries) == 0) & (shapely.get_y(geometries) == 0)


def _site_of(frame: gpd.GeoDataFrame, i: int) -> str:
    return str(frame.at[i, "site"])  # sample_labels names every row: its site, else its fid


def _add_unburnt(polygons, grid, rows, cols, ids):
    """Polygons smaller than a pixel centre burn nothing: give each its representative point."""
    missing = np.setdiff1d(polygons.index.to_numpy(), ids)
    if len(missing) == 0:
        return rows, cols, ids
    r, c, idx, *_ = _point_pixels(
        gpd.GeoDataFrame(geometry=polygons.loc[missing].representative_point(), crs=polygons.crs),
        grid,
    )
    return np.r_[rows, r], np.r_[cols, c], np.r_[ids, idx]


def _round_robin(
    classes: np.ndarray, polygon: np.ndarray, cap: int, rng: np.random.Generator
) -> np.ndarray:
    """Indices of at most ``cap`` pixels per class, drawn in turn from each of its polygons."""
    order = rng.permutation(len(polygon))
    order = order[np.argsort(polygon[order], kind="stable")]
    starts = np.r_[0, np.flatnonzero(np.diff(polygon[order])) + 1]
    rank = np.arange(len(order)) - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    keep = []
    for cls in np.unique(classes):
        members = order[classes[order] == cls]
        ranks = rank[classes[order] == cls]
        keep.append(members[np.lexsort((rng.random(len(ranks)), ranks))][:cap])
    return np.sort(np.concatenate(keep))


def _no_overlap_message(labels: gpd.GeoDataFrame, grid: Grid, given: gpd.GeoDataFrame) -> str:
    """Why no label falls on the grid: the extents and, where the numbers say so, the cause.

    ``labels`` are the observations reprojected onto the grid, ``given`` all of them as read
    (labels repeated at one place are dropped from ``labels``: coordinates impossible in their
    CRS all become the same infinite point).
    """
    src = labels["source"].iloc[0] if len(labels) else "labels"
    where = grid.crs.to_string()
    other = _other_hemisphere(given, grid)
    own = (
        f" Read in the rasters' CRS, {where}, they fall on the rasters: they are likely in it."
        if other is None and _on_grid_in_its_crs(given, grid)
        else ""
    )
    if not np.isfinite(labels.total_bounds).all():  # coordinates impossible in their stated CRS
        return (
            f"Labels '{src}': the coordinates ({extent_text(given.total_bounds)}) cannot be placed "
            f"on the rasters' {where}: they are not valid in the CRS given for them, "
            f"{given.crs.to_string()} (for EPSG:4326, longitudes within +-180 and latitudes "
            f"within +-90).{own} Give the CRS they are really in (--label-crs for a CSV or a file "
            "without one)."
        )
    swapped = (
        " With longitude and latitude swapped they fall on the rasters: check which column "
        "holds which."
        if _on_grid_if_swapped(given, grid)
        else ""
    )
    hemisphere = (
        f" In {other}, the same UTM zone's other hemisphere, they fall on the rasters: their "
        f"northings are 10,000,000 m off. Give {other} as their CRS (a file that states its "
        "own: correct it there)."
        if other
        else ""
    )
    return (
        f"Labels '{src}' cover no pixel of the raster stack: in {where} the labels span "
        f"{extent_text(labels.total_bounds)} and the stack spans {extent_text(grid.bounds)}."
        f"{swapped}{hemisphere}{own} Check the file, its CRS (--label-crs for a CSV or a file "
        "without one) or the rasters."
    )


def _on_grid_in_its_crs(given: gpd.GeoDataFrame, grid: Grid) -> bool:
    """Whether the labels' coordinates, read as they are in the grid's CRS, fall on the grid.

    Eastings and northings of the rasters' UTM zone given another zone's CRS, or EPSG:4326.
    """
    if given.empty or (given.crs is not None and CRS(given.crs) == CRS(grid.crs.to_wkt())):
        return False
    points = given.geometry.representative_point()[:1000]
    return bool(_on_grid(grid, points.x.to_numpy(), points.y.to_numpy()).any())


def _other_hemisphere(given: gpd.GeoDataFrame, grid: Grid) -> str | None:
    """The UTM CRS of the other hemisphere in which the labels fall on the grid, if they do.

    EPSG:32635 (zone 35 north) given for eastings and northings of zone 35 south (EPSG:32735)
    puts them 10,000,000 m north of the rasters.
    """
    code = given.crs.to_epsg() if given.crs is not None and not given.empty else None
    if code is None or not (32601 <= code <= 32660 or 32701 <= code <= 32760):
        return None
    other = f"EPSG:{code + 100 if code < 32700 else code - 100}"
    points = given.geometry.representative_point()[:1000].set_crs(other, allow_override=True)
    with np.errstate(all="ignore"):
        moved = points.to_crs(grid.crs)
    return other if _on_grid(grid, moved.x.to_numpy(), moved.y.to_numpy()).any() else None


def _on_grid_if_swapped(given: gpd.GeoDataFrame, grid: Grid) -> bool:
    """Whether longitude/latitude labels would fall on the grid with their columns swapped."""
    if given.crs is None or not given.crs.is_geographic or given.empty:
        return False
    points = given.geometry.representative_point()[:1000].to_numpy()
    return "swapped" in _slips(points, given.crs, grid)


def _on_grid(grid: Grid, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether each point (in the grid's CRS) lies within the grid's bounds."""
    left, bottom, right, top = grid.bounds
    return (x >= left) & (x <= right) & (y >= bottom) & (y <= top)


def extract_features(
    stack: RasterStack, recipe: FeatureRecipe, rows: np.ndarray, cols: np.ndarray
) -> np.ndarray:
    """Features at the given pixels, computed exactly as in a streamed prediction.

    Returns float32 of shape (n_samples, n_features), NaN where a source has no data.
    """
    out = np.full((len(rows), recipe.n_features), np.nan, dtype="float32")
    block = _EXTRACT_BLOCK
    key = (rows // block) * (stack.grid.width // block + 1) + cols // block
    for k in np.unique(key):
        members = np.flatnonzero(key == k)
        r0, c0 = (rows[members[0]] // block) * block, (cols[members[0]] // block) * block
        win = Window(c0, r0, min(block, stack.grid.width - c0), min(block, stack.grid.height - r0))
        feats = recipe.compute(stack.read(win, halo=recipe.halo))
        out[members] = feats[:, rows[members] - r0, cols[members] - c0].T
    return out
