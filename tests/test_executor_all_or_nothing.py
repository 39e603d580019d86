"""All or nothing: a fill that fails on the n-th parameter leaves every front end's target as
it was (model bitwise unchanged, model still on meta, no checkpoint folder), and the error
names the parameter and the rule."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import initlab
from archs import cnn, mlp
from initlab import Policy, Rule, get_scheme
from initlab.execute import CheckpointError


def failing_on(n: int, error: Exception | None = None):  # type: ignore[no-untyped-def]
    """A custom value function that raises on its n-th call (else 0.5 everywhere)."""
    calls: list[tuple[int, ...]] = []

    def fn(shape, generator):  # type: ignore[no-untyped-def]
        calls.append(shape)
        if len(calls) == n:
            raise error or RuntimeError("boom")
        return np.full(shape, 0.5)

    return fn


def custom_policy(fn) -> Policy:  # type: ignore[no-untyped-def]
    return Policy(rules=(Rule(get_scheme("custom", fn=fn), id="values"),))


@pytest.mark.parametrize("n", [1, 2, 6])
def test_initialize_failing_on_nth_parameter_changes_nothing(n, snapshot, assert_unchanged):  # type: ignore[no-untyped-def]
    model = mlp()  # 6 parameters: fc weights and biases
    before = snapshot(model)
    names = [name for name, _ in model.named_parameters()]
    with pytest.raises(RuntimeError, match=rf"parameter '{names[n - 1]}' \(rule values\): boom"):
        initlab.initialize(model, custom_policy(failing_on(n)), 0)
    assert_unchanged(model, before)
    # the same policy without a failure writes every parameter
    report = initlab.initialize(model, custom_policy(failing_on(0)), 0)
    assert all(r.status == "initialized" for r in report)
    assert all(bool((p == 0.5).all()) for p in model.parameters())


def test_initialize_bad_values_from_a_custom_function_change_nothing(snapshot, assert_unchanged):  # type: ignore[no-untyped-def]
    """Wrong shape, NaN: refused when the second parameter is filled; the first is restored."""
    bad = {
        "shape": (lambda shape: np.ones((*shape, 2)), ValueError, "returned shape"),
        "nan": (lambda shape: np.full(shape, np.nan), ValueError, "NaN or inf"),
        "inf": (lambda shape: np.full(shape, np.inf), ValueError, "NaN or inf"),
        "int": (lambda shape: np.ones(shape, dtype=np.int64), TypeError, "int64 values"),
    }
    for label, (make, error, message) in bad.items():
        calls: list[int] = []

        def fn(shape, g, make=make, calls=calls):  # type: ignore[no-untyped-def]
            calls.append(1)
            return np.full(shape, 0.25) if len(calls) == 1 else make(shape)

        model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
        before = snapshot(model)
        with pytest.raises(
            error, match=rf"^parameter '0.bias' \(rule values\): custom: .*{message}"
        ):
            initlab.initialize(model, custom_policy(fn), 0)
        assert_unchanged(model, before), label


def test_initialize_partial_row_and_tied_parameters_roll_back(snapshot, assert_unchanged):  # type: ignore[no-untyped-def]
    """A packed parameter whose block rule covers one gate, and a tie: still all or nothing."""
    model = nn.Sequential(nn.LSTM(3, 4), nn.Linear(4, 4), nn.Linear(4, 4))
    model[2].weight = model[1].weight
    before = snapshot(model)
    pol = Policy(
        rules=(
            Rule({"name": "constant", "val": 1.0}, param="*bias_ih*", block="f"),
            Rule(
                get_scheme("custom", fn=failing_on(3)), module="Linear", id="lin"
            ),  # 3 rows: a tie
        ),
        unmatched="leave",
    )
    with pytest.raises(RuntimeError, match=r"parameter '2.bias' \(rule lin\): boom"):
        initlab.initialize(model, pol, 0)
    assert_unchanged(model, before)
    pol_ok = Policy(rules=pol.rules[:1], unmatched="leave")
    report = initlab.initialize(model, pol_ok, 0)
    assert report["0.bias_ih_l0"].status == "partial"
    bias = model[0].bias_ih_l0.detach()
    assert torch.equal(bias[4:8], torch.ones(4))  # the f gate
    assert torch.equal(bias[:4], before["0.bias_ih_l0"][:4])  # other gates left as they were


def test_as_apply_fn_failing_call_leaves_its_module_unchanged(snapshot, assert_unchanged):  # type: ignore[no-untyped-def]
    """Each call of the apply function is all or nothing: the call that fails leaves its
    module as it was (the modules model.apply visited before it were initialised)."""
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    before = snapshot(model)
    fn = initlab.as_apply_fn(custom_policy(failing_on(4)), 0, root=model)
    with pytest.raises(RuntimeError, match=r"parameter '1.bias' \(rule values\): boom"):
        model.apply(fn)
    assert bool((model[0].weight == 0.5).all()) and bool((model[0].bias == 0.5).all())
    assert torch.equal(model[1].weight, before["1.weight"])  # its weight was filled, then
    assert torch.equal(model[1].bias, before["1.bias"])  # rolled back with the bias
    # without root, the failing call covers the whole subtree it was given
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    before = snapshot(model)
    with pytest.raises(RuntimeError, match="boom"):
        initlab.as_apply_fn(custom_policy(failing_on(2)), 0)(model)
    assert_unchanged(model, before)


@pytest.mark.parametrize("n", [1, 3])
def test_materialize_failing_on_nth_parameter_leaves_the_model_on_meta(n):  # type: ignore[no-untyped-def]
    with initlab.meta_build(include_buffers=True):
        model = cnn()  # parameters and BatchNorm buffers
    with pytest.raises(RuntimeError, match=r"\(rule values\): boom"):
        initlab.materialize(model, custom_policy(failing_on(n)), 0)
    assert all(t.is_meta for t in (*model.parameters(), *model.buffers()))
    report = initlab.materialize(model, custom_policy(failing_on(0)), 0)
    assert not any(t.is_meta for t in (*model.parameters(), *model.buffers()))
    assert all(r.status == "initialized" for r in report)


def test_write_checkpoint_failing_fill_leaves_no_folder(tmp_path):  # type: ignore[no-untyped-def]
    with initlab.meta_build():
        model = mlp()
    out = tmp_path / "ckpt"
    with pytest.raises(RuntimeError, match=r"parameter '2.weight' \(rule values\): boom"):
        initlab.write_checkpoint(model, custom_policy(failing_on(3)), 0, out, progress=False,
                                 max_shard_bytes=4096)  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its partial twin
    out.mkdir()  # an empty folder may be the target; it is replaced when complete
    index = initlab.write_checkpoint(model, "kaiming", 0, out, progress=False,
                                     max_shard_bytes=4096)  # fmt: skip
    assert index == out / "model.safetensors.index.json" and index.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def test_write_checkpoint_refuses_a_full_folder_before_writing(tmp_path):  # type: ignore[no-untyped-def]
    with initlab.meta_build():
        model = mlp()
    out = tmp_path / "ckpt"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(CheckpointError, match="not empty"):
        initlab.write_checkpoint(model, "kaiming", 0, out, progress=False)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["ckpt", "keep.txt"]


def test_write_checkpoint_killed_midway_never_sits_under_its_final_name(tmp_path):  # type: ignore[no-untyped-def]
    """A hard kill (os._exit from inside the third fill: no cleanup runs) leaves only the
    ``.partial-<pid>`` folder, with the files written so far; the final name never exists."""
    out = tmp_path / "ckpt"
    script = textwrap.dedent(f"""
        import os, numpy as np, initlab
        from torch import nn
        calls = []
        def fn(shape, g):
            calls.append(shape)
            if len(calls) == 3:
                os._exit(7)
            return np.zeros(shape)
        with initlab.meta_build():
            model = nn.Sequential(nn.Linear(64, 256), nn.Linear(256, 128), nn.Linear(128, 10))
        pol = initlab.Policy(rules=(initlab.Rule(initlab.get_scheme("custom", fn=fn)),))
        print(os.getpid(), flush=True)
        initlab.write_checkpoint(model, pol, 0, {str(out)!r}, progress=False,
                                 max_shard_bytes=4096)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert proc.returncode == 7, proc.stderr
    pid = int(proc.stdout.split()[0])
    assert not out.exists()
    left = [p.name for p in tmp_path.iterdir()]
    assert left == [f"ckpt.partial-{pid}"]
    files = sorted(p.name for p in (tmp_path / left[0]).iterdir())
    assert files and "model.safetensors.index.json" not in files  # cut short: no index


def test_write_checkpoint_removes_a_stale_partial_folder_of_its_own_pid(tmp_path):  # type: ignore[no-untyped-def]
    with initlab.meta_build():
        model = mlp()
    out = tmp_path / "ckpt"
    stale = Path(f"{out}.partial-{os.getpid()}")
    stale.mkdir()
    (stale / "model-00001-of-00009.safetensors").write_bytes(b"cut")
    initlab.write_checkpoint(model, "kaiming", 0, out, progress=False)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]
    assert "model-00001-of-00009.safetensors" not in {p.name for p in out.iterdir()}
