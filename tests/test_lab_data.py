"""initlab.lab.data and the spec grammar: digits, synthetic, MNIST IDX, CIFAR-10."""

from __future__ import annotations

import builtins
import gzip
import io
import json
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from initlab.lab import DATASETS, Dataset, DatasetError, load_dataset
from initlab.syntax import SpecError, format_spec, parse_spec

# --------------------------------------------------------------------------- specs


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("digits", ("digits", {})),
        ("mlp:widths=256-128", ("mlp", {"widths": "256-128"})),
        (
            "x:a=1,b=0.5,c=true,d=False,e=none,f=relu,g=1e-3",
            ("x", {"a": 1, "b": 0.5, "c": True, "d": False, "e": None, "f": "relu", "g": 1e-3}),
        ),
        ("mnist:/data/mnist", ("mnist", {"path": "/data/mnist"})),
        ("mnist:/data/a,b", ("mnist", {"path": "/data/a,b"})),
        ("mnist: /data/m , limit = 5", ("mnist", {"path": "/data/m", "limit": 5})),
        ("mnist:path=123", ("mnist", {"path": "123"})),
        ("fashion-mnist:C:/x", ("fashion-mnist", {"path": "C:/x"})),
    ],
)
def test_parse_spec(spec: str, expected: tuple) -> None:
    assert parse_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        (":a=1", "missing name"),
        ("x:", "nothing after"),
        ("x:a=1,,b=2", "empty item"),
        ("x:a=1,bare", "not key=value"),
        ("x:a=1,a=2", "given twice"),
        ("x:1a=2", "invalid key"),
        ("x y:a=1", "invalid name"),
    ],
)
def test_parse_spec_errors(spec: str, problem: str) -> None:
    with pytest.raises(SpecError, match=problem) as info:
        parse_spec(spec)
    assert repr(spec) in str(info.value)
    assert isinstance(info.value, ValueError)


def test_format_spec_is_canonical_and_inverse() -> None:
    kwargs = {"z": 1, "a": 0.5, "path": "/d/m", "flag": True, "nothing": None, "act": "tanh"}
    text = format_spec("mnist", kwargs)
    assert text == "mnist:/d/m,a=0.5,act=tanh,flag=true,nothing=none,z=1"
    assert parse_spec(text) == ("mnist", kwargs)
    assert format_spec("mlp", {}) == "mlp"
    assert format_spec("mlp", {"b": 2, "a": 1}) == format_spec("mlp", {"a": 1, "b": 2})
    for spec in ("deep:activation=tanh,depth=50", "synthetic:n=10,sep=2.5"):
        assert format_spec(*parse_spec(spec)) == spec


@pytest.mark.parametrize(
    "kwargs", [{"a": "1"}, {"a": "x,y"}, {"a": "k=v"}, {"a": [1]}, {"path": "a=b"}]
)
def test_format_spec_refuses_what_cannot_read_back(kwargs: dict) -> None:
    with pytest.raises(SpecError):
        format_spec("x", kwargs)


# --------------------------------------------------------------------------- general


def test_loader_errors() -> None:
    with pytest.raises(DatasetError, match=r"unknown data set 'nope'.*digits"):
        load_dataset("nope")
    with pytest.raises(DatasetError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.0)
    with pytest.raises(DatasetError, match="limit"):
        load_dataset("digits", limit=0)
    with pytest.raises(DatasetError, match="empty item"):
        load_dataset("digits:split_seed=1,")
    with pytest.raises(DatasetError, match=r"unknown option 'foo'.*split_seed"):
        load_dataset("digits:foo=1")
    assert set(DATASETS) == {"digits", "synthetic", "mnist", "fashion_mnist", "cifar10"}


# --------------------------------------------------------------------------- digits


@pytest.fixture(scope="module")
def digits() -> Dataset:
    return load_dataset("digits")


def test_digits_shapes(digits: Dataset) -> None:
    d = digits
    assert (d.n_train, d.n_val) == (1437, 360)
    assert d.x_train.shape == (1437, 64) and d.x_val.shape == (360, 64)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert d.input_shape == (64,) and d.num_classes == 10
    assert d.name == "digits" and "Dataset(name='digits'" in repr(d)
    img = load_dataset("digits", image=True)
    assert img.x_train.shape == (1437, 1, 8, 8) and img.input_shape == (1, 8, 8)
    assert torch.equal(img.x_train.reshape(-1, 64), d.x_train)


