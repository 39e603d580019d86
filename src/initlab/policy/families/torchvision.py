"""torchvision's own inits as presets (family ``resnet``), and ``torchvision_auto``.

**resnet** (torchvision ``ResNet.__init__``, He et al. 2015, https://arxiv.org/abs/1512.03385;
timm's ``ResNet.init_weights`` is the same recipe): every Conv2d weight
``kaiming_normal_(mode="fan_out", nonlinearity="relu")``, i.e. N(0, 2/fan_out) with
``fan_out = out_channels·k²`` (groups 1); BatchNorm/GroupNorm weight 1, bias 0; the classifier
Linear keeps torch's default (``kaiming_uniform_(a=sqrt(5))``, bias U(±1/sqrt(fan_in))). With
``zero_init_last`` (torchvision's ``zero_init_residual``, timm's ``zero_init_last``) the last
BatchNorm of each residual block (``bn2`` of a BasicBlock, ``bn3`` of a Bottleneck) has weight 0.
"""

from __future__ import annotations

from torch import nn

from ..errors import PolicyError
from ..patterns import type_matches
from ..policy import Policy
from ..presets import BATCHNORM, CONV, register_preset
from ..rules import Rule

__all__ = ["last_residual_norm", "resnet", "resnet_options", "torchvision_auto"]

RESNET_CLASSES = ("torchvision.models.resnet.ResNet", "timm.models.resnet.ResNet")


@register_preset(
    "resnet",
    source="He et al. 2015, https://arxiv.org/abs/1512.03385; torchvision ResNet.__init__, "
    "timm ResNet.init_weights",
)
def resnet(*, zero_init_last: bool = False, last_bn: str = "bn2") -> Policy:
    """ResNet: conv kaiming_normal(fan_out, relu), BatchNorm 1/0, fc torch's default.

    Conv weights N(0, 2/fan_out); BatchNorm and GroupNorm weight 1, bias 0; every other
    parameter (the fc Linear) torch's ``reset_parameters``. ``zero_init_last`` zeroes the
    weight of each residual block's last BatchNorm (``layerN.M.<last_bn>``).

    Args:
        zero_init_last: zero the last BatchNorm weight of every residual block (torchvision's
            ``zero_init_residual``, default False; timm's ``zero_init_last``, default True).
        last_bn: that BatchNorm's name in its block: ``"bn2"`` (BasicBlock: ResNet-18/34) or
            ``"bn3"`` (Bottleneck: ResNet-50 and deeper).

    Example:
        >>> [r.id for r in resnet(zero_init_last=True).rules][:2]
        ['zero-init-last', 'conv-weight']
    """
    if not isinstance(last_bn, str) or not last_bn.isidentifier():
        raise PolicyError(f"must be a module name ('bn2' or 'bn3'), got {last_bn!r}", "last_bn")
    norms = (BATCHNORM, "torch.nn.GroupNorm")
    rules = []
    if zero_init_last:
        rules.append(
            Rule(
                "zeros",
                module=BATCHNORM,
                name=rf"re:(.*\.)?layer\d+\.\d+\.{last_bn}",
                param="weight",
                id="zero-init-last",
            )
        )
    rules += [
        Rule(
            {"name": "kaiming_normal", "mode": "fan_out", "nonlinearity": "relu"},
            module=CONV,
            param="weight",
            id="conv-weight",
        ),
        Rule("ones", module=norms, param="weight", id="norm-weight"),
        Rule("zeros", module=norms, param="bias", id="norm-bias"),
        Rule("torch_default", id="torch-default"),
    ]
    return Policy(
        rules=tuple(rules),
        name="resnet",
        description="ResNet: conv kaiming_normal(fan_out, relu), BatchNorm 1/0"
        + (f", last {last_bn} of each block 0" if zero_init_last else "")
        + ", fc torch default",
    )


def last_residual_norm(model: nn.Module) -> str:
    """``"bn3"`` when the model's residual blocks are Bottlenecks, else ``"bn2"``.

    Example:
        >>> last_residual_norm(nn.Module())
        'bn2'
    """
    return "bn3" if any(n.endswith(".bn3") for n, _ in model.named_modules()) else "bn2"


def resnet_options(model: nn.Module, default_zero_init_last: bool) -> dict[str, object]:
    """The ``resnet`` preset's arguments read from ``model``: the block's last BatchNorm and,
    when the weights are real, whether the library zeroed them (else ``default_zero_init_last``).

    Example:
        >>> resnet_options(nn.Module(), False)
        {'zero_init_last': False, 'last_bn': 'bn2'}
    """
    last = last_residual_norm(model)
    weights = [
        m.weight
        for n, m in model.named_modules()
        if n.endswith(f".{last}") and isinstance(getattr(m, "weight", None), nn.Parameter)
    ]
    zero = default_zero_init_last
    if weights and not any(w.is_meta for w in weights):
        zero = all(bool((w == 0).all()) for w in weights)
    return {"zero_init_last": zero, "last_bn": last}


def torchvision_auto(model: nn.Module) -> Policy:
    """The torchvision family preset for ``model``, its arguments read from the model.

    Args:
        model: a torchvision model (ResNet).

    Returns:
        The policy (``resnet`` with ``zero_init_residual`` read from real weights).

    Raises:
        PolicyError: a model of no supported family.

    Example:
        >>> try:
        ...     torchvision_auto(nn.Linear(2, 2))
        ... except PolicyError as e:
        ...     print(e)
        torchvision_auto: Linear is not a model of a known torchvision family (ResNet)
    """
    if type_matches(RESNET_CLASSES[0], type(model)):
        return resnet(**resnet_options(model, False))  # type: ignore[arg-type]
    raise PolicyError(
        f"torchvision_auto: {type(model).__name__} is not a model of a known torchvision "
        "family (ResNet)"
    )
