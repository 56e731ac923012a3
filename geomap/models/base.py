"""What the map-making classifiers share."""

from __future__ import annotations

import numpy as np

from geomap.errors import ModelError


class MostProbableMixin:
    """``predict`` as the most probable class of ``predict_proba``, refusing rows with no data."""

    def predict(self, X) -> np.ndarray:
        """Most probable class of each row.

        Raises
        ------
        ModelError
            If a row has no finite feature.
        """
        proba = self.predict_proba(X)
        missing = np.isnan(proba).all(axis=1)
        if missing.any():
            raise ModelError(
                f"{missing.sum()} rows have no finite feature and cannot be predicted."
            )
        return self.classes_[np.argmax(np.nan_to_num(proba, nan=-1.0), axis=1)]
