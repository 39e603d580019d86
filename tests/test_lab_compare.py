"""initlab.lab: entries, results store, statistics, compare() end to end, resume, report, CLI."""

from __future__ import annotations

import json
import math
import re
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from torch import nn

import initlab
from initlab.cli import main
from initlab.cli.compare import split_entries
from initlab.lab import experiment as compare_mod
from initlab.lab.entries import DEFAULT_ENTRIES, EntryError, resolve_entries, resolve_entry
from initlab.lab.experiment import compare, report
from initlab.lab.results import RunResult, load_results, make_run_id, results_table
from initlab.lab.stats import summarise, summarise_values, t_quantile_975

TINY = {
    "model": "mlp:widths=16",
    "dataset": "synthetic:n=240,dim=8,classes=3,seed=0",
    "epochs": 3,
    "optimizer": "adam",
    "lr": 1e-3,
    "batch_size": 32,
    "progress": False,
}


# -- entries ----------------------------------------------------------------------------------
def test_default_entries_are_the_seeds_six_and_five_more() -> None:
    entries = resolve_entries(None)
    assert [e.label for e in entries] == list(DEFAULT_ENTRIES)
    assert len(entries) == 11
    assert DEFAULT_ENTRIES[:6] == (
        "zeros", "ones", "uniform", "uniform_centered", "uniform_rule", "normal_rule",
    )  # fmt: skip


def _init(name: str, seed: int = 0) -> nn.Sequential:
    model = nn.Sequential(nn.Linear(400, 300), nn.ReLU(), nn.LayerNorm(300), nn.Linear(300, 10))
    initlab.initialize(model, resolve_entry(name).policy, seed=seed)
    return model.requires_grad_(False)


def test_seed_entries_fill_every_weight_and_zero_the_biases() -> None:
    rule = _init("uniform_rule")[0]
    bound = 1 / math.sqrt(400)  # U[-1/sqrt(n), 1/sqrt(n)] has std bound / sqrt(3)
    assert rule.weight.abs().max() <= bound and rule.weight.abs().max() > 0.99 * bound
    assert abs(float(rule.weight.std()) - bound / math.sqrt(3)) < 0.001
    normal = _init("normal_rule")[0].weight
    assert abs(float(normal.std()) - 1 / math.sqrt(400)) < 0.002 and normal.abs().max() > 0.1
    uniform = _init("uniform")[0].weight
    assert float(uniform.min()) >= 0 and float(uniform.max()) < 1
    centred = _init("uniform_centered")[0].weight
    assert -0.5 <= float(centred.min()) < -0.45 and 0.45 < float(centred.max()) < 0.5
    assert torch.all(_init("ones")[3].weight == 1) and torch.all(_init("zeros")[0].weight == 0)
    for name in DEFAULT_ENTRIES[:6]:
        m = _init(name)
        assert torch.all(m[0].bias == 0) and torch.all(m[3].bias == 0), name
        assert torch.all(m[2].weight == 1) and torch.all(m[2].bias == 0), name  # LayerNorm


def test_entry_specs_schemes_presets_and_files(tmp_path: Path) -> None:
    e = resolve_entry("kaiming_normal:nonlinearity=relu,mode=fan_out")
    assert e.label == "kaiming_normal:mode=fan_out,nonlinearity=relu"  # canonical
    assert e.config["kind"] == "scheme"
    w = _init(e.label)[0].weight  # fan_out = 300
    assert abs(float(w.std()) - math.sqrt(2 / 300)) < 0.003
    assert resolve_entry("gpt2:n_layers=2").label == "gpt2:n_layers=2"
    assert resolve_entry("Orthogonal-Weights").label == "orthogonal_weights"
    with pytest.warns(DeprecationWarning, match="'orthogonal_weights'"):
        assert resolve_entry("Seeds_Orthogonal").label == "orthogonal_weights"
    assert resolve_entry("orthogonal").policy.name == "orthogonal_weights"
    assert resolve_entry("torch_default").policy.name == "torch_default"
    policy = tmp_path / "mine.yaml"
    policy.write_text("name: mine\nrules:\n  - scheme: {name: normal, std: 0.01}\n    ndim: 2\n")
    entry = resolve_entry(str(policy))
    assert entry.label == "mine" and entry.config["kind"] == "file"
    assert entry.config["policy"]["rules"][0]["scheme"] == {"name": "normal", "std": 0.01}


