"""Parameter and compute counts of a profile's variants (``hgbench describe``)."""

from __future__ import annotations

from .config import DatasetConfig, Params, VariantConfig
from .joints import joints_of
from .model import StackedHourglass, count_macs, count_parameters, model_config


def describe_variant(variant: VariantConfig, dataset: DatasetConfig) -> dict:
    """``{"variant", "params", "macs"}`` of one variant at the dataset's input resolution."""
    import torch

    with torch.device("meta"):
        net = StackedHourglass(model_config(variant, len(joints_of(dataset.layout))))
    return {"variant": variant.name, "params": count_parameters(net), "macs": count_macs(net, dataset.input_res)}


def describe(params: Params) -> list[dict]:
    """One row per (dataset, variant) of the profile's experiments, at the dataset's input size
    and joint count."""
    rows, seen = [], set()
    for exp in params.experiments:
        ds = params.datasets[exp.dataset]
        key = (exp.dataset, exp.variant)
        if key in seen:
            continue
        seen.add(key)
        v = params.variants[exp.variant]
        row = describe_variant(v, ds)
        row.update(
            dataset=exp.dataset,
            label=v.label,
            stacks=v.stacks,
            modules=v.modules,
            features=v.features,
            depth=v.depth,
            supervision=v.supervision,
            input_res=ds.input_res,
        )
        rows.append(row)
    return rows
