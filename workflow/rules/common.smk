# The profile: exactly one params file, validated before any job runs.
#
# Snakemake merges a --configfile into a workflow `configfile:` recursively, which would mix the
# demo's variants into another profile. So there is no `configfile:` directive: the profile is the
# one file given with --configfile, or params/demo.yaml when none is given.
import json
import os
from pathlib import Path

import yaml
from snakemake.utils import validate

from hgbench.config import SPEED_KEYS, ParamsError, as_dict, params_from_dict

DEFAULT_PARAMS = "params/demo.yaml"

_given = [str(p) for p in (workflow.overwrite_configfiles or [])]
if len(_given) > 1:
    raise ValueError(
        f"give one params profile with --configfile, not {len(_given)} ({', '.join(_given)}): "
        "profiles are complete experiments and are not merged"
    )
# Relative, so that the commands (and DVC's, which read params.yaml) do not depend on the checkout path.
PARAMS_FILE = os.path.relpath(_given[0]) if _given else DEFAULT_PARAMS
_file_config = yaml.safe_load(Path(PARAMS_FILE).read_text())
_overridden = bool(config) if not _given else config != _file_config
if _overridden:
    raise ValueError(
        f"--config overrides are not passed to the hgbench commands, which read {PARAMS_FILE}; "
        "copy the profile to params/<name>.yaml, edit it, and pass it with --configfile"
    )
config.update(_file_config)

validate(config, "../schemas/params.schema.yaml")
try:
    PARAMS = params_from_dict(config, PARAMS_FILE)
except ParamsError as exc:
    raise ValueError(str(exc)) from None

RUNS = [(e.dataset, e.variant, e.seed) for e in PARAMS.experiments]

# Every output of a profile lives under the profile's name, so that two profiles never overwrite
# each other or stand in for each other's results (demo and laptop both have a dataset called
# `synthetic`, of other sizes). dvc.yaml builds the same paths from `${profile}`.
PROFILE = PARAMS.profile
RAW, PROCESSED = f"data/raw/{PROFILE}", f"data/processed/{PROFILE}"
MODELS, RESULTS, METRICS = f"models/{PROFILE}", f"results/{PROFILE}", f"metrics/{PROFILE}"
REPORTS, LOGS, BENCHMARKS = f"reports/{PROFILE}", f"logs/{PROFILE}", f"benchmarks/{PROFILE}"


def _uses_gpu(device):
    if device == "auto":
        import torch

        return torch.cuda.is_available()
    return device == "cuda"


# Training and prediction hold the `gpu` resource only when they will run on a GPU, so that
# `--resources gpu=1` serialises GPU jobs but lets CPU-only runs (the demo) use every core.
GPUS_PER_JOB = 1 if _uses_gpu(PARAMS.device) else 0


wildcard_constraints:
    dataset=r"[a-z0-9][a-z0-9_-]*",
    variant=r"[a-z0-9][a-z0-9_.-]*",
    seed=r"\d+",


def run_dir(root, dataset, variant, seed):
    return f"{root}/{dataset}/{variant}/s{seed}"


def runs_of(dataset, root, name):
    """Paths of one per-run file for every experiment of a dataset."""
    return [f"{run_dir(root, d, v, s)}/{name}" for d, v, s in RUNS if d == dataset]


def section(*keys):
    """A JSON string of params sections: a rule's `params:` entry, so Snakemake reruns the rule
    when its part of the profile changes (rerun trigger `params`). The speed knobs of `train`
    (SPEED_KEYS: threads, workers, ...) are left out: they never change a result."""

    def get(wildcards):
        out = {}
        for key in keys:
            node = as_dict(PARAMS)
            for part in key.format(**wildcards).split("."):
                node = node[part]
            if key == "train":
                node = {k: v for k, v in node.items() if k not in SPEED_KEYS}
            out[key.format(**wildcards)] = node
        return json.dumps(out, sort_keys=True)

    return get