def test_digits_split_is_stratified(digits: Dataset) -> None:
    total = torch.bincount(torch.cat([digits.y_train, digits.y_val]), minlength=10)
    val = torch.bincount(digits.y_val, minlength=10)
    assert ((val.double() - 0.2 * total.double()).abs() <= 1).all()


def test_digits_standardised_with_train_stats(digits: Dataset) -> None:
    x = digits.x_train.double()
    assert x.mean(0).abs().max() < 1e-5
    std = x.std(0, unbiased=False)
    varying = std > 0
    assert varying.sum() >= 60
    assert torch.allclose(std[varying], torch.ones_like(std[varying]), atol=1e-4)
    assert torch.isfinite(digits.x_val).all() and digits.x_val.abs().max() < 1e3
    assert len(digits.meta["standardisation"]["mean"]) == 64


def test_digits_split_fixed_regardless_of_seed(digits: Dataset) -> None:
    other = load_dataset("digits", seed=123)
    assert torch.equal(other.x_train, digits.x_train)
    assert torch.equal(other.y_val, digits.y_val)
    moved = load_dataset("digits:split_seed=1")
    assert not torch.equal(moved.y_train, digits.y_train)
    assert digits.meta["split"]["random_state"] == 0


def test_digits_limit(digits: Dataset) -> None:
    small = load_dataset("digits", limit=100)
    assert small.n_train == 100 and small.n_val == 360
    assert small.meta["limit"] == 100


# --------------------------------------------------------------------------- synthetic


def _nearest_mean_accuracy(d: Dataset) -> float:
    means = torch.stack([d.x_train[d.y_train == c].mean(0) for c in range(d.num_classes)])
    pred = torch.cdist(d.x_val, means).argmin(1)
    return (pred == d.y_val).double().mean().item()


def test_synthetic_gaussian() -> None:
    d = load_dataset("synthetic:n=600,dim=16,classes=3,sep=5")
    assert d.x_train.shape == (480, 16) and d.x_val.shape == (120, 16)
    assert d.num_classes == 3 and d.input_shape == (16,)
    assert d.x_train.dtype == torch.float32 and d.y_train.dtype == torch.int64
    assert torch.bincount(torch.cat([d.y_train, d.y_val])).tolist() == [200, 200, 200]
    assert _nearest_mean_accuracy(d) > 0.9
    assert d.x_train.mean(0).abs().max() < 1e-5


def test_synthetic_teacher_is_learnable() -> None:
    from sklearn.linear_model import LogisticRegression

    d = load_dataset("synthetic:teacher,n=1500,dim=8,classes=3")
    assert d.meta["options"]["kind"] == "teacher"
    counts = torch.bincount(d.y_train, minlength=3)
    assert counts.min() > 0.1 * d.n_train
    clf = LogisticRegression(max_iter=500).fit(d.x_train.numpy(), d.y_train.numpy())
    assert clf.score(d.x_val.numpy(), d.y_val.numpy()) > 0.7


def test_synthetic_deterministic_and_seeded() -> None:
    a = load_dataset("synthetic:n=200")
    b = load_dataset("synthetic:n=200")
    assert torch.equal(a.x_train, b.x_train) and torch.equal(a.y_val, b.y_val)
    c = load_dataset("synthetic:n=200", seed=1)
    assert not torch.equal(a.x_train, c.x_train)
    d = load_dataset("synthetic:n=200,seed=1", seed=99)
    assert torch.equal(c.x_train, d.x_train)
    state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()
    load_dataset("synthetic:teacher,n=50,noise=0.5")
    assert torch.equal(state, torch.random.get_rng_state())
    assert np.array_equal(np_state, np.random.get_state()[1])


def test_synthetic_many_classes_and_errors() -> None:
    d = load_dataset("synthetic:n=100,dim=2,classes=5")
    assert d.num_classes == 5 and d.x_train.shape[1] == 2
    with pytest.raises(DatasetError, match="flat"):
        load_dataset("synthetic", image=True)
    with pytest.raises(DatasetError, match="unknown kind 'blobs'"):
        load_dataset("synthetic:blobs")
    with pytest.raises(DatasetError, match="unknown option 'hidden'"):
        load_dataset("synthetic:kind=gaussian,hidden=3")
    with pytest.raises(DatasetError, match="n must be an integer"):
        load_dataset("synthetic:n=1.5")
    with pytest.raises(DatasetError, match="empty split"):
        load_dataset("synthetic:n=2", val_fraction=0.1)


