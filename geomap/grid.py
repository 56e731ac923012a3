"""The reference grid: one CRS, pixel size and extent that every input raster is read onto.

:func:`choose_grid` takes the CRS of the first raster, the finest pixel size among them and the
intersection of their footprints, with the pixel edges on a raster's own (overridable).
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pyproj
from affine import Affine
from pyproj import Proj, Transformer
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.warp import calculate_default_transform, transform_bounds
from rasterio.windows import Window

from geomap.errors import RasterError, proj_reason
from geomap.sources import Source, crs_units

_EARTH_RADIUS_M = 6_371_008.8  # WGS 84 mean radius
#: Departure from 1 of a projection's scale within which its units are taken as ground units
#: (UTM and national grids keep within 0.1% over their zones; Web Mercator doubles at 60 degrees).
SCALE_TOLERANCE = 0.01


def extent_text(bounds: Sequence[float]) -> str:
    """(left, bottom, right, top) as a message gives them: "x 500,037 to 511,981, y ..."."""
    left, bottom, right, top = bounds

    def number(value: float) -> str:  # metres whole and grouped, degrees with their decimals
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.6g}"

    return f"x {number(left)} to {number(right)}, y {number(bottom)} to {number(top)}"


def projection_scale(crs: CRS, bounds: Sequence[float]) -> tuple[float, float]:
    """Scale of a projected CRS along x and y at the centre of ``bounds``.

    (1, 1) when within :data:`SCALE_TOLERANCE`, and for geographic CRSs (which
    :attr:`Grid.ground_res` handles).
    """
    if crs.is_geographic:
        return (1.0, 1.0)
    left, bottom, right, top = bounds
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        (left + right) / 2, (bottom + top) / 2
    )
    factors = Proj(pyproj.CRS.from_wkt(crs.to_wkt())).get_factors(lon, lat)
    scale = (factors.parallel_scale, factors.meridional_scale)
    if not all(math.isfinite(k) and k > 0 for k in scale):
        return (1.0, 1.0)
    return (1.0, 1.0) if all(abs(k - 1) <= SCALE_TOLERANCE for k in scale) else scale


def ground_crs(crs: CRS, bounds: Sequence[float]) -> CRS | None:
    """A CRS in ground metres around ``bounds``: None when ``crs`` is one.

    Else an azimuthal equidistant projection centred there, for walking distances on degree,
    foot or Web Mercator grids.
    """
    crs = CRS.from_user_input(crs)
    if not crs.is_geographic and crs.linear_units_factor[1] == 1:
        if projection_scale(crs, bounds) == (1.0, 1.0):
            return None
    left, bottom, right, top = bounds
    lon, lat = Transformer.from_crs(crs, "EPSG:4326", always_xy=True).transform(
        (left + right) / 2, (bottom + top) / 2
    )
    return CRS.from_proj4(f"+proj=aeqd +lat_0={lat:.6f} +lon_0={lon:.6f} +datum=WGS84 +units=m")


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

        Projected grids convert their linear unit (metre, foot, ...) and divide by the
        projection's scale there (:func:`projection_scale`: Web Mercator's 30 m pixel at 60
        degrees north is 15 m on the ground); geographic grids (degrees) use the sphere of the
        WGS 84 mean radius at the centre latitude.
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
        kx, ky = projection_scale(self.crs, self.bounds)
        return (self.res[0] * factor / kx, self.res[1] * factor / ky)

    @property
    def pixel_size_m(self) -> float:
        """Side in metres of a square pixel of the same area (for terrain features)."""
        return math.sqrt(self.pixel_area_m2)

    @property
    def pixel_aspect(self) -> float:
        """Ground height over width of a pixel (1 for square pixels; 2 for degrees at 60 N)."""
        width, height = self.ground_res
        return height / width

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


_UTM_WORDS = re.compile(r"\butm\W*(?:zone\W*)?(\d{1,2})\s*([ns])?", re.IGNORECASE)


def utm_hint(text: str) -> str:
    """What to give for words that name a UTM zone ("UTM 33N", "utm zone 56 south"), or "".

    The WGS 84 zone's EPSG code: the words name no datum, which the message says.
    """
    match = _UTM_WORDS.search(str(text))
    if match is None or not 1 <= int(match.group(1)) <= 60:
        return ""
    zone, side = int(match.group(1)), (match.group(2) or "").upper()
    codes = {"N": f"EPSG:{32600 + zone}", "S": f"EPSG:{32700 + zone}"}
    given = codes[side] if side else f"{codes['N']} north of the equator, {codes['S']} south"
    return (
        f" If it means UTM zone {zone}{side} on WGS 84, give {given} (on another datum, that "
        "datum's code for the zone)."
    )


def _grid_crs(sources: Sequence[Source], crs: str | CRS | None) -> CRS:
    if crs is None:
        return sources[0].crs
    try:
        return CRS.from_user_input(crs)
    except CRSError as exc:
        raise RasterError(
            f"The reference CRS '{crs}' is not understood (PROJ: {proj_reason(exc)}); give e.g. "
            f"EPSG:32633.{utm_hint(crs)}"
        ) from None


def res_in(source: Source, crs: CRS) -> float:
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


#: A pixel size that reprojection gives within this factor of the pixel size of a source already
#: in the grid's CRS counts as that size (see :func:`finest_res`).
SAME_SIZE = 1.15


def finest_res(sources: Sequence[Source], crs: CRS) -> float:
    """The finest pixel size of the sources in the units of ``crs``, as the grid's default.

    A size that only reprojection gives counts as that of a source already in ``crs`` when it
    is within :data:`SAME_SIZE` of it: a 1" SRTM tile (26 x 31 m at 32 degrees south) is 28.25 m
    square in UTM, and beside Landsat's 30 m bands it would put them all on a 28.25 m grid,
    resampled and 13% more pixels, where a geologist expects Landsat's own 30 m grid.
    """
    sizes = [res_in(s, crs) for s in sources]
    finest = min(sizes)
    near = [r for s, r in zip(sources, sizes) if s.crs == crs and r <= SAME_SIZE * finest]
    return min(near) if near else finest


def footprint_in(source: Source, crs: CRS) -> tuple[float, float, float, float]:
    """The source's bounds in ``crs`` (densified, so a reprojected edge's bulge is inside)."""
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


def _overlap(boxes: Sequence[tuple], res: float) -> tuple | None:
    """The common box of footprints, None unless it holds a whole pixel of side ``res``."""
    box = (
        max(f[0] for f in boxes),
        max(f[1] for f in boxes),
        min(f[2] for f in boxes),
        min(f[3] for f in boxes),
    )
    whole = res * (1 - 1e-6)
    return box if box[2] - box[0] >= whole and box[3] - box[1] >= whole else None


def _apart(sources: Sequence[Source], feet: list, crs: CRS, res: float) -> str:
    """Which raster lies apart, when the others overlap without it; else an empty string.

    Two rasters that alone miss each other (tiles of one survey side by side, which every other
    raster overlaps) are named together: leaving either out would not say what is wrong.
    """
    n = len(sources)
    pairs = [
        (i, j) for i in range(n) for j in range(i + 1, n) if not _overlap([feet[i], feet[j]], res)
    ]
    if len(pairs) == 1:
        a, b = (sources[k].path.name for k in pairs[0])
        return (
            f" '{a}' and '{b}' do not overlap each other, and the map needs every raster at each "
            "pixel. If they are tiles of one survey side by side, mosaic them into one raster "
            "first (in QGIS: Raster > Miscellaneous > Merge; or gdalbuildvrt mosaic.vrt "
            f"{shlex.quote(a)} {shlex.quote(b)}, and give mosaic.vrt); else check their CRS and "
            "georeferencing."
        )
    for i, source in enumerate(sources):
        others = feet[:i] + feet[i + 1 :]
        if len(others) < 2:
            return ""
        box = _overlap(others, res)
        if box is None:
            continue
        dx = (feet[i][0] + feet[i][2] - box[0] - box[2]) / 2
        dy = (feet[i][1] + feet[i][3] - box[1] - box[3]) / 2
        unit = crs_units(crs)
        scale, unit = (1000.0, "km") if unit == "m" else (1.0, unit)
        ways = [
            f"{abs(d) / scale:.3g} {unit} {word[d > 0]}"
            for d, word in ((dy, ("south", "north")), (dx, ("west", "east")))
            if abs(d) >= 0.05 * max(abs(dx), abs(dy))
        ]
        return (
            f" '{source.path.name}' lies apart from the others, which do overlap: its centre is "
            f"{' and '.join(ways)} of theirs. Leave it out, or check its CRS and georeferencing."
        )
    return ""


def choose_grid(
    sources: Sequence[Source],
    *,
    crs: str | CRS | None = None,
    resolution: float | None = None,
    origin: tuple[float, float] | None = None,
) -> Grid:
    """Choose the reference grid for a list of sources.

    The default is the CRS of the first source, the finest resolution among the sources (see
    :func:`finest_res`) and the intersection of their footprints, with pixel edges snapped to
    ``origin`` (a pixel corner; default: see :func:`_snap_origin`).

    Raises
    ------
    RasterError
        If the footprints do not overlap or the resolution is not positive.
    """
    grid_crs = _grid_crs(sources, crs)
    if resolution is None:
        res = finest_res(sources, grid_crs)
    elif resolution <= 0:
        raise RasterError(f"The resolution has to be positive; got {resolution}.")
    else:
        res = float(resolution)
    feet = [footprint_in(s, grid_crs) for s in sources]
    left, bottom = max(f[0] for f in feet), max(f[1] for f in feet)
    right, top = min(f[2] for f in feet), min(f[3] for f in feet)
    overlap = (right - left, top - bottom)  # before the edges snap to the pixels
    if origin is None:
        origin = _snap_origin(sources, grid_crs, res)
    x0, y0 = origin
    eps = 1e-6 * res
    left = x0 + math.ceil((left - x0) / res - eps) * res
    top = y0 - math.ceil((y0 - top) / res - eps) * res
    width = int(math.floor((right - left) / res + eps))
    height = int(math.floor((top - bottom) / res + eps))
    if (width < 1 or height < 1) and resolution is not None and min(overlap) > 0:
        unit = crs_units(grid_crs)
        raise RasterError(
            f"The grid's pixel (--resolution {resolution:g}) is larger than the rasters' common "
            f"footprint ({overlap[0]:.6g} x {overlap[1]:.6g} {unit} in "
            f"{grid_crs.to_string()}): --resolution is in the units of the grid's CRS, {unit} "
            "here. Give a smaller one"
            + (", or --crs a projected CRS in metres." if grid_crs.is_geographic else ".")
        )
    if width < 1 or height < 1:
        listed = "; ".join(
            f"'{s.path.name}' {tuple(round(v, 3) for v in f)}" for s, f in zip(sources, feet)
        )
        raise RasterError(
            f"The rasters do not overlap by a whole pixel of {res:g} {crs_units(grid_crs)}."
            f"{_apart(sources, feet, grid_crs, res)} Their footprints in "
            f"{grid_crs.to_string()} are {listed}. Give rasters of the same area, or check that "
            "each file's CRS is right."
        )
    return Grid(grid_crs, Affine(res, 0, left, 0, -res, top), width, height)
