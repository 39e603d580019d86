"""Family presets: each library's own init, reproduced in distribution, reading the model.

A family preset is a function whose keyword ``model`` receives the model being planned
(:func:`initlab.policy.get_preset` passes it when the function takes it), so that it reads its
quantities (:func:`model_quantities`: config fields, ``n_layer``) instead of asking the user.
One module per library: :mod:`.hf` (transformers: ``gpt2``, ``bert``, ``llama``, ``t5``,
``vit``, ``hf_auto``).
"""

from . import hf  # noqa: F401  (registers the transformers presets)
from .quantities import model_config, model_quantities

__all__ = ["model_config", "model_quantities"]
