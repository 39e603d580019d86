"""Family presets: the inits of the libraries real models come from, one module per library
(:mod:`.timm`, :mod:`.torchvision`), registered by name on import.
"""

from . import timm, torchvision  # noqa: F401  (register the presets)
from .timm import timm_auto
from .torchvision import torchvision_auto

__all__ = ["timm_auto", "torchvision_auto"]
