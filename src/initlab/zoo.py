"""The model zoo: small, named, deterministic networks for comparing init schemes.

:func:`build_zoo_model` builds one by name with its options; the spec strings ``mlp``,
``cnn:batchnorm=true``, ... are read by :func:`initlab.specs.build_model`:

``mlp`` (:func:`mlp`)
    ``widths=256-128`` (or a single int, or ``depth``/``width``), ``activation=relu``,
    ``dropout=0.0``. For digits this is the seeds' MLP, 64 -> 256 -> 128 -> 10 with ReLU.
``cnn`` (:func:`cnn`)
    Two 3x3 convs (``channels=16-32``) each followed by [BatchNorm2d,] activation and 2x2 max
    pooling, then a linear head. ``batchnorm=false``, ``activation=relu``.
``deep`` (:func:`deep`)
    A plain deep stack for depth studies: ``depth=30`` Linear layers of ``width=256`` with
    ``activation=relu``, no normalisation, no residuals, then a linear head.
``resmlp`` (:func:`resmlp`)
    A residual MLP: a linear stem, ``depth=4`` blocks ``x = x + fc2(act(fc1(x)))`` of
    ``width=128``, a final activation, then a linear head.
Without a data set, a model is built for the lab's default one, digits (:data:`DEFAULT_INPUT_SHAPE`
of 64 features, :data:`DEFAULT_NUM_CLASSES` classes).

Every built-in is an ``nn.Sequential`` with named children, so policies can match by name:
``flatten`` (only when the input is not already flat), ``fc1``/``act1``/``drop1``, ...,
``conv1``/``bn1``/``act1``/``pool1``, ``stem``, ``block1`` (a :class:`ResidualBlock` with
``fc1``, ``act``, ``fc2``), and ``head`` (the last Linear, always). Activations are modules
created with ``inplace=False`` and no model uses in-place ops, so the models work under
``torch.func.vmap``/``functional_call`` (BatchNorm in training mode updates running stats, which
vmap does not allow; build with ``batchnorm=false`` or use eval mode for that). Construction
draws only from torch's global generator, through the layers' own ``reset_parameters``, so the
same torch seed gives the same model.

Activation names (:data:`ACTIVATIONS`): relu, tanh, gelu, silu, elu, leaky_relu (slope 0.01),
selu, sigmoid, identity (also ``linear`` or ``none``).
"""

from __future__ import annotations

import inspect
import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from torch import Tensor, nn

from .syntax import canonical_name

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_INPUT_SHAPE",
    "DEFAULT_NUM_CLASSES",
    "MODELS",
    "ModelError",
    "ResidualBlock",
    "build_zoo_model",
    "cnn",
    "deep",
    "make_activation",
    "mlp",
    "resmlp",
]


class ModelError(ValueError):
    """An unknown model, an unknown or invalid option, or an input shape a model cannot take.

    Example:
        >>> build_zoo_model("nosuch", (8,), 3)
        Traceback (most recent call last):
        ...
        initlab.zoo.ModelError: unknown model 'nosuch'; built-ins: mlp, cnn, deep, resmlp
    """


ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=False),
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "silu": lambda: nn.SiLU(inplace=False),
    "elu": lambda: nn.ELU(inplace=False),
    "leaky_relu": lambda: nn.LeakyReLU(0.01, inplace=False),
    "selu": lambda: nn.SELU(inplace=False),
    "sigmoid": nn.Sigmoid,
    "identity": nn.Identity,
}
_ACTIVATION_ALIASES = {
    "linear": "identity",
    "none": "identity",
    "swish": "silu",
    "leakyrelu": "leaky_relu",
}


def make_activation(name: str | None) -> nn.Module:
    """A fresh activation module by name (``None`` is the identity).

    Raises:
        ModelError: an unknown name (a ``ValueError``); the message lists the known names.

    Args:
        name: one of :data:`ACTIVATIONS` (any case) or an alias (``"swish"``, ``"linear"``), or
            None.

    Returns:
        A new module.

    Example:
        >>> make_activation("swish"), make_activation(None)
        (SiLU(), Identity())
    """
    key = "identity" if name is None else canonical_name(str(name))
    key = _ACTIVATION_ALIASES.get(key, key)
    if key not in ACTIVATIONS:
        raise ModelError(f"unknown activation {name!r}; known: {', '.join(ACTIVATIONS)}")
    return ACTIVATIONS[key]()


# --------------------------------------------------------------------------- option helpers


