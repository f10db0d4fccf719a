"""Data valuation: Shapley estimators, subset utilities and retraining ground truth."""

from mde.valuation.group_testing import (
    compressive_shapley,
    group_testing_count,
    group_testing_shapley,
)
from mde.valuation.retrain import rank_correlation, retrain_utility
from mde.valuation.shapley import (
    CachedUtility,
    PrefixUtility,
    ShapleyResult,
    SubsetPrefixUtility,
    exact_shapley,
    knn_shapley,
    largest_subset_shapley,
    permutation_count,
    permutation_shapley,
    uniform_shapley,
)
from mde.valuation.utility import influence_shapley, proxy_utility

__all__ = [
    "CachedUtility",
    "PrefixUtility",
    "ShapleyResult",
    "SubsetPrefixUtility",
    "exact_shapley",
    "knn_shapley",
    "largest_subset_shapley",
    "permutation_count",
    "permutation_shapley",
    "uniform_shapley",
    "group_testing_shapley",
    "group_testing_count",
    "compressive_shapley",
    "rank_correlation",
    "retrain_utility",
    "influence_shapley",
    "proxy_utility",
]
