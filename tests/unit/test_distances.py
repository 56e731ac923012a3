import numpy as np
import pytest

from geomap.distances import cv_nearest_distance, mean_pairwise_distance


def test_cross_validated_distance_ignores_the_own_fold():
    Z = np.array([[0.0], [0.1], [1.0], [3.0]])
    folds = np.array([0, 0, 1, 1])
    # 0.0 and 0.1 are each other's nearest, but in the same fold: their nearest elsewhere is 1.0
    assert cv_nearest_distance(Z, folds) == pytest.approx([1.0, 0.9, 0.9, 2.9])


def test_mean_pairwise_distance_hand_case_and_subsample_bound():
    # pairs 1, 3 and 2 apart
    assert mean_pairwise_distance(np.array([[0.0], [1.0], [3.0]])) == pytest.approx(2.0)
    assert np.isnan(mean_pairwise_distance(np.zeros((1, 2))))
    big = np.random.default_rng(0).normal(size=(5000, 2))
    # two standard normals in 2-D: E|a - b| = sqrt(pi) = 1.7725
    assert mean_pairwise_distance(big) == pytest.approx(np.sqrt(np.pi), rel=0.03)