def _positive_int(model: str, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ModelError(f"{model}: {key} must be a positive integer, got {value!r}")
    return value


def _int_list(model: str, key: str, value: Any) -> list[int]:
    """``256``, ``"256-128"`` or a sequence of ints -> ``[256, 128]``."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.split("-")]
        try:
            items: list[Any] = [int(p) for p in parts]
        except ValueError:
            raise ModelError(
                f"{model}: {key} must be ints joined by '-' (e.g. 256-128), got {value!r}"
            ) from None
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        items = [value]
    return [_positive_int(model, key, v) for v in items]


def _dropout(model: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ModelError(f"{model}: dropout must be a number in [0, 1), got {value!r}")
    return float(value)


def _activation(model: str, name: Any) -> Callable[[], nn.Module]:
    make_activation(name)  # validate once, with the list of names
    return lambda: make_activation(name)


def _flat_start(input_shape: tuple[int, ...]) -> tuple[list[tuple[str, nn.Module]], int]:
    """A ``flatten`` layer when the input is not flat, and the number of input features."""
    features = math.prod(input_shape)
    layers: list[tuple[str, nn.Module]] = []
    if len(input_shape) != 1:
        layers.append(("flatten", nn.Flatten()))
    return layers, features


# --------------------------------------------------------------------------- built-ins


def mlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    widths: int | str | None = "256-128",
    depth: int | None = None,
    width: int | None = None,
    activation: str = "relu",
    dropout: float = 0.0,
) -> nn.Sequential:
    """A multilayer perceptron: ``[flatten,] fc1, act1, [drop1,] ..., head``.

    Options:
        widths: hidden widths, ``"256-128"`` (default) or one int; ``0`` or ``none``: no
            hidden layer (a linear classifier).
        depth, width: instead of ``widths``: ``depth`` hidden layers of ``width`` each
            (``width`` defaults to 256, ``depth`` to 1 when only one is given).
        activation: an :data:`ACTIVATIONS` name (default relu).
        dropout: dropout probability after each activation (default 0: no Dropout modules).
    """
    if depth is not None or width is not None:
        if widths not in ("256-128", None):
            raise ModelError("mlp: give either widths or depth/width, not both")
        hidden = [_positive_int("mlp", "width", 256 if width is None else width)]
        hidden *= _positive_int("mlp", "depth", 1 if depth is None else depth)
    elif widths is None or widths == 0:
        hidden = []
    else:
        hidden = _int_list("mlp", "widths", widths)
    act = _activation("mlp", activation)
    p = _dropout("mlp", dropout)
    layers, features = _flat_start(input_shape)
    for i, w in enumerate(hidden, start=1):
        layers += [(f"fc{i}", nn.Linear(features, w)), (f"act{i}", act())]
        if p > 0:
            layers.append((f"drop{i}", nn.Dropout(p, inplace=False)))
        features = w
    layers.append(("head", nn.Linear(features, num_classes)))
    return nn.Sequential(OrderedDict(layers))


def _image_shape(model: str, input_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(input_shape) == 3:
        c, h, w = input_shape
        return c, h, w
    if len(input_shape) == 1:
        n = input_shape[0]
        for channels in (1, 3):
            side = math.isqrt(n // channels)
            if n % channels == 0 and side * side * channels == n:
                return channels, side, side
    raise ModelError(
        f"{model}: needs image inputs (C, H, W), got {input_shape}; load the data with "
        "image=True (a flat input is accepted only when it is 1 x s x s or 3 x s x s)"
    )


def cnn(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    channels: int | str = "16-32",
    batchnorm: bool = False,
    activation: str = "relu",
) -> nn.Sequential:
    """A small CNN: ``conv1, [bn1,] act1, pool1, conv2, [bn2,] act2, pool2, flatten, head``.

    The convs are 3x3 with padding 1 (size-preserving) and each pool is a 2x2 max pool, so an
    H x W input reaches the head as ``channels[-1] * (H // 4) * (W // 4)`` features: 128 for
    8x8 digits, 1568 for 28x28 MNIST, 2048 for 32x32 CIFAR-10. A flat input of ``s*s`` or
    ``3*s*s`` features is first unflattened (``unflatten``) to ``(1, s, s)`` / ``(3, s, s)``.

    Options:
        channels: the two conv widths, ``"16-32"`` (default); one int uses it for both.
        batchnorm: BatchNorm2d after each conv (default false).
        activation: an :data:`ACTIVATIONS` name (default relu).
    """
    c, h, w = _image_shape("cnn", input_shape)
    if h < 4 or w < 4:
        raise ModelError(f"cnn: images must be at least 4x4 (two 2x2 pools), got {h}x{w}")
    widths = _int_list("cnn", "channels", channels)
    if len(widths) == 1:
        widths *= 2
    if len(widths) != 2:
        raise ModelError(f"cnn: channels must give two conv widths, got {channels!r}")
    if not isinstance(batchnorm, bool):
        raise ModelError(f"cnn: batchnorm must be true or false, got {batchnorm!r}")
    act = _activation("cnn", activation)
    layers: list[tuple[str, nn.Module]] = []
    if len(input_shape) == 1:
        layers.append(("unflatten", nn.Unflatten(1, (c, h, w))))
    in_ch = c
    for i, out_ch in enumerate(widths, start=1):
        layers.append((f"conv{i}", nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=not batchnorm)))
        if batchnorm:
            layers.append((f"bn{i}", nn.BatchNorm2d(out_ch)))
        layers += [(f"act{i}", act()), (f"pool{i}", nn.MaxPool2d(2))]
        in_ch = out_ch
    features = widths[-1] * (h // 4) * (w // 4)
    layers += [("flatten", nn.Flatten()), ("head", nn.Linear(features, num_classes))]
    return nn.Sequential(OrderedDict(layers))


def deep(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    depth: int = 30,
    width: int = 256,
    activation: str = "relu",
) -> nn.Sequential:
    """A plain deep network: ``[flatten,] fc1, act1, ..., fc{depth}, act{depth}, head``.

    ``fc1`` maps the input to ``width``; ``fc2 .. fc{depth}`` are ``width x width``. No
    normalisation, no residuals: signal propagation depends on the init alone.

    Options:
        depth: the number of hidden Linear layers (default 30).
        width: their width (default 256).
        activation: an :data:`ACTIVATIONS` name (default relu; tanh for the classic study).
    """
    depth = _positive_int("deep", "depth", depth)
    width = _positive_int("deep", "width", width)
    act = _activation("deep", activation)
    layers, features = _flat_start(input_shape)
    for i in range(1, depth + 1):
        layers += [(f"fc{i}", nn.Linear(features, width)), (f"act{i}", act())]
        features = width
    layers.append(("head", nn.Linear(features, num_classes)))
    return nn.Sequential(OrderedDict(layers))


class ResidualBlock(nn.Module):
    """``x + fc2(act(fc1(x)))`` with two ``width x width`` Linear layers (no in-place ops)."""

    def __init__(self, width: int, activation: str = "relu") -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, width)
        self.act = make_activation(activation)
        self.fc2 = nn.Linear(width, width)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.fc2(self.act(self.fc1(x)))


def resmlp(
    input_shape: tuple[int, ...],
    num_classes: int,
    *,
    depth: int = 4,
    width: int = 128,
    activation: str = "relu",
) -> nn.Sequential:
    """A residual MLP: ``[flatten,] stem, block1 .. block{depth}, act, head``.

    ``stem`` is Linear(input, width); each ``block{i}`` is a :class:`ResidualBlock`
    (``block{i}.fc1``, ``block{i}.act``, ``block{i}.fc2``; zero ``fc2`` for Fixup/ReZero-like
    schemes); ``act`` is applied to the residual stream before the Linear ``head``.

    Options:
        depth: the number of residual blocks (default 4).
        width: the residual stream's width (default 128).
        activation: an :data:`ACTIVATIONS` name (default relu).
    """
    depth = _positive_int("resmlp", "depth", depth)
    width = _positive_int("resmlp", "width", width)
    _activation("resmlp", activation)
    layers, features = _flat_start(input_shape)
    layers.append(("stem", nn.Linear(features, width)))
    layers += [(f"block{i}", ResidualBlock(width, activation)) for i in range(1, depth + 1)]
    layers += [("act", make_activation(activation)), ("head", nn.Linear(width, num_classes))]
    return nn.Sequential(OrderedDict(layers))


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "cnn": cnn,
    "deep": deep,
    "resmlp": resmlp,
}
"""Built-in models: name -> ``factory(input_shape, num_classes, **options)``; the options and
their defaults are the factory's keyword-only parameters, documented in its docstring."""


def _options_of(factory: Callable[..., Any]) -> dict[str, Any]:
    return {
        p.name: p.default
        for p in inspect.signature(factory).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


#: the shape of one example of the lab's default data set (digits: 8x8 images, flattened)
DEFAULT_INPUT_SHAPE: tuple[int, ...] = (64,)
#: the number of classes of the lab's default data set (digits)
DEFAULT_NUM_CLASSES = 10


def build_zoo_model(
    name: str,
    input_shape: tuple[int, ...] | None = None,
    num_classes: int | None = None,
    **options: Any,
) -> nn.Module:
    """Build the built-in model ``name`` (a key of :data:`MODELS`) with ``options``.

    Args:
        name: ``"mlp"``, ``"cnn"``, ``"deep"`` or ``"resmlp"`` (any case).
        input_shape: the shape of one example (default :data:`DEFAULT_INPUT_SHAPE`).
        num_classes: the number of outputs (default :data:`DEFAULT_NUM_CLASSES`).
        options: the model's keyword options (its factory's keyword-only parameters).

    Returns:
        A fresh ``nn.Sequential``.

    Raises:
        ModelError: an unknown model or option, an invalid value, or an input shape the model
            cannot take.

    Example:
        >>> build_zoo_model("mlp", (8,), 3, widths="16").head
        Linear(in_features=16, out_features=3, bias=True)
    """
    input_shape = DEFAULT_INPUT_SHAPE if input_shape is None else input_shape
    num_classes = DEFAULT_NUM_CLASSES if num_classes is None else num_classes
    try:
        input_shape = tuple(int(s) for s in input_shape)
    except (TypeError, ValueError):
        input_shape = ()
    if not input_shape or any(s < 1 for s in input_shape):
        raise ModelError(f"input_shape must be positive sizes, got {input_shape}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ModelError(f"num_classes must be a positive integer, got {num_classes!r}")
    key = name.strip().lower()
    if key not in MODELS:
        raise ModelError(f"unknown model {name!r}; built-ins: {', '.join(MODELS)}")
    factory = MODELS[key]
    known = _options_of(factory)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ModelError(f"{key}: unknown option {unknown[0]!r} (options: {', '.join(known)})")
    return factory(input_shape, num_classes, **options)
