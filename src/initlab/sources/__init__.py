"""Model sources for the ``prefix:name?key=value&...`` model specs of :func:`initlab.build_model`:
one module per library (``timm:``, ``torchvision:``), registered by :mod:`initlab.specs`.

A source builds an untrained model (never downloads weights) and raises
:class:`~initlab.zoo.ModelError` with one line for a bad spec.
"""

from .query import parse_query

__all__ = ["parse_query"]
