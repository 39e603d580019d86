"""The timm/torchvision reference zoo (tests/zoo_timm.py): on every model, registry fans against a
hand-written table, the family preset against the library's own init, materialize against an
eager build, and the checkpoint loaded by the library's own model.

These need timm and torchvision, which run on the zoo environment (``make test-zoo``: torch
2.14.1 + torchvision 0.29.1 + timm); in the main environment they are skipped.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

pytest.importorskip("torchvision", reason="the timm/torchvision zoo runs in `make test-zoo`")
pytest.importorskip("timm", reason="the timm/torchvision zoo runs in `make test-zoo`")

import initlab
from initlab.policy import PolicyError, get_preset
from initlab.policy.families import timm_auto, torchvision_auto
from initlab.zoo import ModelError
from zoo_timm import ZOO

NAMES = sorted(ZOO)

# -- (a) fans: the hand-written table ------------------------------------------------------
# (pattern on the parameter name, fan_in, fan_out, role, number of packed blocks), first match.
# Conv [out, in/g, k, k]: fan_in = in/g·k², fan_out = out/g·k²; Linear [out, in]: (in, out);
# tables [1, N, D] / [rows, heads]: (N, D) / (rows, heads); norms and layer scale: (1, 1).
_VIT = [
    (r"cls_token", 1, 192, "class_token", 0),
    (r"patch_embed\.proj\.(weight|bias)", 3 * 64, 192 * 64, None, 0),
    (r"blocks\.\d\.attn\.qkv\.(weight|bias)", 192, 192, None, 3),
    (r"blocks\.\d\.attn\.proj\.(weight|bias)", 192, 192, None, 0),
    (r"blocks\.\d\.mlp\.fc1\.(weight|bias)", 192, 768, None, 0),
    (r"blocks\.\d\.mlp\.fc2\.(weight|bias)", 768, 192, None, 0),
    (r"blocks\.\d\.ls[12]\.gamma", 1, 1, "layer_scale", 0),
    (r".*norm\d?\.(weight|bias)", 1, 1, None, 0),
    (r"head\.(weight|bias)", 192, 10, None, 0),
]
FANS = {
    # 32x32 images in 8x8 patches: 16 patches, + the class token's position for ViT
    "timm_vit": [(r"pos_embed", 17, 192, "position_embedding", 0), *_VIT],
    "timm_deit3": [(r"pos_embed", 16, 192, "position_embedding", 0), *_VIT],
    "timm_deit_distilled": [
        (r"pos_embed", 18, 192, "position_embedding", 0),  # 16 patches + class + distillation
        (r"dist_token", 1, 192, "class_token", 0),
        (r"head_dist\.(weight|bias)", 192, 10, None, 0),
        *_VIT,
    ],
    "timm_resnet18": [
        (r"conv1\.weight", 3 * 49, 64 * 49, "weight", 0),  # the stem stays 64 wide
        (r"layer1\.0\.conv1\.weight", 64 * 9, 16 * 9, "weight", 0),
        (r"layer1\.0\.conv2\.weight", 16 * 9, 16 * 9, "weight", 0),
        (r"layer1\.0\.downsample\.0\.weight", 64, 16, "weight", 0),
        (r"layer2\.0\.conv1\.weight", 16 * 9, 32 * 9, "weight", 0),
        (r"layer2\.0\.conv2\.weight", 32 * 9, 32 * 9, "weight", 0),
        (r"layer2\.0\.downsample\.0\.weight", 16, 32, "weight", 0),
        (r"layer3\.0\.conv1\.weight", 32 * 9, 64 * 9, "weight", 0),
        (r"layer3\.0\.conv2\.weight", 64 * 9, 64 * 9, "weight", 0),
        (r"layer3\.0\.downsample\.0\.weight", 32, 64, "weight", 0),
        (r"layer4\.0\.conv1\.weight", 64 * 9, 128 * 9, "weight", 0),
        (r"layer4\.0\.conv2\.weight", 128 * 9, 128 * 9, "weight", 0),
        (r"layer4\.0\.downsample\.0\.weight", 64, 128, "weight", 0),
        (r".*(bn\d|downsample\.1)\.weight", 1, 1, "norm_scale", 0),
        (r".*(bn\d|downsample\.1)\.bias", 1, 1, "norm_shift", 0),
        (r"fc\.(weight|bias)", 128, 10, None, 0),
    ],
    "torchvision_resnet": [
        (r"conv1\.weight", 3 * 49, 64 * 49, "weight", 0),
        (r"layer1\.0\.conv[12]\.weight", 64 * 9, 64 * 9, "weight", 0),
        (r"layer2\.0\.conv1\.weight", 64 * 9, 128 * 9, "weight", 0),
        (r"layer2\.0\.conv2\.weight", 128 * 9, 128 * 9, "weight", 0),
        (r"layer2\.0\.downsample\.0\.weight", 64, 128, "weight", 0),
        (r"layer3\.0\.conv1\.weight", 128 * 9, 256 * 9, "weight", 0),
        (r"layer3\.0\.conv2\.weight", 256 * 9, 256 * 9, "weight", 0),
        (r"layer3\.0\.downsample\.0\.weight", 128, 256, "weight", 0),
        (r"layer4\.0\.conv1\.weight", 256 * 9, 512 * 9, "weight", 0),
        (r"layer4\.0\.conv2\.weight", 512 * 9, 512 * 9, "weight", 0),
        (r"layer4\.0\.downsample\.0\.weight", 256, 512, "weight", 0),
        (r".*(bn\d|downsample\.1)\.weight", 1, 1, "norm_scale", 0),
        (r".*(bn\d|downsample\.1)\.bias", 1, 1, "norm_shift", 0),
        (r"fc\.(weight|bias)", 512, 10, None, 0),
    ],
    "timm_convnext": [
        (r"stem\.0\.(weight|bias)", 3 * 16, 16 * 16, None, 0),
        (r"stages\.\d\.blocks\.0\.gamma", 1, 1, "layer_scale", 0),
        (r"stages\.\d\.blocks\.0\.conv_dw\.(weight|bias)", 49, 49, None, 0),  # depthwise 7x7
        *[
            (rf"stages\.{i}\.blocks\.0\.mlp\.fc1\.(weight|bias)", c, 4 * c, None, 0)
            for i, c in enumerate((16, 32, 64, 128))
        ],
        *[
            (rf"stages\.{i}\.blocks\.0\.mlp\.fc2\.(weight|bias)", 4 * c, c, None, 0)
            for i, c in enumerate((16, 32, 64, 128))
        ],
        *[
            (rf"stages\.{i + 1}\.downsample\.1\.(weight|bias)", c * 4, 2 * c * 4, None, 0)
            for i, c in enumerate((16, 32, 64))
        ],
        (r".*(norm|downsample\.0|stem\.1)\.(weight|bias)", 1, 1, None, 0),
        (r"head\.fc\.(weight|bias)", 128, 10, None, 0),
    ],
    "timm_efficientnet_b0": [
        (r"conv_stem\.weight", 3 * 9, 8 * 9, "weight", 0),
        (r"conv_head\.weight", 80, 320, "weight", 0),
        (r"classifier\.(weight|bias)", 320, 10, None, 0),
        # a depthwise conv: one input and one output channel per group, fans k·k
        (r"blocks\.\d\.\d\.conv_dw\.weight", None, None, "weight", 0),
        (
            r"blocks\.\d\.\d\.(conv_pw|conv_pwl|se\.conv_reduce|se\.conv_expand)\.(weight|bias)",
            None,
            None,
            None,
            0,
        ),
        (r".*bn\d\.weight", 1, 1, "norm_scale", 0),
        (r".*bn\d\.bias", 1, 1, "norm_shift", 0),
    ],
    "timm_swin": [
        (r"patch_embed\.proj\.(weight|bias)", 3 * 16, 32 * 16, None, 0),
        (
            r"layers\.0\.blocks\.\d\.attn\.relative_position_bias_table",
            169,
            2,
            "position_embedding",
            0,
        ),
        (
            r"layers\.1\.blocks\.\d\.attn\.relative_position_bias_table",
            169,
            4,
            "position_embedding",
            0,
        ),
        (r"layers\.0\.blocks\.\d\.attn\.(qkv|proj)\.(weight|bias)", 32, 32, None, -1),
        (r"layers\.1\.blocks\.\d\.attn\.(qkv|proj)\.(weight|bias)", 64, 64, None, -1),
        (r"layers\.0\.blocks\.\d\.mlp\.fc1\.(weight|bias)", 32, 128, None, 0),
        (r"layers\.0\.blocks\.\d\.mlp\.fc2\.(weight|bias)", 128, 32, None, 0),
        (r"layers\.1\.blocks\.\d\.mlp\.fc1\.(weight|bias)", 64, 256, None, 0),
        (r"layers\.1\.blocks\.\d\.mlp\.fc2\.(weight|bias)", 256, 64, None, 0),
        (r"layers\.1\.downsample\.reduction\.weight", 128, 64, "weight", 0),
        (r".*norm\d?\.(weight|bias)", 1, 1, None, 0),
        (r"head\.fc\.(weight|bias)", 64, 10, None, 0),
    ],
}


def _conv_fans(module: nn.Module) -> tuple[int, int]:
    """For EfficientNet's many pointwise/depthwise convs: the conv rule written out."""
    out_c, in_per_group, kh, kw = module.weight.shape
    g = module.groups
    return in_per_group * kh * kw, out_c // g * kh * kw