# --------------------------------------------------------------------------- MNIST (IDX)


def _idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    magic = (0x800 | array.ndim) if magic is None else magic
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", s) for s in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write(path: Path, data: bytes, gz: bool) -> None:
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)


def make_mnist(
    folder: Path,
    *,
    n_train: int = 30,
    n_val: int = 12,
    gz: bool = False,
    size: int = 28,
    **override: bytes,
) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, size, size)),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_val, size, size)),
        "t10k-labels-idx1-ubyte": np.arange(n_val) % 10,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        data = override.get(name.split("-idx")[0].replace("-", "_"), _idx_bytes(array))
        _write(folder / name, data, gz)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_loads_raw_and_gz(tmp_path: Path, gz: bool) -> None:
    arrays = make_mnist(tmp_path, gz=gz)
    d = load_dataset(f"mnist:{tmp_path}")
    assert d.x_train.shape == (30, 784) and d.x_val.shape == (12, 784)
    assert d.input_shape == (784,) and d.num_classes == 10
    assert d.y_train.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert d.y_val.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    x = d.x_train.double()
    assert abs(x.mean().item()) < 1e-5 and abs(x.std(unbiased=False).item() - 1) < 1e-4
    stats = d.meta["standardisation"]
    raw = arrays["train-images-idx3-ubyte"] / 255.0
    assert stats["mean"] == pytest.approx(raw.mean()) and stats["std"] == pytest.approx(raw.std())
    expected = (raw[3, 5, 7] - stats["mean"]) / stats["std"]
    assert d.x_train[3, 5 * 28 + 7].item() == pytest.approx(expected, abs=1e-5)


def test_mnist_mixed_gz_image_limit_and_layouts(tmp_path: Path) -> None:
    make_mnist(tmp_path / "a")
    (tmp_path / "a" / "t10k-images-idx3-ubyte").rename(tmp_path / "a" / "x")
    with gzip.open(tmp_path / "a" / "t10k-images-idx3-ubyte.gz", "wb") as f:
        f.write((tmp_path / "a" / "x").read_bytes())
    d = load_dataset(f"mnist:{tmp_path / 'a'}", image=True, limit=7)
    assert d.x_train.shape == (7, 1, 28, 28) and d.x_val.shape == (12, 1, 28, 28)
    assert d.input_shape == (1, 28, 28) and d.meta["limit"] == 7
    make_mnist(tmp_path / "tv" / "FashionMNIST" / "raw", gz=True)
    f = load_dataset(f"fashion-mnist:{tmp_path / 'tv'}")
    assert f.name == "fashion_mnist" and f.n_train == 30
    assert load_dataset(f"Fashion_MNIST:{tmp_path / 'tv'}").name == "fashion_mnist"


def test_mnist_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="needs the folder"):
        load_dataset("mnist")
    with pytest.raises(DatasetError, match=r"not found.*never downloads"):
        load_dataset(f"mnist:{tmp_path / 'nowhere'}")
    make_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DatasetError) as info:
        load_dataset(f"mnist:{tmp_path}")
    message = str(info.value)
    assert "expected t10k-labels-idx1-ubyte[.gz]" in message and str(tmp_path) in message
    assert "never downloads" in message and "\n" not in message


def _corrupt_cases() -> list[tuple[str, dict[str, bytes], str]]:
    good = np.zeros((30, 28, 28))
    return [
        (
            "bad magic",
            {"train_images": _idx_bytes(good, magic=0x0801)},
            "magic 0x00000801, expected 0x00000803",
        ),
        (
            "bad magic labels",
            {"t10k_labels": _idx_bytes(np.zeros(12), magic=0x0803)},
            "magic 0x00000803, expected 0x00000801",
        ),
        ("truncated", {"train_images": _idx_bytes(good)[:-10]}, "truncated or corrupt"),
        ("too long", {"train_labels": _idx_bytes(np.zeros(30)) + b"\0"}, "expected 38"),
        ("short header", {"train_images": b"\0\0\x08\x03\0\0"}, "truncated inside"),
        ("tiny", {"train_images": b"\0\0"}, "too short"),
        ("count", {"train_labels": _idx_bytes(np.zeros(29))}, "30 images but.*29 labels"),
        ("label range", {"t10k_labels": _idx_bytes(np.full(12, 10))}, "label 10, expected 0..9"),
        ("image size", {"t10k_images": _idx_bytes(np.zeros((12, 14, 14)))}, r"\(14, 14\)"),
    ]


