"""initlab.lab figures: one fixed colour per entry in every figure, percent axes, chance lines."""

from __future__ import annotations

import matplotlib
import pytest
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from initlab.lab.entries import DEFAULT_ENTRIES
from initlab.lab.experiment import compare
from initlab.lab.palette import ENTRY_COLORS, GREY, entry_colors
from initlab.lab.report_pages import write_report
from initlab.lab.stats import summarise

matplotlib.use("Agg")


def test_palette_is_fixed_per_name_and_distinct() -> None:
    names = [*DEFAULT_ENTRIES, "lsuv", "kaiming+lsuv", "my_policy", "gpt2:n_layers=2", "x", "y"]
    colors = entry_colors(names)
    assert len(set(colors.values())) == len(names) and GREY not in colors.values()
    # the same name has the same colour whatever else is compared, in any order
    assert entry_colors(["zeros", "kaiming"]) == {"zeros": "#7f7f7f", "kaiming": "#1f77b4"}
    assert entry_colors(reversed(names)) == colors
    assert entry_colors(["my_policy"])["my_policy"] == colors["my_policy"]
    assert all(colors[k] == ENTRY_COLORS[k] for k in DEFAULT_ENTRIES)


def _capture(monkeypatch) -> dict[str, Figure]:
    seen: dict[str, Figure] = {}
    real = Figure.savefig

    def save(self, fname, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen[str(fname).rsplit("/", 1)[-1]] = self
        return real(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", save)
    return seen


def _panel_colors(fig: Figure) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for ax in fig.axes:
        if ax.get_visible() and ax.get_title(loc="left"):
            out[ax.get_title(loc="left")] = {
                to_hex(line.get_color()) for line in ax.get_lines() if line.get_zorder() == 3
            }
    return out


def test_every_figure_uses_the_entry_colours(tmp_path, monkeypatch, lab_run) -> None:
    runs = [lab_run(e, s, a + 0.01 * s) for e, a in
            (("kaiming", 0.9), ("zeros", 0.1), ("my_rule", 0.6)) for s in range(3)]  # fmt: skip
    stats = summarise(runs)
    colors = entry_colors(["kaiming", "zeros", "my_rule"])
    seen = _capture(monkeypatch)
    write_report(tmp_path, runs, stats)
    # the dot plot: one colour per entry, sorted best on top, percent axis, chance line
    final = seen["final.png"].axes[0]
    labels = [t.get_text() for t in final.get_yticklabels()]
    assert labels == ["zeros", "my_rule", "kaiming"]  # bottom to top
    for c in final.containers:
        y = round(float(c.lines[0].get_ydata()[0]))
        assert to_hex(c.lines[0].get_color()) == colors[labels[y]]
    assert final.get_xlim() == (0, 100) and "(%)" in final.get_xlabel()
    assert any(line.get_linestyle() == "--" for line in final.get_lines())  # chance
    assert seen["final.png"]._suptitle is None and final.get_title()  # one title
    # small multiples: each panel's entry in its colour, the others grey
    for name in ("curves_accuracy.png", "curves_loss.png"):
        panels = _panel_colors(seen[name])
        assert panels == {e: {colors[e]} for e in colors}, name
    acc = seen["curves_accuracy.png"].axes[0]
    assert acc.get_ylim()[1] > 50 and "(%)" in acc.get_ylabel()
    assert any(to_hex(line.get_color()) == GREY for line in acc.get_lines())
    # the interactive figures: the same colours
    from initlab.lab.interactive import figures

    for fig in figures(runs, stats):
        for trace in fig.data:
            if trace.showlegend is False and trace.fill:
                continue
            color = trace.marker.color if trace.mode == "markers" else trace.line.color
            assert color == colors[trace.name], (trace.name, color)


def test_propagation_plot_uses_the_entry_colours(tmp_path, monkeypatch) -> None:
    seen = _capture(monkeypatch)
    compare(model="mlp:widths=8", dataset="synthetic:n=120,dim=4,classes=2",
            entries=["xavier", "kaiming", "uniform:a=-0.1,b=0.1"],
            seeds=1, epochs=1, out=tmp_path, progress=False)  # fmt: skip
    ax = seen["propagation.png"].axes[0]
    got = {line.get_label(): to_hex(line.get_color()) for line in ax.get_lines()}
    assert got == entry_colors(["xavier", "kaiming", "uniform:a=-0.1,b=0.1"])


def test_plotly_is_optional(tmp_path, monkeypatch, lab_run) -> None:
    from initlab.lab import interactive

    monkeypatch.setattr(interactive, "available", lambda: False)
    runs = [lab_run("kaiming", s, 0.9) for s in range(3)]
    paths = write_report(tmp_path, runs)
    html = paths["html"].read_text()
    assert "Plotly" not in html and html.count("data:image/png;base64,") == 3
    with pytest.raises(KeyError):
        paths["propagation at init"]
