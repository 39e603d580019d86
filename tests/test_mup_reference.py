"""initlab's muP against the reference implementation, the mup package (1.0.0).

On models mup supports (an MLP with ``MuReadout``, a small transformer with ``MuSharedReadout``
tied to its embedding), ``set_base_shapes`` + mup's init + ``MuAdam``/``MuSGD`` give, for every
parameter, the same init std (mup's own std formula, exactly; sampled tensors within 3 standard
errors) and the same learning rates and weight decays per parameter (exactly where the width
multipliers are powers of two, to the last bit otherwise).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import initlab

mup = pytest.importorskip("mup", reason="the mup package (test-only, requirements-nodeps.txt)")
mup_init = pytest.importorskip("mup.init")

D_IN, CLASSES, VOCAB = 16, 10, 32


class MLP(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(D_IN, width)
        self.fc2 = nn.Linear(width, 2 * width)
        self.fc3 = nn.Linear(2 * width, width)
        self.out = mup.MuReadout(width, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))))


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.o = (nn.Linear(d, d) for _ in range(4))
        self.fc, self.proj = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        h = self.ln1(x)
        q, k, v = (
            f(h).view(b, t, self.heads, -1).transpose(1, 2) for f in (self.q, self.k, self.v)
        )
        att = torch.softmax(q @ k.transpose(-1, -2) / q.shape[-1], dim=-1)  # muP: 1/d
        x = x + self.o((att @ v).transpose(1, 2).reshape(b, t, d))
        return x + self.proj(torch.relu(self.fc(self.ln2(x))))


class Transformer(nn.Module):
    def __init__(self, d: int, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln = nn.LayerNorm(d)
        self.head = mup.MuSharedReadout(self.emb.weight, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        x = self.emb(idx)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln(x))


def _reference(factory, width: int, base: int, delta: int, rescale: bool = True) -> nn.Module:
    model = factory(width)
    mup.set_base_shapes(model, factory(base), delta=factory(delta), rescale_params=rescale)
    return model


def _by_id(groups: list[dict]) -> dict[int, tuple[float, float]]:
    return {id(p): (g["lr"], g["weight_decay"]) for g in groups for p in g["params"]}


LR, WD = 3e-3, 0.1


@pytest.mark.parametrize(
    ("factory", "width", "base", "delta"),
    [(MLP, 256, 64, 32), (MLP, 144, 48, 32), (Transformer, 128, 32, 16)],
    ids=["mlp-x4", "mlp-x3", "transformer-x4"],
)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_learning_rates_and_decay_equal_muadam_musgd(factory, width, base, delta, optimizer):
    model = _reference(factory, width, base, delta)
    ref_opt = (mup.MuAdam if optimizer == "adam" else mup.MuSGD)(
        model.parameters(), lr=LR, weight_decay=WD
    )
    ref = _by_id(ref_opt.param_groups)
    with initlab.meta_build():
        base_model = factory(base)
    m = initlab.mup(model, base_model, optimizer=optimizer)
    ours = _by_id(initlab.mup_param_groups(model, m, lr=LR, weight_decay=WD))
    assert set(ours) == set(ref)
    exact = math.log2(width / base).is_integer()
    for name, p in model.named_parameters():
        (lr_a, wd_a), (lr_b, wd_b) = ours[id(p)], ref[id(p)]
        if exact:
            assert (lr_a, wd_a) == (lr_b, wd_b), name
        else:  # lr * (1/3) vs lr / 3: one rounding apart at most
            assert math.isclose(lr_a, lr_b, rel_tol=2**-51), name
            assert math.isclose(wd_a, wd_b, rel_tol=2**-51), name
        # the multiplier itself: mup's width_mult (its InfShape) is initlab's, exactly
        assert m.params[name].width_mult == p.infshape.width_mult(), name
        assert len(m.params[name].infinite_dims) == p.infshape.ninf(), name


def _mup_std(p: torch.Tensor, kind: str, base_std: float) -> float:
    """mup's own std formulas (mup/init.py) for a parameter with ``infshape``."""
    if kind == "normal":  # constant_std_init_
        return base_std * (p.infshape.width_mult() ** -0.5 if p.infshape.ninf() == 2 else 1.0)
    raise AssertionError(kind)


