"""torch_default replays each torch layer's reset_parameters bit for bit."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import nn

from initlab.fans import Fans
from initlab.layers import compute_fans
from initlab.schemes.base import get_scheme
from initlab.schemes.torch_default import TorchDefault, default_draw

SCHEME = TorchDefault()
SEEDS = (0, 1, 1234)


def replay(module: nn.Module, names: list[str], seed: int, root: nn.Module | None = None):
    """Re-seed and fill a fresh torch.empty for each name, in torch's draw order."""
    torch.manual_seed(seed)
    out = {}
    for name in names:
        p = module.get_parameter(name)
        t = torch.empty(p.shape, dtype=p.dtype)
        SCHEME(t, compute_fans(module if root is None else root, name))
        out[name] = t
    return out


def check_module(make: Callable[[], nn.Module], seed: int, order: list[str] | None = None):
    torch.manual_seed(seed)
    m = make()
    names = order if order is not None else [n for n, _ in m.named_parameters()]
    got = replay(m, names, seed)
    assert set(got) == {n for n, _ in m.named_parameters()}
    for name, t in got.items():
        assert torch.equal(t, m.get_parameter(name).detach()), name


LAYERS: dict[str, Callable[[], nn.Module]] = {
    "Linear": lambda: nn.Linear(13, 7),
    "Linear-nobias": lambda: nn.Linear(5, 3, bias=False),
    "Linear-zero-in": lambda: nn.Linear(0, 3),
    "NonDynamicallyQuantizableLinear": lambda: nn.modules.linear.NonDynamicallyQuantizableLinear(
        4, 2
    ),
    "Bilinear": lambda: nn.Bilinear(3, 4, 5),
    "Conv1d-groups": lambda: nn.Conv1d(6, 4, 3, groups=2),
    "Conv2d-depthwise": lambda: nn.Conv2d(8, 8, 3, groups=8),
    "Conv2d-groups": lambda: nn.Conv2d(6, 9, (2, 3), groups=3, stride=2),
    "Conv3d": lambda: nn.Conv3d(2, 4, 3),
    "ConvTranspose2d-groups": lambda: nn.ConvTranspose2d(16, 32, 3, groups=4),
    "ConvTranspose1d": lambda: nn.ConvTranspose1d(3, 5, 4, stride=2),
    "Embedding-padding": lambda: nn.Embedding(20, 6, padding_idx=3),
    "Embedding-neg-padding": lambda: nn.Embedding(20, 6, padding_idx=-1),
    "EmbeddingBag": lambda: nn.EmbeddingBag(10, 4),
    "LSTM-2l-bidir-proj": lambda: nn.LSTM(5, 8, num_layers=2, bidirectional=True, proj_size=3),
    "GRU": lambda: nn.GRU(5, 7, num_layers=2),
    "RNN": lambda: nn.RNN(4, 6, nonlinearity="relu", bidirectional=True),
    "LSTMCell": lambda: nn.LSTMCell(4, 6),
    "GRUCell": lambda: nn.GRUCell(4, 6),
    "RNNCell": lambda: nn.RNNCell(4, 6),
    "LayerNorm": lambda: nn.LayerNorm((3, 4)),
    "BatchNorm2d": lambda: nn.BatchNorm2d(5),
    "GroupNorm": lambda: nn.GroupNorm(2, 6),
    "RMSNorm": lambda: nn.RMSNorm(6),
    "PReLU": lambda: nn.PReLU(3, init=0.1),
    "PReLU-default": lambda: nn.PReLU(),
}


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors is a no-op")
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("key", list(LAYERS))
def test_bit_identical_to_constructor(key, seed):
    check_module(LAYERS[key], seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_lazy_modules_after_forward(seed):
    for make, x in (
        (lambda: nn.LazyLinear(5), torch.zeros(2, 7)),
        (lambda: nn.LazyConv2d(6, 3, groups=2), torch.zeros(1, 4, 5, 5)),
        (lambda: nn.LazyConvTranspose1d(4, 3), torch.zeros(1, 3, 5)),
    ):
        torch.manual_seed(seed)
        m = make()
        m(x)  # materialises and runs reset_parameters
        got = replay(m, [n for n, _ in m.named_parameters()], seed)
        for name, t in got.items():
            assert torch.equal(t, m.get_parameter(name).detach()), (type(m).__name__, name)


def _mha_check(seed: int, **kw) -> None:
    torch.manual_seed(seed)
    m = nn.MultiheadAttention(8, 2, **kw)
    torch.manual_seed(seed)
    # the constructor builds out_proj (a Linear draws weight then bias) before _reset_parameters
    for name in ("weight", "bias"):
        if getattr(m.out_proj, name) is not None:
            SCHEME(torch.empty_like(getattr(m.out_proj, name)), compute_fans(m.out_proj, name))
    own = [n for n, _ in m.named_parameters() if not n.startswith("out_proj.")]
    got = {}
    for name in own:  # declaration order == _reset_parameters order
        got[name] = SCHEME(torch.empty_like(m.get_parameter(name)), compute_fans(m, name))
    out_w = m.out_proj.weight
    assert own, "no parameters?"
    for name, t in got.items():
        assert torch.equal(t, m.get_parameter(name).detach()), name
    if m.out_proj.bias is not None:  # MHA zeroes out_proj.bias after the Linear drew it
        b = SCHEME(torch.empty_like(m.out_proj.bias), compute_fans(m, "out_proj.bias"))
        assert torch.equal(b, m.out_proj.bias.detach()) and not b.any()
    # out_proj.weight keeps the Linear's draw: replay from the seed
    torch.manual_seed(seed)
    w = SCHEME(torch.empty_like(out_w), compute_fans(m, "out_proj.weight"))
    assert torch.equal(w, out_w.detach())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"bias": False},
        {"add_bias_kv": True},
        {"kdim": 4, "vdim": 6},
        {"kdim": 4, "vdim": 6, "add_bias_kv": True},
    ],
    ids=str,
)
def test_multihead_attention(kw, seed):
    _mha_check(seed, **kw)


