"""The lab: train one network under many init schemes side by side, and report.

``compare(...)`` (the Python face of ``initlab compare``) and ``report(folder)``; entries
(what initialises each column), data sets, a model zoo, the vectorised trainer, statistics.
"""

from .data import DATASETS, Dataset, DatasetError, load_dataset
from .entries import DEFAULT_ENTRIES, Entry, EntryError, resolve_entry
from .experiment import ComparisonResult, compare, report
from .models import ACTIVATIONS, MODELS, ModelError, build_model, make_activation
from .specs import SpecError, format_spec, parse_spec

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "DEFAULT_ENTRIES",
    "MODELS",
    "ComparisonResult",
    "Dataset",
    "DatasetError",
    "Entry",
    "EntryError",
    "ModelError",
    "SpecError",
    "build_model",
    "compare",
    "format_spec",
    "load_dataset",
    "make_activation",
    "parse_spec",
    "report",
    "resolve_entry",
]