def test_unknown_entries_list_what_is_valid() -> None:
    with pytest.raises(EntryError, match=r"unknown entry 'kaimin'.*uniform_rule.*gpt2.*\.yaml"):
        resolve_entry("kaimin")
    with pytest.raises(EntryError, match="std"):
        resolve_entry("normal:std=-1")
    with pytest.raises(EntryError, match="twice"):
        resolve_entries(["xavier", "xavier"])
    assert len(resolve_entries(["default", "he_normal"])) == 12


def test_split_entries_keeps_scheme_parameters_together() -> None:
    got = split_entries(("xavier,kaiming_normal:mode=fan_out,nonlinearity=relu", "zeros"))
    assert got == ["xavier", "kaiming_normal:mode=fan_out,nonlinearity=relu", "zeros"]


# -- statistics -------------------------------------------------------------------------------
def test_confidence_interval_by_hand() -> None:
    s = summarise_values([0.90, 0.92, 0.97])
    # mean 0.93; deviations -0.03, -0.01, 0.04; sum of squares 0.0026; var 0.0013 (ddof=1)
    assert s.mean == pytest.approx(0.93)
    assert s.std == pytest.approx(math.sqrt(0.0013))
    half = 4.303 * math.sqrt(0.0013) / math.sqrt(3)  # t(0.975, df=2) = 4.303
    assert s.ci == pytest.approx((0.93 - half, 0.93 + half))
    assert s.ci[0] == pytest.approx(0.84043, abs=1e-5) and s.n == 3
    one = summarise_values([0.5, math.nan])
    assert (one.mean, one.std, one.ci, one.n, one.n_nonfinite) == (0.5, 0.0, None, 1, 1)
    assert t_quantile_975(30) == 2.042 and t_quantile_975(40) == pytest.approx(2.0211, abs=1e-4)
    assert t_quantile_975(100) == pytest.approx(1.9840, abs=1e-4)


def _result(entry: str, seed: int, acc: list[float], loss: list[float]) -> RunResult:
    metrics = {"train_loss": loss, "val_loss": loss, "val_acc": acc}
    return RunResult(f"{entry}{seed}", entry, {}, seed, {}, metrics)


def test_ranking_by_final_accuracy_then_loss() -> None:
    results = [
        _result("a", 0, [0.1, 0.5, 0.8, 0.9], [2, 1, 0.5, 0.4]),
        _result("b", 0, [0.1, 0.6, 0.9, 0.9], [2, 1, 0.5, 0.3]),
        _result("c", 0, [0.1, 0.2, 0.3, math.nan], [2, 3, math.inf, math.nan]),
    ]
    stats = summarise(results)
    assert [s.entry for s in stats] == ["b", "a", "c"] and [s.rank for s in stats] == [1, 2, 3]
    assert stats[0].epochs == {"early": 2, "final": 3}
    assert stats[0].metrics["early"]["val_acc"].mean == 0.9
    assert stats[2].metrics["final"]["val_loss"].n_nonfinite == 1


# -- results store ----------------------------------------------------------------------------
def test_run_ids_and_json_round_trip(tmp_path: Path) -> None:
    config = {"model": "mlp", "dataset": "digits", "lr": 1e-3, "device": "cpu"}
    rid = make_run_id(config, {"spec": "xavier"}, 0)
    assert rid == make_run_id({**config, "device": "cuda"}, {"spec": "xavier"}, 0)
    assert rid != make_run_id({**config, "lr": 2e-3}, {"spec": "xavier"}, 0)
    assert rid != make_run_id(config, {"spec": "xavier"}, 1)
    r = _result("a", 0, [0.1, 0.5], [2.0, math.nan])
    line = r.to_json()
    assert "NaN" not in line and json.loads(line)["metrics"]["val_loss"] == [2.0, None]
    back = RunResult.from_json(line)
    assert back.metrics["val_acc"] == [0.1, 0.5] and math.isnan(back.metrics["val_loss"][1])
    assert len(results_table([r])) == 2
    (tmp_path / "runs.jsonl").write_text(line + "\n" + line + "\n" + line[:40])
    with pytest.warns(UserWarning, match="malformed"):
        assert len(load_results(tmp_path)) == 1  # deduplicated, torn last line skipped


