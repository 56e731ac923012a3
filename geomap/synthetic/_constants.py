"""Unit codes, grid constants and band names shared by the synthetic scene modules."""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = ("alluvium", "basalt", "granite", "limestone", "sandstone", "shale")
ALLUVIUM, BASALT, GRANITE, LIMESTONE, SANDSTONE, SHALE = range(len(CLASS_NAMES))
CRS = "EPSG:32633"
ORIGIN = (500_000.0, 5_200_000.0)  # top-left corner of every reference grid
BANDS = ("blue", "green", "red", "nir", "swir1", "swir2")

_X0, _Y0 = ORIGIN
