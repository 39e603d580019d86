"""materialize: a meta-built model, allocated and filled once, equals eager build + initialize."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import initlab
from archs import ARCHS, TinyLM
from initlab.execute import MaterializeError, materialize
from initlab.plan import UnmatchedParametersError


def _eager(factory, policy: str, seed: int, dtype: torch.dtype | None = None) -> nn.Module:  # type: ignore[no-untyped-def]
    model = factory()
    if dtype is not None:
        model = model.to(dtype)
    initlab.initialize(model, policy, seed, strict=True)
    return model


def _meta(factory) -> nn.Module:  # type: ignore[no-untyped-def]
    with torch.device("meta"):
        return factory()


def _assert_same(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and sa[k].device == sb[k].device, k
        assert torch.equal(sa[k], sb[k]), k
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    assert list(pa) == list(pb)
    assert all(pa[k].requires_grad == pb[k].requires_grad for k in pa)


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("policy", ["kaiming", "xavier", "torch_default"])
def test_bit_identical_to_eager_initialize(arch: str, policy: str) -> None:
    model = _meta(ARCHS[arch])
    report = materialize(model, policy, seed=5)
    _assert_same(model, _eager(ARCHS[arch], policy, 5))
    assert all(r.status == "initialized" and r.device == "cpu" for r in report.rows)
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])


def test_gpt2_preset_and_dtype() -> None:
    model = _meta(TinyLM)
    materialize(model, "gpt2:n_layers=2", seed=1, dtype=torch.bfloat16)
    _assert_same(model, _eager(TinyLM, "gpt2:n_layers=2", 1, torch.bfloat16))


def test_ties_stay_ties_and_model_runs() -> None:
    model = _meta(TinyLM)
    materialize(model, "kaiming", seed=0)
    assert model.head.weight is model.embed.weight
    assert len(list(model.parameters())) == len(list(_eager(TinyLM, "kaiming", 0).parameters()))
    assert (model.embed.weight[0] == 0).all()  # padding_idx row
    assert model(torch.tensor([[1, 2, 3]])).shape == (1, 3, 50)


def test_batchnorm_buffers_get_their_defined_values() -> None:
    def build() -> nn.Module:
        norms = (nn.BatchNorm2d(4), nn.InstanceNorm1d(4, track_running_stats=True))
        return nn.Sequential(nn.Conv2d(3, 4, 3), *norms)

    model = _meta(build)
    materialize(model, "kaiming")
    bn, inorm = model[1], model[2]
    for m in (bn, inorm):
        assert torch.equal(m.running_mean, torch.zeros(4))
        assert torch.equal(m.running_var, torch.ones(4))
        assert m.num_batches_tracked.dtype == torch.long and int(m.num_batches_tracked) == 0


class WithTable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)
        self.register_buffer("pos", torch.arange(6.0))
        self.register_buffer("mask", torch.ones(3), persistent=False)


def test_unknown_buffer_is_named_unless_supplied() -> None:
    model = _meta(WithTable)
    with pytest.raises(MaterializeError, match=r"buffer\(s\) pos, mask") as e:
        materialize(model, "kaiming")
    assert "buffers=" in str(e.value)
    assert all(t.is_meta for t in [*model.parameters(), *model.buffers()])  # nothing written

    def pos(t: torch.Tensor) -> torch.Tensor:
        return torch.arange(6.0)

    materialize(model, "kaiming", buffers={"pos": pos, "ma*": 1.0})
    assert torch.equal(model.pos, torch.arange(6.0)) and torch.equal(model.mask, torch.ones(3))
    assert "mask" not in model.state_dict()  # still non-persistent
    with pytest.raises(MaterializeError, match="names no buffer"):
        materialize(_meta(WithTable), "kaiming", buffers={"pos": 0, "mask": 1, "nope": 2})


def test_not_on_meta_is_a_clear_error() -> None:
    model = nn.Linear(3, 3)
    before = model.weight.detach().clone()
    with pytest.raises(MaterializeError, match=r"meta device.*weight, bias.*initialize"):
        materialize(model, "kaiming")
    assert torch.equal(model.weight, before)
    mixed = _meta(lambda: nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))
    mixed[1] = nn.Linear(2, 2)
    with pytest.raises(MaterializeError, match=r"1\.weight, 1\.bias"):
        materialize(mixed, "kaiming")
    assert mixed[0].weight.is_meta


def test_unmatched_parameters_raise_naming_them() -> None:
    only_weights = initlab.Policy(rules=(initlab.Rule("xavier_uniform", param="weight"),))
    model = _meta(lambda: nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)))
    with pytest.raises(MaterializeError, match=r"0\.bias, 1\.bias.*default"):
        materialize(model, only_weights)
    with pytest.raises(UnmatchedParametersError):
        materialize(model, only_weights, strict=True)
    with pytest.raises(MaterializeError, match=r"0\.weight"):
        materialize(model, "kaiming", exclude=["0.weight"])
    assert all(p.is_meta for p in model.parameters())


def test_requires_grad_and_bad_arguments() -> None:
    model = _meta(lambda: nn.Linear(3, 2))
    model.bias.requires_grad_(False)
    materialize(model, "kaiming", measure=False)
    assert model.weight.requires_grad and not model.bias.requires_grad
    with pytest.raises(MaterializeError, match="floating"):
        materialize(_meta(lambda: nn.Linear(3, 2)), "kaiming", dtype=torch.int32)
    with pytest.raises(ValueError, match="seed"):
        materialize(_meta(lambda: nn.Linear(3, 2)), "kaiming", seed=-1)


# -- meta_build ---------------------------------------------------------------------------
class _Spy(torch.overrides.TorchFunctionMode):
    """Records the torch functions that reach it (entered outside meta_build: only calls
    meta_build lets through do)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        self.seen.append(getattr(func, "__name__", str(func)))
        return func(*args, **(kwargs or {}))


