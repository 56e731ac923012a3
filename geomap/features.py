"""Geological features computed per window with a declared halo.

A :class:`FeatureRecipe` turns a block of stack bands grown by :attr:`FeatureRecipe.halo` pixels on
each side into the features of the block's inner pixels. Each output pixel depends only on its own
neighbourhood and is summed in a fixed order, so features computed window by window equal those of
a whole-image computation bit for bit.

Features: the raw bands; focal mean and standard deviation over square windows; an edge-preserving
(Kuwahara) mean that smooths noise without blurring contacts; radiometric and optical ratios where
band names say so; slope, roughness and topographic position where a band is named as an
elevation model. Pixel coordinates are never features.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from geomap.errors import InputDataError
from geomap.kernels import focal_mean_std, kuwahara, shares

if TYPE_CHECKING:
    from geomap.stack import RasterStack

#: Focal window sizes per preset; "raw" uses the bands alone.
PRESETS: dict[str, tuple[int, ...]] = {"raw": (), "default": (3, 7), "rich": (3, 7, 15)}
#: Window sides of the Kuwahara means per preset. On the benchmark scenes they add 3 points of map
#: accuracy, nearly all at contacts, where focal means mix the units on both sides.
KUWAHARA_SIZES: dict[str, tuple[int, ...]] = {"raw": (), "default": (3, 5), "rich": (3, 5)}

_KIND_TOKENS = {
    "K": {"k", "potassium", "kpct", "k_pct"},
    "Th": {"th", "thorium", "eth"},
    "U": {"u", "uranium", "eu"},
    "dem": {"dem", "dtm", "dsm", "elevation", "elev", "height", "altitude", "srtm", "topography"},
    "magnetic": {"tmi", "mag", "magnetic", "magnetics", "rtp", "rmi"},
    "gravity": {"gravity", "grav", "bouguer", "cba", "freeair"},
    # optical bands by name, or by Sentinel-2 band code (zero-padded, unlike Landsat's B1..B7)
    "blue": {"blue", "b02"},
    "green": {"green", "b03"},
    "red": {"red", "b04"},
    "nir": {"nir", "b08", "b8a"},
    "swir1": {"swir1", "swir16", "b11"},
    "swir2": {"swir2", "swir22", "b12"},
}
#: Landsat file names (``LC08_L2SP_..._SR_B2``): the sensor from the product ID, then the band.
_LANDSAT_SENSOR = {"lc08": "oli", "lc09": "oli", "lo08": "oli", "lo09": "oli"}
_LANDSAT_SENSOR.update(le07="tm", lt05="tm", lt04="tm")
_LANDSAT_BANDS = {
    "oli": {2: "blue", 3: "green", 4: "red", 5: "nir", 6: "swir1", 7: "swir2"},
    "tm": {1: "blue", 2: "green", 3: "red", 4: "nir", 5: "swir1", 7: "swir2"},
}
#: Ratios added where both bands are recognised: radiometric K/Th, U/Th, U/K; and the optical
#: ratios of geological remote sensing (Sabins 1999): ferric iron (red/blue), ferrous iron
#: (swir1/nir), clay and carbonate hydroxyl (swir1/swir2), vegetation (nir/red). Ratios cancel
#: the brightness changes of illumination and albedo that a forest cannot divide out by itself.
#: Each is computed as a share, a / (a + b) of the values floored at 0: in the same order as a / b
#: wherever both are positive (a forest splits it alike), and bounded where a / b is not: noisy
#: airborne grids hold K, eTh, eU at or below 0, where a / b reached 240 and the pixels became
#: the most dissimilar of the map.
_RATIOS = (
    ("K", "Th"),
    ("U", "Th"),
    ("U", "K"),
    ("red", "blue"),
    ("swir1", "nir"),
    ("swir1", "swir2"),
    ("nir", "red"),
    # ASTER's SWIR absorptions (Rowan & Mars 2003): Al-OH of white mica and clays in band 6
    # (bands 5 and 7 its shoulders), kaolinite and alunite in band 5 (band 4 its shoulder),
    # carbonate, chlorite and epidote (Mg-OH, CO3) in band 8 (bands 7 and 9 its shoulders).
    ("aster5", "swir2"),
    ("aster7", "swir2"),
    ("swir1", "aster5"),
    ("aster7", "aster8"),
    ("aster9", "aster8"),
    # ASTER's thermal emissivity lows (Ninomiya et al. 2005): quartz in bands 10 and 12 (band 11
    # between them high: the quartz index), carbonate in band 14 (the carbonate index 13/14),
    # mafic silicates in band 13 (bands 12 and 14 beside it: the mafic index).
    ("aster11", "aster10"),
    ("aster11", "aster12"),
    ("aster13", "aster14"),
    ("aster12", "aster13"),
    ("aster14", "aster13"),
)
_RATIO_FLOOR = 1e-3
#: Bands of a raster from which geomap says when it recognises none of them.
UNNAMED_BANDS = 3
_OPTICAL = ("blue", "green", "red", "nir", "swir1", "swir2")
#: ASTER's narrow SWIR bands beside its "swir1" (band 4) and "swir2" (band 6), and its thermal
#: bands: ratios, no spectrum.
_ASTER_SWIR = ("aster5", "aster7", "aster8", "aster9")
_ASTER_TIR = ("aster10", "aster11", "aster12", "aster13", "aster14")
_ASTER_EXTRA = _ASTER_SWIR + _ASTER_TIR
_OPTICAL_WORDS = set().union(*(_KIND_TOKENS[k] for k in _OPTICAL))
#: Geophysical quantities: never one image with a satellite's bands, even on its grid.
_FAMILY = {"K": "radiometric", "Th": "radiometric", "U": "radiometric", "dem": "dem"}
_FAMILY.update(magnetic="magnetic", gravity="gravity")


#: Bands named by number alone, as Google Earth Engine exports them: Sentinel-2's B2..B12
#: (without Sentinel-2's zero), Landsat Collection 2's SR_B1..SR_B7.
_EE_SENTINEL = {2: "blue", 3: "green", 4: "red", 8: "nir", 11: "swir1", 12: "swir2"}


def band_kinds(names: Sequence[str]) -> list[str | None]:
    """:func:`band_kind` of each name, and of bands named by number once the set says whose.

    "B2".."B12" are Sentinel-2's when the set holds B8 and B12 (or B8A), and nobody's when it
    holds B13 or B14 (ASTER) or B10 without B12 (Landsat, whose B11 is thermal). "SR_B1".."SR_B7"
    are Landsat 8/9's when the set holds SR_B6 or ST_B10, Landsat 4-7's when it holds SR_B1 to
    SR_B5 and SR_B7. geomap's names of a file's unnamed bands (``<file>_b1``, ``<file>_b2``...)
    say nothing: the 11th band of an ASTER stack is thermal, not Sentinel-2's SWIR B11.
    """
    kinds = [band_kind(n) for n in names]
    codes = {i: _number_code(n) for i, n in enumerate(names)}
    codes = {i: c for i, c in codes.items() if c is not None}
    numbers = {p: {c[1] for c in codes.values() if c[0] == p} for p in ("", "sr", "st")}
    sentinel, reflectance = numbers[""], numbers["sr"]
    other = sentinel & {13, 14} or (10 in sentinel and 12 not in sentinel)  # ASTER, Landsat
    is_sentinel = 8 in sentinel and sentinel & {12, 108} and not other
    oli = 6 in reflectance or 10 in numbers["st"]  # Landsat 4-7's SWIR1 is B5, thermal B6
    sensor = "oli" if oli else "tm" if {1, 2, 3, 4, 5, 7} <= reflectance else None
    for i, (prefix, number) in codes.items():
        if not prefix and other:
            kinds[i] = None
        elif not prefix and is_sentinel:
            kinds[i] = "nir" if number == 108 else _EE_SENTINEL.get(number)
        elif prefix == "sr" and sensor:
            kinds[i] = _LANDSAT_BANDS[sensor].get(number)
    for stem, members in _stack_bands(names).items():
        for i in members:
            kinds[i] = band_kind(stem)
    _nearest_wavelengths(names, kinds)
    _airborne_first(names, kinds)
    return kinds


def _nearest_wavelengths(names: Sequence[str], kinds: list) -> None:
    """One band per kind among those a wavelength gives it: the nearest the kind's centre.

    A hyperspectral cube has dozens of red bands; SWIR2 is then the band nearest 2202 nm,
    inside the clay absorption the SWIR ratio is for, not the first band past 2080 nm.
    """
    by_kind: dict[str, list[tuple[float, int]]] = {}
    for i, (name, kind) in enumerate(zip(names, kinds)):
        nm = _wavelength_nm(name)
        if nm is not None and kind is not None and kind == _wavelength_kind(name):
            by_kind.setdefault(kind, []).append((abs(nm - _CENTRES[kind]), i))
    for members in by_kind.values():
        for _, i in sorted(members)[1:]:
            kinds[i] = None


def _airborne_first(names: Sequence[str], kinds: list) -> None:
    """Only the airborne band is Th or U where a laboratory assay's grid is named so too.

    Airborne equivalent thorium and uranium (eTh, eU) make the radiometric ratios and the
    survey's outage; a geochemistry set's Th_ppm and U_ppm are other rasters.
    """
    for kind, word in (("Th", "eth"), ("U", "eu")):
        airborne = [i for i, n in enumerate(names) if kinds[i] == kind and word in name_words(n)]
        if airborne:
            for i, k in enumerate(kinds):
                if k == kind and i not in airborne:
                    kinds[i] = None


def name_words(name: str) -> set[str]:
    """The lower-case words of a name, split at anything not a letter or digit."""
    return set(re.split(r"[^a-z0-9]+", name.lower())) - {""}


def _number_code(name: str) -> tuple[str, int] | None:
    """A band's code after any file or folder part ("S2_2019:B2"), as (prefix, number).

    ("", 8) for "B8", ("", 108) for "B8A", ("sr", 4) for "SR_B4", ("st", 10) for "ST_B10".
    """
    code = re.split(r"[:/]", name.strip())[-1]
    match = re.fullmatch(r"(?:(SR|ST)_)?B(\d{1,2})(A?)", code, re.IGNORECASE)
    if match is None:
        return None
    number = int(match.group(2)) + 100 * bool(match.group(3))
    return (match.group(1) or "").lower(), number


def _stack_bands(names: Sequence[str]) -> dict[str, list[int]]:
    """Bands geomap named ``<file>_b<n>`` (a file without band names): file -> indexes."""
    groups: dict[str, list[tuple[int, int]]] = {}
    for i, name in enumerate(names):
        match = re.fullmatch(r"(.+)_b([1-9]\d*)", name)  # geomap writes no leading zero
        if match:
            groups.setdefault(match.group(1), []).append((int(match.group(2)), i))
    return {
        stem: [i for _, i in members]
        for stem, members in groups.items()
        if len(members) > 1 and sorted(n for n, _ in members) == list(range(1, len(members) + 1))
    }


#: MODIS surface reflectance (MOD09/MYD09 ``sur_refl_b01`` ..): band 5 (1240 nm) has no kind.
_MODIS_BANDS = {1: "red", 2: "nir", 3: "blue", 4: "green", 6: "swir1", 7: "swir2"}
#: ASTER's bands as its products name them (``ImageData1`` .. ``ImageData14`` in the swaths of
#: its HDF files, ``VNIR_Band1`` .. ``TIR_Band14`` in LP DAAC's lists; ``3N`` nadir, not the
#: backward-looking ``3B``): VNIR 1-3
#: (560, 660, 810 nm), SWIR 4 (1650 nm) and 6 (2205 nm, the clay band nearest Sentinel-2's B12),
#: SWIR 5, 7, 8, 9 (2165, 2260, 2330, 2395 nm) and thermal 10-14 (8.3 to 11.3 um) for ratios.
_ASTER_BANDS = {1: "green", 2: "red", 3: "nir", 4: "swir1", 6: "swir2"}
_ASTER_BANDS.update({n: f"aster{n}" for n in (5, 7, 8, 9, 10, 11, 12, 13, 14)})
_ASTER_NAME = re.compile(r"(?:imagedata(\d{1,2})|(?:vnir|swir|tir)_?band(\d{1,2}))n?(?![a-z0-9])")


def band_kind(name: str) -> str | None:
    """The quantity a band name stands for ("K", "dem", "magnetic", "red"...) or None."""
    name = re.sub(r"(?i)swir[\s_-]+([12])\b", r"swir\1", name)  # "Band 6 - SWIR 1"
    tokens = name_words(name)
    if "edge" in tokens:  # "red edge" bands are not the red band
        return None
    # USGS names end in an upper-case _B<n>; geomap names unnamed bands of a file <stem>_b<n>.
    # Before the other names: Landsat 8's thermal B11 is not Sentinel-2's SWIR B11.
    number = re.search(r"_B(\d{1,2})$", name)
    sensor = next((_LANDSAT_SENSOR[t] for t in tokens if t in _LANDSAT_SENSOR), None)
    if number and sensor:
        return _LANDSAT_BANDS[sensor].get(int(number.group(1)))
    aster = [m for t in re.split(r"[^a-z0-9_]+", name.lower()) if (m := _ASTER_NAME.search(t))]
    if aster:
        return _ASTER_BANDS.get(int(aster[0].group(1) or aster[0].group(2)))
    modis = [int(t[1:]) for t in tokens if re.fullmatch(r"b0?[1-7]", t)]
    if modis and ("refl" in tokens or any(t.startswith(("mod09", "myd09")) for t in tokens)):
        return _MODIS_BANDS.get(modis[0])  # sur_refl_b02 is MODIS's NIR, not Sentinel-2's blue
    for kind, words in _KIND_TOKENS.items():
        if tokens & words:
            return kind
    if _dem_tile(tokens):
        return "dem"
    return _wavelength_kind(name)


#: Words that name a quality or mask layer of a product rather than a measurement: Landsat's
#: QA_PIXEL and QA_RADSAT, Sentinel-2's scene classification (SCL), cloud and snow
#: probabilities and atmospheric products (AOT, WVP), Fmask.
_QUALITY_WORDS = {"qa", "scl", "fmask", "cldprb", "snwprb", "cld", "snw", "aot", "wvp", "mask"}


def quality_word(name: str) -> str | None:
    """The word that names ``name`` a quality or mask layer ("qa" in "..._QA_PIXEL"), or None."""
    return next((t for t in sorted(name_words(name)) if t in _QUALITY_WORDS), None)


def _dem_tile(tokens: set[str]) -> bool:
    """Whether the words name a 1° tile of a global elevation model by its corner.

    USGS's SRTM GeoTIFFs ("s32_e115_1arc_v3"), SRTM's .hgt files ("N45E006", "N45E006.SRTMGL1").
    """
    corner = any(re.fullmatch(r"[ns]\d{2}[ew]\d{3}", t) for t in tokens)
    split = any(re.fullmatch(r"[ns]\d{2}", t) for t in tokens) and any(
        re.fullmatch(r"[ew]\d{3}", t) for t in tokens
    )
    product = bool(tokens & {"1arc", "3arc", "srtmgl1", "srtmgl3"})
    return corner and (product or len(tokens) <= 2) or split and product


#: Optical kinds by wavelength in nanometres: (kind, lowest, usual centre, highest), the
#: ranges Landsat OLI's and Sentinel-2's bands span, the centres Sentinel-2 MSI's.
_WAVELENGTHS = (
    ("blue", 440, 492, 520),
    ("green", 520, 560, 600),
    ("red", 620, 665, 690),
    ("nir", 760, 833, 900),
    ("swir1", 1550, 1614, 1750),
    ("swir2", 2080, 2202, 2350),
)
_CENTRES = {kind: centre for kind, _, centre, _ in _WAVELENGTHS}


def _wavelength_kind(name: str) -> str | None:
    """The optical kind of a band named by its wavelength: a hyperspectral cube's.

    "Band 57 (1650.0 nm)", "2.2 um", or GDAL's "(1650.00 Nanometers)" from an ENVI header.
    """
    value = _wavelength_nm(name)
    if value is None:
        return None
    return next((kind for kind, low, _, high in _WAVELENGTHS if low <= value <= high), None)


def _wavelength_nm(name: str) -> float | None:
    """The wavelength in nanometres a band's name gives, if any."""
    match = re.search(r"(\d+(?:\.\d+)?)\s*(nm|nanometers?|um|µm|micrometers?)\b", name, re.I)
    if match is None:
        return None
    return float(match.group(1)) * (1 if match.group(2).lower().startswith("n") else 1000)


