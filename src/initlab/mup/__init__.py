"""Width-aware parametrisation (muP) for any model: an init policy, optimizer param groups and
removable readout multipliers, derived from parameter names and shapes against a base model.

Tune on a small model, train a wide one::

    import torch, initlab
    with initlab.meta_build():
        base = Net(width=64)                      # the model you tuned (shapes only)
    model = Net(width=1024)
    m = initlab.mup(model, base)                  # or base={"hidden_size": 64} for HF models
    initlab.initialize(model, m.policy, seed=0)   # the base init, stds scaled by width
    handle = m.attach(model)                      # readout x 1/width_mult, attention 1/d
    opt = torch.optim.AdamW(initlab.mup_param_groups(model, m, lr=3e-3, weight_decay=0.1))
    print(m)                                      # the per-parameter table and what is not muP

Each parameter is classified from its fans against the base's (Tensor Programs V, Yang et al.
2022, https://arxiv.org/abs/2203.03466, Table 3): *input* (finite fan_in, e.g. embeddings),
*hidden* (both fans grow), *output* (the readout: fan_in grows, fan_out does not) and *vector*
(biases, norms). Hidden weights get std / sqrt(width_mult) and Adam LR / width_mult; the
readout keeps the base std and LR and its input is multiplied by 1/width_mult at forward time,
as the mup package's ``MuReadout`` (``readout="init"`` instead puts it in the init and LR);
the numbers equal the mup package's ``set_base_shapes`` + ``MuAdam``/``MuSGD``. Nothing is
stored on tensors, so it survives FSDP2 sharding, ``torch.compile`` and checkpoints.
``m.notes`` lists what is not full muP (e.g. an attention module whose logit scale cannot be
set); ``depth="sqrt"``/``"complete"`` adds Depth-muP/CompleteP residual scaling.

Modules: :mod:`.classify` (shapes vs base -> kind), :mod:`.base` (the base from a model, a
config or a dim map), :mod:`.parametrization` (``Mup``, ``mup``), :mod:`.param_groups`,
:mod:`.attention` (logit scales), :mod:`.depth`, :mod:`.attach` (hooks, ``MupHandle``).
"""

from .attach import MupHandle
from .attention import AttentionScale
from .classify import MupError
from .depth import Depth
from .param_groups import mup_param_groups
from .parametrization import Mup, MupParam, mup

__all__ = [
    "AttentionScale",
    "Depth",
    "Mup",
    "MupError",
    "MupHandle",
    "MupParam",
    "mup",
    "mup_param_groups",
]
