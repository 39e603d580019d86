"""Compare initialisation schemes on one architecture and one batch.

Each scheme initialises a fresh copy of the model (``copy.deepcopy`` of a model, or a call of a
factory) and the copy is diagnosed (:func:`~initlab.diagnostics.diagnose`) on the same inputs,
with the same dropout masks (same ``seed``). A scheme may be

* a :class:`~initlab.Scheme` or a scheme name/config (``"kaiming_normal"``,
  ``{"name": "kaiming_normal", "nonlinearity": "relu"}``): applied to the ``weight`` of every
  Linear and Conv/ConvTranspose layer with layer-aware fans (:func:`initlab.compute_fans`)
  and a ``torch.Generator`` seeded with ``seed``, in ``named_modules`` order; their biases are
  set to 0. Other parameters keep the values the model (or factory) gave them;
* ``"lsuv"``: :func:`~initlab.diagnostics.lsuv.lsuv_` on the comparison's inputs (orthonormal
  pre-init drawn from the seeded generator, default tolerance);
* any callable ``f(model)`` that initialises the copy itself, e.g.
  ``lambda m: initlab.initialize(m, policy, seed)``.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Union

import torch
from torch import Tensor, nn

from ..layers import compute_fans
from .hooks import diagnose
from .records import Diagnosis, Rendered, Thresholds, fmt

if TYPE_CHECKING:
    from rich.table import Table

    from ..schemes import Scheme

SchemeSpec = Union[Callable[[nn.Module], Any], "Scheme", str, Mapping[str, Any]]
SCHEME_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.modules.conv._ConvNd)


def apply_scheme_(
    model: nn.Module, scheme: Scheme | str | Mapping[str, Any], generator: torch.Generator
) -> None:
    """Fill each Linear/Conv weight with ``scheme`` (layer-aware fans); zero the biases.

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
    from ..schemes import get_scheme

    sch = get_scheme(dict(scheme) if isinstance(scheme, Mapping) else scheme)
    for m in model.modules():
        if isinstance(m, SCHEME_LAYERS):
            sch(m.weight, compute_fans(m, "weight"), generator)
            if m.bias is not None:
                with torch.no_grad():
                    m.bias.zero_()


@dataclasses.dataclass(repr=False)
class SchemeComparison(Rendered):
    """The diagnoses of one model under several schemes (same inputs, same seed).

    Attributes:
        diagnoses: scheme label -> :class:`~initlab.diagnostics.records.Diagnosis`.
        seed: the seed of every scheme's generator and of the dropout masks.

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
        from rich.table import Table

        caption = "\n".join(f"{k}: {d.summary()}" for k, d in self.diagnoses.items())
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
        """Seed, scheme labels, the long-format rows and every diagnosis, as a dict."""
        return {
            "seed": self.seed,
            "schemes": list(self.diagnoses),
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
        A :class:`SchemeComparison` (print it for a table of std per layer and scheme).

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
    for label, spec in schemes.items():
        if isinstance(model_or_factory, nn.Module):
            model = copy.deepcopy(model_or_factory)
        elif callable(model_or_factory):
            model = model_or_factory()
        else:
            raise TypeError("model_or_factory must be an nn.Module or a factory callable")
        gen = torch.Generator().manual_seed(seed)
        if isinstance(spec, str) and spec.strip().lower() == "lsuv":
            lsuv_(model, inputs, generator=gen)
        elif isinstance(spec, (str, Mapping)) or _is_scheme(spec):
            apply_scheme_(model, spec, gen)  # type: ignore[arg-type]
        elif callable(spec):
            spec(model)
        else:
            raise TypeError(f"scheme {label!r}: expected a Scheme, a name, or a callable")
        out[str(label)] = diagnose(
            model, inputs, targets, loss_fn, thresholds=thresholds, train=train, seed=seed,
            bins=bins, singular_values=singular_values,
        )  # fmt: skip
    return SchemeComparison(out, seed)


def _is_scheme(obj: Any) -> bool:
    from ..schemes import Scheme

    return isinstance(obj, Scheme)