def scene_key(name: str) -> str:
    """A band's name without the band's own words: what the bands of one scene share.

    The band's code or colour, a wavelength or band number (up to four digits), a resolution
    and Landsat's product kind (SR reflectance, ST temperature), ASTER's band and telescope
    names (``ImageData4``, ``SWIR_Band4``) are taken out:
    "T33TWM_20230612T100031_B02_10m" and "..._B11_20m" give "t33twm_20230612t100031";
    "LC09_..._SR_B2" and "..._ST_B10" the product's ID, with its path/row and dates, so two
    acquisitions are two scenes; "blue" and "Band 2 - Blue" nothing.
    """
    dated = re.sub(r"((?:19|20)\d\d)[-_.]?(\d\d)[-_.]?(\d\d)\b", r"\1\2\3", name.lower())
    tokens = re.split(r"[^a-z0-9]+", dated)
    own = r"b\d{1,2}a?|\d{1,4}(m|nm)?|band|sr|st|band\d{1,2}n?|imagedata\d{1,2}n?|vnir|swir|tir"
    year = r"19[7-9]\d|20\d\d"  # an acquisition's year, not a wavelength
    return "_".join(
        t
        for t in tokens
        if t and t not in _OPTICAL_WORDS and (re.fullmatch(year, t) or not re.fullmatch(own, t))
    )