# -- compare end to end -----------------------------------------------------------------------
def _lines(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "runs.jsonl").read_text().splitlines()]


def test_compare_end_to_end_resume_and_report(tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "out"
    res = compare(entries=["xavier", "zeros"], seeds=2, out=out, **TINY)
    assert res.trained == 4 and res.skipped == 0 and len(res.results) == 4
    lines = _lines(out)
    assert len(lines) == 4 and len({x["run_id"] for x in lines}) == 4
    first = lines[0]
    assert first["config"]["model"] == "mlp:widths=16" and first["config"]["optimizer"] == "adam"
    assert set(first["versions"]) == {"initlab", "torch", "numpy", "python"}
    assert len(first["metrics"]["val_acc"]) == 4 and first["wall_time"] > 0
    for name in ("report.md", "report.html", "curves_loss.png", "curves_accuracy.png",
                 "final.png"):  # fmt: skip
        assert (out / name).stat().st_size > 0, name
    html = (out / "report.html").read_text()
    # self-contained: scripts inline (plotly.js included), nothing fetched
    assert "<script src" not in html and "<link" not in html
    assert html.count("Plotly.newPlot") == 3 and html.count("plotly.js v") >= 1
    outside = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    assert "http" not in outside
    srcs = re.findall(r'src="([^"]*)"', outside)
    # the at-init propagation plot (the curves are interactive figures)
    assert len(srcs) == 1 and all(s.startswith("data:image/png;base64,") for s in srcs)
    md = (out / "report.md").read_text()
    assert "`xavier`" in md and "after epoch 2" in md.lower() and "curves_loss.png" in md
    assert [s.entry for s in res.stats] == ["xavier", "zeros"]
    assert res.table()[0]["epoch"] == 0

    # resume: nothing is trained again, no line is added
    calls: list[int] = []
    real = compare_mod.train_runs

    def counting(factory, runs, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(len(runs))
        return real(factory, runs, *args, **kwargs)

    monkeypatch.setattr(compare_mod, "train_runs", counting)
    again = compare(entries=["xavier", "zeros"], seeds=2, out=out, **TINY)
    assert calls == [0] and again.trained == 0 and again.skipped == 4
    assert len(_lines(out)) == 4
    assert [r.metrics for r in again.results] == [r.metrics for r in res.results]
    # one more entry: only its runs train
    more = compare(entries=["xavier", "zeros", "kaiming"], seeds=2, out=out, **TINY)
    assert calls == [0, 2] and more.trained == 2 and len(_lines(out)) == 6

    # the report is rebuilt from runs.jsonl alone
    for name in ("report.md", "report.html", "curves_loss.png", "curves_accuracy.png"):
        (out / name).unlink()
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert "kaiming" in result.output and str(out) in result.output
    assert (out / "report.html").is_file() and (out / "curves_loss.png").is_file()
    rebuilt = report(out)
    assert {s.entry for s in rebuilt.stats} == {"xavier", "zeros", "kaiming"}
    assert len(rebuilt.results) == 6


def test_user_factory_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "my_model.py").write_text(
        textwrap.dedent(
            """
            import math
            from torch import nn

            def make(input_shape, num_classes):
                return nn.Sequential(nn.Linear(math.prod(input_shape), 12), nn.Tanh(),
                                     nn.Linear(12, num_classes))
            """
        )
    )
    spec = f"{tmp_path / 'my_model.py'}:make"
    res = compare(model=spec, entries=["lecun", "orthogonal"], seeds=2, out=None, **{
        k: v for k, v in TINY.items() if k != "model"
    })  # fmt: skip
    assert len(res.results) == 4 and res.paths == {}
    assert all(r.config["model"] == spec and r.mode == "vectorised" for r in res.results)
    assert all(r.status == "ok" for r in res.results)


def test_cli_compare_json_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["compare", "--model", "mlp:widths=8", "--data", "synthetic:n=120,dim=4,classes=2",
            "--policy", "xavier", "-p", "uniform:a=-0.1,b=0.1", "--seeds", "0,3",
            "--epochs", "1", "--out", str(out), "--json", "--sequential"]  # fmt: skip
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["runs"] == 4 and data["out"] == str(out)
    assert {s["entry"] for s in data["stats"]} == {"xavier", "uniform:a=-0.1,b=0.1"}
    assert {r["seed"] for r in _lines(out)} == {0, 3}
    assert {r["mode"] for r in _lines(out)} == {"sequential"}

    missing = tmp_path / "nowhere"
    cases = {
        str(missing): ["--data", f"mnist:{missing}"],
        "unknown entry": ["--policy", "kaimin"],
        "unknown model": ["--model", "transformer"],
    }
    for expected, extra in cases.items():
        result = runner.invoke(main, ["compare", "--out", str(tmp_path / "x"), *extra])
        assert result.exit_code == 2, (extra, result.output)
        assert result.output.startswith("initlab: error: ") and expected in result.output
        assert len(result.output.strip().splitlines()) == 1, result.output
    result = runner.invoke(main, ["report", str(tmp_path / "empty")])
    assert result.exit_code == 2 and "runs.jsonl" in result.output


def test_lsuv_entries_and_propagation_at_init(tmp_path):
    from initlab.lab.entries import resolve_entry
    from initlab.lab.experiment import compare

    lsuv, kl = resolve_entry("lsuv"), resolve_entry("kaiming+lsuv")
    assert (lsuv.data_init, kl.data_init, kl.label) == ("lsuv", "lsuv", "kaiming+lsuv")
    assert kl.config["data_init"] == "lsuv" and resolve_entry("kaiming").data_init is None
    res = compare(model="deep:depth=8,width=64", dataset="synthetic:n=600,dim=16",
                  entries=["xavier", "lsuv", "kaiming+lsuv"], seeds=1, epochs=1,
                  out=tmp_path, progress=False)  # fmt: skip
    assert {s.entry for s in res.stats} == {"xavier", "lsuv", "kaiming+lsuv"}
    data = json.loads((tmp_path / "propagation.json").read_text())
    assert set(data["diagnoses"]) == {"xavier", "lsuv", "kaiming+lsuv"}
    html = (tmp_path / "report.html").read_text()
    # the propagation at init as a PNG; final values, accuracy and loss as interactive figures
    assert html.count('<img alt="propagation at init" src="data:image/png;base64,') == 1
    assert html.count('class="plotly-graph-div"') == 3
    # LSUV entries start with unit-std pre-activations in every hidden layer (measured on a
    # validation batch; LSUV fitted a training batch to std tolerance 0.1)
    for label in ("lsuv", "kaiming+lsuv"):
        recs = data["diagnoses"][label]["records"]
        stds = [r["output_std"] for r in recs if r["kind"] == "Linear"]
        assert all(abs(s - 1) < 0.2 for s in stds[:-1]), (label, stds)
    xavier = [
        r["output_std"] for r in data["diagnoses"]["xavier"]["records"] if r["kind"] == "Linear"
    ]
    assert xavier[-2] < 0.5 * xavier[0]  # xavier shrinks through the ReLU layers


def test_report_rebuilds_the_last_comparison_of_a_reused_folder(tmp_path):
    kw = {"model": "mlp:widths=16", "dataset": "synthetic:n=300,dim=8", "seeds": 1, "epochs": 1,
          "out": tmp_path, "progress": False}  # fmt: skip
    compare(entries=["xavier", "kaiming"], **kw)
    second = compare(entries=["kaiming", "orthogonal"], **kw)
    md = (tmp_path / "report.md").read_text()
    rebuilt = report(tmp_path)
    assert {s.entry for s in rebuilt.stats} == {s.entry for s in second.stats}
    assert {s.entry for s in rebuilt.stats} == {"kaiming", "orthogonal"}
    assert (tmp_path / "report.md").read_text() == md