def test_generator_matches_nn_init():
    fans = compute_fans(nn.Linear(9, 4), "weight")
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    ref = nn.init.kaiming_uniform_(torch.empty(4, 9), a=math.sqrt(5), generator=g1)
    assert torch.equal(SCHEME(torch.empty(4, 9), fans, generator=g2), ref)
    mha = nn.MultiheadAttention(6, 3)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    ref = nn.init.xavier_uniform_(torch.empty(18, 6), generator=g1)
    got = SCHEME(torch.empty(18, 6), compute_fans(mha, "in_proj_weight"), generator=g2)
    assert torch.equal(got, ref)  # packed tensor drawn whole, not per block


def test_channels_last_conv_same_values():
    m = nn.Conv2d(4, 6, 3)
    fans = compute_fans(m, "weight")
    torch.manual_seed(3)
    ref = SCHEME(torch.empty(6, 4, 3, 3), fans)
    torch.manual_seed(3)
    cl = torch.empty(6, 4, 3, 3).to(memory_format=torch.channels_last)
    out = SCHEME(cl, fans)
    assert out is cl and torch.equal(out, ref)


def test_registered_and_plans():
    assert isinstance(get_scheme("torch_default"), TorchDefault)
    assert isinstance(get_scheme("pytorch_default"), TorchDefault)
    assert TorchDefault.uses_fans is False
    lin = compute_fans(nn.Linear(16, 4), "weight")
    assert SCHEME.target_std(lin) == pytest.approx(1 / math.sqrt(16) / math.sqrt(3))
    assert default_draw(compute_fans(nn.Linear(16, 4), "bias"))[2] == 1 / math.sqrt(16)
    assert default_draw(compute_fans(nn.LSTM(3, 25), "bias_hh_l0"))[1:3] == (-0.2, 0.2)
    assert SCHEME.target_std(compute_fans(nn.LayerNorm(3), "weight")) == 0.0
    assert SCHEME.to_config() == {"name": "torch_default"}


def test_errors():
    t = torch.empty(4, 3)
    with pytest.raises(ValueError, match=r"compute_fans\(module, name\)"):
        SCHEME(t)
    with pytest.raises(ValueError, match=r"compute_fans\(module, name\)"):
        SCHEME(t, Fans(3, 4))
    with pytest.raises(ValueError, match=r"compute_fans\(module, name\)"):
        SCHEME(t, compute_fans(nn.Linear(3, 4), "weight", convention="torch"))

    class Custom(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.kernel = nn.Parameter(torch.empty(4, 3))

    t = torch.zeros(4, 3)
    with pytest.raises(ValueError, match=r"no torch default is known for Custom\.kernel"):
        SCHEME(t, compute_fans(Custom(), "kernel"))
    assert not t.any()  # nothing written
