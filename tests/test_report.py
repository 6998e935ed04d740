"""report: summary CSVs of a fake profile → figures + one self-contained, escaped HTML page."""

from __future__ import annotations

import importlib.util
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from hgbench import summarize as summarize_module
from hgbench.report import build_report
from hgbench.summarize import summarize

_spec = importlib.util.spec_from_file_location("_fake_runs", Path(__file__).with_name("test_summarize.py"))
fake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fake)


class _Page(HTMLParser):
    """Collects <img> attributes, table count and the visible text of a page."""

    def __init__(self):
        super().__init__()
        self.images, self.tables, self.links, self.text = [], 0, [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs)
        elif tag == "table":
            self.tables += 1
        elif tag in ("link", "script"):
            self.links.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The fake profile summarised for 'synth' only ('mpii' has no summary) and reported (built once)."""
    tmp_path = tmp_path_factory.mktemp("report")
    params = fake.make_params()
    results, models = fake.write_fake_tree(tmp_path, params)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(summarize_module, "_describe_variant", fake.fake_describe)
        summarize(params, "synth", results, models, results / "summary" / "synth")
    out = build_report(params, results, tmp_path / "reports" / "index.html")
    return out, out.read_text(encoding="utf-8")


def test_page_and_figures_exist(built):
    out, html = built
    assert out.is_file()
    page = parse(html)
    assert page.images, "no figures on the page"
    for img in page.images:
        assert img["src"].startswith("figures/") and img["src"].endswith(".png")
        assert (out.parent / img["src"]).is_file(), img["src"]
        assert img.get("alt"), f"{img['src']} has no alt text"
    names = {Path(i["src"]).name for i in page.images}
    assert {"synth_pckh_curve.png", "synth_training.png", "synth_stack_training.png",
            "synth_ablation.png", "synth_per_joint.png"} <= names
    assert not page.links, "the page must not load scripts or external stylesheets"
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "external asset referenced"
    assert not list(out.parent.glob(".*.tmp")) and not list((out.parent / "figures").glob(".*.tmp"))


def test_tables_protocol_and_paper_rows(built):
    _, html = built
    page = parse(html)
    text = " ".join(" ".join(page.text).split())
    # paper tables (3) + per dataset: scores, ablations, variants (2 datasets)
    assert page.tables == 3 + 3 * 2
    for cls in ("scores", "ablations", "variants"):
        assert html.count(f'<table class="{cls}">') == 2
    assert "Protocol: official" in text
    assert "inclusive" in text and "mean of neck and head top" in text and "14 joints" in text
    assert "paper, MPII test set" in text and "about 2 points lower" in text
    for number in ("98.2", "96.3", "91.2", "87.1", "90.1", "83.6", "90.9", "87.4", "87.8", "88.1",
                   "99.0", "97.0"):
        assert number in text, number
    assert "not comparable to MPII" in text
    assert "2 of 2" in text  # hg1: both seeds
    assert "1 of 2" in text  # hg2: seed 1 has no metrics
    assert "no metrics (run missing)" in text and "training log missing" in text
    assert "Tiny test report" in text and "tiny fake profile for tests" in text


def test_labels_are_escaped(built):
    _, html = built
    assert "<script>" not in html
    assert "&lt;script&gt;alert(" in html


def test_missing_dataset_summary_is_reported_not_fatal(built):
    _, html = built
    section = html.split('id="ds-mpii"')[1]
    assert "Summary missing" in section
    assert "No figures" in section


def test_report_without_any_summary(tmp_path):
    params = fake.make_params()
    out = build_report(params, tmp_path / "results", tmp_path / "site" / "index.html")
    html = out.read_text(encoding="utf-8")
    assert html.count("Summary missing") == 2
    assert "<img" not in html


def test_unreadable_table_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(summarize_module, "_describe_variant", fake.fake_describe)
    params = fake.make_params()
    results, models = fake.write_fake_tree(tmp_path, params)
    summarize(params, "mpii", results, models, results / "summary" / "mpii")
    (results / "summary" / "mpii" / "per_joint.csv").write_text("garbage\n1\n")
    (results / "summary" / "mpii" / "curves.csv").unlink()
    html = build_report(params, results, tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    section = html.split('id="ds-mpii"')[1]
    assert "Missing or unreadable summary tables" in section and "per_joint.csv" in section
    assert "curves.csv" in section
    assert "0 of 1" in section  # no scores without per_joint.csv
    assert "figures/mpii_training.png" in section  # the training log is still shown
