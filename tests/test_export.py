"""hgbench export: ONNX (dynamic batch, opset in the metadata) and safetensors + JSON config,
both checked against the PyTorch model; infer reads the safetensors export."""

from __future__ import annotations

import json
import pickle
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from hgbench.checkpoint import CheckpointError
from hgbench.cli import main
from hgbench.export import ONNX_OPSET, export_onnx, export_safetensors
from hgbench.inference import CONFIG_FORMAT, load_model
from hgbench.joints import MPII_FLIP, MPII_JOINTS
from hgbench.model import ModelConfig, StackedHourglass
from test_infer import INPUT_RES, OUTPUT_RES, hgbench, model_pt, write_model  # noqa: F401 (fixture)

TOLERANCE = 1e-4  # max abs heatmap difference, fp32


@pytest.fixture(scope="module")
def reference(model_pt):  # noqa: F811
    return load_model(model_pt)


def random_images(batch: int, seed: int = 1) -> torch.Tensor:
    return torch.rand(batch, 3, INPUT_RES, INPUT_RES, generator=torch.Generator().manual_seed(seed))


def test_onnx_matches_pytorch_at_any_batch_size_and_records_its_opset(model_pt, reference, tmp_path):  # noqa: F811
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    out, diff = export_onnx(model_pt, tmp_path / "hg.onnx")
    assert diff is not None and diff <= TOLERANCE
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert session.get_inputs()[0].shape[0] == "batch"  # the dynamic axis
    for batch in (1, 3):
        x = random_images(batch)
        got = session.run(["heatmaps"], {"images": x.numpy()})[0]
        with torch.no_grad():
            want = reference(x).numpy()
        assert got.shape == (batch, 2, len(MPII_JOINTS), OUTPUT_RES, OUTPUT_RES)
        assert np.abs(got - want).max() <= TOLERANCE
    proto = onnx.load(str(out))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [ONNX_OPSET]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["onnx_opset"] == str(ONNX_OPSET)
    config = json.loads(meta["hgbench_config"])
    assert config["onnx_opset"] == ONNX_OPSET and config["input_res"] == INPUT_RES
    assert config["joint_names"] == list(MPII_JOINTS) and config["flip_permutation"] == list(MPII_FLIP)


def test_safetensors_loads_without_pickle_or_hgbench_and_matches_pytorch(model_pt, reference, tmp_path, monkeypatch):  # noqa: F811
    from safetensors.torch import load_file

    weights, config_file = export_safetensors(model_pt, tmp_path / "hg.safetensors")
    assert config_file == tmp_path / "hg.json"
    config = json.loads(config_file.read_text())
    assert config["format"] == CONFIG_FORMAT
    for key in (
        "model_config",
        "joint_names",
        "input_res",
        "output_res",
        "crop_margin",
        "flip_permutation",
        "hourglass_adjust",
    ):
        assert key in config
    assert (config["input_res"], config["output_res"], config["crop_margin"]) == (INPUT_RES, OUTPUT_RES, 1.25)

    def no_pickle(*_a, **_k):
        raise AssertionError("pickle / torch.load used")

    monkeypatch.setattr(torch, "load", no_pickle)
    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "Unpickler", no_pickle)
    # what a deployment does: the config and the weights, the model class, nothing else
    net = StackedHourglass(ModelConfig(**config["model_config"])).eval()
    net.load_state_dict(load_file(str(weights)))
    x = random_images(2)
    with torch.no_grad():
        want = reference(x)
        assert (net(x) - want).abs().max().item() <= TOLERANCE
        loaded = load_model(weights)  # hgbench's loader takes the same path
        assert (loaded(x) - want).abs().max().item() <= TOLERANCE
    assert loaded.info.joint_names == MPII_JOINTS and loaded.info.flip_permutation == MPII_FLIP


