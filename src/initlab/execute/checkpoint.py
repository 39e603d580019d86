"""Streaming checkpoints: initialise a model too large for memory straight into safetensors.

``write_checkpoint(model_on_meta, policy, seed, out_dir)`` writes what ``initialize`` would put
in the model's ``state_dict``, one tensor at a time, as Hugging Face lays out a sharded
checkpoint::

    out_dir/model-00001-of-00003.safetensors ... model-00003-of-00003.safetensors
    out_dir/model.safetensors.index.json   {"metadata": {"total_size": ...}, "weight_map": ...}
    out_dir/init_report.json, out_dir/init_report.md
    out_dir/config.json                    a transformers model's config (to_json_file)

It is the same executor and fill (:func:`initlab.execute.executor.execute`) as
``initialize``; the target is a tensor on its way to a file. Shard sizes are known from the
plan, so each file's header is written first (then its buffers) and each parameter is
generated, written and freed in turn: peak memory is about the largest single tensor (well
under the largest shard), plus the stream's chunk scratch.
The files are written by a small writer of the safetensors format (8-byte little-endian
header length, JSON header padded to 8 bytes, raw little-endian data), so writing needs no
extra package; ``load_checkpoint`` reads them with the ``safetensors`` package.

* Tied parameters are written once, under their first name; the other names are recorded in
  the index's ``metadata.aliases`` (``{alias: name}``), and ``load_checkpoint`` re-ties them.
* A model with a Hugging Face config (``model.config.to_json_file``) also gets
  ``config.json``, so ``AutoModel...from_pretrained(out_dir)`` loads the checkpoint; the tied
  names appear as HF's own save writes them: the tie is listed, not duplicated.
* Persistent buffers are written (BatchNorm statistics, or the user's ``buffers=``).
* A target folder that exists and is not empty, an unmatched parameter, an unknown buffer or
  a dtype safetensors cannot store raises before any file is created.
* All or nothing: the files are written into a sibling folder ``<out_dir>.partial-<pid>``
  that is renamed to ``out_dir`` only once every file is complete. If writing fails, that
  folder is removed; if the process is killed, it is left under its partial name (delete
  it), and ``out_dir`` never holds a checkpoint cut short.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import struct
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import torch
from torch import Tensor, nn

from ..plan import PolicyLike
from ..report import InitReport, ParamRow
from .buffers import BufferInit, BufferSpec, MaterializeError, make_buffer, plan_buffers
from .executor import execute
from .meta import check_dtype, check_on_meta, check_rows, row_dtype

__all__ = ["INDEX_NAME", "CheckpointError", "load_checkpoint", "write_checkpoint"]

INDEX_NAME = "model.safetensors.index.json"
CONFIG_NAME = "config.json"
_ST_DTYPES = {
    torch.float64: "F64", torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
    torch.float8_e4m3fn: "F8_E4M3", torch.float8_e5m2: "F8_E5M2",
}  # fmt: skip


class CheckpointError(MaterializeError):
    """The checkpoint cannot be written (or loaded) as asked; nothing was written.

    Example:
        >>> import initlab
        >>> from torch import nn
        >>> with initlab.meta_build():
        ...     m = nn.Linear(8, 4)
        >>> try:
        ...     initlab.write_checkpoint(m, "kaiming", 0, "unused", max_shard_bytes=0)
        ... except initlab.CheckpointError as e:
        ...     print(type(e).__name__, e)
        CheckpointError max_shard_bytes must be a positive int, got 0
    """


@dataclasses.dataclass
class _Entry:
    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype
    row: ParamRow | None = None
    buffer: BufferSpec | None = None

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize


def _entries(
    model: nn.Module, report: InitReport, specs: list[BufferSpec], dtype: torch.dtype | None
) -> list[_Entry]:
    """What goes into the files, in state_dict order (tied tensors once, first name)."""
    rows = {r.qualname: r for r in report.rows}
    bufs = {s.qualname: s for s in specs if s.persistent}
    out = []
    for name, t in model.state_dict(keep_vars=True).items():
        if name in rows:
            out.append(_Entry(name, tuple(t.shape), dtype or t.dtype, row=rows[name]))
        elif name in bufs:
            floating = dtype is not None and t.is_floating_point()
            out.append(_Entry(name, tuple(t.shape), dtype if floating else t.dtype,
                              buffer=bufs[name]))  # fmt: skip
    for e in out:
        if e.dtype not in _ST_DTYPES:
            raise CheckpointError(f"{e.name}: safetensors cannot store dtype {e.dtype}")
    return out


def _shards(entries: list[_Entry], max_bytes: int) -> list[list[_Entry]]:
    """Greedy split in order; a tensor larger than ``max_bytes`` gets a shard of its own.
    Within a file the buffers come first (made when the file is opened), then the parameters
    in the order the executor fills them."""
    shards: list[list[_Entry]] = [[]]
    size = 0
    for e in entries:
        if shards[-1] and size + e.nbytes > max_bytes:
            shards.append([])
            size = 0
        shards[-1].append(e)
        size += e.nbytes
    return [sorted(s, key=lambda e: e.row is not None) for s in shards if s]


def _header(entries: list[_Entry]) -> bytes:
    head: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for e in entries:
        head[e.name] = {"dtype": _ST_DTYPES[e.dtype], "shape": list(e.shape),
                        "data_offsets": [offset, offset + e.nbytes]}  # fmt: skip
        offset += e.nbytes
    raw = json.dumps(head, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned, as safetensors writes it
    return struct.pack("<Q", len(raw)) + raw


def _bytes(t: Tensor) -> memoryview:
    flat = t.contiguous().reshape(-1)
    return memoryview(flat.view(torch.uint8).numpy()) if flat.numel() else memoryview(b"")


def _check_out(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"output {str(out)!r} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise CheckpointError(
            f"output folder {str(out)!r} exists and is not empty; choose a new or empty folder"
        )


class SafetensorsWriter:
    """Write each row's tensor into its file as it is filled, in a ``.partial-<pid>`` folder
    renamed to the final one at commit (removed at abort)."""

    def __init__(
        self,
        model: nn.Module,
        out: Path,
        dtype: torch.dtype | None,
        max_bytes: int,
        buffers: Mapping[str, BufferInit] | None,
        overwrite: bool = False,
    ) -> None:
        self.model, self.out, self.dtype, self.max_bytes = model, out, dtype, max_bytes
        self.buffers, self.overwrite = buffers, overwrite
        self.tmp = out.with_name(f"{out.name}.partial-{os.getpid()}")
        self.file: IO[bytes] | None = None
        self.next = 0  # the next file to open
        self.pending: list[_Entry] = []  # the parameters still to write in the open file

    def check(self, report: InitReport, params: dict[str, Tensor], sharded: set[str]) -> None:
        if sharded:
            raise CheckpointError(
                f"write_checkpoint writes whole tensors; {', '.join(sorted(sharded))} are "
                "sharded (DTensor): build the model unsharded on the meta device"
            )
        try:
            check_rows(report, "write_checkpoint")
            self.specs = plan_buffers(self.model, self.buffers)
        except MaterializeError as e:
            raise CheckpointError(str(e)) from None
        entries = _entries(self.model, report, self.specs, self.dtype)
        self.shards = _shards(entries, self.max_bytes)
        n = len(self.shards)
        self.files = [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
        self.total = sum(e.nbytes for e in entries)
        self.tmp.parent.mkdir(parents=True, exist_ok=True)
        if self.tmp.exists():  # left by a killed run of a process with this pid
            shutil.rmtree(self.tmp)
        self.tmp.mkdir()

    def open(self, row: ParamRow, local: Tensor) -> Tensor:
        return torch.empty(row.shape, dtype=self.dtype or local.dtype)

    def put(self, row: ParamRow, param: Tensor, filled: Tensor) -> dict[str, Any]:
        while not self.pending:
            self._open_next()
        e = self.pending.pop(0)
        if e.name != row.qualname:  # pragma: no cover - the layout follows the plan's order
            raise RuntimeError(f"checkpoint layout expects {e.name!r}, got {row.qualname!r}")
        assert self.file is not None
        self.file.write(_bytes(filled))
        return {"device": "file", "dtype": row_dtype(row, self.dtype)}

    def _open_next(self) -> None:
        """Close the open file, open the next one: header, then its buffers."""
        if self.file is not None:
            self.file.close()
        shard = self.shards[self.next]
        self.file = open(self.tmp / self.files[self.next], "wb")  # noqa: SIM115
        self.next += 1
        self.file.write(_header(shard))
        for e in shard:
            if e.buffer is not None:
                self.file.write(_bytes(make_buffer(e.buffer, torch.device("cpu"), e.dtype)))
        self.pending = [e for e in shard if e.row is not None]

    def commit(self, report: InitReport) -> None:
        while self.next < len(self.shards):  # files left with buffers only
            self._open_next()
        if self.file is not None:
            self.file.close()
        aliases = {a: r.qualname for r in report.rows for a in r.aliases}
        aliases.update({a: s.qualname for s in self.specs if s.persistent for a in s.aliases})
        index = {
            "metadata": {
                "total_size": self.total,
                "aliases": aliases,
                "initlab": {"seed": report.seed,
                            "policy": report.policy.name if report.policy else None,
                            "dtype": None if self.dtype is None else str(self.dtype)},
            },
            "weight_map": {e.name: f for f, s in zip(self.files, self.shards, strict=True)
                           for e in s},
        }  # fmt: skip
        for name, content in _reports(report, index, self.files, self.dtype).items():
            (self.tmp / name).write_text(content)
        (self.tmp / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
        config = getattr(self.model, "config", None)
        if callable(getattr(config, "to_json_file", None)):  # a transformers model
            config.to_json_file(self.tmp / CONFIG_NAME)  # so that from_pretrained(dir) loads it
        old = self.out.with_name(f"{self.out.name}.old-{os.getpid()}")
        if self.overwrite and self.out.is_dir() and any(self.out.iterdir()):
            os.rename(self.out, old)  # the old checkpoint steps aside whole, then goes
        os.rename(self.tmp, self.out)  # atomic; replaces an empty folder, fails on a full one
        shutil.rmtree(old, ignore_errors=True)

    def abort(self) -> None:
        if self.file is not None:
            self.file.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def write_checkpoint(
    model: nn.Module,
    policy: PolicyLike,
    seed: int = 0,
    out_dir: str | Path = "checkpoint",
    *,
    dtype: torch.dtype | None = None,
    max_shard_bytes: int = 5 * 2**30,
    progress: bool = True,
    buffers: Mapping[str, BufferInit] | None = None,
    strict: bool = False,
    exclude: Iterable[str] = (),
    overwrite: bool = False,
) -> Path:
    """Initialise the meta-built ``model`` by ``policy`` straight into sharded safetensors.

    All or nothing: the files are written under ``<out_dir>.partial-<pid>`` and renamed to
    ``out_dir`` once complete; a failure removes them, a kill leaves only the partial name.

    Args:
        model: a model built on the meta device (``initlab.meta_build()`` or
            ``torch.device("meta")``); it stays on meta.
        policy: a Policy, preset name, policy file path or dict.
        seed: the seed of the per-parameter streams.
        out_dir: a new or empty folder (with ``overwrite``, a full one is replaced once the
            new checkpoint is complete).
        dtype: floating dtype of the parameters (None: as built); buffers keep their own.
        max_shard_bytes: the largest file size (a bigger single tensor gets its own file).
        progress: show a progress bar (rich) on the terminal.
        buffers: initialisers of buffers initlab does not know (see ``materialize``).
        strict, exclude: as for ``materialize`` (unmatched/excluded parameters raise).
        overwrite: replace a non-empty ``out_dir`` (its old files are removed after the new
            checkpoint is renamed in place).

    Returns:
        The path of the index file. Loading the files with ``load_checkpoint`` (or
        ``load_state_dict(..., assign=True)`` and re-tying) gives the tensors ``initialize``
        would have written.

    Example:
        >>> import tempfile, torch, initlab
        >>> from pathlib import Path
        >>> from torch import nn
        >>> with initlab.meta_build():
        ...     m = nn.Linear(8, 4)
        >>> out = Path(tempfile.mkdtemp()) / "ckpt"
        >>> index = initlab.write_checkpoint(m, "kaiming", 0, out, progress=False)
        >>> eager = nn.Linear(8, 4)
        >>> _ = initlab.initialize(eager, "kaiming", 0)
        >>> loaded = initlab.load_checkpoint(m, out)
        >>> torch.equal(loaded.weight, eager.weight), sorted(p.name for p in out.parent.iterdir())
        (True, ['ckpt'])
    """
    check_dtype(dtype, CheckpointError)
    if not isinstance(max_shard_bytes, int) or max_shard_bytes < 1:
        raise CheckpointError(f"max_shard_bytes must be a positive int, got {max_shard_bytes!r}")
    if sys.byteorder != "little":
        raise CheckpointError("safetensors stores little-endian data; this host is big-endian")
    out = Path(out_dir)
    _check_out(out, overwrite)
    try:
        check_on_meta(model, "write_checkpoint")
    except MaterializeError as e:
        raise CheckpointError(str(e)) from None
    target = SafetensorsWriter(model, out, dtype, max_shard_bytes, buffers, overwrite)
    execute(model, policy, seed, target, strict=strict, exclude=exclude, measure=False,
            progress=progress)  # fmt: skip
    return out / INDEX_NAME


def _reports(
    report: InitReport, index: dict[str, Any], files: list[str], dtype: torch.dtype | None
) -> dict[str, str]:
    data = report.to_dict()
    data["checkpoint"] = {"files": files, "total_size": index["metadata"]["total_size"],
                          "aliases": index["metadata"]["aliases"]}  # fmt: skip
    head = (f"# init report\n\n{len(files)} file(s), "
            f"{index['metadata']['total_size'] / 2**20:.1f} MiB, seed {report.seed}, "
            f"dtype {dtype or 'as built'}\n\n")  # fmt: skip
    return {"init_report.json": json.dumps(data, indent=2) + "\n",
            "init_report.md": head + report.to_markdown()}  # fmt: skip


def read_index(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """(folder, index dict) from a checkpoint folder or its index file."""
    p = Path(path)
    index_path = p / INDEX_NAME if p.is_dir() else p
    return index_path.parent, json.loads(index_path.read_text())


def iter_tensors(path: str | Path, device: str = "cpu") -> Iterator[tuple[str, Tensor]]:
    """(name, tensor) of every tensor in the checkpoint, one file at a time."""
    try:
        from safetensors.torch import load_file
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("reading checkpoints needs `pip install safetensors`") from e
    folder, index = read_index(path)
    for fname in dict.fromkeys(index["weight_map"].values()):
        yield from load_file(folder / fname, device=device).items()


def load_checkpoint(model: nn.Module, path: str | Path, *, device: str = "cpu") -> nn.Module:
    """Load a checkpoint folder into ``model`` (e.g. built on meta) with ``assign=True``.

    Tied names recorded in the index are re-tied to their first name's Parameter; buffers
    that are not persistent (not in the files) must already have storage.

    Args:
        model: the model to fill, with the checkpoint's parameter names (its tensors are
            replaced by the loaded ones, so a meta-built model gets real storage).
        path: the checkpoint folder written by :func:`write_checkpoint`.
        device: where the loaded tensors are placed.

    Returns:
        ``model``, loaded. :class:`CheckpointError` when the checkpoint and the model disagree
        on names.

    Example:
        >>> import tempfile, torch, initlab
        >>> from torch import nn
        >>> with initlab.meta_build():
        ...     m = nn.Linear(3, 2)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     _ = initlab.write_checkpoint(m, "kaiming", 0, f"{tmp}/ckpt", progress=False)
        ...     loaded = initlab.load_checkpoint(m, f"{tmp}/ckpt")
        >>> eager = nn.Linear(3, 2)
        >>> _ = initlab.initialize(eager, "kaiming", 0)
        >>> loaded.weight.device.type, torch.equal(loaded.weight, eager.weight)
        ('cpu', True)
    """
    _, index = read_index(path)
    aliases: dict[str, str] = index.get("metadata", {}).get("aliases", {})
    state = dict(iter_tensors(path, device))
    result = model.load_state_dict(state, assign=True, strict=False)
    missing = [k for k in result.missing_keys if k not in aliases]
    if missing or result.unexpected_keys:
        raise CheckpointError(
            f"checkpoint and model disagree: missing {missing}, unexpected {result.unexpected_keys}"
        )
    for alias, name in aliases.items():
        mod_name, _, attr = alias.rpartition(".")
        owner = model.get_submodule(mod_name)
        try:
            setattr(owner, attr, model.get_parameter(name))
        except AttributeError:
            owner._buffers[attr] = model.get_buffer(name)
    return model
