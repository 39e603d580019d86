"""The lab: data sets and a model zoo for training one network under many init schemes."""

from .data import DATASETS, Dataset, DatasetError, load_dataset
from .models import ACTIVATIONS, MODELS, ModelError, build_model, make_activation
from .specs import SpecError, format_spec, parse_spec

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "MODELS",
    "Dataset",
    "DatasetError",
    "ModelError",
    "SpecError",
    "build_model",
    "format_spec",
    "load_dataset",
    "make_activation",
    "parse_spec",
]
