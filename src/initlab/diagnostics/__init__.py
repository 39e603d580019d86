"""Measure an initialisation: per-layer signal propagation, scheme comparison, LSUV.

* :func:`diagnose`: forward and backward one batch, one record per layer call (activation and
  gradient statistics, dead/saturated units, singular values), vanishing/exploding flags.
* :func:`compare_schemes`: the same diagnosis for several schemes on copies of one model.
* :func:`plot_propagation`, :func:`plot_histograms`: figures of a comparison (matplotlib).
* :func:`lsuv_`: layer-sequential unit-variance init (Mishkin & Matas 2016).

Each tool acts on the weight-bearing layers the layer registry knows
(:func:`initlab.layers.weight_params`: Linear, Conv, transformers' Conv1D, packed q/k/v block by
block...), handles a tied weight once, and names what it leaves as it was in one line.

The plotting functions import matplotlib only when called (it is an optional dependency).
"""

from .hooks import ACTIVATIONS, RELU_FAMILY, SATURATING, default_loss, diagnose, preserved_state
from .lsuv import LSUV_PAPER, LSUV_PYTORCH, LSUVLayer, LSUVReport, lsuv_
from .plots import plot_histograms, plot_propagation
from .records import (
    Diagnosis,
    Histogram,
    LayerRecord,
    SingularValues,
    Thresholds,
    WeightStats,
)
from .scheme_comparison import SchemeComparison, apply_scheme_, compare_schemes

__all__ = [
    "ACTIVATIONS",
    "LSUV_PAPER",
    "LSUV_PYTORCH",
    "RELU_FAMILY",
    "SATURATING",
    "Diagnosis",
    "Histogram",
    "LSUVLayer",
    "LSUVReport",
    "LayerRecord",
    "SchemeComparison",
    "SingularValues",
    "Thresholds",
    "WeightStats",
    "apply_scheme_",
    "compare_schemes",
    "default_loss",
    "diagnose",
    "lsuv_",
    "plot_histograms",
    "plot_propagation",
    "preserved_state",
]
