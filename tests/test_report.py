"""report: summaries of a fake profile (CSVs, costs.csv, gallery.h5) → figures + one self-contained,
escaped HTML page with claims, model cards, gallery and provenance."""

from __future__ import annotations

import importlib.util
import re
from html.parser import HTMLParser
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import write_split
from hgbench import summarize as summarize_module
from hgbench.costs import collect_costs
from hgbench.gallery import build_gallery
from hgbench.joints import MPII_JOINTS
from hgbench.report import build_report
from hgbench.summarize import summarize, write_csv_atomic

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


BENCH = "s\th:m:s\tmax_rss\tmax_vms\n120.4\t0:02:00\t812.5\t2048\n"


def write_split_and_predictions(root: Path, params, dataset: str, results: Path, n: int = 7, crop: int = 64) -> Path:
    """A tiny processed valid.h5 (figure-like crops: a light body on a grey gradient) and a
    predictions.h5 for every run that has metrics, noisier for worse fake variants."""
    rng = np.random.default_rng(0)
    J = len(MPII_JOINTS)
    # a standing figure in crop px (MPII joint order), jittered per person
    base = np.array(
        [
            [26, 58],
            [27, 48],
            [28, 38],
            [36, 38],
            [37, 48],
            [38, 58],
            [32, 38],
            [32, 22],
            [32, 18],
            [32, 10],
            [20, 34],
            [22, 28],
            [26, 22],
            [38, 22],
            [42, 28],
            [44, 34],
        ],
        float,
    )
    joints = base + rng.normal(0, 1.5, (n, J, 2))
    affine = np.tile(np.array([[3.0, 0.0, 100.0], [0.0, 3.0, 50.0]]), (n, 1, 1))  # crop px → native
    native = joints * 3.0 + [100.0, 50.0]
    yy, xx = np.mgrid[0:crop, 0:crop]
    images = np.repeat((90 + xx + yy // 2)[None, ..., None], n, 0).repeat(3, -1).astype(np.uint8)
    for i in range(n):
        for x, y in joints[i]:
            images[i, max(int(y) - 2, 0) : int(y) + 3, max(int(x) - 2, 0) : int(x) + 3] = (230, 200, 170)
    data = root / "data" / "processed" / dataset
    data.mkdir(parents=True, exist_ok=True)
    write_split(
        data / "valid.h5",
        images=images,
        joints_image=native,
        missing=np.zeros((n, J), bool),
        normalizer=np.full(n, 30.0),
        crop_to_image=affine,
    )
    for e in params.experiments_for(dataset):
        run = results / dataset / e.variant / f"s{e.seed}"
        if (run / "metrics.json").is_file():
            with h5py.File(run / "predictions.h5", "w") as f:
                f["preds"] = native + rng.normal(0, 1, (n, J, 2)) * 30 * fake.QUALITY[e.variant] * rng.uniform(
                    0.3, 2, (n, 1, 1)
                )
    return data


def summarize_like_cli(params, dataset: str, root: Path, results: Path, models: Path) -> Path:
    """What ``hgbench summarize --data --benchmarks`` writes: tables, costs.csv, gallery.h5."""
    out = results / "summary" / dataset
    summarize(params, dataset, results, models, out)
    bench = root / "benchmarks"
    for rule in ("train", "predict"):
        (bench / rule / dataset / "hg1").mkdir(parents=True, exist_ok=True)
        (bench / rule / dataset / "hg1" / "s0.tsv").write_text(BENCH)
    data = write_split_and_predictions(root, params, dataset, results)
    write_csv_atomic(collect_costs(params, dataset, bench, models, results), out / "costs.csv")
    build_gallery(params, dataset, results, data, out / "gallery.h5")
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The fake profile summarised for 'synth' only ('mpii' has no summary) and reported (built once)."""
    tmp_path = tmp_path_factory.mktemp("report")
    params = fake.make_params()
    results, models = fake.write_fake_tree(tmp_path, params)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(summarize_module, "_describe_variant", fake.fake_describe)
        summarize_like_cli(params, "synth", tmp_path, results, models)
    out = build_report(params, results, tmp_path / "reports" / "index.html", params_file="params/tiny.yaml")
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
    assert {
        "synth_pckh_curve.png",
        "synth_training.png",
        "synth_stack_training.png",
        "synth_ablation.png",
        "synth_visibility.png",
        "synth_per_joint.png",
        "synth_gallery.png",
    } <= names
    assert not page.links, "the page must not load scripts or external stylesheets"
    assert not re.search(r"(src|href)=\"(https?:)?//", html), "external asset referenced"
    assert not list(out.parent.glob(".*.tmp")) and not list((out.parent / "figures").glob(".*.tmp"))


def test_tables_protocol_and_paper_rows(built):
    _, html = built
    page = parse(html)
    text = " ".join(" ".join(page.text).split())
    # paper tables (3) + per dataset (2): scores, runs, claims, ablations, cards + provenance software
    assert page.tables >= 3 + 5 * 2 + 1
    for cls in ("scores", "runs", "claims", "ablations", "cards"):
        assert html.count(f'<table class="{cls}">') == 2
    assert "Protocol: official" in text
    assert "inclusive" in text and "mean of neck and head top" in text and "14 joints" in text
    assert "paper, MPII test set" in text and "about 2 points lower" in text
    for number in ("98.2", "96.3", "91.2", "87.1", "90.1", "83.6", "90.9", "87.4", "87.8", "88.1", "99.0", "97.0"):
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


def test_score_tables_as_csv_and_latex_beside_the_page(built):
    out, html = built
    for dataset in ("synth", "mpii"):
        for ext in ("csv", "tex"):
            assert f'href="tables/{dataset}_scores.{ext}"' in html
            assert (out.parent / "tables" / f"{dataset}_scores.{ext}").is_file()
    frame = pd.read_csv(out.parent / "tables" / "synth_scores.csv")
    assert list(frame["variant"]) == ["hg1", "hg2", "evil", "paper"]
    assert set(frame["protocol"]) == {"official"} and set(frame["metric"]) == {"PCKh@0.5"}
    assert frame.loc[frame["variant"] == "paper", "Mean"].item() == 90.9
    hg1 = frame[frame["variant"] == "hg1"].iloc[0]
    page = parse(html)
    text = " ".join(page.text)
    assert f"{hg1['Mean']:.1f}" in text and 0 < hg1["Mean"] < 100
    tex = (out.parent / "tables" / "synth_scores.tex").read_text()
    assert tex.count(r"\\") == 5 and r"\begin{tabular}" in tex and "<script>" not in tex
    assert r"\textless{}script\textgreater{}" in tex and r"\$HG\$" in tex  # the evil label, escaped
    assert not list((out.parent / "tables").glob(".*.tmp"))


def test_missing_dataset_summary_is_reported_not_fatal(built):
    _, html = built
    section = html.split('id="ds-mpii"')[1]
    assert "Summary missing" in section
    assert "No figures" in section


def test_report_without_any_summary_is_refused(tmp_path):
    # One missing dataset is shown as missing (above); none at all is a wrong --results (the probe of
    # issue 16 found `hgbench report --results <typo>` writing an empty page with exit 0).
    params = fake.make_params()
    with pytest.raises(FileNotFoundError, match=r"results/summary: no summary of any dataset of profile"):
        build_report(params, tmp_path / "results", tmp_path / "site" / "index.html")
    assert not (tmp_path / "site").exists()


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


def section_of(html: str, dataset: str) -> str:
    return html.split(f'id="ds-{dataset}"')[1].split("<section id=")[0]


def test_runs_table_shows_bootstrap_cis_visibility_and_seed_spread(built):
    out, html = built
    pj = pd.read_csv(out.parent.parent / "results/summary/synth/per_joint.csv")
    row = pj.query("variant == 'hg1' and seed == 0 and metric == 'pckh@0.5'").iloc[0]
    runs = section_of(html, "synth").split('<table class="runs">')[1].split("</table>")[0]
    assert f"[{row.Mean_ci_low:.1f}, {row.Mean_ci_high:.1f}]" in runs
    assert f"[{row.ablation_ci_low:.1f}, {row.ablation_ci_high:.1f}]" in runs
    assert f"{row.visible:.1f}" in runs and f"{row.occluded:.1f}" in runs
    assert runs.count("<tr") == 1 + 5  # header + every run, the missing one included
    seeds = pd.read_csv(out.parent.parent / "results/summary/synth/seeds.csv")
    sd = seeds.query("variant == 'hg1' and metric == 'pckh@0.5' and quantity == 'Mean'")["std"].iloc[0]
    scores = section_of(html, "synth").split('<table class="scores">')[1].split("</table>")[0]
    assert f"{sd:.1f}" in scores


def test_model_cards_from_costs(built):
    _, html = built
    cards = section_of(html, "synth").split('<table class="cards">')[1].split("</table>")[0]
    assert "2 min 0 s" in cards and "Snakemake benchmark" in cards  # hg1: benchmark tsv
    assert "812" in cards  # peak RSS (MB)
    assert f"{120.4 / 7 * 1000:.2f}" in cards  # latency = predict job seconds / people predicted
    assert "training log (training loop only)" in cards  # hg2: no benchmark, log wall time
    assert "cpu (profile setting; not logged)" in cards


def test_gallery_and_provenance_sections(built):
    _, html = built
    synth = section_of(html, "synth")
    assert "figures/synth_gallery.png" in synth and "Gallery missing" not in synth
    assert "Gallery missing" in section_of(html, "mpii")
    prov = html.split('id="provenance"')[1]
    assert "params/tiny.yaml" in prov and "Resolved parameters" in prov and "<details>" in prov
    assert "snakemake --cores" in prov and "torch" in prov
    assert "commit <code>" in prov or "not a git checkout" in prov


def test_claims_table_renders_claims_csv(built):
    """The claims on the page are the rows of claims.csv (hgbench summarize decides them; tests/test_claims.py)."""
    out, html = built
    claims = pd.read_csv(out.parent.parent / "results/summary/synth/claims.csv")
    # synth: hg1 (1×1, all) vs hg2 (2×1, all) is no equal-capacity pair; evil has other features
    assert len(claims) == 6 and not claims["is_claim"].any()  # 3 pairs × (Mean, ablation)
    table = section_of(html, "synth").split('<table class="claims">')[1].split("</table>")[0]
    assert table.count("<tr") == 1 + len(claims)
    pair = claims.query("first == 'hg1' and second == 'hg2' and quantity == 'Mean'").iloc[0]
    assert f"[{pair.ci_low:.1f}, {pair.ci_high:.1f}]" in table and f"{pair['diff']:.1f}" in table
    assert "claims.csv" in section_of(html, "synth")
    # the verdict words of a pair the paper says nothing about name the higher variant by its label
    words = {"first higher": "HG higher", "second higher": "HG-Stacked-Int higher"}.get(pair.verdict, pair.verdict)
    assert words in table


def test_missing_claims_csv_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(summarize_module, "_describe_variant", fake.fake_describe)
    params = fake.make_params()
    results, models = fake.write_fake_tree(tmp_path, params)
    summarize(params, "synth", results, models, results / "summary" / "synth")
    (results / "summary" / "synth" / "claims.csv").unlink()
    html = build_report(params, results, tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    section = section_of(html, "synth")
    assert "Missing or unreadable summary tables" in section and "claims.csv" in section
    assert "no paired comparisons (claims.csv missing" in section


def test_a_claims_csv_whose_verdict_its_ci_does_not_support_is_refused(tmp_path, monkeypatch):
    # Found by the third probe: a verdict edited in claims.csv reached the page as it was.
    monkeypatch.setattr(summarize_module, "_describe_variant", fake.fake_describe)
    params = fake.make_params()
    results, models = fake.write_fake_tree(tmp_path, params)
    summarize(params, "synth", results, models, results / "summary" / "synth")
    path = results / "summary" / "synth" / "claims.csv"
    claims = pd.read_csv(path)
    row = claims.index[0]
    claims.loc[row, "verdict"] = "second higher" if claims.loc[row, "verdict"] != "second higher" else "first higher"
    claims.to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"claims.csv: the verdict .* does not follow from its 95 % CI"):
        build_report(params, results, tmp_path / "r" / "index.html")
    assert not (tmp_path / "r" / "index.html").exists()


def test_flic_dataset_shows_pck_and_the_papers_elbow_wrist(tmp_path, monkeypatch):
    raw = {
        **fake.PROFILE,
        "datasets": {
            **fake.PROFILE["datasets"],
            "flic": {"source": "flic", "input_res": 64, "output_res": 16, "crop_margin": 1.25},
        },
        "experiments": [{"dataset": "flic", "variant": "hg1", "seed": 0}],
    }
    params = fake.make_params(raw)
    folder = tmp_path / "results/summary/flic"
    folder.mkdir(parents=True)
    row = {
        "dataset": "flic",
        "variant": "hg1",
        "label": "HG",
        "seed": 0,
        "protocol": "flic",
        "metric": "pck@0.2",
        "Head": 90.0,
        "Shoulder": 95.0,
        "Elbow": 93.25,
        "Wrist": 88.5,
        "Hip": 80.0,
        "Knee": None,
        "Ankle": None,
        "Mean": 91.0,
        "ablation": None,
        "auc": 60.0,
        "status": "ok",
        "Mean_ci_low": 89.5,
        "Mean_ci_high": 92.4,
        "n_people": 1016,
        "visible": 92.0,
        "occluded": 70.0,
    }
    pd.DataFrame([row]).to_csv(folder / "per_joint.csv", index=False)
    html = build_report(params, tmp_path / "results", tmp_path / "r" / "index.html").read_text(encoding="utf-8")
    flic = section_of(html, "flic")
    scores = flic.split('<table class="scores">')[1].split("</table>")[0]
    assert "PCK@0.2 per joint group" in flic and "93.2" in scores and "88.5" in scores
    assert "paper, FLIC test set" in scores and "99.0" in scores and "97.0" in scores
    assert "torso diagonal" in flic and "1 of 1" in scores
    assert "[89.5, 92.4]" in flic