@pytest.fixture(scope="module", params=NAMES)
def zoo_model(request: pytest.FixtureRequest):
    z = ZOO[request.param]
    torch.manual_seed(0)
    return z, z.build()


def test_fans_every_parameter_from_the_registry_as_the_table_says(zoo_model) -> None:
    z, model = zoo_model
    table = [(re.compile(p), *rest) for p, *rest in FANS[z.name]]
    modules = dict(model.named_modules())
    for name, p in model.named_parameters():
        f = initlab.compute_fans(model, name)
        assert f.rule != "shape-fallback", f"{z.name}: {name} has no registry entry"
        row = next((r for r in table if r[0].fullmatch(name)), None)
        assert row is not None, f"{z.name}: {name} {tuple(p.shape)} is not in the table"
        _, fan_in, fan_out, role, blocks = row
        if fan_in is None:
            fan_in, fan_out = _conv_fans(modules[name.rpartition(".")[0]])
        assert (f.fan_in, f.fan_out) == (fan_in, fan_out), f"{z.name}: {name}"
        if role is not None:
            assert f.role == role, f"{z.name}: {name}"
        want_blocks = (3 if ".qkv." in name else 0) if blocks == -1 else blocks
        assert len(f.blocks) == want_blocks, f"{z.name}: {name}"


