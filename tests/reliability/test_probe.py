"""Issue 16's fresh hand probe (docs/reliability.md 3s-3w, 6g-6i): what it found, kept fixed.

Each case was first tried by hand on a finished smoke run; the test repeats it in this process
(``hgbench.cli.main``; fast) and checks the contract: one line on stderr, ``hgbench <stage>:
error: <file or key>: <what is wrong>; <the fix>``, exit status 2, nothing written or replaced.
"""

from __future__ import annotations

import json
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import safetensors.torch
from PIL import Image

from hgbench import cli, infer

from .conftest import SMOKE_FILE, tree_bytes


def refused(capsys, argv: list, *needles: str, warned: bool = False) -> str:
    """``hgbench ARGV`` exits 2 with one ``hgbench <stage>: error:`` line naming every needle (after
    one-line warnings, where ``warned``)."""
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse's usage errors
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    if warned:
        lines = err.splitlines(keepends=True)
        assert all(line.startswith(f"hgbench {argv[0]}: warning: ") for line in lines[:-1]), err
        err = lines[-1]
    assert err.count("\n") == 1 and err.startswith(f"hgbench {argv[0]}") and ": error: " in err, err
    assert "Traceback" not in err and ".tmp" not in err and "\x1b" not in err, err
    for needle in needles:
        assert needle in err, (needle, err)
    return err.strip()


# -- 3s: numeric flags of the subcommands, past their bounds -----------------------------------

FLAGS = {  # name: (argv up to the flag, flag, value, what the message says)
    "bench train --threads (segfaulted)": (
        ["bench", "train", "--variant", "hg2x1"],
        "--threads",
        "1000000",
        "outside [1, 1024]",
    ),
    "bench train --steps 0": (["bench", "train", "--variant", "hg2x1"], "--steps", "0", "outside [1, 100000]"),
    "bench train --steps 10**12": (["bench", "train", "--variant", "hg2x1"], "--steps", str(10**12), "outside"),
    "bench train --warmup -1": (["bench", "train", "--variant", "hg2x1"], "--warmup", "-1", "outside [0, 100000]"),
    "bench train --batch 10**8 (1.9 TB)": (
        ["bench", "train", "--variant", "hg2x1"],
        "--batch",
        "100000000",
        "outside [1, 1024]",
    ),
    "bench data --batches 10**9": (["bench", "data", "--data", "x.h5"], "--batches", str(10**9), "outside"),
    "bench data --batch 0 (ZeroDivisionError)": (["bench", "data", "--data", "x.h5"], "--batch", "0", "outside"),
    "bench data --workers 10**6": (["bench", "data", "--data", "x.h5"], "--workers", str(10**6), "outside [0, 128]"),
    "bench data --threads 0": (["bench", "data", "--data", "x.h5"], "--threads", "0", "outside"),
    "train --seed 10**30 (overflow)": (["train"], "--seed", str(10**30), "outside [0, 4294967295]"),
    "train --seed -1": (["train"], "--seed", "-1", "outside"),
    "train --seed x": (["train"], "--seed", "x", "'x' is not an integer"),
    "fetch --retries -1": (["fetch"], "--retries", "-1", "outside [0, 100]"),
    "fetch --backoff nan": (["fetch"], "--backoff", "nan", "nan is outside [0, 3600]"),
    "fetch --backoff inf": (["fetch"], "--backoff", "inf", "outside"),
    "prepare --workers -3": (["prepare"], "--workers", "-3", "outside [1, 128]"),
    "prepare --workers 10**6 (a million processes)": (["prepare"], "--workers", str(10**6), "outside"),
    "infer --batch-size 10**12": (["infer"], "--batch-size", str(10**12), "outside [1, 1024]"),
    "infer --min-score nan": (["infer"], "--min-score", "nan", "outside [0, 100]"),
}


@pytest.mark.parametrize("case", sorted(FLAGS))
def test_a_numeric_flag_past_its_bound_is_refused_in_one_line(case, capsys):
    head, flag, value, said = FLAGS[case]
    err = refused(capsys, [*head, flag, value], f"argument {flag}: ", said)
    assert err.endswith(f"see `hgbench {' '.join(head[:2] if head[0] == 'bench' else head[:1])} --help`"), err


