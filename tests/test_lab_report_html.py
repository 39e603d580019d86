"""initlab.lab reports: the verdict first, the glossary, a clean header, readable reprs, and the
HTML report rendering in headless Chromium without console errors."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from initlab.cli import main
from initlab.lab.experiment import ComparisonResult
from initlab.lab.report_pages import write_report
from initlab.lab.stats import summarise

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]  # fmt: skip


@pytest.fixture
def report_dir(tmp_path: Path, lab_run) -> Path:
    runs = [lab_run("kaiming", s, 0.90 + 0.01 * s) for s in range(3)]
    runs += [lab_run("xavier", s, a) for s, a in enumerate((0.915, 0.895, 0.905))]  # noisy
    runs += [lab_run("uniform_rule", s, 0.60 + 0.02 * s) for s in range(3)]
    runs += [lab_run("zeros", s, 0.10) for s in range(3)]
    write_report(tmp_path, runs, summarise(runs))
    return tmp_path


def test_reports_open_with_the_verdict_and_explain_every_entry(report_dir: Path) -> None:
    summary = json.loads((report_dir / "summary.json").read_text())
    verdict = summary["verdict"]
    assert verdict["best"] == "kaiming" and verdict["tied"] == ["xavier"]
    assert verdict["worse"] == ["uniform_rule"] and list(verdict["failed"]) == ["zeros"]
    assert verdict["n_val"] == 400 and verdict["alpha"] == 0.05 and verdict["trustworthy"]
    md = (report_dir / "report.md").read_text()
    assert md.splitlines()[2] == f"**{verdict['text']}**"
    assert set(summary["glossary"]) == {"kaiming", "xavier", "uniform_rule", "zeros"}
    assert "| `uniform_rule` | W ~ U[-1/√fan_in, 1/√fan_in]: Var W = 1/(3 fan_in) |" in md
    html = (report_dir / "report.html").read_text()
    assert html.index('class="verdict"') < html.index("<h2>Entries</h2>") < html.index("<table")
    assert "W = 0: every unit computes the same" in html


def test_html_header_has_no_backticks_or_internal_settings(report_dir: Path) -> None:
    html = (report_dir / "report.html").read_text()
    header = html[html.index("<h1>") : html.index("<h2>")]
    assert "`" not in header and "image=" not in header and "limit=" not in header
    assert "eval_batch_size" not in header and "<code>mlp</code>" in header
    assert "1000 training and 400 validation examples, 10 classes, chance 10.0%" in header
    assert "training: optimizer sgd, lr 0.01, batch_size 32, epochs 2, momentum 0.9" in header


def test_reprs_are_short_summaries(lab_run) -> None:
    runs = [lab_run(e, s, 0.5 + 0.05 * k) for k, e in enumerate("abcdefg") for s in range(3)]
    res = ComparisonResult(runs, summarise(runs))
    text = repr(res)
    assert len(text) < 600 and text.count("\n") == 6 and "#1 g: final val acc 80.0%" in text
    assert "... 2 more (.stats)" in text
    assert res._repr_html_().startswith("<div><b>ComparisonResult: 7 entries x 3 seeds")
    assert "Verdict on final validation accuracy" in res._repr_html_()
    assert len(repr(res.stats[0])) < 120 and len(repr(res.verdict)) < 200


def test_cli_prints_the_verdict_last_and_the_glossary_in_help(tmp_path: Path) -> None:
    runner = CliRunner()
    help_text = runner.invoke(main, ["compare", "--help"]).output
    assert "--preset [depth|seeds]" in help_text
    assert "uniform_centered W ~ U[-0.5, 0.5)" in help_text
    args = ["compare", "--model", "mlp:widths=8", "--data", "synthetic:n=120,dim=4,classes=2",
            "--policy", "xavier,zeros", "--seeds", "2", "--epochs", "1", "--no-progress",
            "--out", str(tmp_path / "o")]  # fmt: skip
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    tail = " ".join(result.output.strip().splitlines()[-4:])
    assert "Verdict on final validation accuracy (2 seeds" in tail
    assert "no ranking is trustworthy" in tail
    config = json.loads((tmp_path / "o" / "runs.jsonl").read_text().splitlines()[0])["config"]
    assert config["optimizer"] == "sgd" and config["lr"] == 0.01  # the depth preset's
    seeds = runner.invoke(main, [*args[:-1], str(tmp_path / "s"), "--preset", "seeds"])
    config = json.loads((tmp_path / "s" / "runs.jsonl").read_text().splitlines()[0])["config"]
    assert seeds.exit_code == 0 and config["optimizer"] == "adam" and config["lr"] == 0.001


def _chromium_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if shutil.which(CHROMIUM) is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.mark.skipif(_chromium_missing() is not None, reason=str(_chromium_missing()))
def test_html_report_renders_in_headless_chromium(report_dir: Path) -> None:
    from playwright.sync_api import sync_playwright

    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto((report_dir / "report.html").as_uri())
            page.wait_for_function(
                "document.querySelectorAll('.plotly-graph-div .main-svg').length >= 3",
                timeout=30_000,
            )
            traces = page.evaluate(
                "Array.from(document.querySelectorAll('.plotly-graph-div'))"
                ".map(d => d.querySelectorAll('.scatterlayer .trace').length)"
            )
            # clicking an entry in the legend hides it
            item = page.locator("#initlab-fig-1 .legend .traces", has_text="zeros")
            item.locator(".legendtoggle").click()
            # plotly waits out its double-click delay before acting on a single click
            page.wait_for_function(
                "document.getElementById('initlab-fig-1').data"
                ".some(t => t.name === 'zeros' && t.visible === 'legendonly')",
                timeout=5_000,
            )
            hidden = page.evaluate(
                "document.getElementById('initlab-fig-1').data"
                ".filter(t => t.name === 'zeros').map(t => t.visible)"
            )
        finally:
            browser.close()
    assert errors == []
    assert [t > 0 for t in traces] == [True, True, True]
    assert traces[0] == 4  # one marker trace per entry in the dot plot
    assert "legendonly" in hidden
    assert all(re.match(r"^(file|data|about):", u) for u in requests), requests
