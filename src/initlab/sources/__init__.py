"""Model sources for the ``prefix:name?key=value&...`` model specs of :func:`initlab.build_model`:
one module per library, registered by :mod:`initlab.specs`.

* :mod:`.hf`: ``hf:gpt2?n_layer=2&n_embd=64``, a transformers model built from its config class;
* :mod:`.timm`: ``timm:resnet18``; :mod:`.torchvision`: ``torchvision:resnet18``.

A source builds an untrained model (never downloads weights) and raises
:class:`~initlab.zoo.ModelError` with one line for a bad spec.
"""

from .query import parse_query

__all__ = ["parse_query"]
