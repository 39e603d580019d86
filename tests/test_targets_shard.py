"""Shard-local init over torch.distributed (gloo, CPU, several processes).

Every case gathers the shards with ``full_tensor()`` and compares them bit for bit with a
single-process ``initialize`` of the same model, for world sizes 1, 2 and 4 and placements
Shard(0), Shard(1), Replicate with uneven sizes; plus the FSDP2 recipe (meta build,
``fully_shard``, ``materialize``, one forward/backward) and the layouts initlab refuses.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

import initlab
from initlab.execute import FullTensorNotice, ShardingError, initialize_sharded, materialize

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="no torch.distributed")

POLICY = "kaiming"
SEED = 11


class Net(nn.Module):
    """Uneven sizes (7 rows, 5 and 9 columns), packed blocks, an LSTM (orthogonal blocks)."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(7, 6, padding_idx=3)
        self.fc1 = nn.Linear(6, 7)
        self.fc2 = nn.Linear(7, 9)
        self.conv = nn.Conv2d(3, 5, 3)
        self.attn = nn.MultiheadAttention(6, 2, batch_first=True)
        self.norm = nn.LayerNorm(9)
        self.lstm = nn.LSTM(5, 3)


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(7, 6)
        self.blocks = nn.ModuleList(nn.Linear(6, 6) for _ in range(2))
        self.head = nn.Linear(6, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for b in self.blocks:
            h = torch.tanh(b(h))
        return self.head(h)


def _failing_policy(n: int) -> initlab.Policy:
    """Custom values (0.5) for every parameter; the n-th fill raises."""
    calls: list[tuple[int, ...]] = []

    def fn(shape, generator):  # type: ignore[no-untyped-def]
        calls.append(shape)
        if len(calls) == n:
            raise RuntimeError("boom")
        return torch.full(shape, 0.5)

    scheme = initlab.get_scheme("custom", fn=fn)
    return initlab.Policy(rules=(initlab.Rule(scheme, id="values"),))


def _reference(factory: type[nn.Module]) -> dict[str, torch.Tensor]:
    model = factory()
    initlab.initialize(model, POLICY, SEED, strict=True)
    return dict(model.named_parameters())


def _distribute(model: nn.Module, mesh, placement_for, meta: bool) -> None:  # type: ignore[no-untyped-def]
    """Replace every parameter by a DTensor with the placement ``placement_for(param)``."""
    from torch.distributed.tensor import distribute_tensor

    for module in model.modules():
        for name, p in list(module.named_parameters(recurse=False)):
            src = torch.empty(p.shape, device="meta") if meta else p.detach()
            dt = distribute_tensor(src, mesh, [placement_for(p)])
            setattr(module, name, nn.Parameter(dt, requires_grad=p.requires_grad))


def _check_equal(model: nn.Module, ref: dict[str, torch.Tensor], what: str) -> None:
    for name, p in model.named_parameters():
        full = p.full_tensor()
        assert full.dtype == ref[name].dtype, (what, name)
        assert torch.equal(full, ref[name]), f"{what}: {name} differs from single-process init"


def _worker(rank: int, world: int, store: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    try:
        _cases(rank, world)
    finally:
        dist.destroy_process_group()


def _cases(rank: int, world: int) -> None:
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor, Partial, Replicate, Shard

    mesh = init_device_mesh("cpu", (world,))
    ref = _reference(Net)
    layouts = {
        "Shard(0)": lambda p: Shard(0),
        "Shard(1)": lambda p: Shard(1) if p.dim() > 1 else Shard(0),
        "Replicate": lambda p: Replicate(),
    }
    for label, placement_for in layouts.items():
        # parameters with storage: initialize fills each local shard in place
        model = Net()
        _distribute(model, mesh, placement_for, meta=False)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = initlab.initialize(model, POLICY, SEED, strict=True)
        _check_equal(model, ref, f"initialize {label} world {world}")
        assert any(issubclass(w.category, FullTensorNotice) for w in caught)
        assert any("lstm.weight_hh_l0" in n for n in report.notes)  # orthogonal: whole matrix
        # parameters on meta: materialize allocates the local shard and fills it
        with torch.device("meta"):
            model = Net()
        _distribute(model, mesh, placement_for, meta=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FullTensorNotice)
            materialize(model, POLICY, SEED)
        _check_equal(model, ref, f"materialize {label} world {world}")

    # all or nothing on every rank: a fill failing on the 3rd parameter changes no shard
    model = Net()
    _distribute(model, mesh, layouts["Shard(0)"], meta=False)
    before = {n: p.to_local().clone() for n, p in model.named_parameters()}
    with pytest.raises(RuntimeError, match=r"parameter 'fc1.bias' \(rule values\): boom"):
        initlab.initialize(model, _failing_policy(3), SEED)
    for n, p in model.named_parameters():
        assert torch.equal(p.to_local(), before[n]), f"{n} changed on rank {rank}"

    # the FSDP2 recipe: meta build, fully_shard, then initlab materialises the local shards
    with torch.device("meta"):
        model = Tiny()
    for block in model.blocks:
        fully_shard(block, mesh=mesh)
    fully_shard(model, mesh=mesh)
    ids = [id(p) for p in model.parameters()]
    initialize_sharded(model, POLICY, SEED)
    assert [id(p) for p in model.parameters()] == ids  # FSDP2 keeps its parameter objects
    assert all(isinstance(p, DTensor) and not p.to_local().is_meta for p in model.parameters())
    _check_equal(model, _reference(Tiny), f"fully_shard world {world}")
    model(torch.tensor([[1, 2, 3]])).sum().backward()  # FSDP2 runs on what initlab wrote
    _check_equal(model, _reference(Tiny), f"fully_shard after a step, world {world}")

    # FSDP2 and a fill failing on the 3rd parameter (8 rows: every rank has a shard of each)
    with torch.device("meta"):
        model = nn.Sequential(nn.Linear(6, 8), nn.Linear(8, 8))
    fully_shard(model, mesh=mesh)
    with pytest.raises(RuntimeError, match=r"parameter '1.weight' \(rule values\): boom"):
        initialize_sharded(model, _failing_policy(3), SEED)
    assert all(p.to_local().is_meta for p in model.parameters())  # still on meta
    initialize_sharded(model, _failing_policy(0), SEED)
    assert all(bool((p.full_tensor() == 0.5).all()) for p in model.parameters())

    # refused layouts: a clear error, nothing written
    model = nn.Linear(4, 4)
    _distribute(model, mesh, lambda p: Partial(), meta=False)
    before = model.weight.to_local().clone()
    with pytest.raises(ShardingError, match="Partial"):
        initlab.initialize(model, POLICY, SEED)
    assert torch.equal(model.weight.to_local(), before)
    if world == 4:
        mesh2 = init_device_mesh("cpu", (2, 2), mesh_dim_names=("dp", "tp"))
        from torch.distributed.tensor import distribute_tensor

        model = nn.Linear(4, 4, bias=False)
        model.weight = nn.Parameter(distribute_tensor(model.weight.detach(), mesh2,
                                                      [Shard(0), Shard(1)]))  # fmt: skip
        with pytest.raises(ShardingError, match="2 dimensions"):
            initlab.initialize(model, POLICY, SEED)


@pytest.fixture(scope="module")
def start_method() -> str:
    """forkserver with torch, DTensor and initlab preloaded: workers fork from a process that
    imported them once (and never ran an OpenMP region), not re-import for 3 s each."""
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():  # pragma: no cover
        return "spawn"
    multiprocessing.set_forkserver_preload(
        [
            "torch",
            "torch._dynamo",
            "torch.onnx",
            "torch.distributed.tensor",
            "torch.distributed.fsdp",
            "numpy.random",
            "initlab",
            __name__,
        ]
    )
    return "forkserver"


@pytest.mark.parametrize("world", [1, 2, 4])
def test_sharded_init_equals_single_process(world: int, tmp_path, start_method: str) -> None:  # type: ignore[no-untyped-def]
    store = str(tmp_path / "store")
    mp.start_processes(_worker, args=(world, store), nprocs=world, start_method=start_method)


def test_no_process_group_is_a_clear_error() -> None:
    assert not dist.is_initialized()
    with torch.device("meta"):
        model = Tiny()
    with pytest.raises(ShardingError, match="process group is not initialised"):
        initialize_sharded(model, POLICY, SEED)
    assert all(p.is_meta for p in model.parameters())  # nothing written


@pytest.mark.parametrize("piece", [None, 5])
def test_window_fill_equals_full_fill_for_every_row(piece: int | None, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The primitive under sharded init, without processes: any window of any row (also
    filled in slabs of a few elements, as large shards are)."""
    from initlab.execute import fill as fill_module
    from initlab.execute import fill_row

    if piece is not None:
        monkeypatch.setattr(fill_module, "WINDOW_PIECE", piece)
    from initlab.streams import KeyedStream

    model = Net()
    report = initlab.plan(model, POLICY, SEED)
    ref = _reference(Net)
    modules = dict(model.named_modules())
    for row in report.rows:
        full = ref[row.qualname]
        for dim in range(len(row.shape)):
            n = row.shape[dim]
            for start, stop in ((0, (n + 1) // 2), ((n + 1) // 2, n), (1, max(1, n - 1))):
                idx = tuple(slice(start, stop) if d == dim else slice(None)
                            for d in range(len(row.shape)))  # fmt: skip
                local = torch.empty(full[idx].shape)
                fill_row(row, local, KeyedStream(SEED, row.qualname), index=idx,
                         module=modules[row.module_name])  # fmt: skip
                assert torch.equal(local, full[idx]), (row.qualname, idx)


def test_full_generation_note_lists_partially_covered_rows():
    """A packed parameter with a whole-matrix rule for only some blocks is still generated
    as a full tensor per rank: the note names it (status 'partial')."""
    from initlab.execute.shard import full_generation_rows

    lstm = nn.LSTM(4, 6)
    policy = initlab.Policy(
        rules=(initlab.Rule("orthogonal", param="weight_hh*", block="f"),), unmatched="leave"
    )
    report = initlab.plan(lstm, policy, 0)
    row = report["weight_hh_l0"]
    assert row.status == "partial"
    assert full_generation_rows(report, ["weight_hh_l0", "weight_ih_l0"]) == ["weight_hh_l0"]
