"""The flat-buffer RMSprop (issue 20): the same weights as PyTorch's, and last.pt files that move
between the two."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from hgbench.config import load_params
from hgbench.recipe import FlatRMSprop, flat_update, make_model, make_optimizer, set_lr, supervised_outputs, train_step

ROOT = Path(__file__).resolve().parents[1]
SMOKE = load_params(ROOT / "params/smoke.yaml")
BASE = SMOKE.variants["hg2x1"]
# Every supervision and a single stack: the cases where a parameter could miss a gradient.
VARIANTS = {
    "all": BASE,
    "last": dataclasses.replace(BASE, supervision="last"),
    "inner": dataclasses.replace(BASE, stacks=1, depth=3, supervision="inner"),  # HG-Int needs depth ≥ 3
    "one stack, two modules": dataclasses.replace(BASE, stacks=1, modules=2),
}


def _train(variant, flat: bool, steps: int, optimizer_state=None, start: int = 0):
    torch.manual_seed(0)
    net = make_model(variant, 16, torch.device("cpu"))
    opt = make_optimizer(SMOKE.train, net, flat=flat)
    if optimizer_state is not None:
        net.load_state_dict(optimizer_state[0])
        opt.load_state_dict(optimizer_state[1])
    sup = supervised_outputs(variant, net.config)
    for i in range(start, start + steps):
        if i == 3:
            set_lr(opt, SMOKE.train.lr * 0.2)  # the schedule changes lr between steps
        g = torch.Generator().manual_seed(i)
        x = torch.rand(4, 3, 64, 64, generator=g).contiguous(memory_format=torch.channels_last)
        t = torch.rand(4, 16, 16, 16, generator=g)
        train_step(net, opt, x, t, sup, "fp32")
    return net, opt


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_flat_rmsprop_gives_the_weights_and_state_of_torch_rmsprop(name):
    variant = VARIANTS[name]
    ref_net, ref_opt = _train(variant, flat=False, steps=6)
    net, opt = _train(variant, flat=True, steps=6)
    assert isinstance(opt, FlatRMSprop) and not isinstance(ref_opt, FlatRMSprop)
    ref, got = ref_net.state_dict(), net.state_dict()
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    ref_state, state = ref_opt.state_dict(), opt.state_dict()
    assert ref_state["param_groups"] == state["param_groups"]
    for i, s in ref_state["state"].items():
        assert torch.equal(s["square_avg"], state["state"][i]["square_avg"])
        assert torch.equal(s["step"], state["state"][i]["step"])
        assert state["state"][i]["square_avg"].untyped_storage().nbytes() == s["square_avg"].untyped_storage().nbytes()


def test_every_parameter_gets_a_gradient_so_a_zeroed_flat_gradient_changes_nothing():
    # FlatRMSprop updates every parameter; torch's skips one without a gradient. They agree only
    # because every parameter of every variant is reached by the loss.
    for variant in VARIANTS.values():
        net = make_model(variant, 16, torch.device("cpu"))
        sup = supervised_outputs(variant, net.config)
        out = net(torch.rand(2, 3, 64, 64).contiguous(memory_format=torch.channels_last))
        out[:, sup].sum().backward()
        assert all(p.grad is not None for p in net.parameters())


def test_last_pt_optimizer_state_moves_between_flat_and_torch_rmsprop():
    variant = VARIANTS["all"]
    straight, _ = _train(variant, flat=False, steps=6)
    for first, second in ((True, False), (False, True)):
        net, opt = _train(variant, flat=first, steps=3)
        saved = (
            {k: v.clone() for k, v in net.state_dict().items()},
            opt.state_dict(),
        )
        resumed, _ = _train(variant, flat=second, steps=3, optimizer_state=saved, start=3)
        ref, got = straight.state_dict(), resumed.state_dict()
        assert all(torch.equal(ref[k], got[k]) for k in ref), (first, second)


def test_flat_update_only_for_one_cpu_process_without_compile():
    cfg = SMOKE.train
    assert flat_update(cfg, torch.device("cpu"))
    assert not flat_update(cfg, torch.device("cpu"), world=2)
    assert not flat_update(dataclasses.replace(cfg, compile=True), torch.device("cpu"))
    assert not flat_update(cfg, torch.device("cuda"))
    adam = make_optimizer(
        dataclasses.replace(cfg, optimizer="adam"), make_model(BASE, 16, torch.device("cpu")), flat=True
    )
    assert isinstance(adam, torch.optim.Adam)  # only RMSprop has the flat form