def test_init_std_formula_equals_mup_init_functions():
    """kaiming/xavier/normal: mup's std adjustments (its private formulas, called on the
    parameters it annotated) equal initlab's init_std for every parameter."""
    width, base = 256, 64
    model = _reference(MLP, width, base, 32, rescale=False)
    with initlab.meta_build():
        base_model = MLP(base)
    cases = {
        "kaiming": (
            initlab.Policy(
                rules=(
                    initlab.Rule("kaiming_normal:nonlinearity=relu", ndim=2),
                    initlab.Rule("zeros", ndim=1),
                )
            ),
            lambda p: mup_init._inf_fan_adjust_kaiming(
                math.sqrt(2.0) / math.sqrt(p.shape[1]), p, "fan_in"
            ),
        ),
        "xavier": (
            initlab.Policy(
                rules=(initlab.Rule("xavier_normal", ndim=2), initlab.Rule("zeros", ndim=1))
            ),
            lambda p: mup_init._inf_fan_adjust_xavier(
                math.sqrt(2.0 / (p.shape[0] + p.shape[1])), p
            ),
        ),
        "normal": (
            initlab.Policy(rules=(initlab.Rule({"name": "normal", "std": 0.02}),)),
            lambda p: _mup_std(p, "normal", 0.02),
        ),
    }
    for label, (policy, expected) in cases.items():
        m = initlab.mup(model, base_model, init=policy)
        for name, p in model.named_parameters():
            if p.dim() < 2 and label != "normal":
                assert m.params[name].init_std == 0.0
                continue
            assert math.isclose(m.params[name].init_std, expected(p), rel_tol=1e-12), (label, name)


def _sample_std(t: torch.Tensor) -> tuple[float, float]:
    """The sample std and its standard error (normal-theory sigma/sqrt(2n): larger than a
    uniform's, so the test is conservative for torch's uniform defaults)."""
    s = t.detach().double().std().item()
    return s, s / math.sqrt(2 * t.numel())


@pytest.mark.parametrize("factory", [MLP, Transformer], ids=["mlp", "transformer"])
def test_sampled_stds_match_set_base_shapes(factory):
    """torch's default init at the target width, rescaled by set_base_shapes (the mup README
    recipe), has the std initlab plans and draws for each parameter (within 3 standard errors).
    The transformer's tied embedding is the exception documented in initlab.mup: mup rescales a
    MuSharedReadout's shared weight by sqrt(width_mult) as if it were a readout; initlab keeps
    it input-like (the base std: nn.Embedding's N(0, 1))."""
    width, base = 256, 64
    torch.manual_seed(0)
    model = _reference(factory, width, base, 32)
    with initlab.meta_build():
        base_model = factory(base)
    m = initlab.mup(model, base_model, init="torch_default")
    ours = factory(width)
    initlab.initialize(ours, m.policy, seed=0)
    checked = 0
    for (name, p), (_, q) in zip(model.named_parameters(), ours.named_parameters(), strict=True):
        want = m.params[name].init_std
        if want == 0.0:  # norms' ones and zeros
            assert torch.equal(q, torch.full_like(q, q.flatten()[0].item())), name
            continue
        got, se = _sample_std(q)
        assert abs(got - want) < 3 * se, (name, got, want)
        ref, se = _sample_std(p)
        if name == "emb.weight":
            assert abs(ref - want * math.sqrt(width / base)) < 3 * se
            continue
        assert abs(ref - want) < 3 * se, (name, ref, want)
        checked += 1
    assert checked >= 6


def test_readout_multiplier_is_mureadouts():
    """initlab's hook on a plain Linear gives MuReadout's forward (input / width_mult), bit
    for bit."""
    width, base = 256, 64
    model = _reference(MLP, width, base, 32)
    plain = MLP(width)
    plain.out = nn.Linear(width, CLASSES)
    plain.load_state_dict(model.state_dict())
    with initlab.meta_build():
        base_model = MLP(base)
    m = initlab.mup(plain, base_model)
    assert m.readouts == {"out": base / width}
    x = torch.randn(5, D_IN)
    with m.attach(plain):
        assert torch.equal(plain(x), model(x))
