"""Training pieces: lr schedules, colour jitter, bf16 steps."""

import dataclasses

import numpy as np
import pytest
import torch

from conftest import ROOT
from hgbench.config import load_params
from hgbench.data.dataset import jitter_colours
from hgbench.recipe import make_model, make_optimizer, make_scheduler, step_schedule_lr, train_step
from test_resume import smoke_data  # noqa: F401 (fixture)

SMOKE = load_params(ROOT / "params/smoke.yaml")


def test_plateau_schedule_divides_lr_by_five_when_patience_epochs_in_a_row_bring_no_improvement():
    cfg = dataclasses.replace(SMOKE.train, lr=1e-3, lr_schedule="plateau", plateau_patience=2, lr_drop_factor=0.2)
    opt = make_optimizer(cfg, torch.nn.Linear(2, 2))
    sched = make_scheduler(cfg, opt)
    lrs = []
    for acc in [10, 20, 20, 19, 18, 30, 30, 30, 30]:
        sched.step(acc)
        lrs.append(opt.param_groups[0]["lr"])
    # 20, 19 are two epochs without beating 20 (allowed); the third (18) drops the lr.
    assert lrs[:4] == [1e-3] * 4
    assert lrs[4:8] == pytest.approx([2e-4] * 4)
    assert lrs[8] == pytest.approx(4e-5)


def test_step_schedule():
    cfg = dataclasses.replace(SMOKE.train, lr=1.0, lr_drop_epochs=(2, 4), lr_drop_factor=0.5)
    assert [step_schedule_lr(cfg, e) for e in range(5)] == [1.0, 1.0, 0.5, 0.5, 0.25]
    assert make_scheduler(cfg, make_optimizer(cfg, torch.nn.Linear(1, 1))) is None


def test_colour_jitter_scales_channels_and_clips():
    images = torch.full((2, 3, 4, 4), 0.5)
    out = jitter_colours(images, torch.tensor([[1.2, 1.0, 0.8], [3.0, 1.0, 1.0]], dtype=torch.float64))
    assert out[0, :, 0, 0].tolist() == pytest.approx([0.6, 0.5, 0.4])
    assert out[1, 0].max() == 1.0


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_train_step_learns_a_fixed_batch(precision):
    torch.manual_seed(0)
    model = make_model(SMOKE.variants["hg2x1"], 16, torch.device("cpu"))
    opt = make_optimizer(dataclasses.replace(SMOKE.train, lr=2e-3), model)
    images = torch.rand(4, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    targets = torch.rand(4, 16, 16, 16) * (torch.rand(4, 16, 16, 16) > 0.9)
    losses = [float(train_step(model, opt, images, targets, [0, 1], precision).sum()) for _ in range(8)]
    assert losses[-1] < 0.7 * losses[0]


def test_batches_read_from_the_file_equal_the_in_memory_ones(smoke_data):
    from hgbench.data.dataset import CropDataset, epoch_batches, iterate_batches

    disk, memory = CropDataset(smoke_data / "train.h5", in_memory=False), CropDataset(smoke_data / "train.h5")
    assert disk.images is None and memory.images is not None
    batches = epoch_batches(len(disk), 8, seed=3, epoch=1)
    assert sorted(np.concatenate(batches).tolist()) == list(range(24))
    for (a, ja, ma), (b, jb, mb) in zip(iterate_batches(disk, batches, workers=0), iterate_batches(memory, batches, 0)):
        assert torch.equal(a, b) and torch.equal(ma, mb)
        torch.testing.assert_close(ja, jb, rtol=0, atol=0, equal_nan=True)  # missing joints are NaN
    with pytest.raises(RuntimeError, match="cannot read images rows"):
        disk.batch(np.array([99]))


def test_the_multi_tensor_optimizer_step_gives_the_weights_of_the_per_parameter_loop():
    """make_optimizer uses foreach=True for speed; on CPU it must not change a single weight."""
    import torch

    from hgbench.recipe import make_optimizer

    v = SMOKE.variants["hg2x1"]
    results = []
    for foreach in (True, False):
        torch.manual_seed(0)
        net = make_model(v, 16, torch.device("cpu"))
        opt = make_optimizer(SMOKE.train, net)
        if not foreach:
            opt = type(opt)(net.parameters(), **{**opt.defaults, "foreach": False})
        assert opt.defaults["foreach"] is foreach
        g = torch.Generator().manual_seed(1)
        for _ in range(3):
            images, targets = torch.rand(2, 3, 64, 64, generator=g), torch.rand(2, 16, 16, 16, generator=g)
            train_step(net, opt, images.contiguous(memory_format=torch.channels_last), targets, [0, 1], "fp32")
        results.append(net.state_dict())
    assert all(torch.equal(results[0][k], results[1][k]) for k in results[0])


def test_a_deferred_nonfinite_check_reports_at_the_next_check_point():
    """GPU runs collect non-finite losses on the device (no host sync per step) and report them at
    the run's check points; the same logic, forced on here on the CPU."""
    import dataclasses

    from hgbench.recipe import NonFiniteLoss, build_recipe, compile_mode

    ds, v = SMOKE.datasets["smoke"], SMOKE.variants["hg2x1"]
    recipe = build_recipe(ds, v, SMOKE.train, 16, 0, torch.device("cpu"))
    assert recipe.defer_checks is False  # on a CPU every step is checked before it is applied
    recipe.defer_checks = True
    r = ds.input_res
    images, targets = torch.rand(2, 3, r, r), torch.zeros(2, 16, r // 4, r // 4)
    recipe.step(images, targets)
    recipe.raise_if_nonfinite()  # a finite step: nothing to report
    recipe.step(images * float("nan"), targets)  # not raised here ...
    with pytest.raises(NonFiniteLoss, match="nan or inf"):
        recipe.raise_if_nonfinite()  # ... but at the check point
    recipe.raise_if_nonfinite()  # and reported once
    assert compile_mode(True) is None and compile_mode("reduce-overhead") == "reduce-overhead"
    assert dataclasses.replace(SMOKE.train, compile="reduce-overhead").compile == "reduce-overhead"


def test_compile_accepts_the_torch_modes_and_nothing_else(tmp_path):
    import yaml

    from hgbench.config import ParamsError, load_params

    raw = yaml.safe_load((ROOT / "params/smoke.yaml").read_text())
    for value, ok in ((True, True), ("reduce-overhead", True), ("max-autotune", True), ("fast", False), (1, False)):
        raw["train"]["compile"] = value
        path = tmp_path / "p.yaml"
        path.write_text(yaml.safe_dump(raw))
        if ok:
            assert load_params(path).train.compile == value
        else:
            with pytest.raises(ParamsError, match="train.compile"):
                load_params(path)
