"""A short tour: layer-aware fans, block-wise init of packed parameters, and a small init report.

Run: ``python examples/catalogue_tour.py`` (``make demo`` runs it).
"""

from __future__ import annotations

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

import initlab


class TinyNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 32, 3, padding=1)
        self.depthwise = nn.Conv2d(32, 32, 3, padding=1, groups=32)
        self.up = nn.ConvTranspose2d(32, 16, 3, groups=4)
        self.norm = nn.BatchNorm2d(16)
        self.attn = nn.MultiheadAttention(64, 4)
        self.lstm = nn.LSTM(64, 32)
        self.head = nn.Linear(32, 10)


def main() -> None:
    torch.manual_seed(0)
    model = TinyNet()
    g = torch.Generator().manual_seed(0)
    # one rule per parameter kind; policies (initlab.Policy) will make this declarative
    ortho = initlab.get_scheme("orthogonal")
    he = initlab.get_scheme("kaiming_normal", nonlinearity="relu")
    xavier = initlab.get_scheme("xavier_uniform")

    table = Table(title="TinyNet initialised with layer-aware fans")
    for col in ("parameter", "shape", "scheme", "fan_in", "fan_out", "torch fans", "blocks",
                "target std", "achieved std"):  # fmt: skip
        table.add_column(col)
    for qualname, param in model.named_parameters():
        owner_name, _, pname = qualname.rpartition(".")
        owner = model.get_submodule(owner_name)
        fans = initlab.compute_fans(owner, pname)
        if param.dim() == 1:
            scheme = initlab.get_scheme("ones" if "norm.weight" in qualname else "zeros")
        elif "lstm" in qualname:
            scheme = ortho
        elif "attn" in qualname:
            scheme = xavier
        else:
            scheme = he
        scheme(param, fans, g)
        torch_fans = (
            "-"
            if param.dim() < 2
            else "{}, {}".format(*initlab.init._calculate_fan_in_and_fan_out(param))
        )
        target = scheme.target_std(fans)
        blocks = ",".join(b.name for b in fans.blocks) or "-"
        table.add_row(
            qualname, str(tuple(param.shape)), scheme.name, str(fans.fan_in), str(fans.fan_out),
            torch_fans, blocks, "-" if target is None else f"{target:.4f}",
            f"{param.detach().std().item():.4f}" if param.numel() > 1 else "-",
        )  # fmt: skip
    console = Console()
    (console if console.is_terminal else Console(width=150)).print(table)

    w = model.lstm.weight_hh_l0.detach()
    err = max((blk @ blk.T - torch.eye(32)).abs().max().item() for blk in w.split(32, dim=0))
    print(f"every LSTM gate block of weight_hh_l0 is orthogonal: max |W Wᵀ - I| = {err:.2e}")
    print(f"gain('gelu') = {initlab.gain('gelu'):.6f}, gain('relu') = {initlab.gain('relu'):.6f}")


if __name__ == "__main__":
    main()
