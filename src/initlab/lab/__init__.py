"""The lab: train one network under many init schemes side by side, and report.

``compare(...)`` (the Python face of ``initlab compare``) and ``report(folder)``; entries
(what initialises each column), data sets, a model zoo, the vectorised trainer, statistics,
the verdict (``decide``), and one colour per entry (``entry_colors``).
"""

from .data import DATASETS, Dataset, DatasetError, load_dataset
from .entries import (
    DEFAULT_ENTRIES,
    ENTRY_FORMULAS,
    Entry,
    EntryError,
    describe_entry,
    resolve_entry,
)
from .experiment import PRESETS, ComparisonResult, compare, report
from .models import ACTIVATIONS, MODELS, ModelError, build_model, make_activation
from .palette import entry_colors
from .specs import SpecError, format_spec, parse_spec
from .verdict import Verdict, decide

__all__ = [
    "ACTIVATIONS",
    "DATASETS",
    "DEFAULT_ENTRIES",
    "ENTRY_FORMULAS",
    "MODELS",
    "PRESETS",
    "ComparisonResult",
    "Dataset",
    "DatasetError",
    "Entry",
    "EntryError",
    "ModelError",
    "SpecError",
    "Verdict",
    "build_model",
    "compare",
    "decide",
    "describe_entry",
    "entry_colors",
    "format_spec",
    "load_dataset",
    "make_activation",
    "parse_spec",
    "report",
    "resolve_entry",
]