def test_fused_qkv_xavier_uses_one_projection() -> None:
    """The issue's figure: Linear(192, 576) packed q/k/v, xavier std 0.072 not 0.051."""
    model = ZOO["timm_vit"].build()
    f = initlab.compute_fans(model, "blocks.0.attn.qkv.weight")
    assert math.isclose(math.sqrt(2 / (f.fan_in + f.fan_out)), 0.0722, rel_tol=1e-3)
    assert [(b.name, b.start, b.stop) for b in f.blocks] == [
        ("q", 0, 192),
        ("k", 192, 384),
        ("v", 384, 576),
    ]


# -- (b) the family preset against the library's own init -------------------------------------
def _policy(z) -> initlab.Policy:
    return get_preset(z.preset, **z.preset_args)


def _moments(t: torch.Tensor) -> tuple[float, float, float, int]:
    x = t.detach().double().reshape(-1)
    n = x.numel()
    mean = float(x.mean())
    var = float(((x - mean) ** 2).mean())
    m4 = float(((x - mean) ** 4).mean())
    return mean, var, m4, n


def compare_to_library(z, seed: int = 0, policy: initlab.Policy | None = None) -> dict[str, float]:
    """The largest |z| per parameter group (rule id): the std and mean of the preset's draw
    against the library's, pooled over the group's tensors; constants must be equal exactly."""
    torch.manual_seed(seed)
    library = dict(z.build().named_parameters())
    model = z.build()
    report = initlab.initialize(model, policy or _policy(z), seed=seed + 1, strict=True)
    ours = dict(model.named_parameters())
    groups: dict[str, list[tuple[float, float, float, float]]] = {}
    for row in report:
        lib, got = library[row.qualname], ours[row.qualname]
        if bool((lib == lib.reshape(-1)[0]).all()):  # a constant: ones, zeros, layer scale
            assert torch.equal(got, lib), f"{z.name}: {row.qualname} ({row.rule_id})"
            continue
        (m1, v1, k1, n), (m2, v2, _, _) = _moments(lib), _moments(got)
        # SE of a sample std: sqrt(var·(kurtosis - 1) / (4n)), the kurtosis from the library's
        se_std = math.sqrt(max(k1 / v1**2 - 1, 0.0) * v1 / (4 * n))
        groups.setdefault(row.rule_id, []).append(
            (math.sqrt(v2) - math.sqrt(v1), se_std, m2 - m1, math.sqrt(v1 / n))
        )
    worst = {}
    for rule, items in groups.items():
        d_std = sum(i[0] for i in items) / math.sqrt(2 * sum(i[1] ** 2 for i in items))
        d_mean = sum(i[2] for i in items) / math.sqrt(2 * sum(i[3] ** 2 for i in items))
        worst[rule] = max(abs(d_std), abs(d_mean))
    return worst


@pytest.mark.parametrize("name", NAMES)
def test_family_preset_matches_the_library_init_within_3_standard_errors(name: str) -> None:
    worst = compare_to_library(ZOO[name])
    assert worst, f"{name}: no random parameter group compared"
    assert max(worst.values()) < 3.0, worst


