"""The report in a real browser: headless Chromium loads reports/index.html from disk (offline).

Skipped where Chromium or Playwright is absent; `.ci/run` installs Debian's chromium so CI runs it.
Playwright only drives the system browser (no browser download). The screenshot is written to
``$HGBENCH_SCREENSHOT`` when set (``make test`` leaves it in the temp dir otherwise).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from hgbench import summarize as summarize_module
from hgbench.report import build_report

playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (make install has it)")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on PATH (apt-get install chromium)")

_spec = importlib.util.spec_from_file_location("_fake_report", Path(__file__).with_name("test_report.py"))
fake_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake_report)
fake = fake_report.fake


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    tmp_path = tmp_path_factory.mktemp("browser")
    params = fake.make_params()
    results, models = fake.write_fake_tree(tmp_path, params)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(summarize_module, "_describe_variant", fake.fake_describe)
        fake_report.summarize_like_cli(params, "synth", tmp_path, results, models)  # tables, costs, gallery
    return build_report(params, results, tmp_path / "reports" / "index.html", params_file="params/tiny.yaml")


def test_report_loads_cleanly_in_headless_chromium(report, tmp_path):
    messages, failed_requests = [], []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        # Offline: any request that is not a local file is an error (the report has no network assets).
        context = browser.new_context(offline=True)
        page = context.new_page()
        page.on("console", lambda m: messages.append((m.type, m.text)))
        page.on("pageerror", lambda e: messages.append(("pageerror", str(e))))
        page.on("requestfailed", lambda r: failed_requests.append(r.url))
        page.goto(report.resolve().as_uri(), wait_until="load")
        images = page.evaluate(
            "Array.from(document.images).map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}))"
        )
        tables = page.locator("table").count()
        headings = page.locator("h2").all_inner_texts()
        shot = Path(os.environ.get("HGBENCH_SCREENSHOT", tmp_path / "report.png"))
        page.screenshot(path=str(shot), full_page=True)
        browser.close()

    assert [m for m in messages if m[0] in ("error", "pageerror", "warning")] == []
    assert failed_requests == []
    assert len(images) >= 7 and [i["src"] for i in images if not i["ok"]] == []
    assert all(not i["src"].startswith(("http:", "https:", "//")) for i in images)
    assert tables >= 4
    assert any("synth" in h for h in headings) and any("Provenance" in h for h in headings)
    assert shot.stat().st_size > 10_000
