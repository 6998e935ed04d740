# The profile: exactly one params file, checked before any job runs. It is, in this order,
#   - the one file given with --configfile (it replaces the default profile, never merges into it);
#   - the config a host workflow passes when it imports this one as a module
#     (`module hg: snakefile: ".../workflow/Snakefile"; config: config`), which must be the
#     content of one of the host's config files (config/config.yaml: a copy of a profile);
#   - else params/demo.yaml beside this workflow.
# Snakemake merges a --configfile into a workflow `configfile:` recursively, which would mix the
# demo's variants into another profile, so this workflow has no `configfile:` directive. The
# hgbench commands read the params file themselves (configuration flows one way), hence `--config`
# overrides are refused. Nothing here imports hgbench or torch (profile.smk says why).
import json
import os
import shutil
import subprocess

from snakemake.exceptions import WorkflowError


include: "profile.smk"


SCHEMA = workflow.source_path("../schemas/params.schema.yaml")
DEFAULT_PARAMS = os.path.normpath(
    workflow.current_basedir.join("../../params/demo.yaml").get_path_or_uri(
        secret_free=False
    )
)


def shown(path):
    """``path`` relative to the working directory when inside it, else absolute: the commands
    (and DVC's, which read params.yaml) do not depend on where the checkout is."""
    relative = os.path.relpath(path)
    return os.path.abspath(path) if relative.startswith("..") else relative


def host_configfile(host_config):
    """The host workflow's config file that holds exactly ``host_config``, or None.

    Each file is read with read_profile's loader before the comparison, so that anchors and
    aliases are refused at the first one: Snakemake's own loader keeps a "billion laughs" file
    small (every alias is the same list again), but comparing it walked all 387 M values (13 s).
    """
    for path in workflow.configfiles:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError):
            continue
        if read_yaml(text, shown(str(path))) == host_config:
            return str(path)
    return None


def choose_profile():
    """``(params file, its checked content)`` (see the top of this file)."""
    given = [str(p) for p in workflow.overwrite_configfiles]
    if len(given) > 1:
        raise ProfileError(
            f"give one params profile with --configfile, not {len(given)} "
            f"({', '.join(given)}): profiles are complete experiments and are not merged"
        )
    if workflow.config_settings.config:
        raise ProfileError(
            "--config overrides are not passed to the hgbench commands, which read the "
            "params file; copy the profile to params/<name>.yaml, edit it, and pass it "
            "with --configfile"
        )
    if given:
        path = shown(given[0])
        raw = read_profile(path, SCHEMA)
        if config != raw:
            others = ", ".join(
                str(f) for f in workflow.configfiles if str(f) != given[0]
            )
            raise ProfileError(
                f"{path} was merged into the workflow's config file ({others}); a profile "
                "is a complete experiment: add --replace-workflow-config, or copy the "
                "profile to config/config.yaml"
            )
        return path, raw
    if config:
        path = host_configfile(config)
        if path is None:
            raise ProfileError(
                "the config passed to the hgbench workflow is no profile file's content; "
                'give the module the content of one: configfile: "config/config.yaml" '
                "(a copy of params/<profile>.yaml) and config: config"
            )
        path = shown(path)
        return path, read_profile(path, SCHEMA)
    path = shown(DEFAULT_PARAMS)
    return path, read_profile(path, SCHEMA)


try:
    PARAMS_FILE, PROFILE_RAW = choose_profile()
except ProfileError as exc:
    # One line naming the file and key (Snakemake adds where it was raised); no job has run.
    raise WorkflowError(str(exc)) from None
# as --configfile would have set it (the default profile too: the report shows the config)
config.update(PROFILE_RAW)

# The profile with hgbench's defaults: the `params:` JSON of the rules is built from it.
PARAMS = profile_view(PROFILE_RAW)
TRAIN = PARAMS["train"]
RUNS = [(e["dataset"], e["variant"], e["seed"]) for e in PARAMS["experiments"]]
DATASETS = sorted(PARAMS["datasets"])

# Every output of a profile lives under the profile's name, so that two profiles never overwrite
# each other or stand in for each other's results (demo and laptop both have a dataset called
# `synthetic`, of other sizes). dvc.yaml builds the same paths from `${profile}`. The paths are
# relative: a host workflow that imports this one gets them in its own working directory.
PROFILE = PARAMS["profile"]
RAW, PROCESSED = f"data/raw/{PROFILE}", f"data/processed/{PROFILE}"
MODELS, RESULTS, METRICS = (
    f"models/{PROFILE}",
    f"results/{PROFILE}",
    f"metrics/{PROFILE}",
)
REPORTS, LOGS, BENCHMARKS = (
    f"reports/{PROFILE}",
    f"logs/{PROFILE}",
    f"benchmarks/{PROFILE}",
)


