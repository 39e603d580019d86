"""Results read well in a shell or notebook: ``repr`` is one short line, ``_repr_html_`` too."""

from __future__ import annotations

import warnings

import torch
from torch import nn

import initlab


def _big() -> nn.Module:
    layers: list[nn.Module] = []
    for _ in range(12):
        layers += [nn.Linear(32, 32), nn.ReLU()]
    return nn.Sequential(*layers)


def test_init_report_repr_is_one_short_line() -> None:
    report = initlab.initialize(_big(), "kaiming", 0)
    text = repr(report)
    assert "\n" not in text and len(text) < 200, text
    n = sum(p.numel() for p in _big().parameters())
    assert text == (f"<InitReport: {len(report)} parameters ({n:,} values): {len(report)} "
                    "initialized; policy kaiming, seed 0, rng keyed>")  # fmt: skip
    assert len(str(report)) > 10 * len(text)  # print() still shows the whole table
    assert report._repr_html_().startswith("<p><b>InitReport</b>: ")


def test_guessed_fans_are_counted_in_the_repr() -> None:
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.k = nn.Parameter(torch.empty(3, 4))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = initlab.plan(Odd(), "xavier_uniform", seed=0)
    assert repr(report).endswith("; 1 with guessed fans>")


def test_diagnostics_results_repr_is_their_summary() -> None:
    model, x = _big(), torch.randn(64, 32, generator=torch.Generator().manual_seed(0))
    initlab.initialize(model, "kaiming", 0)
    d = initlab.diagnose(model, x)
    assert repr(d) == f"<Diagnosis: {d.summary()}>" and len(repr(d)) < 300
    cmp = initlab.compare_schemes(model, {"he": "kaiming_normal", "tiny<b>": "xavier_uniform"}, x)
    assert repr(cmp).startswith("<SchemeComparison: 2 scheme(s) x 12 weight layer(s), seed 0: ")
    assert "tiny&lt;b&gt;" in cmp._repr_html_()  # labels are escaped
    rep = initlab.lsuv_(model, x)
    assert repr(rep) == "<LSUVReport: 12 layer(s) rescaled, 12 converged to var 1 ± 0.1>"
