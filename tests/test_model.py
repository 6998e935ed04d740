import pytest
import torch

from hgbench.model import ModelConfig, StackedHourglass, count_macs, count_parameters


def meta_model(**kw):
    with torch.device("meta"):
        return StackedHourglass(ModelConfig(**kw))


@pytest.mark.parametrize(
    "stacks, modules, params_m, gmacs",
    # Analytic counts mirroring pose-hg-train's hg.lua (skip conv only when channels change).
    [
        (8, 1, 25.43, 27.4),
        (4, 2, 24.87, 25.2),
        (2, 4, 24.59, 24.0),
        (1, 8, 24.45, 23.5),
        (2, 1, 6.57, 8.3),
        (1, 1, 3.43, 5.2),
    ],
)
def test_paper_parameter_and_mac_counts(stacks, modules, params_m, gmacs):
    net = meta_model(stacks=stacks, modules=modules)
    assert count_parameters(net) / 1e6 == pytest.approx(params_m, abs=0.005)
    assert count_macs(net, 256) / 1e9 == pytest.approx(gmacs, abs=0.06)  # table rounds to 0.1


def test_forward_shape_and_outputs():
    net = StackedHourglass(ModelConfig(stacks=3, modules=1, features=16, depth=2, joints=16))
    out = net(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 3, 16, 16, 16)


def test_inner_heads_add_two_outputs_at_full_resolution():
    cfg = ModelConfig(stacks=1, modules=1, features=16, depth=3, inner_heads=True)
    out = StackedHourglass(cfg)(torch.rand(1, 3, 64, 64))
    assert cfg.outputs == 3 and out.shape == (1, 3, 16, 16, 16)
    # The inner heads cost only their 1x1 convolutions: "a slight difference" in parameters.
    plain = count_parameters(StackedHourglass(ModelConfig(stacks=1, modules=1, features=16, depth=3)))
    extra = count_parameters(StackedHourglass(cfg)) - plain
    assert extra == 2 * (16 * 16 + 16 + 16 * 16 + 16)


def test_no_dead_parameters_every_parameter_gets_a_gradient():
    net = StackedHourglass(ModelConfig(stacks=2, modules=1, features=16, depth=2))
    net(torch.rand(2, 3, 64, 64)).sum().backward()
    dead = [n for n, p in net.named_parameters() if p.grad is None]
    assert dead == []


def test_stacks_feed_forward_later_stacks_depend_on_earlier_heads():
    torch.manual_seed(0)
    net = StackedHourglass(ModelConfig(stacks=2, modules=1, features=16, depth=2)).eval()
    x = torch.rand(1, 3, 64, 64)
    before = net(x)[:, 1].clone()
    with torch.no_grad():
        net.heads[0].bias += 1.0  # changes the first stack's heatmaps only
    after = net(x)
    assert not torch.allclose(before, after[:, 1])
