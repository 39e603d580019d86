"""muP's classification uses names and global shapes only, so it survives what changes tensors:
FSDP2 sharding (DTensor parameters, over 2 gloo ranks), torch.compile (the ``_orig_mod.``
prefix) and a state_dict round trip."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import initlab

WIDTH, BASE = 64, 16


class Net(nn.Module):
    def __init__(self, w: int) -> None:
        super().__init__()
        self.emb = nn.Embedding(20, w)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(w), nn.Linear(w, 2 * w), nn.GELU(), nn.Linear(2 * w, w))
            for _ in range(2)
        )
        self.head = nn.Linear(w, 7)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.emb(idx)
        for block in self.blocks:
            x = x + block(x)
        return self.head(x)


def _base() -> nn.Module:
    with initlab.meta_build():
        return Net(BASE)


def _groups(model: nn.Module, m: initlab.Mup) -> list[tuple[str, list[str], float, float]]:
    names = {id(p): n.removeprefix("_orig_mod.") for n, p in model.named_parameters()}
    return [
        (g["name"], [names[id(p)] for p in g["params"]], g["lr"], g["weight_decay"])
        for g in initlab.mup_param_groups(model, m, lr=1e-2, weight_decay=0.1)
    ]


def test_state_dict_round_trip(tmp_path):
    model = Net(WIDTH)
    m = initlab.mup(model, _base())
    initlab.initialize(model, m.policy, seed=3)
    torch.save(model.state_dict(), tmp_path / "model.pt")
    with initlab.meta_build():
        fresh = Net(WIDTH)
    fresh.load_state_dict(torch.load(tmp_path / "model.pt"), assign=True)
    again = initlab.mup(fresh, _base())
    assert again == m
    assert _groups(fresh, again) == _groups(model, m)
    # and the Mup itself round-trips through JSON next to the checkpoint
    (tmp_path / "mup.json").write_text(m.to_json())
    assert initlab.Mup.from_json((tmp_path / "mup.json").read_text()) == m


def test_torch_compile():
    torch.manual_seed(0)
    model = Net(WIDTH)
    m = initlab.mup(model, _base())
    compiled = torch.compile(model, mode=None, backend="eager")
    mc = initlab.mup(compiled, _base())
    assert mc.params == m.params and mc.readouts == m.readouts == {"head": 0.25}
    assert _groups(compiled, m) == _groups(model, m)
    # the compiled model's own policy names its _orig_mod. modules and plans every parameter
    report = initlab.plan(compiled, mc.policy)
    assert all(r.rule_id == f"mup-{m.params[r.qualname[10:]].kind}" for r in report.rows)
    idx = torch.randint(0, 20, (2, 5))
    plain = model(idx)
    with mc.attach(compiled):
        expected = nn.functional.linear(
            0.25 * _hidden(model, idx), model.head.weight, model.head.bias
        )
        torch.testing.assert_close(compiled(idx), expected)
    torch.testing.assert_close(compiled(idx), plain)


def _hidden(model: Net, idx: torch.Tensor) -> torch.Tensor:
    x = model.emb(idx)
    for block in model.blocks:
        x = x + block(x)
    return x


# -- FSDP2 over gloo -------------------------------------------------------------------------
def _worker(rank: int, world: int, store: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        _sharded_case(world)
    finally:
        dist.destroy_process_group()


def _sharded_case(world: int) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    torch.manual_seed(0)  # the same module init on every rank
    reference = Net(WIDTH)
    m = initlab.mup(reference, _base())
    initlab.initialize(reference, m.policy, seed=5)

    mesh = init_device_mesh("cpu", (world,))
    model = Net(WIDTH)
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    assert all(isinstance(p, DTensor) for p in model.parameters())
    assert any(p.to_local().shape != p.shape for p in model.parameters())
    sharded = initlab.mup(model, _base())
    assert sharded == m  # global shapes: the same table, policy and readouts
    assert _groups(model, sharded) == _groups(reference, m)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        initlab.initialize(model, sharded.policy, seed=5)
    for (name, p), (_, q) in zip(
        model.named_parameters(), reference.named_parameters(), strict=True
    ):
        assert torch.equal(p.full_tensor(), q.detach()), name
    idx = torch.randint(0, 20, (2, 5))
    with sharded.attach(model), m.attach(reference):
        torch.testing.assert_close(model(idx), reference(idx))


@pytest.fixture(scope="module")
def start_method() -> str:
    """forkserver with torch and initlab preloaded (as tests/test_targets_shard.py)."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover
        return "spawn"
    multiprocessing.set_forkserver_preload(
        ["torch", "torch.distributed.tensor", "torch.distributed.fsdp", "initlab", __name__]
    )
    return "forkserver"


def test_fsdp2_two_gloo_ranks(tmp_path, start_method: str) -> None:
    store = str(tmp_path / "store")
    mp.start_processes(_worker, args=(2, store), nprocs=2, start_method=start_method)


def test_the_policy_drives_every_target(tmp_path):
    """m.policy is an ordinary policy: in place, meta -> real and a safetensors checkpoint give
    the same tensors (GPT-2 from config, tied embedding/head)."""
    spec = "hf:gpt2?n_layer=1&n_head=2&vocab_size=32&n_positions=16&bos_token_id=0&eos_token_id=0"
    with initlab.meta_build():
        base = initlab.build_model(f"{spec}&n_embd=16")
        meta, on_disk, loaded = (initlab.build_model(f"{spec}&n_embd=64") for _ in range(3))
    real = initlab.build_model(f"{spec}&n_embd=64")
    m = initlab.mup(meta, base)
    initlab.initialize(real, m.policy, seed=1)
    initlab.materialize(meta, m.policy, seed=1)
    initlab.write_checkpoint(on_disk, m.policy, seed=1, out_dir=tmp_path / "ckpt", progress=False)
    initlab.load_checkpoint(loaded, tmp_path / "ckpt")
    for name, p in real.named_parameters():
        assert torch.equal(p, meta.get_parameter(name)), name
        assert torch.equal(p, loaded.get_parameter(name)), name
    assert meta.lm_head.weight is meta.transformer.wte.weight
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