def test_a_usage_error_is_one_line(capsys):
    refused(
        capsys,
        ["infer", "--checkpoint", "m.pt", "--images", "a.jpg", "--out", "o", "--device", "gpu"],
        "invalid choice",
    )
    with pytest.raises(SystemExit) as exit_:
        cli.main([])
    assert exit_.value.code == 2
    assert (
        capsys.readouterr().err == "hgbench: error: the following arguments are required: STAGE; see `hgbench --help`\n"
    )


# -- 3t: hgbench export --opset --------------------------------------------------------------


def test_export_refuses_an_opset_it_cannot_write_before_tracing(reference_run, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from hgbench.export import MIN_OPSET, max_opset

    model = reference_run / "model.pt"
    for opset in (7, max_opset() + 1, -1):  # before: 669 lines of traced graph on stdout
        err = refused(
            capsys,
            ["export", "--checkpoint", model, "--format", "onnx", "--out", tmp_path / "m.onnx", "--opset", opset],
        )
        assert f"--opset {opset}: this export writes opsets {MIN_OPSET} to {max_opset()}" in err
    assert not list(tmp_path.iterdir())
    for opset in (MIN_OPSET, max_opset()):  # both ends of the range export and verify
        assert (
            cli.main(
                [
                    "export",
                    "--checkpoint",
                    str(model),
                    "--format",
                    "onnx",
                    "--out",
                    str(tmp_path / f"{opset}.onnx"),
                    "--opset",
                    str(opset),
                ]
            )
            == 0
        )
    assert f"ONNX (opset {max_opset()}" in capsys.readouterr().out


# -- 3u: hgbench infer: images, people and crops past their bounds ------------------------------


def png_header(path: Path, width: int, height: int) -> Path:
    """A PNG that claims ``width`` × ``height`` px (its data is one short row)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 301)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def photo(smoke_raw, tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    return Path(shutil.copy(next(iter(sorted((smoke_raw / "images").iterdir()))), folder / "p.jpg"))


def test_infer_refuses_an_image_too_large_to_decode(reference_run, tmp_path, capsys):
    big = png_header(tmp_path / "big.png", 100_000, 100_000)  # before: "unexpected DecompressionBombError (bug)"
    err = refused(
        capsys,
        ["infer", "--checkpoint", reference_run / "model.pt", "--images", big, "--out", tmp_path / "o"],
        str(big),
    )
    assert "more than 179 Mpx" in err and "downscale it" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "entry, said",
    [
        ([0, 0, 1e308, 1e308], "more than 100 times the image's longer side"),  # before: OverflowError (bug)
        ({"center": [40, 40], "scale": 1e12}, "more than 100 times the image's longer side"),  # the same
        ([[0, 0, 50, 50]] * 1001, "1001 people, more than the 1000"),  # 200,000: over 60 s and gigabytes
    ],
)
def test_infer_refuses_people_past_their_bounds(reference_run, photo, tmp_path, capsys, entry, said):
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({photo.name: entry}))
    argv = ["infer", "--checkpoint", reference_run / "model.pt", "--images", photo, "--boxes", boxes]
    refused(capsys, [*argv, "--out", tmp_path / "o"], str(boxes), said, "fix the ")
    assert not (tmp_path / "o").exists()


def test_a_crop_margin_past_its_bound_is_refused_by_export_and_by_infer(reference_run, photo, tmp_path, capsys):
    model = reference_run / "model.pt"
    for margin in ("1e300", "nan", "-1"):  # before: written; infer then failed as a bug, or cut 12800-px crops
        refused(
            capsys,
            [
                "export",
                "--checkpoint",
                model,
                "--format",
                "safetensors",
                "--out",
                tmp_path / "m.safetensors",
                "--crop-margin",
                margin,
            ],
            "outside [1, 2]",
        )
    assert not list(tmp_path.glob("m.*"))
    assert (
        cli.main(
            ["export", "--checkpoint", str(model), "--format", "safetensors", "--out", str(tmp_path / "m.safetensors")]
        )
        == 0
    )
    side = tmp_path / "m.json"
    config = json.loads(side.read_text())
    weights = safetensors.torch.load_file(str(tmp_path / "m.safetensors"))
    for margin in (200.0, -1.0):  # the config edited by hand, beside the weights and inside them
        edited = json.dumps({**config, "crop_margin": margin})
        side.write_text(edited)
        safetensors.torch.save_file(weights, str(tmp_path / "m.safetensors"), metadata={"hgbench_config": edited})
        refused(
            capsys,
            ["infer", "--checkpoint", tmp_path / "m.safetensors", "--images", photo, "--out", tmp_path / "o"],
            f"crop_margin {margin} is outside [1, 2]",
        )
    assert not (tmp_path / "o").exists()


# -- 3v: messages that named a temporary file, gave the wrong fix or none -------------------------


def test_an_operating_system_error_names_the_final_path_and_a_fix(smoke_data, reference_run, photo, tmp_path, capsys):
    valid = smoke_data / "valid.h5"
    preds = tmp_path / "p.h5"
    assert (
        cli.main(
            [
                "predict",
                "--params",
                str(SMOKE_FILE),
                "--checkpoint",
                str(reference_run / "model.pt"),
                "--data",
                str(valid),
                "--out",
                str(preds),
            ]
        )
        == 0
    )
    capsys.readouterr()
    evaluate = ["evaluate", "--ground-truth", valid, "--predictions", preds, "--out"]
    (tmp_path / "folder.json").mkdir()  # before: "Is a directory: '…/.folder.json.3cf671fz.tmp' -> '…'"
    refused(
        capsys, [*evaluate, tmp_path / "folder.json"], f"{tmp_path / 'folder.json'}: is a folder, not a file; remove it"
    )
    (tmp_path / "file").write_text("x")  # before: "[Errno 17] File exists: '…/file'"
    refused(
        capsys, [*evaluate, tmp_path / "file" / "m.json"], f"{tmp_path / 'file'}: exists but is not a folder; remove it"
    )
    infer_ = ["infer", "--checkpoint", reference_run / "model.pt", "--images", photo, "--out", tmp_path / "file"]
    refused(capsys, infer_, f"{tmp_path / 'file'}: exists but is not a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder.json", "p.h5", "photos"]  # no temporary left


def test_messages_name_the_right_fix(smoke_data, tmp_path, capsys, monkeypatch):
    from hgbench import gpus

    monkeypatch.setattr(gpus, "physical_gpu_count", lambda *a: 0)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    # before: "… needs 1 GPU(s) but this machine has 0; lower train.devices …" (no such key in infer)
    err = refused(
        capsys,
        ["infer", "--checkpoint", tmp_path / "m.pt", "--images", tmp_path, "--out", tmp_path / "o", "--device", "cuda"],
        "use --device cpu",
    )
    assert "train.devices" not in err
    valid = smoke_data / "valid.h5"
    (tmp_path / "metrics.json").write_text("{}")
    evaluate = ["evaluate", "--out", tmp_path / "m.json"]
    # before: a JSON given as predictions was "truncated or corrupt? Delete it"
    refused(
        capsys,
        [*evaluate, "--ground-truth", valid, "--predictions", tmp_path / "metrics.json"],
        "give a .h5 or .mat file here",
    )
    refused(
        capsys,
        [*evaluate, "--ground-truth", smoke_data, "--predictions", valid],
        "is a folder; give the .h5 or .mat file itself",
    )
    refused(
        capsys,
        [*evaluate, "--ground-truth", valid, "--predictions", tmp_path / "none.h5"],
        "no such file; check the path",
    )
    refused(
        capsys,
        [*evaluate, "--ground-truth", valid, "--predictions", valid],
        "no 'preds' array",
        "give a predictions file",
    )
    # before: "cannot read the MATLAB file (…); re-download it"
    refused(
        capsys,
        [
            "export-mpii",
            "--predictions",
            valid,
            "--annotations",
            valid,
            "--split",
            "valid",
            "--out",
            tmp_path / "s.mat",
        ],
        "not the MPII annotation file",
        "mpii_human_pose_v1_u12_1.mat",
    )
    assert not (tmp_path / "m.json").exists() and not (tmp_path / "s.mat").exists()


# -- 6g: outputs that are inputs, or given twice ----------------------------------------------------


def test_an_output_that_is_an_input_or_another_output_is_refused(reference_run, smoke_data, tmp_path, capsys):
    model = Path(shutil.copy(reference_run / "model.pt", tmp_path / "model.pt"))
    before = model.read_bytes()
    # before: model.pt replaced by the ONNX file, exit 0
    refused(
        capsys,
        ["export", "--checkpoint", model, "--format", "onnx", "--out", model],
        "is the checkpoint being exported",
    )
    assert model.read_bytes() == before
    # before: metrics.json replaced by the headline (or the curve), exit 0
    valid = smoke_data / "valid.h5"
    for flag in ("--headline", "--curve"):
        refused(
            capsys,
            [
                "evaluate",
                "--ground-truth",
                valid,
                "--predictions",
                valid,
                "--out",
                tmp_path / "m.json",
                flag,
                tmp_path / "m.json",
            ],
            f"{flag} {tmp_path / 'm.json'} is also given as --out",
        )
    # before: the landing page replaced the report
    refused(
        capsys,
        [
            "report",
            "--params",
            SMOKE_FILE,
            "--results",
            tmp_path,
            "--out",
            tmp_path / "r.html",
            "--index",
            tmp_path / "r.html",
        ],
        "--index",
        "is also --out",
    )
    # before: the split list replaced by the submission file
    split = tmp_path / "split.csv"
    split.write_text("image_index,person_index\n0,0\n")
    refused(
        capsys,
        [
            "export-mpii",
            "--predictions",
            valid,
            "--annotations",
            valid,
            "--split",
            "valid",
            "--valid-split",
            split,
            "--out",
            split,
        ],
        "is an input of this export",
    )
    assert split.read_text() == "image_index,person_index\n0,0\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt", "split.csv"]


def test_summarize_refuses_an_out_that_would_replace_its_inputs(tmp_path, capsys, monkeypatch):
    """``atomic_dir`` swaps the summary folder in whole: ``--out results/smoke`` deleted every run's
    results, ``--out .`` would have replaced the project."""
    (tmp_path / "results" / "smoke" / "hg2x1" / "s0").mkdir(parents=True)
    (tmp_path / "results" / "smoke" / "hg2x1" / "s0" / "metrics.json").write_text("{}")
    (tmp_path / "models").mkdir()
    (tmp_path / "data" / "processed").mkdir(parents=True)
    (tmp_path / "a-file").write_text("x")
    before = tree_bytes(tmp_path)
    monkeypatch.chdir(tmp_path)
    argv = [
        "summarize",
        "--params",
        SMOKE_FILE,
        "--dataset",
        "smoke",
        "--results",
        "results",
        "--models",
        "models",
        "--out",
    ]
    refused(capsys, [*argv, "results"], "--out results is or holds the --results folder results")
    refused(capsys, [*argv, "."], "--out . is or holds the --results folder")
    refused(capsys, [*argv, "models"], "the --models folder")
    refused(capsys, [*argv, "data"], "holds the folder 'processed', so it is no summary folder")
    refused(capsys, [*argv, "a-file"], "is a file, not a summary folder")
    assert tree_bytes(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == [
        "a-file",
        "data",
        "models",
        "results",
    ]


# -- 6h: the gallery reads each run's own predictions ------------------------------------------------


def test_the_gallery_refuses_another_run_s_predictions(smoke_data, reference_run, tmp_path, capsys):
    results, models = tmp_path / "results", tmp_path / "models"
    data = Path(shutil.copytree(smoke_data, tmp_path / "data"))
    assert (
        cli.main(
            ["prepare", "--params", str(SMOKE_FILE), "--dataset", "smoke", "--split", "samples", "--out", str(data)]
        )
        == 0
    )
    own = results / "smoke" / "hg2x1" / "s0"  # reference_run is smoke/hg2x1/s0
    argv = ["--params", SMOKE_FILE, "--checkpoint", reference_run / "model.pt", "--data"]
    assert (
        cli.main(
            [
                "predict",
                *map(str, argv),
                str(data / "valid.h5"),
                str(data / "samples.h5"),
                "--out",
                str(own / "predictions.h5"),
                str(own / "samples_predictions.h5"),
            ]
        )
        == 0
    )
    summarize = [
        "summarize",
        "--params",
        SMOKE_FILE,
        "--dataset",
        "smoke",
        "--results",
        results,
        "--models",
        models,
        "--data",
        data,
    ]
    assert cli.main([*map(str, summarize), "--out", str(tmp_path / "ok")]) == 0  # the run's own files: fine
    other = results / "smoke" / "hg1x2" / "s0"
    for name in ("predictions.h5", "samples_predictions.h5"):  # copied into another run's folder
        other.mkdir(parents=True, exist_ok=True)
        shutil.copy(own / name, other / name)
        capsys.readouterr()
        refused(
            capsys,
            [*summarize, "--out", tmp_path / "summary"],
            f"{other / name} holds the predictions of run smoke/hg2x1/s0, not smoke/hg1x2/s0",
            "rerun `hgbench predict`",
            warned=True,  # the runs' metrics.json and log.csv are missing here
        )
        (other / name).unlink()
    assert not (tmp_path / "summary").exists()


# -- 6i: hgbench infer on a 16-bit PNG ------------------------------------------------------------------


def test_a_16_bit_png_is_read_as_the_image_it_holds(reference_run, photo, tmp_path, capsys):
    """Pillow's ``convert("RGB")`` clips 16-bit grey at 255: the photo became a white square and
    infer predicted on it, exit 0."""
    grey = np.asarray(Image.open(photo).convert("L"))
    wide = tmp_path / "in" / "grey16.png"
    wide.parent.mkdir()
    Image.fromarray(grey.astype(np.uint16) * 257).save(wide)
    assert Image.open(wide).mode.startswith("I")
    narrow = tmp_path / "in8" / "grey16.png"
    narrow.parent.mkdir()
    Image.fromarray(grey).save(narrow)
    assert np.array_equal(np.asarray(infer.read_image(wide)[0]), np.asarray(infer.read_image(narrow)[0]))
    joints = []
    for folder in ("in", "in8"):
        argv = [
            "infer",
            "--checkpoint",
            reference_run / "model.pt",
            "--images",
            tmp_path / folder,
            "--out",
            tmp_path / f"{folder}-out",
        ]
        assert cli.main([str(a) for a in argv]) == 0
        joints.append(json.loads((tmp_path / f"{folder}-out" / "grey16.json").read_text())["people"][0]["joints"])
    assert joints[0] == joints[1]


def _fails_in_several_lines(args) -> int:
    raise ValueError("\x1b[31mx.h5\x1b[0m: cannot be read (a library's message\n  over several lines\n); delete it")


def _crashes_in_several_lines(args) -> int:
    raise KeyError("first line\nsecond line")


def test_an_error_of_several_lines_or_with_ansi_codes_is_one_line(monkeypatch, capsys):
    monkeypatch.setattr(cli, "cmd_describe", _fails_in_several_lines)
    err = refused(capsys, ["describe", "--params", SMOKE_FILE])
    assert err == "hgbench describe: error: x.h5: cannot be read (a library's message over several lines ); delete it"
    long = "\n".join(["x.h5: cannot be read"] + [f"detail {i} " + "y" * 80 for i in range(30)] + ["; delete it"])
    monkeypatch.setattr(cli, "cmd_describe", lambda args: (_ for _ in ()).throw(ValueError(long)))
    err = refused(capsys, ["describe", "--params", SMOKE_FILE])
    assert err == "hgbench describe: error: x.h5: cannot be read … ; delete it"  # past ONE_LINE_MAX: the fix kept
    monkeypatch.setattr(cli, "cmd_describe", _crashes_in_several_lines)
    monkeypatch.delenv(cli.DEBUG_ENV, raising=False)
    assert cli.main(["describe", "--params", str(SMOKE_FILE)]) == cli.EXIT_BUG
    assert capsys.readouterr().err.count("\n") == 1


# -- 6m: found by the fourth probe ----------------------------------------------------------------


def test_a_file_that_is_no_split_is_not_called_a_damaged_split(smoke_data, tmp_path, capsys):
    # Before: "cannot open as HDF5, the file is truncated or corrupt …; delete metrics.json and
    # rerun hgbench prepare": the wrong fix, and a harmful one.
    other = tmp_path / "metrics.json"
    other.write_text('{"format": "hgbench-metrics/1"}')
    err = refused(capsys, ["bench", "data", "--data", other, "--batches", "2"], "is not an HDF5 file")
    assert "delete" not in err and "train.h5/valid.h5/samples.h5" in err
    cut = tmp_path / "valid.h5"  # a damaged split keeps its fix
    cut.write_bytes((smoke_data / "valid.h5").read_bytes()[:4])
    assert "delete" in refused(capsys, ["bench", "data", "--data", cut, "--batches", "2"], "truncated or corrupt")


def test_fetch_never_replaces_a_file_or_a_foreign_folder_given_as_out(tmp_path, capsys):
    # Before: the synthetic dataset replaced --out whole, whatever it was (a user's file, a folder
    # of other files): deleted with exit 0.
    folder, file = tmp_path / "mine", tmp_path / "notes.txt"
    folder.mkdir()
    (folder / "keep.txt").write_text("keep")
    file.write_text("x")
    for out, what in ((folder, "holds no synthetic dataset"), (file, "is a file")):
        refused(capsys, ["fetch", "--params", SMOKE_FILE, "--dataset", "smoke", "--out", out], what, "another --out")
    assert (folder / "keep.txt").read_text() == "keep" and file.read_text() == "x"
