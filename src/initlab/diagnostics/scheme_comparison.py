"""Compare initialisation schemes on one architecture and one batch.

Each scheme initialises a fresh copy of the model (``copy.deepcopy`` of a model, or a call of a
factory) and the copy is diagnosed (:func:`~initlab.diagnostics.diagnose`) on the same inputs,
with the same dropout masks (same ``seed``). A scheme may be

* a :class:`~initlab.Scheme` or a scheme name/config (``"kaiming_normal"``,
  ``{"name": "kaiming_normal", "nonlinearity": "relu"}``): applied to every weight-bearing
  layer the layer registry knows (:func:`initlab.layers.weight_params`: Linear, Conv,
  ConvTranspose, transformers' ``Conv1D``, MultiheadAttention, timm's fused ``qkv``, RNN
  weights...) with its registry fans, block by block for packed q/k/v and gates, drawn from a
  ``torch.Generator`` seeded with ``seed``, in module order; their biases are set to 0.
  Embeddings, position tables, tokens and norms keep the values the model (or factory) gave
  them (a fan-based scheme on a ``[vocab, d]`` table would use ``fan_in = vocab``). A weight
  tied to one met earlier in module order (GPT-2's ``lm_head``, tied to ``wte``) is filled
  once, by its first owner, and an Embedding owner keeps its values; that and parameters of
  layers the registry does not know are listed in the comparison's ``notes`` and in one
  warning;
* ``"lsuv"``: :func:`~initlab.diagnostics.lsuv.lsuv_` on the comparison's inputs (orthonormal
  pre-init drawn from the seeded generator, default tolerance);
* any callable ``f(model)`` that initialises the copy itself, e.g.
  ``lambda m: initlab.initialize(m, policy, seed)``.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Union

import torch
from torch import Tensor, nn

from ..layers import unknown_params, weight_params
from .hooks import diagnose
from .records import Diagnosis, SkippedLayer, Thresholds, skip_note
from .rendering import Rendered, fmt

if TYPE_CHECKING:
    from rich.table import Table

    from ..schemes import Scheme

SchemeSpec = Union[Callable[[nn.Module], Any], "Scheme", str, Mapping[str, Any]]


def apply_scheme_(
    model: nn.Module, scheme: Scheme | str | Mapping[str, Any], generator: torch.Generator
) -> None:
    """Fill every weight-bearing layer's weight with ``scheme`` (registry fans, block by
    block); zero their biases (module docstring). Layers left as they were (tied weights,
    layers the registry does not know) are named in one ``UserWarning``.

    Args:
        model: the model, modified in place.
        scheme: a Scheme, a registered name or a config mapping.
        generator: the ``torch.Generator`` the weights are drawn from, in module order.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> layer = nn.Linear(128, 64)
        >>> apply_scheme_(layer, "xavier_normal", torch.Generator().manual_seed(0))
        >>> round(layer.weight.std().item(), 3), round((2 / (128 + 64)) ** 0.5, 3)
        (0.102, 0.102)
        >>> layer.bias.abs().sum().item()
        0.0
    """
    note = skip_note("apply_scheme_", _apply_scheme(model, scheme, generator))
    if note:
        warnings.warn(note, UserWarning, stacklevel=2)


def _apply_scheme(
    model: nn.Module, scheme: Scheme | str | Mapping[str, Any], generator: torch.Generator
) -> list[SkippedLayer]:
    """:func:`apply_scheme_` without the warning: returns what it left."""
    from ..schemes import get_scheme

    sch = get_scheme(dict(scheme) if isinstance(scheme, Mapping) else scheme)
    params = weight_params(model, roles=("weight", "bias"))
    names = {m: n or "(root)" for n, m in model.named_modules()}
    skipped: list[SkippedLayer] = []
    filled: set[nn.Module] = set()
    for w in params:
        if w.role != "weight":
            continue
        if w.tied_to is not None:
            owner = model.get_submodule(w.tied_to.rpartition(".")[0])
            skipped.append(SkippedLayer(names[w.module], w.kind, (
                f"weight tied to {w.tied_to} ({type(owner).__name__}): a tied weight is filled "
                "once, by its first owner"
                + ("" if owner in filled else f", and {type(owner).__name__}s keep their values")
            )))  # fmt: skip
            continue
        sch(w.tensor, w.fans, generator)
        filled.add(w.module)
    with torch.no_grad():
        for w in params:
            if w.role == "bias" and w.module in filled and w.tied_to is None:
                w.tensor.zero_()
    unknown: dict[tuple[str, str], list[str]] = {}
    for qual, kind in unknown_params(model):
        mod_name, _, pname = qual.rpartition(".")
        unknown.setdefault((mod_name or "(root)", kind), []).append(pname)
    for (mod_name, kind), pnames in unknown.items():
        skipped.append(SkippedLayer(mod_name, kind, (
            f"the layer registry does not know {', '.join(pnames)} (its fans would be "
            "guessed); teach it with initlab.register_layer"
        )))  # fmt: skip
    return skipped


@dataclasses.dataclass(repr=False)
class SchemeComparison(Rendered):
    """The diagnoses of one model under several schemes (same inputs, same seed).

    Attributes:
        diagnoses: scheme label -> :class:`~initlab.diagnostics.records.Diagnosis`.
        seed: the seed of every scheme's generator and of the dropout masks.
        notes: one line naming the weight-bearing layers a scheme or LSUV left as they were
            (tied weights, layers the registry does not know...), when there are any.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from initlab.diagnostics import apply_scheme_, diagnose
        >>> model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
        ...                       nn.Linear(64, 64))
        >>> apply_scheme_(model, {"name": "kaiming_normal", "nonlinearity": "relu"},
        ...               torch.Generator().manual_seed(0))
        >>> x = torch.randn(512, 64, generator=torch.Generator().manual_seed(1))
        >>> from initlab.diagnostics import compare_schemes
        >>> cmp = compare_schemes(model, {"he": "kaiming_normal", "tiny": {"name": "normal",
        ...                                                              "std": 0.01}}, x)
        >>> [(row["scheme"], row["layer"]) for row in cmp.rows()][:2]
        [('he', '0'), ('he', '2')]
        >>> list(cmp.to_dict()["diagnoses"])
        ['he', 'tiny']
    """

    diagnoses: dict[str, Diagnosis]
    seed: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        """One line: the schemes and, for each, the forward ratio (last / first layer std)."""
        parts = [f"{label} (forward ratio {fmt(d.forward_ratio)})"
                 for label, d in self.diagnoses.items()]  # fmt: skip
        n = len(self.layer_labels())
        return f"{len(parts)} scheme(s) x {n} weight layer(s), seed {self.seed}: " + ", ".join(
            parts
        )

    def layer_labels(self, layers: str = "weights") -> list[str]:
        """Labels of the first diagnosis' weight-layer records (``layers="all"``: all records)."""
        first = next(iter(self.diagnoses.values()), None)
        if first is None:
            return []
        recs = first.weight_records() if layers == "weights" else first.records
        return [r.label for r in recs]

    def rows(self, layers: str = "weights") -> list[dict[str, Any]]:
        """Long format: one dict per (scheme, layer) with depth, activation and gradient std."""
        out = []
        for label, d in self.diagnoses.items():
            recs = d.weight_records() if layers == "weights" else d.records
            for depth, r in enumerate(recs):
                out.append({"scheme": label, "depth": depth, "index": r.index,
                            "layer": r.label, "kind": r.kind, "output_std": r.output_std,
                            "grad_output_std": r.grad_output_std})  # fmt: skip
        return out

    def table(self, layers: str = "weights", title: str | None = None) -> Table:
        """Layers as rows, two columns per scheme: output (activation) std and dL/d output std.

        ``layers="weights"`` (default) lists the weight layers (pre-activations), ``"all"``
        every recorded call. The caption gives each scheme's flags.
        """
        from rich.markup import escape
        from rich.table import Table

        caption = "\n".join(
            [f"{k}: {d.summary()}" for k, d in self.diagnoses.items()]
            + [escape(n) for n in self.notes]
        )
        t = Table(title=title or f"scheme comparison (seed {self.seed})", caption=caption)
        t.add_column("depth", justify="right")
        t.add_column("layer")
        for k in self.diagnoses:
            t.add_column(f"{k}\nact std", justify="right")
            t.add_column(f"{k}\ngrad std", justify="right")
        series = {
            k: (d.series("output_std", layers), d.series("grad_output_std", layers))
            for k, d in self.diagnoses.items()
        }
        for i, name in enumerate(self.layer_labels(layers)):
            cells = [str(i), name]
            for act, grad in series.values():
                cells += [fmt(act[i] if i < len(act) else None),
                          fmt(grad[i] if i < len(grad) else None)]  # fmt: skip
            t.add_row(*cells)
        return t

    def to_dict(self) -> dict[str, Any]:
        """Seed, scheme labels, notes, the long-format rows and every diagnosis, as a dict."""
        return {
            "seed": self.seed,
            "schemes": list(self.diagnoses),
            "notes": list(self.notes),
            "rows": self.rows(),
            "diagnoses": {k: d.to_dict() for k, d in self.diagnoses.items()},
        }