@pytest.mark.parametrize(
    ("case", "override", "problem"), _corrupt_cases(), ids=[c[0] for c in _corrupt_cases()]
)
def test_mnist_corrupt_files(tmp_path: Path, case: str, override: dict, problem: str) -> None:
    make_mnist(tmp_path, **override)
    with pytest.raises(DatasetError, match=problem):
        load_dataset(f"mnist:{tmp_path}")


def test_mnist_bad_gzip(tmp_path: Path) -> None:
    make_mnist(tmp_path, gz=True)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset(f"mnist:{tmp_path}")


# --------------------------------------------------------------------------- CIFAR-10

_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def make_cifar(
    folder: Path, *, n: int = 4, protocol: int = 2, override: dict[str, object] | None = None
) -> dict[str, dict]:
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for i, name in enumerate(_BATCHES):
        batch = {
            b"batch_label": name.encode(),
            b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8),
            b"labels": [(i + j) % 10 for j in range(n)],
            b"filenames": [f"{name}_{j}.png".encode() for j in range(n)],
        }
        obj = (override or {}).get(name, batch)
        with (folder / name).open("wb") as f:
            pickle.dump(obj, f, protocol=protocol)
        written[name] = batch
    return written


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_loads(tmp_path: Path, protocol: int) -> None:
    batches = make_cifar(tmp_path, protocol=protocol)
    d = load_dataset(f"cifar10:{tmp_path}")
    assert d.x_train.shape == (20, 3072) and d.x_val.shape == (4, 3072)
    assert d.input_shape == (3072,) and d.num_classes == 10
    labels = [v for b in _BATCHES[:5] for v in batches[b][b"labels"]]
    assert d.y_train.tolist() == labels
    assert d.y_val.tolist() == batches["test_batch"][b"labels"]
    img = load_dataset(f"cifar10:{tmp_path}", image=True, limit=6)
    assert img.x_train.shape == (6, 3, 32, 32) and img.input_shape == (3, 32, 32)
    full = load_dataset(f"cifar10:{tmp_path}", image=True)
    assert torch.equal(full.x_train.reshape(20, -1), d.x_train)
    x = full.x_train.double()
    assert x.mean((0, 2, 3)).abs().max() < 1e-5
    assert torch.allclose(x.std((0, 2, 3), unbiased=False), torch.ones(3, dtype=x.dtype), atol=1e-4)
    # channel-major layout: byte 1024 + 32 * r + c is green at (r, c)
    stats = d.meta["standardisation"]
    raw = batches["data_batch_1"][b"data"][0]
    expected = (raw[1024 + 32 * 2 + 5] / 255 - stats["mean"][1]) / stats["std"][1]
    assert full.x_train[0, 1, 2, 5].item() == pytest.approx(expected, abs=1e-5)


def test_cifar_nested_folder_and_str_keys(tmp_path: Path) -> None:
    inner = tmp_path / "cifar-10-batches-py"
    batches = make_cifar(inner, protocol=4)
    with (inner / "test_batch").open("wb") as f:
        pickle.dump({k.decode(): v for k, v in batches["test_batch"].items()}, f)
    d = load_dataset(f"cifar10:{tmp_path}")
    assert d.n_val == 4 and d.meta["folder"] == str(inner)