def _build_all() -> nn.Module:
    return nn.ModuleDict(
        {
            "emb": nn.Embedding(10, 4, padding_idx=0),
            "mlp": nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8)),
            "rnn": nn.LSTM(4, 6),
            "mha": nn.MultiheadAttention(8, 2),
            "conv": nn.Conv2d(3, 4, 3),
            "bn": nn.BatchNorm2d(4),
        }
    )


@pytest.mark.parametrize("build", ["torch.device", "meta_build", "meta_build_buffers"])
def test_meta_build_skips_default_init(build: str) -> None:
    ctx = {
        "torch.device": lambda: torch.device("meta"),
        "meta_build": initlab.meta_build,
        "meta_build_buffers": lambda: initlab.meta_build(include_buffers=True),
    }[build]()
    with _Spy() as spy, ctx:
        model = _build_all()
    assert all(t.is_meta for t in model.parameters())
    bn = model["bn"]
    if build == "meta_build":  # buffers made for real by BatchNorm's own code
        assert not any(t.is_meta for t in model.buffers())
        assert bn.running_var.tolist() == [1.0] * 4 and int(bn.num_batches_tracked) == 0
    else:
        assert all(t.is_meta for t in model.buffers())
    fills = {"normal_", "uniform_", "kaiming_uniform_", "xavier_uniform_"} & set(spy.seen)
    if build.startswith("meta_build"):
        assert not fills
    else:  # torch.device("meta") runs every reset_parameters (the spy sees them)
        assert fills


def test_meta_build_then_materialize_equals_eager() -> None:
    with initlab.meta_build():
        model = _build_all()
    materialize(model, "kaiming", seed=3)
    _assert_same(model, _eager(_build_all, "kaiming", 3))


def test_meta_build_leaves_real_tensors_alone() -> None:
    torch.manual_seed(0)
    ref = nn.Linear(5, 3)
    torch.manual_seed(0)
    with initlab.meta_build(include_buffers=True):
        real = nn.Linear(5, 3, device="cpu")  # an explicit device: default init as usual
        meta = nn.Linear(5, 3)
    assert torch.equal(real.weight, ref.weight) and torch.equal(real.bias, ref.bias)
    assert meta.weight.is_meta
    assert torch.empty(2).is_meta is False  # the mode ends with the block
