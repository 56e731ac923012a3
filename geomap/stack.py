"""The aligned raster stack: input rasters read onto one reference grid, window by window.

A :class:`RasterStack` never holds a scene in memory. A source whose pixels coincide with the
reference :class:`geomap.grid.Grid` is read by window directly; any other is warped lazily onto
it through a GDAL warped VRT. :meth:`RasterStack.read` returns one window (plus an optional halo)
of every band as float32, with NaN wherever a source has no data.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyproj
import rasterio
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.errors import RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform
from rasterio.windows import Window

from geomap.errors import NoCRSError, RasterError, library_reason
from geomap.features import quality_word, scene_key
from geomap.grid import Grid, choose_grid, extent_text, footprint_in, res_in
from geomap.masks import MaskProduct, mask_product, mask_scene
from geomap.sources import (
    FILL_MAGNITUDE,
    FILL_SHARE,
    Source,
    crs_units,
    gdal_name,
    inspect_raster,
    nodata_values,
    raster_error,
    raster_stem,
)

#: Side of the square windows streamed through a model: a multiple of the 256-pixel GeoTIFF
#: tiles, and small enough that a window's feature table (about a hundred features) stays near
#: 25 MB; 512 took the peak of an 8000 x 8000 x 12 run to 0.99 GB.
BLOCK_SIZE = 256


def _constant_note(source) -> str:
    """A raster whose band(s) hold one value wherever they have data."""
    bands = [f"'{source.band_names[b]}' ({v:g})" for b, v in source.constant]
    what = f"band {bands[0]} holds" if len(bands) == 1 else f"bands {', '.join(bands)} each hold"
    return (
        f"Raster '{source.path.name}': {what} one value wherever it has data, which tells no "
        "rock from another. Check the file (an export that wrote a fill value, a band never "
        "computed) or leave it out."
    )


def _shown(value: float) -> str:
    """A dummy value as written in a message (-99999.99 whole, 1e+30 short)."""
    return f"{value:g}" if abs(value) >= FILL_MAGNITUDE else f"{value:.10g}"


def _plain_amid_values(source: Source) -> bool:
    """Whether a raster holds the value given for every raster amid values on both sides of it."""
    return source.nodata_plain and source.given_within > 0


def _dummy_note(source: Source, option: str) -> str:
    """What a raster's undeclared dummy value is taken for, and what to do about it.

    ``option`` is the --nodata that takes it as no data in this raster alone.
    """
    value, share = source.dummy
    shown = _shown(value)
    part = f"{share:.1%}" if share >= 0.001 else "under 0.1%"  # a few pixels far off: said
    head = f"Raster '{source.path.name}': {part} of its pixels hold {shown}"
    if abs(value) >= FILL_MAGNITUDE:
        return (
            f"{head}, a dummy no measurement takes (survey software writes it for no data); "
            "they are read as no data."
        )
    given = (
        f", not the no-data value {source.nodata:g} given for it"
        if source.nodata_given
        else " and it declares no nodata value"
    )
    return (
        f"{head}{given}. If {shown} marks missing data there, pass {option} so those pixels are "
        "mapped from the other rasters instead of read as measurements."
    )


#: A raster whose removal would grow the common footprint more than this many times is named.
FOOTPRINT_SHRINK = 1.25


@dataclass(frozen=True)
class Mask:
    """A product's quality layer and the sources (indexes into the stack's) of its scene."""

    source: Source
    product: MaskProduct
    targets: tuple[int, ...]


class RasterStack:
    """Input rasters aligned on one reference grid, read lazily by window.

    Use :meth:`open`; close with :meth:`close` or a ``with`` block. ``masks`` are quality layers
    (:mod:`geomap.masks`) whose flagged pixels read as no data in their scene's sources.
    """

    def __init__(self, sources: Sequence[Source], grid: Grid, masks: Sequence[Mask] = ()) -> None:
        self.sources = tuple(sources)
        self.masks = tuple(masks)
        self.grid = grid
        self.band_names = _unique_names(self.sources)
        self.band_source = np.repeat(np.arange(len(self.sources)), [s.count for s in self.sources])
        self.band_grid = _native_grid_ids(self.sources)[self.band_source]
        self.resampling = tuple(_resampling_for(s, grid) for s in self.sources)
        self._datasets: list = []
        self._readers: list = []
        self._mask_readers: list = []
        self._unmatched: list[tuple[Source, MaskProduct, str]] = []

    @classmethod
    def open(
        cls,
        paths: Sequence[str | Path],
        *,
        crs: str | CRS | None = None,
        resolution: float | None = None,
        origin: tuple[float, float] | None = None,
        grid: Grid | None = None,
        nodata: float | None = None,
        raster_nodata: Mapping[str, float] | None = None,
    ) -> RasterStack:
        """Check every raster and build the stack on the default or the given grid.

        ``nodata`` is taken as no data in rasters that declare none, ``raster_nodata`` in the
        rasters it names by file name or path (see :func:`geomap.sources.nodata_values`); a
        raster whose data type cannot hold its value reads it as not given, and :meth:`notes`
        says so, as it does when ``nodata`` lies amid a raster's values (0 nT in a magnetic
        grid) or a named value meets a file that declares its own.

        A raster georeferenced without a CRS (a Surfer or XYZ grid) is taken to be in ``crs``
        when one is given (``--crs``; a model's grid for ``geomap predict``), and :meth:`notes`
        says so.

        Raises
        ------
        MissingFileError, RasterError
            See :func:`inspect_raster` and :func:`choose_grid`.
        """
        if not paths:
            raise RasterError("No raster given; pass at least one with --raster.")
        named = nodata_values(paths, None, raster_nodata)
        sources, lacking = [], []
        for p, v in zip(paths, named):
            try:
                sources.append(
                    inspect_raster(p, nodata if v is None else v, assume_crs=crs, plain=v is None)
                )
            except NoCRSError as error:  # the others' CRSs may tell which it is in
                lacking.append(error)
        if lacking:
            raise NoCRSError(_crs_hint(lacking[0], sources), lacking[0].bounds)
        sources, masks, unmatched = _split_masks(sources)
        if grid is None:
            grid = choose_grid(sources, crs=crs, resolution=resolution, origin=origin)
        stack = cls(sources, grid, masks)
        stack._unmatched = unmatched
        try:
            stack._open_readers()
        except BaseException:
            stack.close()
            raise
        return stack

    def _open_readers(self) -> None:
        for source, resampling in zip(self.sources, self.resampling):
            self._readers.append(self._reader(source, resampling))
        for mask in self.masks:  # flags: the nearest pixel's, never a blend of two codes
            raw = replace(mask.source, nodata=None)  # its fill is a flag (MaskProduct.flagged)
            self._mask_readers.append(self._reader(raw, "nearest"))

    def _reader(self, source: Source, resampling: str):
        dataset = rasterio.open(gdal_name(source.path))
        self._datasets.append(dataset)
        offset = _aligned_offset(source, self.grid)
        if offset is not None:
            return _DirectReader(dataset, source, offset)
        return WarpedVRT(
            dataset,
            src_crs=source.crs,  # the CRS it was given when the file has none
            src_alpha=(source.alpha or 0) if source.nodata is None else 0,  # GDAL: one
            crs=self.grid.crs,
            transform=self.grid.transform,
            width=self.grid.width,
            height=self.grid.height,
            resampling=rasterio.enums.Resampling[resampling],
            src_nodata=source.nodata,
            nodata=np.nan,
            dtype="float32",
            tolerance=0.01,
        )

    def notes(self) -> list[str]:
        """Warnings on the inputs: undeclared fill values, a needlessly fine or coarse grid.

        A grid whose pixels are much finer than any input's costs time and adds no detail; one
        much coarser than every input's throws detail away. See :meth:`file_notes` for the
        rest.
        """
        notes = self.file_notes()
        finest = min(res_in(s, self.grid.crs) for s in self.sources)
        res, unit = min(self.grid.res), crs_units(self.grid.crs)
        size = f"{self.grid.width:,} x {self.grid.height:,} pixels"
        if res < finest / 2:
            notes.append(
                f"The grid's pixels ({res:g} {unit}) are {finest / res:.1f} times finer than the "
                f"finest input's ({finest:g} {unit}): {size} to map, {(finest / res) ** 2:.0f} "
                "times as many as at the inputs' resolution, with no more detail. Leave out "
                "--resolution unless this is meant."
            )
        notes += self.footprint_notes()
        notes += [
            f"Raster '{s.path.name}' is a class map (a colour table): it is read with nearest "
            "resampling and its codes are features as numbers, so a unit coded 3 lies between "
            "those coded 2 and 4 for the forest."
            for s in self.sources
            if s.categorical
        ]
        notes += _quality_notes(self.sources) + _intermediate_notes(self.sources)
        coarsest = max(res_in(s, self.grid.crs) for s in self.sources)
        if res > 2 * coarsest:
            notes.append(
                f"The grid's pixels ({res:g} {unit}) are {res / coarsest:.1f} times coarser than "
                f"the coarsest input's ({coarsest:g} {unit}): the map has only {size}. Give a "
                "finer --resolution, or leave it out to map at the finest input's."
            )
        return notes

    def file_notes(self) -> list[str]:
        """What the files leave open: missing data perhaps held as values, a CRS not stated.

        A band with many exact zeros and no nodata may use 0 for missing data; so may one whose
        end holds a survey dummy (-99999), or whose VRT declares a nodata its type cannot hold.
        A raster that states no CRS is read in the map's.
        """
        notes = [
            f"Raster '{s.path.name}' declares nodata {s.ignored_nodata}, which its {s.dtype} "
            "bands cannot hold, so GDAL ignores it and no pixel of it is taken as missing. Give "
            "the value its missing pixels hold with --nodata (often 0 in such a VRT), or set a "
            "NoDataValue in the band type's range."
            for s in self.sources
            if s.ignored_nodata is not None and s.nodata is None
        ]
        zeros = [s for s in self.sources if s.zero_share and max(s.zero_share) >= FILL_SHARE]
        if len(zeros) == 1:
            notes.append(
                f"Raster '{zeros[0].path.name}': {max(zeros[0].zero_share):.1%} of its pixels are "
                "exactly 0 and it declares no nodata value."
            )
        elif zeros:  # the bands of one scene in separate files: one note, not one per file
            low, high = (f"{f(max(s.zero_share) for s in zeros):.1%}" for f in (min, max))
            notes.append(
                f"Rasters {', '.join(repr(s.path.name) for s in zeros)}: "
                f"{low if low == high else f'{low} to {high}'} of their pixels are exactly 0 and "
                "they declare no nodata value."
            )
        if zeros:
            notes[-1] += (
                " If 0 marks missing data there (a cloud mask, the edge of a scene), pass "
                f"{self._nodata_option(zeros, '0')} so those pixels are mapped from the other "
                "rasters."
            )
        notes += [
            f"Raster '{s.path.name}': its {s.dtype} values cannot be {s.unheld_nodata:g}, so "
            f"the no-data value {s.unheld_nodata:g} given for the rasters that declare none does "
            f"not apply to it. If it needs one, give it its own: --nodata "
            f"{shlex.quote(f'{s.path.name}=VALUE')}."
            for s in self.sources
            if s.unheld_nodata is not None
        ]
        notes += [self._plain_nodata_note(s) for s in self.sources if _plain_amid_values(s)]
        notes += [
            f"Raster '{s.path.name}' declares its own no-data value, {s.nodata:g}, so the value "
            f"{s.named_nodata:g} given for it is not used. If its pixels of "
            f"{s.named_nodata:g} are missing data too, set that as the file's no-data value "
            "(in QGIS: Export > Save As, with 'No data value') or mask them in the file."
            for s in self.sources
            if s.named_nodata is not None
            and not s.nodata_given
            and s.nodata is not None
            and s.named_nodata != s.nodata  # the file's own value wins
        ]
        notes += [
            f"{raster_list(names)} declare{'s' * (len(names) == 1)} no no-data value; named as "
            f"{product} band files, whose fill value is 0, their 0 is read as no data (a "
            "no-data value given for a file reads it otherwise)."
            for product, names in _names_by(self.sources, "nodata_product").items()
        ]
        notes += [
            f"{raster_list(names)} {'is a band file' if len(names) == 1 else 'are band files'} "
            f"of a Sentinel-2 product of processing baseline {baseline}, to which ESA adds 1000 "
            f"(from 04.00 on), and declare{'s' * (len(names) == 1)} no offset: read with -1000, "
            "as an older product's values are (its folder's name says the baseline)."
            for baseline, names in _names_by(self.sources, "baseline_offset").items()
        ]
        notes += [
            f"Raster '{s.path.name}' states no CRS; it is read in {s.crs.to_string()}, the "
            "map's CRS. If it is in another, give its CRS in the file instead (in QGIS: Layer "
            "CRS, then Export > Save As)."
            for s in self.sources
            if s.assumed_crs
        ]
        notes += [
            _dummy_note(s, self._nodata_option([s], _shown(s.dummy[0])))
            for s in self.sources
            if s.dummy is not None
        ]
        notes += [_constant_note(s) for s in self.sources if s.constant]
        return notes + self._mask_notes()

    def _mask_notes(self) -> list[str]:
        """What each quality layer masks, or why it masks nothing."""
        notes = []
        for m in self.masks:
            names = [self.sources[t].path.name for t in m.targets]
            shown = names if len(names) <= 2 else [names[0], "...", names[-1]]
            notes.append(
                f"Raster '{m.source.path.name}' is a {m.product.name} layer: the pixels it "
                f"flags ({m.product.flags}) read as no data in the {len(names)} raster(s) of its "
                f"scene ({', '.join(shown)}), so they are mapped from the other rasters and "
                "marked less certain."
            )
        for source, product, key in self._unmatched:
            notes.append(
                f"Raster '{source.path.name}' is a {product.name} layer, but no other raster's "
                f"file name gives its scene ('{key}'): it is left out, neither a mask nor a "
                "feature. Give it with the scene's band files under the product's own names "
                "(..._SR_B4.TIF beside ..._QA_PIXEL.TIF, ..._B04_10m.jp2 beside ..._SCL_20m.jp2) "
                "to have their clouds masked."
            )
        return notes

    def _plain_nodata_note(self, source: Source) -> str:
        """A raster whose values lie on both sides of the value given for every raster.

        A magnetic or gravity grid declares no no-data value when it has no hole, and a 0 amid
        its values is a measurement: the value meant for the fill of a Landsat band, below all
        its reflectances, would drop it silently.
        """
        value = f"{source.nodata:g}"
        others = [s.path.name for s in self.sources if s.nodata_plain and not _plain_amid_values(s)]
        example = shlex.quote(f"{others[0] if others else 'NAME'}={value}")
        return (
            f"Raster '{source.path.name}' declares no no-data value, so it took the --nodata "
            f"{value} given for every raster: {source.given_within:.2%} of its pixels hold "
            f"{value}, amid values on both sides of it, and are read as missing. If they are "
            f"measurements, give {value} by file name only to the rasters that use it for "
            f"missing data (--nodata {example}) instead of for every raster."
        )

    def _nodata_option(self, named: Sequence[Source], value: str) -> str:
        """The --nodata that takes ``value`` as no data in the ``named`` rasters alone.

        The plain value where no other raster lacks a declared one (none, or one given with
        --nodata, which a second plain value would contradict), else one per file name.
        """
        others = [
            s
            for s in self.sources
            if (s.nodata is None or s.nodata_given) and not any(s is n for n in named)
        ]
        if not others:
            return f"--nodata {value}"
        if len(named) == 1:
            return f"--nodata {shlex.quote(f'{named[0].path.name}={value}')}"
        return f"--nodata NAME={value} for each of them"

    def footprint_notes(self) -> list[str]:
        """A raster that alone shrinks the common footprint.

        A band georeferenced elsewhere, or a survey that covers part of the sheet.
        """
        if len(self.sources) < 3:
            return []  # with two, either may be the one that is off
        feet = [footprint_in(s, self.grid.crs) for s in self.sources]

        def area(boxes) -> float:
            width = min(b[2] for b in boxes) - max(b[0] for b in boxes)
            height = min(b[3] for b in boxes) - max(b[1] for b in boxes)
            return max(width, 0.0) * max(height, 0.0)

        common = area(feet)
        notes = []
        for i, source in enumerate(self.sources):
            without = area(feet[:i] + feet[i + 1 :])
            if without > FOOTPRINT_SHRINK * common:
                box = ", ".join(f"{v:.6g}" for v in feet[i])
                notes.append(
                    f"Raster '{source.path.name}' alone limits the map to {common / without:.0%} "
                    f"of the area the other rasters share (its footprint in "
                    f"{self.grid.crs.to_string()}: {box}). If it should cover that area, check "
                    "its georeferencing (CRS and geotransform); to map the rest, leave it out."
                )
        return notes

    @property
    def n_bands(self) -> int:
        """Number of bands over all sources."""
        return len(self.band_names)

    def read(self, window: Window, halo: int = 0) -> np.ndarray:
        """Read a window of every band, grown by ``halo`` pixels on each side.

        Returns float32 of shape (bands, height + 2 halo, width + 2 halo); NaN where a source has
        no data or the halo leaves the grid.
        """
        big = Window(
            window.col_off - halo,
            window.row_off - halo,
            window.width + 2 * halo,
            window.height + 2 * halo,
        )
        out = np.full((self.n_bands, int(big.height), int(big.width)), np.nan, dtype="float32")
        r0, c0 = max(0, int(big.row_off)), max(0, int(big.col_off))
        r1 = min(self.grid.height, int(big.row_off + big.height))
        c1 = min(self.grid.width, int(big.col_off + big.width))
        if r1 <= r0 or c1 <= c0:
            return out
        inner = Window(c0, r0, c1 - c0, r1 - r0)
        rs = slice(r0 - int(big.row_off), r1 - int(big.row_off))
        cs = slice(c0 - int(big.col_off), c1 - int(big.col_off))
        start = 0
        for source, reader in zip(self.sources, self._readers):
            try:
                data = reader.read(source.indexes, window=inner)
            except RasterioError as exc:
                raise raster_error(
                    source.path,
                    f"reading rows {r0}-{r1} and columns {c0}-{c1} of the grid failed: the file is "
                    f"damaged there (GDAL: {library_reason(exc)}).",
                    "Copy or download it again.",
                ) from None
            if np.dtype(source.dtype).kind == "f":  # integers cannot hold such dummies
                with np.errstate(invalid="ignore"):
                    data[np.abs(data) >= FILL_MAGNITUDE] = np.nan  # and what warping blurs
            if source.scale_offset:  # linear, so exact after bilinear or average resampling
                scale, offset = np.asarray(source.scale_offset, dtype="float32").T
                data = data * scale[:, None, None] + offset[:, None, None]
            out[start : start + source.count, rs, cs] = data
            start += source.count
        for mask, reader in zip(self.masks, self._mask_readers):
            flagged = mask.product.flagged(reader.read([1], window=inner)[0])
            for band in np.flatnonzero(np.isin(self.band_source, mask.targets)):
                out[band, rs, cs][flagged] = np.nan
        return out

    def describe(self) -> dict:
        """A JSON-ready report of the grid and every source."""
        return {
            "grid": self.grid.to_dict(),
            "sources": [
                {
                    "path": str(s.path),
                    "bands": list(s.band_names),
                    "crs": s.crs.to_string(),
                    "resolution": list(s.res),
                    "units": crs_units(s.crs),
                    "dtype": s.dtype,
                    "nodata": s.nodata,
                    "scale_offset": s.scaling,
                    **(
                        {"declared_scale_offset": s.declared_scaling}
                        if s.declared_scaling is not None
                        else {}
                    ),
                    "resampling": r,
                }
                for s, r in zip(self.sources, self.resampling)
            ],
            "masks": [
                {
                    "path": str(m.source.path),
                    "product": m.product.name,
                    "flags": m.product.flags,
                    "masks": [str(self.sources[t].path) for t in m.targets],
                }
                for m in self.masks
            ],
        }

    def close(self) -> None:
        """Close every open dataset."""
        for handle in self._readers + self._mask_readers + self._datasets:
            handle.close()
        self._readers, self._mask_readers, self._datasets = [], [], []

    def __enter__(self) -> RasterStack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PartialStack:
    """A stack in which some sources of a saved model are absent: their bands read as NaN.

    For mapping an area that one survey did not cover (no radiometrics on the next sheet) with a
    model trained with it: every pixel is then mapped from the other sources, as under a cloud.
    Reads, the grid, ``sources`` (with a stand-in for each absent one) and the report follow
    :class:`RasterStack`.

    Parameters
    ----------
    stack : RasterStack
        The sources that are there, in the model's order.
    absent : dict
        Position of each absent source in the model's order -> its band names.
    """

    def __init__(self, stack: RasterStack, absent: dict[int, tuple[str, ...]]) -> None:
        self._stack = stack
        self.grid = stack.grid
        present = iter(stack.sources)
        total = len(stack.sources) + len(absent)
        self.sources = tuple(
            _stand_in(absent[i], stack.grid) if i in absent else next(present) for i in range(total)
        )
        self.band_names = _unique_names(self.sources)
        self._absent = absent
        self._present_bands = np.concatenate(
            [np.full(s.count, i not in absent) for i, s in enumerate(self.sources)]
        )

    def read(self, window: Window, halo: int = 0) -> np.ndarray:
        """As :meth:`RasterStack.read`, with NaN bands for the absent sources."""
        there = self._stack.read(window, halo)
        out = np.full((len(self._present_bands), *there.shape[1:]), np.nan, dtype="float32")
        out[self._present_bands] = there
        return out

    def describe(self) -> dict:
        """As :meth:`RasterStack.describe`; an absent source has ``absent: true``."""
        out = self._stack.describe()
        given = iter(out["sources"])
        out["sources"] = [
            {
                "path": str(s.path),
                "bands": list(s.band_names),
                "absent": True,
                "crs": s.crs.to_string(),
                "resolution": list(s.res),
                "units": crs_units(s.crs),
                "dtype": s.dtype,
                "nodata": None,
                "scale_offset": None,
                "resampling": "none: no raster given",
            }
            if i in self._absent
            else next(given)
            for i, s in enumerate(self.sources)
        ]
        return out

    def notes(self) -> list[str]:
        """As :meth:`RasterStack.notes`."""
        return self._stack.notes()

    def file_notes(self) -> list[str]:
        """As :meth:`RasterStack.file_notes`."""
        return self._stack.file_notes()

    def footprint_notes(self) -> list[str]:
        """As :meth:`RasterStack.footprint_notes`, for the sources that are there."""
        return self._stack.footprint_notes()

    def close(self) -> None:
        """Close the sources that are there."""
        self._stack.close()

    def __enter__(self) -> PartialStack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _names_by(sources: Sequence[Source], attribute: str) -> dict:
    """The file names of the sources by their value of ``attribute``, where it is not None."""
    out: dict = {}
    for s in sources:
        if getattr(s, attribute) is not None:
            out.setdefault(getattr(s, attribute), []).append(s.path.name)
    return out


def raster_list(names: Sequence[str]) -> str:
    """The files named in a note: Raster 'a.tif', or Rasters 'a.tif', 'b.tif'."""
    return f"Raster{'s' * (len(names) > 1)} {', '.join(repr(n) for n in names)}"


def _crs_hint(error: NoCRSError, sources: Sequence[Source]) -> str:
    """The message of a raster with no CRS, with the CRS of the rasters its corners fall on."""
    left, bottom, right, top = error.bounds
    on = [
        s
        for s in sources
        if left < s.bounds[2] and right > s.bounds[0] and bottom < s.bounds[3] and top > s.bounds[1]
    ]
    where = extent_text(error.bounds)
    if not on:
        return f"{error} Its corners read {where}."
    first = on[0]
    name = pyproj.CRS.from_user_input(first.crs.to_wkt()).name
    return (
        f"{error} Its corners ({where}) fall on '{first.path.name}' read in that raster's CRS, "
        f"{first.crs.to_string()} ({name}): it is likely in that CRS, or another of the same "
        f"zone; if so, --crs {first.crs.to_string()}."
    )


def _split_masks(sources: Sequence[Source]) -> tuple[list, list, list]:
    """(sources, masks, unmatched): quality layers taken out of the sources.

    A quality layer masks the sources whose file names give its scene (:func:`mask_scene`);
    one whose scene no source shares is left out, unmatched, and so is one given alone.
    """
    found = [(s, mask_product(s)) for s in sources]
    kept = [s for s, product in found if product is None]
    keys = [scene_key(s.path.stem) for s in kept]
    masks, unmatched = [], []
    for source, product in found:
        if product is None:
            continue
        key = mask_scene(source, product)
        targets = tuple(i for i, k in enumerate(keys) if k == key)
        if targets:
            masks.append(Mask(source, product, targets))
        else:
            unmatched.append((source, product, key))
    if not kept:
        raise RasterError(
            f"{raster_list([s.path.name for s in sources])}: quality layers (cloud and snow "
            "flags), not measurements of the ground; nothing is left to map from. Give the "
            "scene's band files too."
        )
    return kept, masks, unmatched


#: Landsat Collection 2 Level-2 layers that are neither a band nor a quality layer: the surface
#: temperature's intermediates, by the end of the file's name.
_LANDSAT_INTERMEDIATES = {
    "ST_CDIST": "the distance to the nearest cloud",
    "ST_ATRAN": "the atmosphere's transmission",
    "ST_TRAD": "the radiance at the top of the atmosphere",
    "ST_URAD": "the atmosphere's upwelling radiance",
    "ST_DRAD": "the atmosphere's downwelling radiance",
    "ST_EMIS": "the emissivity estimated from ASTER's and NDVI's",
    "ST_EMSD": "the emissivity's uncertainty",
}


def _intermediate_notes(sources: Sequence[Source]) -> list[str]:
    """Landsat product layers that draw the atmosphere or the clouds, not the ground."""
    notes = []
    for s in sources:
        upper = s.path.stem.upper()
        layer = next((k for k in _LANDSAT_INTERMEDIATES if upper.endswith(f"_{k}")), None)
        if layer is not None:
            notes.append(
                f"Raster '{s.path.name}' is Landsat's {layer} layer, "
                f"{_LANDSAT_INTERMEDIATES[layer]}, not a measurement of the ground: the map "
                "would follow the clouds and the atmosphere of that day. Leave it out (the "
                "scene's ST_B10 or ST_B6 is its surface temperature; give the scene's folder or "
                ".tar to have the right files taken)."
            )
    return notes


def _quality_notes(sources: Sequence[Source]) -> list[str]:
    """Rasters whose band names say quality flags or a mask, not a measurement of the ground."""
    notes = []
    for s in sources:
        named = [(b, quality_word(b)) for b in s.band_names if quality_word(b)]
        if not named:
            continue
        band, word = named[0]
        notes.append(
            f"Raster '{s.path.name}' looks like a quality or mask layer, not a measurement of "
            f"the ground (its band '{band}' has '{word.upper()}' in its name): its values are "
            "flags or codes, "
            "which resampling and neighbourhood means mix into numbers that mean nothing, and a "
            "model trained with it needs it on every sheet it maps. Leave it out: geomap reads "
            "each raster's no-data value as its mask (to use the flags, set the pixels they "
            "mark to the no-data value of the other rasters first)."
        )
    return notes


def _stand_in(bands: tuple[str, ...], grid: Grid) -> Source:
    """The stand-in for an absent source: its band names on the grid, no data anywhere."""
    return Source(
        path=Path(f"(no raster for {', '.join(bands)})"),
        absent=True,
        band_names=tuple(bands),
        crs=grid.crs,
        res=grid.res,
        dtype="float32",
        nodata=None,
        width=grid.width,
        height=grid.height,
        bounds=grid.bounds,
    )


def _native_grid_ids(sources: Sequence[Source]) -> np.ndarray:
    """One id per source; sources recorded on the same native grid (one image) share it."""
    keys = [(s.crs.to_wkt(), s.res, s.bounds, s.width, s.height) for s in sources]
    return np.array([keys.index(k) for k in keys], dtype=int)


def _aligned_offset(source: Source, grid: Grid) -> tuple[int, int] | None:
    """(column, row) of the grid's origin in the source when their pixels coincide, else None."""
    if source.south_up or source.crs != grid.crs:
        return None
    if not np.allclose(source.res, grid.res, rtol=1e-9, atol=0):
        return None
    col = (grid.transform.c - source.bounds[0]) / source.res[0]
    row = (source.bounds[3] - grid.transform.f) / source.res[1]
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6:
        return None
    return round(col), round(row)


class _DirectReader:
    """Reads a source already on the grid's pixels without warping (the common case)."""

    def __init__(self, dataset, source: Source, offset: tuple[int, int]) -> None:
        self.dataset, self.source, self.offset = dataset, source, offset
        flags = dataset.mask_flag_enums[0]
        self.masked = source.nodata is None and (
            MaskFlags.per_dataset in flags or MaskFlags.alpha in flags
        )

    def read(self, indexes: list[int], window: Window) -> np.ndarray:
        col, row = int(window.col_off) + self.offset[0], int(window.row_off) + self.offset[1]
        h, w = int(window.height), int(window.width)
        out = np.full((self.source.count, h, w), np.nan, dtype="float32")
        c0, r0 = max(col, 0), max(row, 0)
        c1, r1 = min(col + w, self.source.width), min(row + h, self.source.height)
        if c1 <= c0 or r1 <= r0:
            return out
        data = self.dataset.read(
            indexes, window=Window(c0, r0, c1 - c0, r1 - r0), out_dtype="float32"
        )
        if self.source.nodata is not None and not np.isnan(self.source.nodata):
            data[data == np.float32(self.source.nodata)] = np.nan
        if self.source.alpha:  # transparent: no data, as the warper reads it
            alpha = self.dataset.read(self.source.alpha, window=Window(c0, r0, c1 - c0, r1 - r0))
            data[:, alpha == 0] = np.nan
        elif self.masked:  # an internal mask, as the warper would use it
            data[:, self.dataset.read_masks(1, window=Window(c0, r0, c1 - c0, r1 - r0)) == 0] = (
                np.nan
            )
        out[:, r0 - row : r1 - row, c0 - col : c1 - col] = data
        return out

    def close(self) -> None:
        """The dataset is closed by the stack."""


def _resampling_for(source: Source, grid: Grid) -> str:
    """Bilinear when the source is as coarse as the grid or coarser, average when finer.

    Nearest for a class map, whose codes averaged would be a class that is not there.
    """
    if source.categorical:
        return "nearest"
    return "bilinear" if res_in(source, grid.crs) >= 0.999 * min(grid.res) else "average"


def missing_sources(stack, xy: np.ndarray) -> np.ndarray:
    """Which sources have no data at points of the map (grid CRS), (points, sources) bool.

    From each source's decimated check read (:attr:`Source.coverage`): known before any
    window is read, to the check read's resolution. An absent source (``geomap predict``
    without it) has none anywhere.
    """
    xy = np.asarray(xy, dtype="float64")
    out = np.ones((len(xy), len(stack.sources)), dtype=bool)
    for k, source in enumerate(stack.sources):
        if source.absent or not len(xy):
            continue
        if source.crs == stack.grid.crs:
            x, y = xy[:, 0], xy[:, 1]
        else:
            x, y = (
                np.asarray(v) for v in transform(stack.grid.crs, source.crs, xy[:, 0], xy[:, 1])
            )
        out[:, k] = ~source.has_data(x, y)
    return out


def distinct_names(paths: Sequence[Path], names: Sequence[str]) -> list[str]:
    """``names`` of the files at ``paths``, with the folders that tell same-named ones apart.

    As many folders as it takes: ``2019-06-01/B02`` and ``2019-07-01/B02``.
    """
    out = list(names)
    for depth in range(1, 8):
        twice = {f for f in out if out.count(f) > 1}
        if not twice:
            break
        out = [
            "/".join([*p.parent.parts[-depth:], n]) if f in twice else f
            for p, n, f in zip(paths, names, out)
        ]
    return out


def _unique_names(sources: Sequence[Source]) -> tuple[str, ...]:
    """Band names, made unique by their file's name, or its folder's too ("2019-06-01/B02")."""
    names = [n for s in sources for n in s.band_names]
    seen = {n for n in names if names.count(n) > 1}
    stems = [raster_stem(s.path) for s in sources]
    files = distinct_names([s.path for s in sources], stems)
    return tuple(
        (n if n not in seen else file if n == stem else f"{file}:{n}")
        for s, stem, file in zip(sources, stems, files)
        for n in s.band_names
    )
