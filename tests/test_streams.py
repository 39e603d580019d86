"""Keyed counter-based streams: determinism, position independence, statistics, integration."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import initlab
from initlab.rng import RandomSource
from initlab.streams import (
    CH,
    KeyedStream,
    chunk_size,
    derive_key,
    get_num_threads,
    set_num_threads,
)
from initlab.streams.bits import Keystream, read_words
from initlab.streams.kernels import Normal, Scratch, TruncNormal, Uniform

FILLS = {
    "uniform": lambda s, t: s.uniform_(t, -1.5, 2.5),
    "normal": lambda s, t: s.normal_(t, 0.25, 2.0),
    "std_normal": lambda s, t: s.normal_(t, 0.0, 1.0),
    "trunc": lambda s, t: s.trunc_normal_(t, -2.0, 2.0),
    "trunc_tail": lambda s, t: s.trunc_normal_(t, 3.0, 4.0),
}


def full(
    method: str, shape: tuple[int, ...], dtype=torch.float32, seed=0, name="p"
) -> torch.Tensor:
    t = torch.empty(shape, dtype=dtype)
    FILLS[method](KeyedStream(seed, name), t)
    return t


def windowed(method, shape, index, dtype=torch.float32, out_shape=None, seed=0, name="p"):
    s = KeyedStream(seed, name)
    probe = torch.empty(shape, device="meta")[index]
    t = torch.empty(probe.shape if out_shape is None else out_shape, dtype=dtype)
    with s.window(shape, index):
        FILLS[method](s, t)
    return t


# -- keys and determinism ----------------------------------------------------------------
def test_derive_key_is_pinned():
    assert derive_key(0, "w") == 0xA3D0127AB1391CE71F7F8486CFD5F5F2
    assert derive_key(1, "layer.weight") == 0xA2AF8DA33D2C60498AA6A098B7D8BEF2
    assert derive_key(np.int64(1), "layer.weight") == derive_key(1, "layer.weight")
    # the encoding is unambiguous: (1, "2x") and (12, "x") do not collide
    assert derive_key(1, "2x") != derive_key(12, "x")


@pytest.mark.parametrize("seed", [-1, 2**64, 1.0, True, "0", None])
def test_derive_key_rejects_bad_seeds(seed):
    with pytest.raises(ValueError):
        derive_key(seed, "w")


def test_derive_key_rejects_non_str_name():
    with pytest.raises(TypeError):
        derive_key(0, 3)  # type: ignore[arg-type]


def _spec_words(stream: KeyedStream, draw: int, first: int, n: int, size: int) -> list[int]:
    """Words of a draw re-derived from the documented spec, with AES in ECB mode: byte o is
    byte o % 16 of AES-128(draw key, big-endian o // 16); words little-endian."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    tag = b"initlab-draw-v2\0" + stream.key.to_bytes(16, "little") + draw.to_bytes(8, "little")
    key = hashlib.blake2b(tag, digest_size=16).digest()
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    lo, hi = first * size, (first + n) * size
    blocks = range(lo // 16, (hi + 15) // 16)
    data = b"".join(ecb.update(b.to_bytes(16, "big")) for b in blocks)[lo % 16 :]
    return [int.from_bytes(data[i * size : (i + 1) * size], "little") for i in range(n)]


def test_pinned_values():
    s = KeyedStream(0, "w")
    t = torch.empty(4)
    s.uniform_(t, 0.0, 1.0)  # integer bits only: identical on every machine
    assert t.tolist() == [k * 2.0**-24 for k in (753443, 2540849, 14815229, 13580808)]
    assert t.tolist() == [(k >> 8) * 2.0**-24 for k in _spec_words(s, 0, 0, 4, 4)]
    s.normal_(t, 0.0, 1.0)  # transcendentals: equal up to ulps across CPUs
    expect = [-0.6494444608688354, 0.606850802898407, -1.36545729637146, -0.21570917963981628]
    assert t.tolist() == pytest.approx(expect, rel=1e-5, abs=1e-6)
    d = torch.empty(2, dtype=torch.float64)
    KeyedStream(0, "w").uniform_(d, 0.0, 1.0)
    assert d.tolist() == [0.15144641838150763, 0.8094792880311273]
    assert KeyedStream(0, "w").randperm(8).tolist() == [5, 6, 0, 2, 4, 7, 1, 3]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bits_follow_the_spec_far_into_a_draw(dtype):
    """Element i of a uniform fill takes word i (whatever the chunking), from AES-CTR."""
    s = KeyedStream(3, "big")
    n, size, shift, unit = (300_001, 4, 8, 2.0**-24) if dtype == torch.float32 else (
        300_001, 8, 11, 2.0**-53)  # fmt: skip
    t = torch.empty(n, dtype=dtype)
    s.uniform_(t, 0.0, 1.0)
    for first in (0, 65_533, 2 * CH - 1, n - 5):  # chunk boundaries, unaligned blocks
        want = [(k >> shift) * unit for k in _spec_words(s, 0, first, 5, size)]
        assert t[first : first + 5].tolist() == want


def test_normal_follows_the_spec():
    """Box–Muller on words j and j + C/2 of the chunk (C = chunk_size(numel))."""
    n = 100
    c = chunk_size(n)
    assert c == 128
    s = KeyedStream(1, "bm")
    t = torch.empty(n)
    s.normal_(t, 0.5, 2.0)
    w = _spec_words(s, 0, 0, c, 4)
    h = c // 2
    for j in (0, 7, 35):
        u1 = ((w[j] >> 8) + 1) * 2.0**-24
        th = 2 * math.pi * (w[j + h] >> 8) * 2.0**-24
        r = 2.0 * math.sqrt(-2 * math.log(u1))
        assert t[j].item() == pytest.approx(0.5 + r * math.cos(th), rel=1e-5, abs=1e-5)
        if h + j < n:
            assert t[h + j].item() == pytest.approx(0.5 + r * math.sin(th), rel=1e-5, abs=1e-5)


def test_float32_normal_is_box_muller_in_numpy_float32_bit_for_bit():
    """The float32 kernel is the documented formula, op for op, in numpy's float32 kernels."""
    n, c, h = 100, 128, 64
    s = KeyedStream(1, "bm")
    t = torch.empty(n)
    s.normal_(t, 0.5, 2.0)
    k = np.array(_spec_words(s, 0, 0, c, 4), np.uint32) >> 8
    f = k.astype(np.float32)
    unit = np.float32(2.0**-24)
    r = np.sqrt(np.log(f[:h] * unit + unit) * np.float32(-2.0 * 2.0**2))  # std² folded in
    th = f[h:] * np.float32(2 * math.pi * 2.0**-24)
    x = np.concatenate([np.cos(th) * r, np.sin(th) * r]) + np.float32(0.5)
    assert x.dtype == np.float32
    assert torch.equal(t, torch.from_numpy(x[:n]))


@pytest.mark.parametrize(
    "make",
    [
        lambda f64: Normal(0.25, 2.0, f64),  # std² folded into the log's factor
        lambda f64: Normal(-1.0, 1e-30, f64),  # std² below the dtype's normals: not folded
        lambda f64: Uniform(-1.5, 2.5, f64),
        lambda f64: TruncNormal(-2.0, 2.0, (-2.0, 2.0), f64),
    ],
    ids=["normal", "normal_tiny_std", "uniform", "trunc"],
)
@pytest.mark.parametrize("f64", [False, True], ids=["float32", "float64"])
def test_kernel_on_several_chunks_equals_chunk_by_chunk(make, f64):
    """One call over k whole chunks (fewer GIL hand-offs between fill threads) writes the
    bits k one-chunk calls write, and its sums add up to theirs within the rounding of
    float sums (3 chunks of 256)."""
    kern, c, k = make(f64), 256, 3
    ks = Keystream(derive_key(0, "k"))
    words = read_words(ks, 0, bytearray(k * c * 8 + 16), k * c, kern.word).copy()
    one, sums_one = np.empty(k * c, kern.dtype), []
    for i in range(k):
        kern(words[i * c : (i + 1) * c].copy(), one[i * c : (i + 1) * c], Scratch(), sums_one)
    batched, sums_batched = np.empty(k * c, kern.dtype), []
    kern(words.copy(), batched, Scratch(), sums_batched, chunk=c)
    assert np.array_equal(one.view(np.uint8), batched.view(np.uint8))
    tol = k * c * 16 * float(np.finfo(kern.dtype).eps)  # sums of k·c values of size <= 4
    for j in range(2):
        want = math.fsum(x[j] for x in sums_one)
        assert math.fsum(x[j] for x in sums_batched) == pytest.approx(want, rel=1e-5, abs=tol)


def test_chunk_size_rule():
    assert [chunk_size(n) for n in (0, 1, 64, 65, 1000, 4096, CH, CH + 1, 10**9)] == [
        64, 64, 64, 128, 1024, 4096, CH, CH, CH]  # fmt: skip


@pytest.mark.parametrize("method", list(FILLS))
def test_same_key_same_values_other_key_other_values(method):
    a = full(method, (33, 70))
    assert torch.equal(a, full(method, (33, 70)))
    assert not torch.equal(a, full(method, (33, 70), seed=1))
    assert not torch.equal(a, full(method, (33, 70), name="q"))


def test_successive_draws_differ_and_replay():
    s = KeyedStream(3, "blk")
    a, b = torch.empty(100), torch.empty(100)
    s.normal_(a, 0, 1)
    s.normal_(b, 0, 1)
    assert s.draw == 2 and not torch.equal(a, b)
    r = KeyedStream(3, "blk")
    r.draw = 1  # replay the second call alone
    c = torch.empty(100)
    r.normal_(c, 0, 1)
    assert torch.equal(b, c)


def test_every_call_consumes_one_draw():
    s = KeyedStream(0, "x")
    s.uniform_(torch.empty(3), 0, 1)
    s.normal_(torch.empty(0), 0, 1)
    s.trunc_normal_(torch.empty(5, device="meta"), -2, 2)
    s.randperm(4)
    assert s.draw == 4


def test_from_key_and_fork():
    a = KeyedStream(5, "m.w")
    b = KeyedStream.from_key(a.key)
    assert b.seed is None and b.name is None
    assert torch.equal(
        full("normal", (10,), seed=5, name="m.w"), FILLS["normal"](b, torch.empty(10))
    )
    f1 = a.fork("qr")
    a.normal_(torch.empty(3), 0, 1)  # a fork does not depend on when it is taken
    f2 = a.fork("qr")
    assert f1.key == f2.key != a.key != a.fork("other").key
    x, y = torch.empty(50), torch.empty(50)
    f1.uniform_(x, 0, 1)
    KeyedStream.from_key(a.key).uniform_(y, 0, 1)
    assert not torch.equal(x, y)
    with pytest.raises(ValueError):
        KeyedStream.from_key(2**128)


# -- position independence ---------------------------------------------------------------
SLICES = [
    ((40, 3000), (slice(5, 17),)),  # dim 0
    ((40, 3000), (slice(None), slice(1000, 2500))),  # dim 1: every row crosses a chunk
    ((6, 50, 700), (slice(2, 4), slice(10, 40), slice(100, 600))),  # 3-D middle
    ((200_000,), (slice(CH - 7, CH + 9),)),  # small window straddling a chunk boundary
    ((200_000,), (slice(2 * CH - 100, 3 * CH + 100),)),  # whole chunk inside the window
    ((300, 300), (slice(3, 5), slice(7, 12))),  # tiny window inside one chunk
    ((300, 700), (7, slice(None))),  # an int index: a length-1 dimension
]


@pytest.mark.parametrize("method", ["uniform", "normal", "trunc", "trunc_tail"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
@pytest.mark.parametrize(("shape", "index"), SLICES)
def test_slice_equals_full(method, dtype, shape, index):
    ref = full(method, shape, dtype)[index]
    got = windowed(method, shape, index, dtype)
    assert got.shape == ref.shape and torch.equal(got, ref)


def test_window_int_index_keeps_or_drops_dim():
    ref = full("normal", (30, 40))
    assert torch.equal(
        windowed("normal", (30, 40), (4, slice(3, 9)), out_shape=(1, 6)), ref[4:5, 3:9]
    )
    assert torch.equal(windowed("normal", (30, 40), (-1,), out_shape=(40,)), ref[-1])


def test_window_errors():
    s = KeyedStream(0, "w")
    with pytest.raises(ValueError), s.window((10, 10), (slice(0, 10, 2),)):
        pass
    with pytest.raises(IndexError), s.window((10, 10), (10,)):
        pass
    with s.window((10, 10), (slice(2, 4),)):
        with pytest.raises(ValueError):
            s.uniform_(torch.empty(3, 10), 0, 1)
        with pytest.raises(RuntimeError), s.window((10,), ()):
            pass
    assert s.draw == 0  # rejected calls consume nothing


@st.composite
def shape_and_window(draw):
    ndim = draw(st.integers(1, 3))
    cap = {1: 150_000, 2: 450, 3: 60}[ndim]
    shape = tuple(draw(st.integers(1, cap)) for _ in range(ndim))
    index = []
    for size in shape:
        if draw(st.booleans()) and draw(st.integers(0, 4)) == 0:
            index.append(draw(st.integers(-size, size - 1)))
        else:
            start = draw(st.integers(0, size - 1))
            index.append(slice(start, draw(st.integers(start + 1, size))))
    return shape, tuple(index)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    sw=shape_and_window(),
    method=st.sampled_from(["uniform", "normal", "trunc"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_random_windows_equal_full(sw, method, dtype):
    shape, index = sw
    assert torch.equal(windowed(method, shape, index, dtype), full(method, shape, dtype)[index])


def test_non_contiguous_target_gets_row_major_values():
    t = torch.empty(70, 90).t()  # shape (90, 70), column-major storage
    KeyedStream(0, "p").normal_(t, 0.25, 2.0)
    assert torch.equal(t, full("normal", (90, 70)))


# -- threads and global state ------------------------------------------------------------
@pytest.mark.parametrize("method", ["uniform", "normal", "trunc"])
def test_independent_of_thread_counts(method):
    shape = (5, 100_001)
    old, old_torch = get_num_threads(), torch.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            set_num_threads(n)
            results.append(full(method, shape))
        set_num_threads(2)
        for n in (1, 2):
            torch.set_num_threads(n)
            results.append(full(method, shape))
    finally:
        set_num_threads(old)
        torch.set_num_threads(old_torch)
    assert all(torch.equal(results[0], r) for r in results[1:])


def test_set_num_threads_validates():
    with pytest.raises(ValueError):
        set_num_threads(0)


def test_pool_leaves_torch_thread_count_alone():
    """Pool threads run torch ops single-threaded; the caller's setting is untouched."""
    import threading

    from initlab.streams import pool as streams_pool

    before, old = torch.get_num_threads(), get_num_threads()
    try:
        set_num_threads(2)
        full("normal", (300, 1000))  # creates the pool
        seen = []
        done = threading.Event()

        def probe(todo):
            seen.append(torch.get_num_threads())
            done.set()

        pool, _ = streams_pool.get_pool()
        pool.submit(probe, None).result()
        assert done.is_set() and seen == [1 if streams_pool.openmp() else seen[0]]
        assert torch.get_num_threads() == before
        fresh = []
        t = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
        t.start()
        t.join()
        assert fresh == [before]  # threads torch has not seen yet get the caller's default
    finally:
        set_num_threads(old)


def test_forked_child_can_fill():
    """A fork copies no pool threads: the child starts its own pool instead of waiting."""
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork start method")
    ref = full("normal", (200, 2000))  # the parent's pool exists now
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=_child_fill, args=(q,))
    p.start()
    got = q.get(timeout=60)  # a deadlocked child would time out here
    p.join(10)
    assert p.exitcode == 0 and np.array_equal(got, ref.numpy())


def _child_fill(q) -> None:
    q.put(full("normal", (200, 2000)).numpy())  # numpy pickles plainly, torch via fds


def test_global_rngs_untouched():
    torch.manual_seed(1)
    np.random.seed(2)
    t_state, n_state = torch.get_rng_state(), np.random.get_state()
    s = KeyedStream(0, "w")
    for method in FILLS:
        FILLS[method](s, torch.empty(1000, 300))
    s.randperm(100)
    assert torch.equal(torch.get_rng_state(), t_state)
    n_now = np.random.get_state()
    assert n_now[0] == n_state[0] and np.array_equal(n_now[1], n_state[1])
    assert n_now[2:] == n_state[2:]


# -- statistics (n = 4M; tolerances are about 5 standard errors) --------------------------
N = 1 << 22


def _moments(x: torch.Tensor) -> tuple[float, float, float]:
    x = x.double()
    m = x.mean().item()
    c = x - m
    v = (c * c).mean().item()
    return m, v, ((c * c) ** 2).mean().item() / v**2


def test_uniform_statistics():
    x = torch.empty(N)
    KeyedStream(1, "u").uniform_(x, -1.0, 3.0)
    m, v, _ = _moments(x)
    assert x.min() >= -1.0 and x.max() <= 3.0
    assert abs(m - 1.0) < 5 * 2 / math.sqrt(3 * N)  # sd of U(-1, 3) is 4/sqrt(12)
    assert abs(v - 4 / 3) < 5 * (4 / 3) * math.sqrt(0.8 / N)
    hist = torch.histc(x, bins=16, min=-1.0, max=3.0) / N  # equal mass per bin
    assert (hist - 1 / 16).abs().max() < 5 * math.sqrt(1 / 16 / N)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normal_statistics(dtype):
    x = torch.empty(N, dtype=dtype)
    KeyedStream(1, "n").normal_(x, 0.5, 2.0)
    m, v, k = _moments(x)
    assert abs(m - 0.5) < 5 * 2 / math.sqrt(N)
    assert abs(v - 4.0) < 5 * 4 * math.sqrt(2 / N)
    assert abs(k - 3.0) < 5 * math.sqrt(24 / N)
    z = (x.double() - 0.5) / 2
    assert abs((z > 1.0).double().mean().item() - 0.158655) < 5 * math.sqrt(0.13 / N)
    # the two Box–Muller halves of a chunk are uncorrelated
    c = torch.corrcoef(torch.stack([z[: CH // 2], z[CH // 2 : CH]]))[0, 1].item()
    assert abs(c) < 5 / math.sqrt(CH / 2)


def test_float32_normal_law_ks_and_tails():
    """Kolmogorov-Smirnov over 4M float32 values (p > 1e-3: sqrt(n)·D < 1.9495), and the
    tail frequencies P(|z| > a) within 3 standard errors."""
    x = torch.empty(N)
    KeyedStream(4, "law").normal_(x, 0.0, 1.0)
    z = x.double().sort().values
    cdf = torch.special.ndtr(z)
    i = torch.arange(N, dtype=torch.float64)
    d = max((cdf - i / N).abs().max().item(), ((i + 1) / N - cdf).abs().max().item())
    assert math.sqrt(N) * d < 1.9495
    for a in (2.0, 3.0, 4.0):
        p = math.erfc(a / math.sqrt(2))
        assert abs((z.abs() > a).double().mean().item() - p) < 3 * math.sqrt(p * (1 - p) / N)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_normal_mean_and_std_fold(dtype):
    """std is folded into r (std² a normal number of the dtype) or multiplied after (std² under-
    or overflows), mean added last; std = 0 gives mean (±0.0 at mean 0)."""

    def fill(mean: float, std: float) -> torch.Tensor:
        return KeyedStream(0, "p").normal_(torch.empty(5000, dtype=dtype), mean, std)

    unit = fill(0.0, 1.0)
    f32 = dtype == torch.float32
    tiny, huge = (1e-25, 1e20) if f32 else (1e-170, 1e160)
    for std in (2.0, 0.02, tiny, huge):  # folded, folded, std² underflows, std² overflows
        rtol = 3e-7 if f32 else 1e-15  # a rounding or two
        torch.testing.assert_close(fill(0.0, std), unit * std, rtol=rtol, atol=0)
    scaled = fill(0.0, 2.0)
    assert torch.equal(fill(0.5, 2.0), scaled + torch.tensor(0.5, dtype=dtype))  # added last
    assert torch.equal(fill(0.25, 0.0), torch.full((5000,), 0.25, dtype=dtype))
    assert (fill(0.0, 0.0) == 0).all()
    assert torch.isfinite(fill(0.0, tiny)).all() and (fill(0.0, tiny) != 0).all()
    for std in (tiny, huge) if f32 else (tiny,):  # float64: huge² overflows the sums
        s = KeyedStream(0, "p")
        s.measure = True
        t = s.normal_(torch.empty(8192, dtype=dtype), 0.0, std)  # one whole chunk
        assert s.achieved_std(t) == pytest.approx(t.double().std().item(), rel=1e-6)


def _trunc_moments(a: float, b: float) -> tuple[float, float]:
    pdf = lambda x: 0.0 if math.isinf(x) else math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    xpdf = lambda x: 0.0 if math.isinf(x) else x * pdf(x)  # noqa: E731
    z = 0.5 * (math.erfc(a / math.sqrt(2)) - math.erfc(b / math.sqrt(2)))
    mean = (pdf(a) - pdf(b)) / z
    return mean, 1 + (xpdf(a) - xpdf(b)) / z - mean**2


@pytest.mark.parametrize(("a", "b"), [(-2.0, 2.0), (0.0, math.inf), (3.0, 4.0), (-4.0, -3.0)])
def test_trunc_normal_statistics(a, b):
    x = torch.empty(N, dtype=torch.float64)
    KeyedStream(2, "t").trunc_normal_(x, a, b)
    assert x.min() >= a and x.max() <= b
    m, v, _ = _moments(x)
    em, ev = _trunc_moments(a, b)
    assert abs(m - em) < 5 * math.sqrt(ev / N)
    assert abs(v / ev - 1) < 5 * math.sqrt(4 / N)  # kurtosis of these laws is < 5


def test_trunc_normal_narrow_far_interval_and_limits():
    x = torch.empty(10_000, dtype=torch.float64)
    KeyedStream(0, "t").trunc_normal_(x, 5.0, 5.0001)
    assert x.min() >= 5.0 and x.max() <= 5.0001 and x.std() > 2e-5  # spread over the interval
    with pytest.raises(ValueError):
        KeyedStream(0, "t").trunc_normal_(x, 40.0, 41.0)
    with pytest.raises(ValueError):
        KeyedStream(0, "t").trunc_normal_(x, 1.0, 1.0)


# -- dtypes and devices ------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("method", ["uniform", "normal"])
def test_half_precision_gets_rounded_float32_values(dtype, method):
    assert torch.equal(full(method, (100, 1000), dtype), full(method, (100, 1000)).to(dtype))


@pytest.mark.parametrize("method", ["uniform", "normal", "trunc"])
def test_targets_filled_in_pieces_equal_in_place_fills(method, monkeypatch):
    """bfloat16 (or CUDA) targets are generated piece by piece, never as one full copy."""
    from initlab.streams import stream as stream_module

    shape = (60, 3001)
    ref = full(method, shape)
    monkeypatch.setattr(stream_module, "PIECE", 7_777)  # not a multiple of anything
    assert torch.equal(full(method, shape, torch.bfloat16), ref.to(torch.bfloat16))
    for index in [(slice(3, 50),), (slice(None), slice(100, 2900))]:  # contiguous, gathered
        got = windowed(method, shape, index, torch.bfloat16)
        assert torch.equal(got, ref[index].to(torch.bfloat16))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_bounds_hold_after_rounding(dtype):
    x = torch.empty(1 << 18, dtype=dtype)
    KeyedStream(0, "b").trunc_normal_(x, -0.3, 0.7)
    assert x.double().min() >= -0.3 and x.double().max() <= 0.7
    KeyedStream(0, "b").uniform_(x, -0.3, 0.7)  # uniform: within the bounds rounded to dtype
    lo, hi = torch.tensor([-0.3, 0.7], dtype=dtype).tolist()
    assert x.min().item() >= lo and x.max().item() <= hi


def test_float64_uses_53_bit_values():
    x = torch.empty(1 << 16, dtype=torch.float64)
    KeyedStream(0, "d").uniform_(x, 0.0, 1.0)
    assert (x * 2.0**24 != torch.floor(x * 2.0**24)).any()  # finer than float32's 2^-24 grid


def test_dtype_and_device_handling():
    with pytest.raises(TypeError):
        KeyedStream(0, "w").normal_(torch.empty(3, dtype=torch.int64), 0, 1)
    m = torch.empty(4, 5, device="meta")
    assert KeyedStream(0, "w").uniform_(m, 0, 1) is m
    p = torch.nn.Parameter(torch.empty(8, 9))
    KeyedStream(0, "p").normal_(p, 0.25, 2.0)  # writes into a parameter that requires grad
    assert torch.equal(p.detach(), full("normal", (8, 9)))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_target_matches_cpu():
    t = torch.empty(300, 700, device="cuda")
    FILLS["normal"](KeyedStream(0, "p"), t)
    assert torch.equal(t.cpu(), full("normal", (300, 700)))


def test_randperm_is_a_deterministic_permutation():
    p = KeyedStream(9, "perm").randperm(1000)
    assert p.dtype == torch.int64 and sorted(p.tolist()) == list(range(1000))
    assert torch.equal(p, KeyedStream(9, "perm").randperm(1000))
    assert KeyedStream(9, "perm").randperm(0).numel() == 0


# -- schemes draw from any RandomSource --------------------------------------------------
def test_is_a_random_source():
    assert isinstance(KeyedStream(0, "w"), RandomSource)


@pytest.mark.parametrize(
    ("scheme", "params"),
    [("kaiming_normal", {}), ("orthogonal", {}), ("trunc_normal", {"std": 0.02}),
     ("sparse", {"sparsity": 0.25}), ("xavier_uniform", {}),
     ("variance_scaling", {"distribution": "truncated_normal"})],
)  # fmt: skip
def test_schemes_accept_a_keyed_stream(scheme, params):
    sch = initlab.get_scheme(scheme, **params)
    a, b = torch.empty(64, 48), torch.empty(64, 48)
    sch(a, None, KeyedStream(0, "layer.weight"))
    sch(b, None, KeyedStream(0, "layer.weight"))
    assert torch.equal(a, b) and a.abs().sum() > 0
    c = torch.empty(64, 48)
    sch(c, None, KeyedStream(1, "layer.weight"))
    assert not torch.equal(a, c)
    if scheme == "orthogonal":
        torch.testing.assert_close(a.T @ a, torch.eye(48), atol=1e-5, rtol=0)
    if scheme == "sparse":
        assert ((a == 0).sum(0) == 16).all()
    if scheme == "kaiming_normal":
        assert abs(a.std().item() - math.sqrt(2 / 48)) < 0.01


# -- achieved std from the fill's own sums -------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    ("method", "args"),
    [("normal_", (0.0, 0.02)), ("normal_", (5.0, 1e-3)), ("uniform_", (-0.3, 0.7)),
     ("uniform_", (2.0, 2.0)), ("trunc_normal_", (3.0, 4.0))],
)  # fmt: skip
def test_achieved_std_from_the_fill_matches_a_float64_std(dtype, method, args):
    t = torch.empty(3, 100_003, dtype=dtype)  # several chunks and a partial last one
    s = KeyedStream(0, "m")
    s.measure = True
    getattr(s, method)(t, *args)
    want = t.double().std().item()
    got = s.achieved_std(t)
    assert got is not None
    assert got == pytest.approx(want, rel=1e-6, abs=1e-12)


def test_achieved_std_is_none_once_anything_else_wrote():
    t = torch.empty(1000, 300)
    s = KeyedStream(0, "m")
    assert s.achieved_std(t) is None  # no fill yet
    s.normal_(t, 0, 1)
    assert s.achieved_std(t) is None  # measure was off
    s.measure = True
    s.normal_(t, 0, 1)
    assert s.achieved_std(t) is not None
    assert s.achieved_std(t[1:]) is None and s.achieved_std(torch.empty(10)) is None
    t[0].mul_(3)  # a torch write moves the version counter
    assert s.achieved_std(t) is None
    s.normal_(t, 0, 1)
    KeyedStream(1, "other").uniform_(t[:10], 0, 1)  # another stream wrote (no version bump)
    assert s.achieved_std(t) is None
    s.normal_(t, 0, 1)
    with s.window((2000, 300), (slice(0, 1000),)):
        s.normal_(t, 0, 1)  # a window of a larger tensor: not all of it
    assert s.achieved_std(t) is None


def test_achieved_std_of_an_inference_tensor_is_none_not_an_error():
    with torch.inference_mode():
        t = torch.empty(500)
        s = KeyedStream(0, "inf")
        s.measure = True
        s.normal_(t, 0, 1)  # inference tensors keep no version counter
    assert torch.equal(t, full("std_normal", (500,), name="inf"))
    assert s.achieved_std(t) is None


def test_fills_from_several_threads_at_once_equal_sequential_ones():
    """The pool, key schedules and shared buffers are safe under concurrent callers."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [("normal", (300, 1000), f"p{i}") if i % 2 else ("uniform", (7, 11), f"p{i}")
            for i in range(12)]  # fmt: skip
    want = [full(m, shape, name=n) for m, shape, n in jobs]
    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(lambda j: full(j[0], j[1], name=j[2]), jobs))
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))
