"""initlab.lab.results: the runs.jsonl store, its malformed lines and non-UTF-8 files."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from initlab.lab.results import MalformedLinesWarning, RunResult, load_results


def _line(entry: str, seed: int) -> str:
    metrics = {"train_loss": [1.0], "val_loss": [1.0], "val_acc": [0.5]}
    return RunResult(f"{entry}{seed}", entry, {}, seed, {}, metrics).to_json()


def test_malformed_lines_give_one_summary_warning(tmp_path: Path) -> None:
    good = [_line("a", 0), _line("a", 1), _line("b", 0)]
    text = "\n".join([good[0], "{not json", good[1], '{"run_id": 1}', "", good[2], "[1, 2"])
    (tmp_path / "runs.jsonl").write_text(text + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = load_results(tmp_path)
    assert [r.run_id for r in results] == ["a0", "a1", "b0"]
    assert len(caught) == 1 and caught[0].category is MalformedLinesWarning
    message = str(caught[0].message)
    assert message.startswith(
        f"{tmp_path / 'runs.jsonl'}: skipped 3 malformed lines (first: line 2"
    )
    assert "\n" not in message


def test_non_utf8_lines_are_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_bytes(_line("a", 0).encode() + b"\n\xff\xfe garbage\n")
    with pytest.warns(
        MalformedLinesWarning, match=r"skipped 1 malformed line \(first: line 2: not UTF-8"
    ):
        assert len(load_results(path)) == 1


def test_a_file_with_no_result_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "runs.jsonl"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ValueError) as e:
        load_results(tmp_path)
    assert str(e.value).startswith(f"{path}: none of its") and "\n" not in str(e.value)
    with pytest.raises(FileNotFoundError, match=r"no runs\.jsonl in"):
        load_results(tmp_path / "elsewhere")


def test_clean_file_warns_nothing(tmp_path: Path) -> None:
    (tmp_path / "runs.jsonl").write_text(_line("a", 0) + "\n" + _line("a", 0) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_results(tmp_path)) == 1
