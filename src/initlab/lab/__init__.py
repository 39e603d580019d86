"""The lab: train one network under many init schemes side by side, and report.

``compare(...)`` (the Python face of ``initlab compare``) and ``report(folder)``; entries
(what initialises each column), data sets, the vectorised trainer, statistics, the verdict
(``decide``), and one colour per entry (``entry_colors``). The width experiments: the
coordinate check (``coord_check``) and the learning-rate sweep (``lr_sweep``) under SP and muP.
Models come from :func:`initlab.build_model` (the zoo, :mod:`initlab.zoo`, or a user factory).
"""

from .coordcheck import CoordCheck, coord_check
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
from .lrsweep import LRSweep, lr_sweep
from .palette import entry_colors
from .verdict import Verdict, decide

__all__ = [
    "DATASETS",
    "DEFAULT_ENTRIES",
    "ENTRY_FORMULAS",
    "PRESETS",
    "ComparisonResult",
    "CoordCheck",
    "Dataset",
    "DatasetError",
    "Entry",
    "EntryError",
    "LRSweep",
    "Verdict",
    "compare",
    "coord_check",
    "decide",
    "describe_entry",
    "entry_colors",
    "load_dataset",
    "lr_sweep",
    "report",
    "resolve_entry",
]
