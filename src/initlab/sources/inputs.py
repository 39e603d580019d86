"""A batch of inputs for a library model, read from the model itself (for ``initlab diagnose``).

* **transformers** (a model with a ``config.model_type``), by its ``main_input_name``:
  ``input_ids``: random token ids in ``[0, config.vocab_size)``, ``seq_len`` positions (at most
  the config's ``n_positions``/``max_position_embeddings``), plus ``decoder_input_ids`` of the
  same shape for an encoder-decoder (T5); ``pixel_values``: ``N(0, 1)`` images of
  ``config.num_channels`` x ``config.image_size``. Another main input raises
  :class:`~initlab.zoo.ModelError` naming it. A language-model head (a model with output
  embeddings) is diagnosed with its own loss, cross-entropy of the logits against the next
  token (:func:`example_loss`). The label-free ``0.5·sum(out²)`` probe can be blind there:
  with an orthogonal tied readout it equals ``0.5·|h|²`` of the final LayerNorm's output
  ``h``, whose gradient through the norm is zero.
* **timm** (a model with a ``pretrained_cfg``/``default_cfg`` giving ``input_size``):
  ``N(0, 1)`` images of that size, or of its ``patch_embed.img_size`` when it has one (a ViT
  built with ``img_size=32`` keeps the pretrained config's 224).
* Anything else (the lab's zoo, factories, torchvision models): None, meaning "feed it the data
  set's examples" (for a torchvision image model, an image data set such as ``cifar10:PATH``).

Example:
    >>> import initlab
    >>> gpt2 = initlab.build_model("hf:gpt2?n_layer=1&n_embd=32&n_head=2&vocab_size=64&"
    ...                            "bos_token_id=0&eos_token_id=0")
    >>> ids = example_inputs(gpt2, 4, seed=0)["input_ids"]
    >>> tuple(ids.shape), ids.dtype, 0 <= int(ids.min()) and int(ids.max()) < 64
    ((4, 16), torch.int64, True)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..zoo import ModelError

__all__ = ["SEQ_LEN", "example_inputs", "example_loss"]

#: token positions of a language model's example batch (fewer if the model allows fewer)
SEQ_LEN = 16


def example_inputs(
    model: nn.Module, batch_size: int, seed: int = 0, seq_len: int = SEQ_LEN
) -> dict[str, torch.Tensor] | None:
    """A batch of ``batch_size`` inputs the model takes, as keyword arguments (module
    docstring), or None when the model takes the data set's examples.

    Args:
        model: the model.
        batch_size: the number of examples.
        seed: seeds the ``torch.Generator`` the inputs are drawn from.
        seq_len: token positions for a language model (capped by its config).

    Returns:
        ``{argument name: tensor}``, or None.

    Raises:
        ModelError: a transformers model whose main input is neither token ids nor pixel
            values, or whose config lacks the size it needs.

    Example:
        >>> from torch import nn
        >>> example_inputs(nn.Linear(4, 2), 8) is None
        True
    """
    g = torch.Generator().manual_seed(seed)
    config = getattr(model, "config", None)
    if getattr(config, "model_type", None) is not None:
        return _hf_inputs(model, config, batch_size, seq_len, g)
    cfg = getattr(model, "pretrained_cfg", None) or getattr(model, "default_cfg", None)
    size = cfg.get("input_size") if isinstance(cfg, dict) else None
    if size is not None:
        channels, h, w = (int(s) for s in size)
        # a ViT/Swin built with img_size=32 keeps the pretrained config's 224: ask its patches
        img = getattr(getattr(model, "patch_embed", None), "img_size", None)
        if img is not None:
            h, w = (img, img) if isinstance(img, int) else (int(img[0]), int(img[1]))
        return {"x": torch.randn(batch_size, channels, h, w, generator=g)}
    return None


def example_loss(
    model: nn.Module, inputs: dict[str, torch.Tensor] | None, seed: int = 0
) -> tuple[torch.Tensor | None, Callable[..., torch.Tensor] | None]:
    """``(targets, loss_fn)`` for a transformers model fed :func:`example_inputs`: for a
    language-model head the next token of each position (the last wraps around) and the
    cross-entropy of the logits; for another transformers model no targets and a fixed random
    readout (module docstring); ``(None, None)`` otherwise (diagnose's default loss).

    Args:
        model: the model.
        inputs: what :func:`example_inputs` returned for it.
        seed: seeds the random readout.

    Returns:
        The targets and the loss function, or ``(None, None)``.

    Example:
        >>> from torch import nn
        >>> example_loss(nn.Linear(4, 2), None)
        (None, None)
    """
    if not inputs or getattr(getattr(model, "config", None), "model_type", None) is None:
        return None, None
    heads = getattr(model, "get_output_embeddings", None)
    if "input_ids" in inputs and heads is not None and heads() is not None:
        ids = inputs.get("decoder_input_ids", inputs["input_ids"])
        return torch.roll(ids, -1, dims=1), _next_token_loss

    def random_readout(out: torch.Tensor) -> torch.Tensor:
        r = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
        return (out * r.to(out.dtype)).sum() / (out.shape[0] if out.ndim else 1)

    return None, random_readout


def _next_token_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.flatten(0, -2), targets.flatten())


def _hf_inputs(
    model: nn.Module, config: Any, batch: int, seq_len: int, g: torch.Generator
) -> dict[str, torch.Tensor]:
    name = getattr(model, "main_input_name", "input_ids")
    what = f"{type(model).__name__} ({config.model_type})"
    if name == "input_ids":
        vocab = _field(config, what, "vocab_size")
        limit = getattr(config, "n_positions", None) or getattr(
            config, "max_position_embeddings", None
        )
        n = min(seq_len, int(limit)) if limit else seq_len
        ids = torch.randint(0, int(vocab), (batch, n), generator=g)
        out = {"input_ids": ids}
        if getattr(config, "is_encoder_decoder", False):
            out["decoder_input_ids"] = torch.randint(0, int(vocab), (batch, n), generator=g)
        return out
    if name == "pixel_values":
        channels = _field(config, what, "num_channels")
        size = _field(config, what, "image_size")
        h, w = (size, size) if isinstance(size, int) else tuple(size)
        return {"pixel_values": torch.randn(batch, int(channels), int(h), int(w), generator=g)}
    raise ModelError(
        f"cannot tell what inputs {what} takes (its main input is {name!r}; initlab makes "
        "input_ids and pixel_values); diagnose it from Python with your own batch: "
        "initlab.diagnose(model, inputs)"
    )


def _field(config: Any, what: str, name: str) -> Any:
    value = getattr(config, name, None)
    if value is None:
        raise ModelError(
            f"cannot make inputs for {what}: its config has no {name}; diagnose it from "
            "Python with your own batch: initlab.diagnose(model, inputs)"
        )
    return value
