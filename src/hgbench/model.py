"""The stacked hourglass network of Newell, Yang and Deng (ECCV 2016), as a pure nn.Module.

Shape of the paper's model (``ModelConfig()``, 8 stacks × 1 module, 256 features, depth 4):
25.43 M parameters, 27.4 GMACs for one 256×256 image.

    >>> import torch
    >>> from hgbench.model import ModelConfig, StackedHourglass
    >>> net = StackedHourglass(ModelConfig(stacks=2, modules=1, features=64, depth=3))
    >>> net(torch.zeros(1, 3, 128, 128)).shape     # [B, outputs, J, H/4, W/4]
    torch.Size([1, 2, 16, 32, 32])

The forward pass returns every supervised output; which of them enter the loss is decided by the
training code (``supervision`` of the variant), not here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    """Architecture knobs.

    stacks: hourglasses in sequence. modules: residual modules at each level of an hourglass
    (and after it). features: channels inside the hourglasses. depth: 2× downsamplings inside one
    hourglass (4 in the paper: 64 → 4). inner_heads: the paper's HG-Int — one hourglass with extra
    prediction heads after upsampling at the two resolutions below the output.
    """

    stacks: int = 8
    modules: int = 1
    features: int = 256
    depth: int = 4
    joints: int = 16
    inner_heads: bool = False

    @property
    def outputs(self) -> int:
        """Number of heatmap sets forward() returns (axis 1 of its output)."""
        return self.stacks + (2 if self.inner_heads else 0)


def model_config(variant, joints: int = 16) -> ModelConfig:
    """The :class:`ModelConfig` a profile's variant builds (``variant``: a
    :class:`hgbench.config.VariantConfig`, or anything with its stacks/modules/features/depth/
    supervision attributes); ``joints``: 16 (MPII layout) or 11 (FLIC layout)."""
    return ModelConfig(
        stacks=variant.stacks,
        modules=variant.modules,
        features=variant.features,
        depth=variant.depth,
        joints=joints,
        inner_heads=variant.supervision == "inner",
    )


class Residual(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-1×1 (c/2) → BN-ReLU-3×3 (c/2) → BN-ReLU-1×1 (c).

    The 1×1 skip convolution exists only when the channel count changes, as in the Torch
    original; an always-built skip (as in one PyTorch port) would add 7.4 M dead parameters.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        mid = c_out // 2
        self.body = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(inplace=True),
            nn.Conv2d(c_in, mid, 1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, c_out, 1),
        )
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.skip(x)


def _residuals(channels: int, count: int) -> nn.Sequential:
    return nn.Sequential(*(Residual(channels, channels) for _ in range(count)))


class Hourglass(nn.Module):
    """One hourglass level; recursion builds the ``depth`` levels.

    ``head_levels`` are the levels (1 = the lowest) whose upsampled output gets a supervised
    1×1 prediction head; its heatmaps are remapped by a 1×1 convolution and added back to the
    features, like the heads between stacks.
    """

    def __init__(self, depth: int, features: int, modules: int, joints: int, head_levels: frozenset[int]):
        super().__init__()
        self.depth = depth
        self.up = _residuals(features, modules)
        self.down = _residuals(features, modules)
        if depth > 1:
            self.inner = Hourglass(depth - 1, features, modules, joints, head_levels)
        else:
            self.inner = _residuals(features, modules)
        self.after = _residuals(features, modules)
        self.head = None
        if depth in head_levels:
            self.head = nn.Conv2d(features, joints, 1)
            self.head_remap = nn.Conv2d(joints, features, 1)

    def forward(self, x: torch.Tensor, heatmaps: list[torch.Tensor]) -> torch.Tensor:
        low = self.down(F.max_pool2d(x, 2))
        low = self.inner(low, heatmaps) if self.depth > 1 else self.inner(low)
        out = self.up(x) + F.interpolate(self.after(low), scale_factor=2, mode="nearest")
        if self.head is not None:
            hm = self.head(out)
            heatmaps.append(hm)
            out = out + self.head_remap(hm)
        return out


def _conv_bn_relu(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class StackedHourglass(nn.Module):
    """Stacked hourglass network: images [B, 3, H, W] in [0, 1] → heatmaps [B, O, J, H/4, W/4].

    O = ``config.outputs``: one heatmap set per stack in order; with ``inner_heads`` the two
    inner heads (lower resolution, bilinearly upsampled to H/4) come before the final output.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        f = config.features
        # The paper's stem is 64 → 128 → 256 channels; it scales with `features` so that small
        # CPU variants keep the same proportions.
        c1, c2 = f // 4, f // 2
        self.stem = nn.Sequential(
            nn.Conv2d(3, c1, 7, stride=2, padding=3),
            nn.BatchNorm2d(c1),
            nn.ReLU(inplace=True),
            Residual(c1, c2),
            nn.MaxPool2d(2),
            Residual(c2, c2),
            Residual(c2, f),
        )
        heads = frozenset({config.depth - 1, config.depth - 2}) if config.inner_heads else frozenset()
        self.hourglasses = nn.ModuleList(
            Hourglass(config.depth, f, config.modules, config.joints, heads) for _ in range(config.stacks)
        )
        self.features = nn.ModuleList(
            nn.Sequential(_residuals(f, config.modules), _conv_bn_relu(f, f)) for _ in range(config.stacks)
        )
        self.heads = nn.ModuleList(nn.Conv2d(f, config.joints, 1) for _ in range(config.stacks))
        self.remap_features = nn.ModuleList(nn.Conv2d(f, f, 1) for _ in range(config.stacks - 1))
        self.remap_heatmaps = nn.ModuleList(nn.Conv2d(config.joints, f, 1) for _ in range(config.stacks - 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem(images)
        size = x.shape[-2:]
        outputs: list[torch.Tensor] = []
        for i in range(self.config.stacks):
            inner: list[torch.Tensor] = []
            y = self.features[i](self.hourglasses[i](x, inner))
            hm = self.heads[i](y)
            # Inner heads come out lowest resolution first.
            outputs.extend(F.interpolate(h, size=size, mode="bilinear", align_corners=False) for h in inner)
            outputs.append(hm)
            if i < self.config.stacks - 1:
                x = x + self.remap_features[i](y) + self.remap_heatmaps[i](hm)
        return torch.stack(outputs, dim=1)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (conv weights and biases, BN affine parameters)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, input_res: int) -> int:
    """Multiply-accumulates of convolutions for one ``input_res``² RGB image.

    Counts conv layers only (BN, ReLU, pooling, additions and upsampling are < 1 % and omitted),
    the usual convention of MAC counts for this network (e.g. the paper's and pose-hg-train's). Runs on the meta device, so it costs no compute.
    """
    macs = 0

    def hook(module: nn.Conv2d, _inputs, output):
        nonlocal macs
        k = module.kernel_size[0] * module.kernel_size[1]
        macs += output[0].numel() * (module.in_channels // module.groups) * k

    model = _meta_copy(model)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model(torch.empty(1, 3, input_res, input_res, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return macs


def _meta_copy(model: nn.Module) -> nn.Module:
    if isinstance(model, StackedHourglass):
        with torch.device("meta"):
            return StackedHourglass(model.config)
    return model