class _Py2Pickler(pickle._Pickler):
    """Writes protocol 2 the way Python 2 did for the original CIFAR-10 files: text and bytes
    as (BIN)STRING opcodes, numpy arrays via ``numpy.core.multiarray._reconstruct``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    def save_str(self, obj: str) -> None:
        self.save_bytes(obj.encode("latin1"))

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def test_cifar_reads_python2_style_batches(tmp_path: Path) -> None:
    batches = make_cifar(tmp_path)
    for name, batch in batches.items():
        out = io.BytesIO()
        _Py2Pickler(out, protocol=2).dump(batch)
        data = out.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
        assert b"numpy.core.multiarray\n_reconstruct" in data and b"_codecs" not in data
        (tmp_path / name).write_bytes(data)
    d = load_dataset(f"cifar10:{tmp_path}")
    assert d.n_train == 20 and d.y_val.tolist() == batches["test_batch"][b"labels"]


def _bad(data: object = None, labels: object = None, extra: dict | None = None) -> dict:
    batch: dict = {
        b"data": np.zeros((4, 3072), np.uint8) if data is None else data,
        b"labels": [0, 1, 2, 3] if labels is None else labels,
    }
    batch.update(extra or {})
    return batch


@pytest.mark.parametrize(
    ("obj", "problem"),
    [
        ({b"pixels": np.zeros((4, 3072), np.uint8), b"labels": [0] * 4}, "lacks key b'data'"),
        ({b"data": np.zeros((4, 3072), np.uint8)}, "lacks key b'labels'"),
        ([1, 2, 3], "holds a list"),
        (_bad(data=np.zeros((4, 3072), np.float32)), "float32 array.*expected uint8"),
        (_bad(data=np.zeros((4, 1024), np.uint8)), r"\(4, 1024\)"),
        (_bad(data=[1, 2]), "b'data' is a list"),
        (_bad(labels=[0, 1, 2, 10]), "label 10, expected 0..9"),
        (_bad(labels=[0, 1, -1, 2]), "label -1"),
        (_bad(labels=[0, 1, 2]), "4 images but 3 labels"),
        (_bad(labels=["a", "b", "c", "d"]), "list of ints"),
    ],
)
def test_cifar_malformed_batches(tmp_path: Path, obj: object, problem: str) -> None:
    make_cifar(tmp_path, override={"data_batch_3": obj})
    with pytest.raises(DatasetError, match=problem) as info:
        load_dataset(f"cifar10:{tmp_path}")
    assert "data_batch_3" in str(info.value)


def test_cifar_missing_and_garbage(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="needs the folder"):
        load_dataset("cifar10")
    make_cifar(tmp_path)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(DatasetError, match=r"expected data_batch_4 in .*never downloads"):
        load_dataset(f"cifar10:{tmp_path}")
    make_cifar(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DatasetError, match=r"cannot read .*test_batch"):
        load_dataset(f"cifar10:{tmp_path}")


class _EvalPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",))


class _SystemPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch '{self.marker}'",))


@pytest.mark.parametrize("payload", [_EvalPayload, _SystemPayload])
@pytest.mark.parametrize("protocol", [2, 4])
def test_cifar_refuses_malicious_pickle(tmp_path: Path, payload: type, protocol: int) -> None:
    # The eval payload is armed: plain pickle.loads would run it.
    armed = tmp_path / "armed"
    pickle.loads(pickle.dumps(_EvalPayload(armed), protocol=protocol))
    assert armed.exists()

    marker = tmp_path / "pwned"
    evil = _bad(extra={b"filenames": payload(marker)})
    make_cifar(tmp_path / "c", protocol=protocol, override={"data_batch_2": evil})
    with pytest.raises(DatasetError, match="refusing to unpickle") as info:
        load_dataset(f"cifar10:{tmp_path / 'c'}")
    assert "data_batch_2" in str(info.value)
    assert not marker.exists()


def test_cifar_refuses_harmless_but_unexpected_globals(tmp_path: Path) -> None:
    from collections import OrderedDict

    make_cifar(tmp_path, override={"test_batch": OrderedDict(_bad())})
    with pytest.raises(DatasetError, match=r"collections.OrderedDict"):
        load_dataset(f"cifar10:{tmp_path}")


class _CodecPayload:
    def __reduce__(self) -> tuple:
        import _codecs

        return (_codecs.encode, ("abc", "rot13"))


def test_cifar_codecs_only_for_latin1(tmp_path: Path) -> None:
    make_cifar(tmp_path, override={"test_batch": _bad(extra={b"x": _CodecPayload()})})
    with pytest.raises(DatasetError, match="only latin-1"):
        load_dataset(f"cifar10:{tmp_path}")


def test_meta_is_json_friendly(tmp_path: Path) -> None:
    make_mnist(tmp_path / "m")
    make_cifar(tmp_path / "c")
    for spec in (
        "digits",
        "synthetic:teacher,n=50",
        f"mnist:{tmp_path / 'm'}",
        f"cifar10:{tmp_path / 'c'}",
    ):
        d = load_dataset(spec)
        meta = json.loads(json.dumps(d.meta))
        assert meta["n_train"] == d.n_train and meta["input_shape"] == list(d.input_shape)
        assert parse_spec(meta["spec"])[0] == d.name