def _sensor_sets(band_names: Sequence[str], kinds: Sequence[str | None]) -> list[dict]:
    """Per sensor (a scene: Sentinel-2 beside Landsat), the band index of each optical kind.

    Bands are one scene's when their :func:`scene_key` is the same. In a scene, the first band
    of a kind counts (Sentinel-2's B08 before its B8A); ASTER's narrow SWIR and thermal bands
    count too, for their ratios. When that leaves a scene with fewer than three optical kinds
    (names that differ in other ways), the bands are taken as one scene, the first of each kind
    counting, as before sensors were told apart.
    """
    sets: dict[str, dict] = {}
    for b, (name, kind) in enumerate(zip(band_names, kinds)):
        if kind in _OPTICAL + _ASTER_EXTRA:
            sets.setdefault(scene_key(name), {}).setdefault(kind, b)
    if len(sets) > 1 and min(len(s.keys() & set(_OPTICAL)) for s in sets.values()) < 3:
        return [{k: kinds.index(k) for k in _OPTICAL + _ASTER_EXTRA if k in kinds}]
    return list(sets.values())


def _band_scenes(
    band_names: Sequence[str], band_source: Sequence[int], spectra: Sequence[Sequence[int]]
) -> list[int]:
    """:func:`_scene_members` with two sensors or more; all -1 for one (one image per grid)."""
    if len(spectra) < 2:
        return [-1] * len(band_names)
    return _scene_members(band_names, band_source, spectra)


