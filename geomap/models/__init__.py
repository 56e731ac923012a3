"""Estimators with the scikit-learn API that map lithology from per-pixel features."""

from geomap.models.forest import LithologyForest

__all__ = ["LithologyForest"]
