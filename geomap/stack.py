"""The aligned raster stack: input rasters read onto one reference grid, window by window.

A :class:`RasterStack` never holds a scene in memory. A source whose pixels coincide with the
reference :class:`Grid` is read by window directly; any other is warped lazily onto it through a
GDAL warped VRT. :meth:`RasterStack.read` returns one window (plus an optional halo) of every band
as float32, with NaN wherever a source has no data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import MaskFlags
from rasterio.errors import CRSError, RasterioError
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform, transform_bounds
from rasterio.windows import Window

from geomap.errors import RasterError
from geomap.sources import FILL_MAGNITUDE, Source, crs_units, inspect_raster, raster_error

_EARTH_RADIUS_M = 6_371_008.8  # WGS 84 mean radius
#: Side of the square windows streamed through a model: a multiple of the 256-pixel GeoTIFF
#: tiles, and small enough that a window's feature table (about a hundred features) stays near
#: 25 MB; 512 took the peak of an 8000 x 8000 x 12 run to 0.99 GB.
BLOCK_SIZE = 256


@dataclass(frozen=True)
class Grid:
    """A north-up pixel grid: CRS, affine transform and size."""

    crs: CRS
    transform: Affine
    width: int
    height: int

    @property
    def res(self) -> tuple[float, float]:
        """Pixel width and height in CRS units."""
        return (self.transform.a, -self.transform.e)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in CRS units."""
        left, top = self.transform.c, self.transform.f
        return (left, top - self.height * self.res[1], left + self.width * self.res[0], top)

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    @property
    def ground_res(self) -> tuple[float, float]:
        """Pixel width and height in metres on the ground, at the grid's centre.

        Projected grids convert their linear unit (metre, foot, ...); geographic grids (degrees)
        use the sphere of the WGS 84 mean radius at the centre latitude.
        """
        if self.crs.is_geographic:
            left, bottom, right, top = self.bounds
            metres_per_degree = math.pi * _EARTH_RADIUS_M / 180
            lat = math.radians((bottom + top) / 2)
            return (
                self.res[0] * metres_per_degree * math.cos(lat),
                self.res[1] * metres_per_degree,
            )
        factor = self.crs.linear_units_factor[1]
        return (self.res[0] * factor, self.res[1] * factor)

    @property
    def pixel_size_m(self) -> float:
        """Side in metres of a square pixel of the same area (for terrain features)."""
        return math.sqrt(self.pixel_area_m2)

    @property
    def pixel_area_m2(self) -> float:
        """Ground area of a pixel in square metres, at the grid's centre."""
        width, height = self.ground_res
        return width * height

    def windows(self, block_size: int) -> Iterator[Window]:
        """Yield the grid's windows of at most ``block_size`` square pixels, row by row."""
        if block_size < 16:
            raise ValueError(f"block_size has to be at least 16 pixels; got {block_size}.")
        for row in range(0, self.height, block_size):
            for col in range(0, self.width, block_size):
                yield Window(
                    col, row, min(block_size, self.width - col), min(block_size, self.height - row)
                )

    def xy(self, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map coordinates of pixel centres."""
        x = self.transform.c + (np.asarray(cols) + 0.5) * self.transform.a
        y = self.transform.f + (np.asarray(rows) + 0.5) * self.transform.e
        return x, y

    def to_dict(self) -> dict:
        """A JSON-ready description."""
        return {
            "crs": self.crs.to_string(),
            "crs_wkt": self.crs.to_wkt(),
            "transform": list(self.transform)[:6],
            "width": self.width,
            "height": self.height,
            "resolution": list(self.res),
            "units": crs_units(self.crs),
            "bounds": list(self.bounds),
        }


#: Share of exact zeros in a band without nodata above which geomap suggests --nodata 0.
ZERO_SHARE = 0.005


def _dummy_note(source: Source) -> str:
    """What a raster's undeclared dummy value is taken for, and what to do about it."""
    value, share = source.dummy
    head = f"Raster '{source.path.name}': {share:.1%} of its pixels hold {value:g}"
    if abs(value) >= FILL_MAGNITUDE:
        return (
            f"{head}, a dummy no measurement takes (survey software writes it for no data); "
            "they are read as no data."
        )
    return (
        f"{head} and it declares no nodata value. If {value:g} marks missing data there, pass "
        f"--nodata {value:g} so those pixels are mapped from the other rasters instead of read "
        "as measurements."
    )


#: A raster whose removal would grow the common footprint more than this many times is named.
FOOTPRINT_SHRINK = 1.25


def _grid_crs(sources: Sequence[Source], crs: str | CRS | None) -> CRS:
    if crs is None:
        return sources[0].crs
    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise RasterError(
            f"The reference CRS '{crs}' is not understood ({exc}); give e.g. EPSG:32633."
        ) from None


def _res_in(source: Source, crs: CRS) -> float:
    """The source's finer pixel size expressed in the units of ``crs``.

    Where the reprojected size is within 1% of the native one, the native one: a 25 m DEM in
    EPSG:3035 makes a 25 m grid in UTM, not the 25.08 m its reprojected footprint gives (a
    Web Mercator raster's "10 m" at 60 degrees north stays the 5 m it is on the ground).
    """
    native = min(source.res)
    if source.crs == crs:
        return native
    transform, _, _ = calculate_default_transform(
        source.crs, crs, source.width, source.height, *source.bounds
    )
    size = min(abs(transform.a), abs(transform.e))
    return native if abs(size - native) <= 0.01 * native else size


def _footprint_in(source: Source, crs: CRS) -> tuple[float, float, float, float]:
    if source.crs == crs:
        return source.bounds
    return transform_bounds(source.crs, crs, *source.bounds, densify_pts=21)


def _snap_origin(sources: Sequence[Source], crs: CRS, res: float) -> tuple[float, float]:
    """The corner the grid's pixel edges snap to.

    The top-left corner of the first source in the grid's CRS and at its pixel size (it is then
    read pixel for pixel); else of the first source in that CRS; else (0, 0).
    """
    same = [s for s in sources if s.crs == crs]
    exact = [s for s in same if abs(min(s.res) - res) <= 1e-6 * res and s.res[0] == s.res[1]]
    first = (exact or same or [None])[0]
    return (0.0, 0.0) if first is None else (first.bounds[0], first.bounds[3])


def choose_grid(
    sources: Sequence[Source],
    *,
    crs: str | CRS | None = None,
    resolution: float | None = None,
    origin: tuple[float, float] | None = None,
) -> Grid:
    """Choose the reference grid for a list of sources.

    The default is the CRS of the first source, the finest resolution among the sources and the
    intersection of their footprints, with pixel edges snapped to ``origin`` (a pixel corner;
    default: see :func:`_snap_origin`).

    Raises
    ------
    RasterError
        If the footprints do not overlap or the resolution is not positive.
    """
    grid_crs = _grid_crs(sources, crs)
    if resolution is None:
        res = min(_res_in(s, grid_crs) for s in sources)
    elif resolution <= 0:
        raise RasterError(f"The resolution has to be positive; got {resolution}.")
    else:
        res = float(resolution)
    feet = [_footprint_in(s, grid_crs) for s in sources]
    left, bottom = max(f[0] for f in feet), max(f[1] for f in feet)
    right, top = min(f[2] for f in feet), min(f[3] for f in feet)
    if origin is None:
        origin = _snap_origin(sources, grid_crs, res)
    x0, y0 = origin
    eps = 1e-6 * res
    left = x0 + math.ceil((left - x0) / res - eps) * res
    top = y0 - math.ceil((y0 - top) / res - eps) * res
    width = int(math.floor((right - left) / res + eps))
    height = int(math.floor((top - bottom) / res + eps))
    if (width < 1 or height < 1) and resolution is not None and right > left and top > bottom:
        unit = crs_units(grid_crs)
        raise RasterError(
            f"The grid's pixel (--resolution {resolution:g}) is larger than the rasters' common "
            f"footprint ({right - left:.6g} x {top - bottom:.6g} {unit} in "
            f"{grid_crs.to_string()}): --resolution is in the units of the grid's CRS, {unit} "
            "here. Give a smaller one"
            + (", or --crs a projected CRS in metres." if grid_crs.is_geographic else ".")
        )
    if width < 1 or height < 1:
        listed = "; ".join(
            f"'{s.path.name}' {tuple(round(v, 3) for v in f)}" for s, f in zip(sources, feet)
        )
        raise RasterError(
            f"The rasters do not overlap by a whole pixel of {res:g} {crs_units(grid_crs)}: their "
            f"footprints in "
            f"{grid_crs.to_string()} are {listed}. Give rasters of the same area, or check that "
            "each file's CRS is right."
        )
    return Grid(grid_crs, Affine(res, 0, left, 0, -res, top), width, height)


class RasterStack:
    """Input rasters aligned on one reference grid, read lazily by window.

    Use :meth:`open`; close with :meth:`close` or a ``with`` block.
    """

    def __init__(self, sources: Sequence[Source], grid: Grid) -> None:
        self.sources = tuple(sources)
        self.grid = grid
        self.band_names = _unique_names(self.sources)
        self.band_source = np.repeat(np.arange(len(self.sources)), [s.count for s in self.sources])
        self.band_grid = _native_grid_ids(self.sources)[self.band_source]
        self.resampling = tuple(_resampling_for(s, grid) for s in self.sources)
        self._datasets: list = []
        self._readers: list = []

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
    ) -> RasterStack:
        """Check every raster and build the stack on the default or the given grid.

        Raises
        ------
        MissingFileError, RasterError
            See :func:`inspect_raster` and :func:`choose_grid`.
        """
        if not paths:
            raise RasterError("No raster given; pass at least one with --raster.")
        sources = [inspect_raster(p, nodata) for p in paths]
        if grid is None:
            grid = choose_grid(sources, crs=crs, resolution=resolution, origin=origin)
        stack = cls(sources, grid)
        try:
            stack._open_readers()
        except BaseException:
            stack.close()
            raise
        return stack

    def _open_readers(self) -> None:
        for source, resampling in zip(self.sources, self.resampling):
            dataset = rasterio.open(source.path)
            self._datasets.append(dataset)
            offset = _aligned_offset(source, self.grid)
            if offset is not None:
                self._readers.append(_DirectReader(dataset, source, offset))
                continue
            self._readers.append(
                WarpedVRT(
                    dataset,
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
            )

    def notes(self) -> list[str]:
        """Warnings on the inputs: undeclared fill values, a needlessly fine or coarse grid.

        A band with many exact zeros and no nodata may use 0 for missing data; a grid whose
        pixels are much finer than any input's costs time and adds no detail; one much coarser
        than every input's throws detail away.
        """
        notes = [
            f"Raster '{s.path.name}' declares nodata {s.ignored_nodata}, which its {s.dtype} "
            "bands cannot hold, so GDAL ignores it and no pixel of it is taken as missing. Give "
            "the value its missing pixels hold with --nodata (often 0 in such a VRT), or set a "
            "NoDataValue in the band type's range."
            for s in self.sources
            if s.ignored_nodata is not None and s.nodata is None
        ]
        zeros = [s for s in self.sources if s.zero_share and max(s.zero_share) >= ZERO_SHARE]
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
                "--nodata 0 so those pixels are mapped from the other rasters."
            )
        notes += [_dummy_note(s) for s in self.sources if s.dummy is not None]
        finest = min(_res_in(s, self.grid.crs) for s in self.sources)
        res, unit = min(self.grid.res), crs_units(self.grid.crs)
        size = f"{self.grid.width:,} x {self.grid.height:,} pixels"
        if res < finest / 2:
            notes.append(
                f"The grid's pixels ({res:g} {unit}) are {finest / res:.1f} times finer than the "
                f"finest input's ({finest:g} {unit}): {size} to map, {(finest / res) ** 2:.0f} "
                "times as many as at the inputs' resolution, with no more detail. Leave out "
                "--resolution unless this is meant."
            )
        notes += self._footprint_notes()
        coarsest = max(_res_in(s, self.grid.crs) for s in self.sources)
        if res > 2 * coarsest:
            notes.append(
                f"The grid's pixels ({res:g} {unit}) are {res / coarsest:.1f} times coarser than "
                f"the coarsest input's ({coarsest:g} {unit}): the map has only {size}. Give a "
                "finer --resolution, or leave it out to map at the finest input's."
            )
        return notes

    def _footprint_notes(self) -> list[str]:
        """A raster that alone shrinks the common footprint (a band georeferenced elsewhere)."""
        if len(self.sources) < 3:
            return []  # with two, either may be the one that is off
        feet = [_footprint_in(s, self.grid.crs) for s in self.sources]

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
                data = reader.read(window=inner)
            except RasterioError as exc:
                raise raster_error(
                    source.path,
                    f"reading rows {r0}-{r1} and columns {c0}-{c1} of the grid failed ({exc}); the "
                    "file is corrupt there.",
                    "Copy or download it again.",
                ) from None
            with np.errstate(invalid="ignore"):
                data[np.abs(data) >= FILL_MAGNITUDE] = np.nan  # dummies, and what warping blurs
            out[start : start + source.count, rs, cs] = data
            start += source.count
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
                    "resampling": r,
                }
                for s, r in zip(self.sources, self.resampling)
            ],
        }

    def close(self) -> None:
        """Close every open dataset."""
        for handle in self._readers + self._datasets:
            handle.close()
        self._readers, self._datasets = [], []

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

    def close(self) -> None:
        """Close the sources that are there."""
        self._stack.close()

    def __enter__(self) -> PartialStack:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _stand_in(bands: tuple[str, ...], grid: Grid) -> Source:
    """The stand-in for an absent source: its band names on the grid, no data anywhere."""
    return Source(
        path=Path(f"(no raster for {', '.join(bands)})"),
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
    if source.crs != grid.crs or not np.allclose(source.res, grid.res, rtol=1e-9, atol=0):
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

    def read(self, window: Window) -> np.ndarray:
        col, row = int(window.col_off) + self.offset[0], int(window.row_off) + self.offset[1]
        h, w = int(window.height), int(window.width)
        out = np.full((self.source.count, h, w), np.nan, dtype="float32")
        c0, r0 = max(col, 0), max(row, 0)
        c1, r1 = min(col + w, self.source.width), min(row + h, self.source.height)
        if c1 <= c0 or r1 <= r0:
            return out
        data = self.dataset.read(window=Window(c0, r0, c1 - c0, r1 - r0), out_dtype="float32")
        if self.source.nodata is not None and not np.isnan(self.source.nodata):
            data[data == np.float32(self.source.nodata)] = np.nan
        elif self.masked:  # an internal mask or alpha band, as the warper would use it
            data[:, self.dataset.read_masks(1, window=Window(c0, r0, c1 - c0, r1 - r0)) == 0] = (
                np.nan
            )
        out[:, r0 - row : r1 - row, c0 - col : c1 - col] = data
        return out

    def close(self) -> None:
        """The dataset is closed by the stack."""


def _resampling_for(source: Source, grid: Grid) -> str:
    """Bilinear when the source is as coarse as the grid or coarser, average when finer."""
    return "bilinear" if _res_in(source, grid.crs) >= 0.999 * min(grid.res) else "average"


def _unique_names(sources: Sequence[Source]) -> tuple[str, ...]:
    names = [n for s in sources for n in s.band_names]
    seen = {n for n in names if names.count(n) > 1}
    return tuple(f"{s.path.stem}:{n}" if n in seen else n for s in sources for n in s.band_names)