def gpu_visible():
    """Whether a CUDA GPU is visible here, as torch.cuda.is_available() would say, without
    importing torch (seconds, and absent from a Snakemake-only environment)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return False
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    try:
        listed = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return listed.returncode == 0 and "GPU " in listed.stdout


# Training and prediction hold the `gpu` resource only when they will run on a GPU, so that
# `--resources gpu=1` serialises GPU jobs but lets CPU-only runs (the demo) use every core.
# `device: auto` is decided here, where Snakemake runs (docs/scale-out.md: use `cuda` on a cluster).
ON_GPU = PARAMS["device"] == "cuda" or (PARAMS["device"] == "auto" and gpu_visible())
GPUS_PER_JOB = 1 if ON_GPU else 0


def runtime_of(estimate):
    """A rule's `runtime` (minutes), from profile.smk's estimate for the job's dataset."""
    return lambda wildcards, attempt: estimate(PROFILE_RAW, wildcards.dataset, attempt)


def mem_mb_of(estimate):
    """A rule's `mem_mb`, from profile.smk's estimate for the job's dataset and variant."""
    return lambda wildcards, attempt: estimate(
        PROFILE_RAW, wildcards.dataset, wildcards.variant, ON_GPU, attempt
    )


wildcard_constraints:
    dataset=r"[a-z0-9][a-z0-9_-]*",
    variant=r"[a-z0-9][a-z0-9_.-]*",
    seed=r"\d+",


def run_dir(root, dataset, variant, seed):
    return f"{root}/{dataset}/{variant}/s{seed}"


def runs_of(dataset, root, name):
    """Paths of one per-run file for every experiment of a dataset."""
    return [f"{run_dir(root, d, v, s)}/{name}" for d, v, s in RUNS if d == dataset]


# Everything `hgbench summarize` writes for a dataset; the tables go into `snakemake --report`.
SUMMARY_FILES = [
    "per_joint.csv",
    "curves.csv",
    "ablations.csv",
    "training.csv",
    "variants.csv",
    "seeds.csv",
    "paired.csv",
    "paired_pooled.csv",
    "claims.csv",
    "costs.csv",
    "gallery.h5",
]


def summary_outputs():
    """The summarize rule's outputs (wildcard `dataset`), every table tagged for the report."""
    outputs = []
    for name in SUMMARY_FILES:
        path = f"{RESULTS}/summary/{{dataset}}/{name}"
        if name.endswith(".csv"):
            path = report(
                path,
                caption="../report/summary_table.rst",
                category="{dataset}",
                subcategory="Tables",
                labels={"table": name.removesuffix(".csv")},
            )
        outputs.append(path)
    return outputs


# The figures `hgbench report` draws per dataset, reports/<profile>/figures/<dataset>_<stem>.png
# (hgbench/report/build.py; only those with data are drawn), and their names in the report.
FIGURES = {
    "pckh_curve": "PCK curve",
    "training": "training curves",
    "stack_training": "training curves per output",
    "ablation": "ablation chart",
    "visibility": "visible vs occluded joints",
    "per_joint": "per joint group",
    "gallery": "gallery",
}


def figure_patterns():
    """One pattern per dataset (names may hold `_`, as stems do) giving wildcards dataset and
    figure, for report(directory(...), patterns=...)."""
    stems = "|".join(FIGURES)
    return [f"{{dataset,{d}}}_{{figure,{stems}}}.png" for d in DATASETS]


def section(*keys):
    """A JSON string of params sections: a rule's `params:` entry, so Snakemake reruns the rule
    when its part of the profile changes (rerun trigger `params`). The speed knobs of `train`
    (SPEED_KEYS: threads, workers, ...) are left out: they never change a result."""

    def get(wildcards):
        out = {}
        for key in keys:
            node = PARAMS
            for part in key.format(**wildcards).split("."):
                node = node[part]
            if key == "train":
                node = {k: v for k, v in node.items() if k not in SPEED_KEYS}
            out[key.format(**wildcards)] = node
        return json.dumps(out, sort_keys=True)

    return get