def test_safetensors_without_its_json_uses_the_embedded_config(model_pt, tmp_path):  # noqa: F811
    weights, config_file = export_safetensors(model_pt, tmp_path / "hg.safetensors", crop_margin=1.5)
    config_file.unlink()
    assert load_model(weights).info.crop_margin == 1.5


def test_a_json_from_another_export_beside_the_safetensors_is_refused(model_pt, tmp_path):  # noqa: F811
    weights, config_file = export_safetensors(model_pt, tmp_path / "hg.safetensors", crop_margin=1.5)
    _, other = export_safetensors(model_pt, tmp_path / "other.safetensors", crop_margin=1.25)
    config_file.write_bytes(other.read_bytes())  # e.g. copied over by hand
    with pytest.raises(CheckpointError, match=r"hg.json does not match the config embedded in .*crop_margin"):
        load_model(weights)
    config_file.unlink()  # the fix the message gives
    assert load_model(weights).info.crop_margin == 1.5


def test_infer_reads_the_safetensors_export_and_gives_the_same_joints(model_pt, tmp_path, capsys):  # noqa: F811
    image = tmp_path / "in" / "p.png"
    image.parent.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 70, 3), dtype=np.uint8)).save(image)
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(model_pt),
                "--format",
                "safetensors",
                "--out",
                str(tmp_path / "hg.safetensors"),
            ]
        )
        == 0
    )
    assert "config to" in capsys.readouterr().out
    docs = []
    for checkpoint, out in ((model_pt, "a"), (tmp_path / "hg.safetensors", "b")):
        assert (
            main(
                [
                    "infer",
                    "--checkpoint",
                    str(checkpoint),
                    "--images",
                    str(image),
                    "--out",
                    str(tmp_path / out),
                    "--device",
                    "cpu",
                ]
            )
            == 0
        )
        docs.append(json.loads((tmp_path / out / "p.json").read_text()))
    assert docs[0]["people"] == docs[1]["people"]
    assert docs[1]["model"]["variant"] == "hg2x1" and docs[1]["model"]["checkpoint"].endswith("hg.safetensors")


def test_export_cli_onnx(model_pt, tmp_path):  # noqa: F811
    pytest.importorskip("onnxruntime")
    proc = hgbench("export", "--checkpoint", str(model_pt), "--format", "onnx", "--out", str(tmp_path / "m.onnx"))
    assert proc.returncode == 0, proc.stderr
    assert f"opset {ONNX_OPSET}, dynamic batch" in proc.stdout and "max abs heatmap difference" in proc.stdout
    assert (tmp_path / "m.onnx").is_file()


def test_export_errors_are_one_line(model_pt, tmp_path, capsys, monkeypatch):  # noqa: F811
    assert (
        main(["export", "--checkpoint", str(model_pt), "--format", "safetensors", "--out", str(tmp_path / "hg.bin")])
        == 2
    )
    assert "give a .safetensors path" in capsys.readouterr().err
    assert (
        main(
            [
                "export",
                "--checkpoint",
                str(tmp_path / "none.pt"),
                "--format",
                "safetensors",
                "--out",
                str(tmp_path / "x.safetensors"),
            ]
        )
        == 2
    )
    assert "none.pt not found" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the 'export' extra were not installed
    assert main(["export", "--checkpoint", str(model_pt), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 2
    assert capsys.readouterr().err.strip() == (
        "hgbench export --format onnx needs the 'export' extra: pip install 'hgbench[export]'"
    )
    assert not list(tmp_path.iterdir())


def test_a_foreign_json_beside_a_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    from hgbench.checkpoint import CheckpointError

    net = write_model(tmp_path / "m.pt")
    save_file({k: v.contiguous() for k, v in load_model(net).state_dict().items()}, str(tmp_path / "w.safetensors"))
    (tmp_path / "w.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CheckpointError, match="not an hgbench model config"):
        load_model(tmp_path / "w.safetensors")
    (tmp_path / "w.json").unlink()
    with pytest.raises(CheckpointError, match="no model config"):
        load_model(tmp_path / "w.safetensors")