def _scene_members(
    band_names: Sequence[str], band_source: Sequence[int], spectra: Sequence[Sequence[int]]
) -> list[int]:
    """The sensor (index into ``spectra``) each band's scene is, or -1.

    A band belongs to a sensor when its file holds that sensor's spectrum bands, or when its
    :func:`scene_key` (if not empty) is one of theirs: a scene's coastal, red-edge or thermal
    files.
    """
    out = [-1] * len(band_names)
    for i, members in enumerate(spectra):
        files = {band_source[b] for b in members}
        keys = {scene_key(band_names[b]) for b in members} - {""}
        for b, (name, src) in enumerate(zip(band_names, band_source)):
            if out[b] < 0 and band_kind(name) not in _FAMILY:
                if src in files or scene_key(name) in keys:
                    out[b] = i
    return out


@dataclass(frozen=True)
class FeatureRecipe:
    """How features are computed from the stack bands; JSON-serialisable with :meth:`to_dict`."""

    band_names: tuple[str, ...]
    band_source: tuple[int, ...]
    pixel_size: float
    preset: str = "default"
    focal_sizes: tuple[int, ...] = ()
    ratios: tuple[tuple[int, int], ...] = ()
    dem_band: int | None = None
    kuwahara_sizes: tuple[int, ...] = ()
    kuwahara_groups: tuple[int, ...] = ()
    optical: tuple[int, ...] = ()
    optical_sets: tuple[int, ...] = ()
    #: Ground height over width of a pixel (degree grids away from the equator: 2 at 60 N).
    pixel_aspect: float = 1.0
    #: How ratios are computed: "share" a / (a + b); "quotient" a / b (models saved before it).
    ratio_form: str = "share"
    names: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def build(
        cls,
        band_names: Sequence[str],
        band_source: Sequence[int],
        pixel_size: float,
        preset: str = "default",
        band_grid: Sequence[int] | None = None,
        pixel_aspect: float = 1.0,
    ) -> FeatureRecipe:
        """Make the recipe of a preset for these bands.

        ``pixel_size`` is the side in metres of a square pixel of the same ground area and
        ``pixel_aspect`` its height over width (for the slope).

        ``band_grid`` gives each band the id of its native grid (bands recorded on one grid are
        one image, e.g. Landsat bands in separate files); the bands of an image choose their
        Kuwahara square together. Bands named as geophysics (K, Th, U; elevation; magnetics;
        gravity) are never part of a satellite's image, even regridded onto it: each quantity
        family on a grid is its own image. With two sensors (see :func:`_band_scenes`), each
        scene on a grid is its own image, so a cloud in one leaves the other's means whole.
        Default: one image per source.

        Raises
        ------
        InputDataError
            If the preset is unknown.
        """
        if preset not in PRESETS:
            raise InputDataError(
                f"Feature preset '{preset}' is not supported. Available: {', '.join(PRESETS)}."
            )
        kinds = band_kinds(band_names)
        index = {k: kinds.index(k) for k in _FAMILY if k in kinds}
        use_extras = preset != "raw"
        sets = _sensor_sets(band_names, kinds)
        pairs = [(index[a], index[b]) for a, b in _RATIOS if a in index and b in index]
        pairs += [(i[a], i[b]) for i in sets for a, b in _RATIOS if a in i and b in i]
        ratios = tuple(pairs) if use_extras else ()
        grid = band_source if band_grid is None else band_grid
        spectra = [tuple(i[k] for k in _OPTICAL if k in i) for i in sets] if use_extras else []
        spectra = [bands for bands in spectra if len(bands) >= 3]  # a spectrum's shape
        scenes = _band_scenes(band_names, band_source, spectra)
        family = [(g, _FAMILY.get(k, "image"), c) for g, k, c in zip(grid, kinds, scenes)]
        recipe = cls(
            band_names=tuple(band_names),
            band_source=tuple(int(s) for s in band_source),
            pixel_size=float(pixel_size),
            preset=preset,
            focal_sizes=PRESETS[preset],
            ratios=ratios,
            dem_band=index.get("dem") if use_extras else None,
            kuwahara_sizes=KUWAHARA_SIZES[preset],
            kuwahara_groups=tuple(sorted(set(family), key=family.index).index(f) for f in family),
            optical=tuple(b for bands in spectra for b in bands),
            optical_sets=tuple(i for i, bands in enumerate(spectra) for _ in bands),
            pixel_aspect=float(pixel_aspect),
        )
        return recipe

    @classmethod
    def for_stack(cls, stack: RasterStack, preset: str = "default") -> FeatureRecipe:
        """The recipe of a preset for the bands of a raster stack (see :meth:`build`)."""
        return cls.build(
            stack.band_names,
            stack.band_source,
            stack.grid.pixel_size_m,
            preset,
            band_grid=stack.band_grid,
            pixel_aspect=stack.grid.pixel_aspect,
        )

    def unnamed_notes(self, paths: Sequence[Path]) -> list[str]:
        """Rasters of :data:`UNNAMED_BANDS` bands or more none of which is named as a kind.

        A satellite scene whose bands carry no descriptions gets none of the ratios, spectral
        shares and screen, nor terrain; ``paths`` are the stack's sources, in order.
        """
        if self.preset == "raw":
            return []
        kinds = band_kinds(self.band_names)
        source = np.asarray(self.band_source)
        notes = []
        for s, path in enumerate(paths):
            bands = np.flatnonzero(source == s)
            if len(bands) >= UNNAMED_BANDS and all(kinds[b] is None for b in bands):
                notes.append(
                    f"Raster '{Path(path).name}': none of its {len(bands)} bands is named as a "
                    f"kind geomap knows (read as {self.band_names[bands[0]]}, ...), so it gets "
                    "no band ratios, spectral shares, spectral screen or terrain. If it is a "
                    "satellite scene or a radiometric survey, name its bands in the file (band "
                    "descriptions such as blue, green, red, nir, swir1, swir2; B2...B12; K, eTh, "
                    "eU), e.g. with gdal_edit.py -mo or in QGIS, or give one file per band named "
                    "so."
                )
        return notes

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self._names()))

    def _names(self) -> list[str]:
        names = list(self.band_names)
        for k in self.focal_sizes:
            names += [f"{b}_mean{k}" for b in self.band_names]
            names += [f"{b}_std{k}" for b in self.band_names]
        pairs = [(self.band_names[a], self.band_names[b]) for a, b in self.ratios]
        if self.ratio_form == "quotient":
            ratios = [f"{a}/{b}" for a, b in pairs]
        else:
            ratios = [f"{a}/({a}+{b})" for a, b in pairs]
        spectra = self._spectra()
        for k in self.kuwahara_sizes:
            names += [f"{b}_kuwahara{k}" for b in self.band_names]
            names += [f"{r}_kuwahara{k}" for r in ratios]
            names += [f"{self.band_names[b]}_share_kuwahara{k}" for s in spectra for b in s]
        names += ratios
        if self.dem_band is not None:
            dem = self.band_names[self.dem_band]
            names += [f"{dem}_slope", f"{dem}_roughness", f"{dem}_tpi{self._tpi_size}"]
        return names

    @property
    def _tpi_size(self) -> int:
        return max(self.focal_sizes, default=3) * 2 + 1

    @property
    def halo(self) -> int:
        """Pixels of context each side of a window that :meth:`compute` needs."""
        sizes = [*self.focal_sizes, *self.kuwahara_sizes]
        if self.dem_band is not None:
            sizes += [3, self._tpi_size]
        return max(sizes, default=1) // 2

    @property
    def n_features(self) -> int:
        """Number of features per pixel."""
        return len(self.names)

    @property
    def feature_sources(self) -> tuple[tuple[int, ...], ...]:
        """For each feature, the stack sources it is computed from."""
        src = self.band_source
        per_band = [(s,) for s in src]
        out = list(per_band) + per_band * (2 * len(self.focal_sizes))
        grp = self.kuwahara_groups
        image = [{s for s, h in zip(src, grp) if h == g} for g in grp]  # a band's Kuwahara inputs
        smooth = [tuple(sorted(i)) for i in image]
        smooth += [tuple(sorted(image[a] | image[b])) for a, b in self.ratios]
        for members in self._spectra():
            spectrum = set().union(*(image[b] for b in members))
            smooth += [tuple(sorted(spectrum))] * len(members)
        out += smooth * len(self.kuwahara_sizes)
        out += [tuple(sorted({src[a], src[b]})) for a, b in self.ratios]
        if self.dem_band is not None:
            out += [(src[self.dem_band],)] * 3
        return tuple(out)

    def outages(self) -> list[np.ndarray]:
        """The feature columns each input outage removes, to simulate what one costs.

        An outage takes out one of :meth:`input_units`; one that would leave no feature is not
        simulated.
        """
        return [cols for _, cols in self.input_units() if len(cols) < self.n_features]

    def input_units(self) -> list[tuple[list[int], np.ndarray]]:
        """The inputs as they fail together: (their sources, the feature columns they give).

        A cloud hides every file of a satellite scene at once (bands whose names share a
        :func:`scene_key`, red-edge bands included), and an airborne survey that ends takes its
        K, Th and U files with it, so those go together; every other geophysical source is one
        alone. A feature computed from sources of two units is each of theirs.
        """
        units: dict[tuple, set] = {}
        for name, s in zip(self.band_names, self.band_source):
            family = _FAMILY.get(band_kind(name))
            key = ("scene", scene_key(name)) if family is None else (family, s)
            units.setdefault(("survey",) if family == "radiometric" else key, set()).add(s)
        merged: list[set] = []
        for unit in units.values():  # a file holding bands of two units is one outage
            overlapping = [m for m in merged if m & unit]
            for m in overlapping:
                merged.remove(m)
                unit = unit | m
            merged.append(unit)
        sources = [set(s) for s in self.feature_sources]
        return [
            (sorted(unit), np.array([i for i, s in enumerate(sources) if s & unit], dtype=int))
            for unit in merged
        ]

    def optical_screens(self) -> list[tuple[list[int], list[int], list[int]]]:
        """What each :class:`geomap.screen.SpectralScreen` measures and drops: one per sensor.

        Per sensor (see :meth:`_spectra`): measured features (its spectrum's bands and their
        Kuwahara means), dropped features (every feature computed from a file of its scene:
        the spectrum's files and the files of bands named like them, such as its coastal,
        red-edge or thermal bands) and those files. Sensors that share a file (a composite of
        both) share one screen, which measures both spectra. A sensor gets no screen when a file
        of its scene also holds geophysics (dropping it would drop the geophysics) or when no
        band lies outside its files (nothing to map a screened pixel from). Empty without
        optical features (fewer than three recognised bands, or the ``raw`` preset).
        """
        index = {n: i for i, n in enumerate(self.names)}
        scenes = _scene_members(self.band_names, self.band_source, self._spectra())
        merged: list[tuple[list[int], set[int]]] = []
        for sensor, members in enumerate(self._spectra()):
            files = {self.band_source[b] for b in members}
            files |= {s for s, c in zip(self.band_source, scenes) if c == sensor}
            bands = list(members)
            for other in [m for m in merged if m[1] & files]:  # sensors sharing a file: one screen
                merged.remove(other)
                bands, files = other[0] + bands, other[1] | files
            merged.append((bands, files))
        out = []
        for members, files in merged:
            inside = [s in files for s in self.band_source]
            kinds = [band_kind(n) for n, held in zip(self.band_names, inside) if held]
            if all(inside) or any(k in _FAMILY for k in kinds):
                continue
            bands = [self.band_names[b] for b in members]
            measured = list(members) + [
                index[f"{b}_kuwahara{k}"] for k in self.kuwahara_sizes for b in bands
            ]
            drop = [f for f, src in enumerate(self.feature_sources) if files & set(src)]
            out.append((measured, drop, sorted(files)))
        return out

    def compute(self, block: np.ndarray) -> np.ndarray:
        """Features of the inner pixels of a block.

        Parameters
        ----------
        block : ndarray of shape (bands, height + 2 halo, width + 2 halo)
            Stack bands with NaN for no data.

        Returns
        -------
        ndarray of float32, shape (n_features, height, width)
            NaN wherever a feature's source has no data at the pixel.
        """
        return np.concatenate(list(self._parts(block)), axis=0)

    def compute_pixels(self, block: np.ndarray) -> np.ndarray:
        """The same features as :meth:`compute`, laid out as a (pixels, n_features) table.

        Each group of features is written straight into the table, so memory holds the table
        and one group, not two copies of every feature.
        """
        h = self.halo
        shape = (block.shape[1] - 2 * h, block.shape[2] - 2 * h)
        out = np.empty((shape[0] * shape[1], self.n_features), dtype="float32")
        start = 0
        for part in self._parts(block):
            out[:, start : start + len(part)] = part.reshape(len(part), -1).T
            start += len(part)
        return out

    def _parts(self, block: np.ndarray) -> Iterator[np.ndarray]:
        h = self.halo
        if block.ndim != 3 or block.shape[0] != len(self.band_names):
            raise InputDataError(
                f"Expected a block of {len(self.band_names)} bands; got shape {block.shape}."
            )
        inner = block[:, h : block.shape[1] - h, h : block.shape[2] - h]
        yield inner.astype("float32", copy=False)
        centre_nan = np.isnan(inner)
        for k in self.focal_sizes:
            mean, std = focal_mean_std(_trim(block, h, k // 2), k)
            mean[centre_nan] = np.nan
            std[centre_nan] = np.nan
            yield mean
            yield std
        for k in self.kuwahara_sizes:
            smooth = self._kuwahara(block, h, k, centre_nan)
            yield smooth
            yield from self._spectral(smooth)
        if self.ratios:
            yield self._ratios(inner)
        if self.dem_band is not None:
            yield self._terrain(block[self.dem_band], h)

    def _spectral(self, bands: np.ndarray) -> Iterator[np.ndarray]:
        """Ratios and, with three optical bands or more, each one's share of their sum.

        From Kuwahara means, these are far less noisy than from single pixels (a ratio adds the
        noise of both bands), and the shares give the spectrum's shape whatever its brightness.
        """
        if self.ratios:
            yield self._ratios(bands)
        for members in self._spectra():
            optical = np.maximum(bands[list(members)], _RATIO_FLOOR)
            yield (optical / optical.sum(axis=0)).astype("float32")

    def _ratios(self, bands: np.ndarray) -> np.ndarray:
        """The ratio features of (bands, H, W) in this recipe's form (see :data:`_RATIOS`)."""
        if self.ratio_form == "quotient":
            return np.stack(
                [
                    np.maximum(bands[a], _RATIO_FLOOR) / np.maximum(bands[b], _RATIO_FLOOR)
                    for a, b in self.ratios
                ]
            ).astype("float32")
        return shares(bands, self.ratios)

    def _spectra(self) -> list[tuple[int, ...]]:
        """The optical bands of each sensor, in the order of ``optical``."""
        sets = self.optical_sets or (0,) * len(self.optical)  # recipes before sensor sets
        return [tuple(b for b, s in zip(self.optical, sets) if s == i) for i in dict.fromkeys(sets)]

    def _kuwahara(self, block: np.ndarray, h: int, k: int, centre_nan: np.ndarray) -> np.ndarray:
        q = k // 2 + 1
        out = kuwahara(_trim(block, h, q - 1), self.kuwahara_groups, q)
        groups = np.asarray(self.kuwahara_groups)
        for g in np.unique(groups):  # a band's mean depends on its group: NaN where one is
            members = groups == g
            out[members] = np.where(centre_nan[members].any(axis=0), np.nan, out[members])
        return out

    def _terrain(self, dem: np.ndarray, h: int) -> np.ndarray:
        ring = _trim(dem[None], h, 1)[0]
        slope, rough = slope_roughness(ring, self.pixel_size, self.pixel_aspect)
        k = self._tpi_size
        mean, _ = focal_mean_std(_trim(dem[None], h, k // 2), k)
        centre = dem[h : dem.shape[0] - h, h : dem.shape[1] - h]
        tpi = centre - mean[0]
        out = np.stack([slope, rough, tpi]).astype("float32")
        out[:, np.isnan(centre)] = np.nan
        return out

    def to_dict(self) -> dict:
        """A JSON-ready description (the derived ``names`` included for readers)."""
        out = asdict(self)
        out["names"] = list(self.names)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> FeatureRecipe:
        """Rebuild a recipe saved with :meth:`to_dict`."""
        return cls(
            band_names=tuple(data["band_names"]),
            band_source=tuple(data["band_source"]),
            pixel_size=float(data["pixel_size"]),
            preset=data["preset"],
            focal_sizes=tuple(data["focal_sizes"]),
            ratios=tuple(tuple(r) for r in data["ratios"]),
            dem_band=data["dem_band"],
            kuwahara_sizes=tuple(data.get("kuwahara_sizes", ())),  # none in older models
            kuwahara_groups=tuple(data.get("kuwahara_groups", ())),
            optical=tuple(data.get("optical", ())),
            optical_sets=tuple(data.get("optical_sets", ())),  # one sensor in older models
            pixel_aspect=float(data.get("pixel_aspect", 1.0)),  # square in older models
            ratio_form=data.get("ratio_form", "quotient"),  # a / b in older models
        )


def _trim(block: np.ndarray, halo: int, radius: int) -> np.ndarray:
    """The part of a halo-grown block that a filter of ``radius`` needs."""
    d = halo - radius
    return block[:, d : block.shape[1] - d, d : block.shape[2] - d]


def slope_roughness(
    dem: np.ndarray, pixel_size: float, aspect: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Slope in degrees (Horn 1981) and roughness (max - min) over 3 x 3 windows.

    ``dem`` has shape (H, W); results (H - 2, W - 2). A missing neighbour takes the centre value.
    Pixels are ``pixel_size`` metres square, or of that area and height over width ``aspect``.
    """
    dx, dy = pixel_size / math.sqrt(aspect), pixel_size * math.sqrt(aspect)
    h, w = dem.shape[0] - 2, dem.shape[1] - 2
    centre = dem[1 : 1 + h, 1 : 1 + w]

    def nb(di: int, dj: int) -> np.ndarray:
        v = dem[1 + di : 1 + di + h, 1 + dj : 1 + dj + w]
        return np.where(np.isnan(v), centre, v).astype("float64")

    z = {(i, j): nb(i, j) for i in (-1, 0, 1) for j in (-1, 0, 1)}
    dzdx = ((z[-1, 1] + 2 * z[0, 1] + z[1, 1]) - (z[-1, -1] + 2 * z[0, -1] + z[1, -1])) / (8 * dx)
    dzdy = ((z[1, -1] + 2 * z[1, 0] + z[1, 1]) - (z[-1, -1] + 2 * z[-1, 0] + z[-1, 1])) / (8 * dy)
    slope = np.degrees(np.arctan(np.hypot(dzdx, dzdy)))
    stacked = np.stack(list(z.values()))
    rough = stacked.max(axis=0) - stacked.min(axis=0)
    return slope.astype("float32"), rough.astype("float32")


def feature_groups(recipe: FeatureRecipe) -> list[int]:
    """A group id per feature: features computed from the same sources share a group."""
    keys = sorted(set(recipe.feature_sources))
    return [keys.index(k) for k in recipe.feature_sources]
