"""The lab: train one network under many init schemes side by side, and report.

``compare(...)`` (the Python face of ``initlab compare``) and ``report(folder)``; entries
(what initialises each column), data sets, the vectorised trainer, statistics. Models come
from :func:`initlab.build_model` (the zoo, :mod:`initlab.zoo`, or a user factory).
"""

from .comparison import ComparisonResult, compare, report
from .data import DATASETS, Dataset, DatasetError, load_dataset
from .entries import DEFAULT_ENTRIES, Entry, EntryError, resolve_entry

__all__ = [
    "DATASETS",
    "DEFAULT_ENTRIES",
    "ComparisonResult",
    "Dataset",
    "DatasetError",
    "Entry",
    "EntryError",
    "compare",
    "load_dataset",
    "report",
    "resolve_entry",
]