def test_the_comparison_sees_a_wrong_preset() -> None:
    """The check can fail: timm's ViT under xavier_uniform (the Linear weights' std is 0.04 to
    0.072 against timm's 0.02) is hundreds of standard errors away, and the constants differ."""
    z = ZOO["timm_vit"]
    wrong = initlab.Policy(
        rules=(
            initlab.Rule("xavier_uniform", param="*weight", ndim=(2, 4), id="weights"),
            initlab.Rule("normal", id="rest"),
        )
    )
    with pytest.raises(AssertionError, match="norm"):  # LayerNorm weight: 1 expected
        compare_to_library(z, policy=wrong)
    weights_only = initlab.Policy(rules=(*wrong.rules[:1], *_policy(z).rules))
    assert compare_to_library(z, policy=weights_only)["weights"] > 100


@pytest.mark.parametrize("name", NAMES)
def test_auto_picks_the_zoo_preset(name: str) -> None:
    z = ZOO[name]
    model = z.build()
    auto = torchvision_auto(model) if name.startswith("torchvision") else timm_auto(model)
    # ConvNeXt's head_init_scale leaves no exact trace on the model (the head bias is 0·s):
    # it is the one argument a user passes
    args = {k: v for k, v in z.preset_args.items() if k != "head_init_scale"}
    assert auto.to_dict() == get_preset(z.preset, **args).to_dict()


def test_auto_refuses_a_vit_init_mode_it_does_not_replay() -> None:
    import timm

    model = timm.create_model(
        "vit_tiny_patch16_224",
        pretrained=False,
        depth=1,
        img_size=32,
        patch_size=8,
        weight_init="jax",
    )
    with pytest.raises(PolicyError, match="weight_init='jax'"):
        timm_auto(model)


# -- (c) materialize == eager + the same policy, buffers included ----------------------------
def _meta_build(z) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """The model on meta, and the values of buffers left on meta that the registry does not
    know (Swin's relative_position_index), taken from an eager build of the same config."""
    with initlab.meta_build():
        meta = z.build()
    eager = dict(z.build().named_buffers())
    known = ("running_mean", "running_var", "num_batches_tracked")
    extra = {
        n: eager[n].clone() for n, b in meta.named_buffers() if b.is_meta and not n.endswith(known)
    }
    return meta, extra


@pytest.mark.parametrize("name", NAMES)
def test_materialize_equals_eager_then_policy_bitwise(name: str) -> None:
    z = ZOO[name]
    eager = z.build()
    initlab.initialize(eager, _policy(z), seed=3)
    meta, extra = _meta_build(z)
    initlab.materialize(meta, _policy(z), seed=3, buffers=extra)
    want = dict(eager.named_parameters()) | dict(eager.named_buffers())
    got = dict(meta.named_parameters()) | dict(meta.named_buffers())
    assert got.keys() == want.keys()
    for k in want:
        assert got[k].dtype == want[k].dtype and torch.equal(got[k], want[k]), f"{name}: {k}"


# -- (d) the checkpoint loads into the library's own model -----------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_checkpoint_loads_strictly_into_a_fresh_library_model(name: str, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    z = ZOO[name]
    meta, extra = _meta_build(z)
    out = tmp_path / "ckpt"
    initlab.write_checkpoint(meta, _policy(z), 5, out, progress=False, buffers=extra)
    state: dict[str, torch.Tensor] = {}
    for f in sorted(out.glob("*.safetensors")):
        state.update(load_file(f))
    fresh = z.build()
    fresh.load_state_dict(state, strict=True)
    eager = z.build()
    initlab.initialize(eager, _policy(z), seed=5)
    for k, v in eager.state_dict().items():
        assert torch.equal(fresh.state_dict()[k], v), f"{name}: {k}"


# -- model specs --------------------------------------------------------------------------
def test_timm_and_torchvision_model_specs_build_untrained_models() -> None:
    m = initlab.build_model("timm:resnet18?layers=1,1,1,1&channels=8,16,32,64")
    assert type(m).__module__ == "timm.models.resnet" and m.fc.in_features == 64
    tv = initlab.build_model("torchvision:resnet18", num_classes=7)
    assert type(tv).__module__ == "torchvision.models.resnet" and tv.fc.out_features == 7


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("timm:resnet1800", r"^unknown timm model 'resnet1800' \(did you mean"),
        ("torchvision:resnet1800", r"^unknown torchvision model 'resnet1800' \(did you mean"),
        ("timm:resnet18?layers", r"'layers' is not key=value"),
        ("timm:resnet18?nope=1", r"^timm could not build 'timm:resnet18\?nope=1': TypeError"),
    ],
)
def test_bad_model_specs_say_what_is_wrong_in_one_line(spec: str, message: str) -> None:
    with pytest.raises(ModelError, match=message) as e:
        initlab.build_model(spec)
    assert "\n" not in str(e.value)