def compare_schemes(
    model_or_factory: nn.Module | Callable[[], nn.Module],
    schemes: Mapping[str, SchemeSpec],
    inputs: Any,
    targets: Tensor | None = None,
    loss_fn: Callable[..., Tensor] | None = None,
    *,
    seed: int = 0,
    train: bool | None = None,
    thresholds: Thresholds | None = None,
    bins: int = 50,
    singular_values: bool = True,
) -> SchemeComparison:
    """Diagnose one architecture under each scheme of ``schemes`` (label -> scheme).

    Args:
        model_or_factory: a model (deep-copied for each scheme, never modified) or a
            zero-argument factory (called once per scheme).
        schemes: label -> Scheme, scheme name/config, ``"lsuv"``, or callable ``f(model)``.
        inputs, targets, loss_fn, train, thresholds, singular_values: as
            :func:`~initlab.diagnostics.diagnose`.
        seed: seeds the generator of each scheme's draws (a fresh ``torch.Generator`` per
            scheme, so every scheme starts from the same stream) and the dropout masks. Draw
            ``inputs`` from a different seed: ``torch.randn`` after ``torch.manual_seed(seed)``
            yields the same normals as the weights, and a first layer whose weight rows equal
            input rows is correlated with its input (its output std is then not the scheme's).
        bins: histogram bins stored per record (0: none; plot_histograms needs them).

    Returns:
        A :class:`SchemeComparison` (print it for a table of std per layer and scheme). The
        weight-bearing layers a scheme or LSUV left as they were are named in its ``notes``
        and in one ``UserWarning`` for the whole comparison.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from initlab.diagnostics import apply_scheme_, diagnose
        >>> model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
        ...                       nn.Linear(64, 64))
        >>> apply_scheme_(model, {"name": "kaiming_normal", "nonlinearity": "relu"},
        ...               torch.Generator().manual_seed(0))
        >>> x = torch.randn(512, 64, generator=torch.Generator().manual_seed(1))
        >>> cmp = compare_schemes(model, {"he": {"name": "kaiming_normal", "nonlinearity": "relu"},
        ...                               "tiny": {"name": "normal", "std": 0.01}}, x)
        >>> {k: d.vanishing["forward"] for k, d in cmp.diagnoses.items()}
        {'he': False, 'tiny': True}
    """
    from .lsuv import lsuv_

    if not schemes:
        raise ValueError("compare_schemes needs at least one scheme")
    out: dict[str, Diagnosis] = {}
    skipped: dict[tuple[str, str], SkippedLayer] = {}  # each layer once, first reason
    for label, spec in schemes.items():
        if isinstance(model_or_factory, nn.Module):
            model = copy.deepcopy(model_or_factory)
        elif callable(model_or_factory):
            model = model_or_factory()
        else:
            raise TypeError("model_or_factory must be an nn.Module or a factory callable")
        gen = torch.Generator().manual_seed(seed)
        left: list[SkippedLayer] = []
        if isinstance(spec, str) and spec.strip().lower() == "lsuv":
            with warnings.catch_warnings():  # named once, for the whole comparison, below
                warnings.simplefilter("ignore", UserWarning)
                left = lsuv_(model, inputs, generator=gen).skipped
        elif isinstance(spec, (str, Mapping)) or _is_scheme(spec):
            left = _apply_scheme(model, spec, gen)  # type: ignore[arg-type]
        elif callable(spec):
            spec(model)
        else:
            raise TypeError(f"scheme {label!r}: expected a Scheme, a name, or a callable")
        out[str(label)] = diagnose(
            model, inputs, targets, loss_fn, thresholds=thresholds, train=train, seed=seed,
            bins=bins, singular_values=singular_values,
        )  # fmt: skip
        for x in left:
            skipped.setdefault((x.name, x.kind), x)
    note = skip_note("compare_schemes", list(skipped.values()))
    if note:
        warnings.warn(note, UserWarning, stacklevel=2)
    return SchemeComparison(out, seed, [note] if note else [])


def _is_scheme(obj: Any) -> bool:
    from ..schemes import Scheme

    return isinstance(obj, Scheme)
