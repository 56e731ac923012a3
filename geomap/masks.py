"""Quality layers that satellite products ship beside their bands, read as masks.

Landsat Collection 2 gives each scene a ``QA_PIXEL`` file of bit flags, Sentinel-2 Level-2A an
``SCL`` scene classification. Given with the scene's band files, such a file is not a feature
(its codes are flags, not a measurement of the ground): the pixels it flags as cloud, cloud
shadow, cirrus, snow or fill are read as no data in the rasters of its scene, so they are mapped
from the other rasters (radiometrics, the DEM) and marked less certain, as under any other hole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
import rasterio.errors

from geomap.features import name_words, scene_key
from geomap.sources import Source, gdal_name


@dataclass(frozen=True)
class MaskProduct:
    """A product's quality layer: which of its values hide the ground."""

    name: str
    #: What the flagged values are, in words for the report.
    flags: str
    #: The words of its file name that say it (all of them).
    words: frozenset[str]
    #: Bits of which any set flags a pixel (Landsat), or ...
    bits: int = 0
    #: ... the classes that flag a pixel (Sentinel-2).
    classes: tuple[int, ...] = ()

    def flagged(self, values: np.ndarray) -> np.ndarray:
        """Where ``values`` (float, NaN beyond the layer's footprint) hide the ground.

        The layer is read with no no-data value: USGS declares QA_PIXEL's fill, 1, as its
        no-data value, and read as such the fill hid nothing (a band declaring another no-data
        value than its fill kept its fill as ground there); read as 1, its fill bit flags it.
        Beyond the layer's footprint nothing is flagged.
        """
        known = np.isfinite(values)
        codes = np.where(known, values, 0).astype(np.int64)
        hit = (codes & self.bits) != 0 if self.bits else np.isin(codes, self.classes)
        return hit & known


#: Landsat Collection 2 QA_PIXEL bits 0-5: fill, dilated cloud, cirrus, cloud, cloud shadow,
#: snow (USGS, Landsat 8-9 Collection 2 Level-2 Science Product Guide; bit 2 is unset in
#: Landsat 4-7's).
LANDSAT_QA_PIXEL = MaskProduct(
    "Landsat Collection 2 QA_PIXEL",
    "fill, cloud, dilated cloud, cirrus, cloud shadow or snow",
    frozenset({"qa", "pixel"}),
    bits=0b111111,
)
#: Sentinel-2 Level-2A SCL classes 0 (no data), 1 (saturated or defective), 3 (cloud shadow),
#: 8 and 9 (cloud, medium and high probability), 10 (thin cirrus), 11 (snow or ice).
SENTINEL2_SCL = MaskProduct(
    "Sentinel-2 scene classification (SCL)",
    "no data, saturated, cloud shadow, cloud, thin cirrus or snow",
    frozenset({"scl"}),
    classes=(0, 1, 3, 8, 9, 10, 11),
)
PRODUCTS = (LANDSAT_QA_PIXEL, SENTINEL2_SCL)


def mask_product(source: Source) -> MaskProduct | None:
    """The product whose quality layer ``source`` is: one integer band named as the product does."""
    if source.count != 1 or np.dtype(source.dtype).kind not in "iu":
        return None
    return named_product(source.path)


def mask_file(path: str | Path) -> bool:
    """Whether a file is a quality layer :func:`mask_product` takes: named so, one integer band."""
    if named_product(path) is None:
        return False
    try:
        with rasterio.open(gdal_name(Path(path))) as src:
            return src.count == 1 and np.dtype(src.dtypes[0]).kind in "iu"
    except rasterio.errors.RasterioError:  # not readable: said when the stack opens it
        return False


def named_product(path: str | Path) -> MaskProduct | None:
    """The product whose quality layer a file's name says it is (its data not checked)."""
    words = name_words(Path(path).stem)
    return next((p for p in PRODUCTS if p.words <= words), None)


def mask_scene(source: Source, product: MaskProduct) -> str:
    """The scene key of a quality layer: its file name's without the product's words."""
    return "_".join(t for t in scene_key(source.path.stem).split("_") if t not in product.words)
