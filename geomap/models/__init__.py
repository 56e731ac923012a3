"""Estimators with the scikit-learn API that map lithology from per-pixel features."""

from geomap.models.forest import LithologyForest
from geomap.models.som import SelfOrganizingMap, SOMClassifier
from geomap.models.som_clusters import SOMClusters

__all__ = ["LithologyForest", "SOMClassifier", "SOMClusters", "SelfOrganizingMap"]
