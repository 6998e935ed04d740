# The params profile as the workflow reads it: loaded, checked and turned into what the rules need,
# without importing hgbench (or torch), so that a Snakemake without hgbench installed (per-rule
# conda environments, a host workflow importing this one as a module) can parse the workflow.
#
# Plain Python, no Snakemake directives, so that the tests run this file on their own: every
# check gives hgbench.config's message, word for word (tests/reliability/test_bad_params.py), and
# profile_view() is hgbench.config.as_dict(params_from_dict(raw)), so that the rules' `params:`
# JSON, a rerun trigger, does not move (tests/test_workflow.py).
import math
import os

import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

SPEED_KEYS = ("threads", "workers", "checkpoint_every", "devices", "compile")
"""hgbench.config.SPEED_KEYS (a test keeps them equal): train keys that change how fast a run goes,
never what it learns, hence no rerun trigger."""

# Training/validation people of the real datasets (docs/data.md); synthetic sets give theirs.
REAL_PEOPLE = {"mpii": (22246, 2958), "flic": (3987, 1016)}
IMAGES_PER_S = 10.0
"""Training throughput assumed when a profile gives no resources.images_per_s."""


class ProfileError(ValueError):
    """A profile is unusable; the message names the file, the key and the fix."""


def read_profile(path, schema):
    """The profile at ``path`` as a dict, checked like hgbench.config.load_params checks it."""
    if not os.path.isfile(path):
        raise ProfileError(
            f"params file {path} not found; profiles live in params/*.yaml "
            "(e.g. params/demo.yaml)"
        )
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(
            f"{path}: cannot be read as a text file ({exc}); profiles are YAML files"
        ) from None
    raw = read_yaml(text, path)
    check_profile(raw, path, schema)
    return raw


# The YAML loader: a copy of hgbench.config's (read_yaml and what it uses), which this file
# cannot import; tests/reliability/test_yaml_loader.py checks that both refuse every broken file
# with the same message.


class _AliasRefused(yaml.YAMLError):
    """An anchor (``&name``) or alias (``*name``) met by _NoAliasLoader."""

    def __init__(self, event):
        super().__init__(event.anchor)
        self.name, self.line = event.anchor, event.start_mark.line + 1


class _NoAliasLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses anchors and aliases at the first one, before composing: a
    few nested aliases (a "billion laughs") expand a 1 KB file into billions of values.
    """

    def compose_node(self, parent, index):
        event = self.peek_event()
        # an AliasEvent, or a node carrying &name
        if getattr(event, "anchor", None) is not None:
            raise _AliasRefused(event)
        return super().compose_node(parent, index)


def read_yaml(text, source):
    """hgbench.config.read_yaml: the document as plain values, or ProfileError in one line."""
    loader = None
    try:
        # (reading starts here: a control character is refused)
        loader = _NoAliasLoader(text)
        node = loader.get_single_node()
        duplicate = _duplicate_key(node)
        raw = None if node is None or duplicate else loader.construct_document(node)
    except _AliasRefused as exc:
        raise ProfileError(_alias_message(source, exc.name, exc.line)) from None
    except yaml.YAMLError as exc:
        raise ProfileError(
            f"{source}: not valid YAML: {_yaml_problem(exc, text)}; correct the file there"
        ) from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise ProfileError(
            f"{source}: not valid YAML: {str(exc).split(';')[0]}; no params value is that "
            "long"
        ) from None
    except RecursionError:
        raise ProfileError(
            f"{source}: not valid YAML: nested too deeply to read; a profile is a few "
            "levels deep"
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    if duplicate:
        key, first, second = duplicate
        # YAML keeps the last value silently, so a pasted second `lr:` would quietly win.
        where = (
            f"on line {first}" if first == second else f"(lines {first} and {second})"
        )
        raise ProfileError(
            f"{source}: invalid params key '{key}': given twice {where}; keep one"
        )
    return raw


def _alias_message(source, name, line):
    return (
        f"{source}: not valid params YAML at line {line}: anchors and aliases (&{name}, "
        f"*{name}) are refused (a few nested aliases expand to billions of values); write "
        f"the value out instead of *{name} and drop &{name}"
    )


def _yaml_problem(exc, text):
    """PyYAML's error in one line: the problem and its line."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if getattr(exc, "context", None):  # "while parsing a flow sequence", ...
        problem = f"{exc.context}, {problem}"
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"{problem} (line {mark.line + 1})"
    position = getattr(exc, "position", None)  # a ReaderError gives an offset
    if isinstance(position, int):
        return f"{problem} (line {text.count(chr(10), 0, position) + 1})"
    return problem


def _duplicate_key(node, path=()):
    """``(dotted key, first line, second line)`` of the first key given twice in one mapping."""
    if isinstance(node, yaml.MappingNode):
        seen = {}
        for key_node, value in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key is not None and key in seen:
                return ".".join(map(str, path + (key,))), seen[key], line
            seen[key] = line
            found = _duplicate_key(value, path + (key,))
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found = _duplicate_key(item, path + (i,))
            if found:
                return found
    return None


def check_profile(raw, source, schema):
    """Raise ProfileError with hgbench.config's message for the first invalid key of ``raw``."""
    if not isinstance(
        raw, dict
    ):  # (snakemake.utils.validate checks dicts and data frames only)
        raise ProfileError(_schema_message(raw, source, schema))
    try:
        validate(raw, schema, set_default=False)
    except WorkflowError:
        raise ProfileError(_schema_message(raw, source, schema)) from None
    # JSON Schema's minimum/maximum compare with < and >, which are false for NaN, so `.nan`
    # passes every range (and `.inf` every open one); no params value may be NaN or infinite.
    for path in _non_finite(raw):
        key = ".".join(str(p) for p in path)
        value = raw
        for p in path:
            value = value[p]
        raise ProfileError(
            f"{source}: invalid params key '{key}': {value!r} is not a finite number"
        )
    _check_cross_references(raw, source)


def _schema_message(raw, source, schema):
    """hgbench.config._error_message of the error hgbench reports first (shortest key path)."""
    import jsonschema

    with open(schema, encoding="utf-8") as f:
        validator = jsonschema.Draft202012Validator(yaml.safe_load(f))
    errors = sorted(
        validator.iter_errors(raw),
        key=lambda e: (len(e.absolute_path), str(e.absolute_path)),
    )
    error = errors[0]
    key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        detail = f"got {error.instance!r}; allowed values: {allowed}"
    elif error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        detail = f"{error.message}; allowed keys here: {allowed}"
    elif (
        error.validator in SIZE_UNITS
    ):  # the message would quote the whole too-long value
        detail = f"{len(error.instance)} {SIZE_UNITS[error.validator]}, more than the maximum of {error.validator_value}"
    else:
        detail = error.message
    return f"{source}: invalid params key '{key}': {detail}"


SIZE_UNITS = {
    "maxItems": "items",
    "maxLength": "characters",
    "maxProperties": "entries",
}


def _non_finite(raw, path=()):
    if isinstance(raw, float) and not math.isfinite(raw):
        yield path
    elif isinstance(raw, dict):
        for k, v in raw.items():
            yield from _non_finite(v, path + (k,))
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            yield from _non_finite(v, path + (i,))


def _check_cross_references(raw, source):
    """The checks hgbench.config makes beyond the schema, in its order and words."""
    for problems in (
        _run_problems,
        _dataset_problems,
        _variant_problems,
        _depth_problems,
        _size_problems,
    ):
        for key, detail in problems(raw):
            raise ProfileError(f"{source}: invalid params key '{key}': {detail}")


def _run_problems(raw):
    for i, exp in enumerate(raw["experiments"]):
        for kind, table in (("dataset", "datasets"), ("variant", "variants")):
            if exp[kind] not in raw[table]:
                allowed = ", ".join(sorted(raw[table]))
                yield (
                    f"experiments.{i}.{kind}",
                    f"{exp[kind]!r} is not defined under '{table}'; allowed values: {allowed}",
                )
    seen = set()
    for i, exp in enumerate(raw["experiments"]):
        run = (exp["dataset"], exp["variant"], exp["seed"])
        if run in seen:
            yield f"experiments.{i}", f"duplicate run {run}"
        seen.add(run)
    for i, sub in enumerate(raw["submissions"]):
        run = (sub["dataset"], sub["variant"], sub["seed"])
        if run not in seen:
            yield (
                f"submissions.{i}",
                f"{run} is not one of the experiments; submit a run the profile trains",
            )
        if raw["datasets"][sub["dataset"]]["source"] != "mpii":
            yield (
                f"submissions.{i}.dataset",
                f"{sub['dataset']!r} is not an MPII dataset (source mpii); only MPII has a test server",
            )


def _dataset_problems(raw):
    for name, ds in raw["datasets"].items():
        where = f"datasets.{name}"
        if ds["input_res"] % ds["output_res"]:
            yield (
                f"{where}.output_res",
                f"{ds['output_res']} must divide input_res {ds['input_res']}",
            )
        if ds["input_res"] // ds["output_res"] != 4:
            yield (
                f"{where}.output_res",
                "the hourglass stem downsamples by 4, so output_res must be input_res / 4 "
                f"= {ds['input_res'] // 4}",
            )
        if (ds["source"] == "synthetic") != ("synthetic" in ds):
            yield (
                f"{where}.synthetic",
                "give a 'synthetic' section exactly when source is 'synthetic'",
            )
        flic_layout = (
            ds["source"] == "flic" or ds.get("synthetic", {}).get("layout") == "flic"
        )
        if "labels" in ds and not flic_layout:
            fix = (
                " or set synthetic.layout: flic" if ds["source"] == "synthetic" else ""
            )
            yield (
                f"{where}.labels",
                "only FLIC has observer/person-centric labels (source flic, or synthetic "
                f"with layout: flic); remove the key{fix}",
            )
        if "synthetic" in ds:
            lo, hi = ds["synthetic"]["person_height"]
            if lo > hi:
                yield f"{where}.synthetic.person_height", "min > max"
            if (
                ds["synthetic"].get("layout") == "flic"
                and ds["synthetic"]["missing_rate"]
            ):
                yield (
                    f"{where}.synthetic.missing_rate",
                    "FLIC labels all 11 of its joints in every example; set missing_rate: 0 "
                    "for layout: flic",
                )


def _variant_problems(raw):
    for name, v in raw["variants"].items():
        if v["supervision"] == "inner" and v["stacks"] != 1:
            yield (
                f"variants.{name}.supervision",
                "'inner' (HG-Int) is defined for one hourglass; set stacks: 1 or "
                "supervision: all/last",
            )
        if v["supervision"] == "inner" and v["depth"] < 3:
            yield f"variants.{name}.depth", "'inner' supervision needs depth >= 3"


def _depth_problems(raw):
    for e in raw["experiments"]:
        ds, v = raw["datasets"][e["dataset"]], raw["variants"][e["variant"]]
        if ds["output_res"] % (2 ** v["depth"]):
            yield (
                f"variants.{e['variant']}.depth",
                f"{v['depth']} halvings do not divide output_res {ds['output_res']} of "
                f"dataset {e['dataset']!r}",
            )


MAX_PARAMETERS = 1_000_000_000
"""hgbench.config.MAX_PARAMETERS (a test keeps them equal): the largest variant a profile may define."""


def _size_problems(raw):
    for name, v in raw["variants"].items():
        n = parameter_estimate(
            v["stacks"],
            v["modules"],
            v["features"],
            v["depth"],
            inner_heads=v["supervision"] == "inner",
        )
        if n > MAX_PARAMETERS:
            yield (
                f"variants.{name}",
                f"variant {name!r} has ~{n / 1e6:,.0f} M parameters; the bound is "
                f"{MAX_PARAMETERS / 1e6:,.0f} M (weights, gradients and optimizer state "
                f"alone would take {16 * n / 1e9:,.0f} GB); use fewer stacks, modules or "
                "features",
            )


def parameter_estimate(stacks, modules, features, depth, joints=16, inner_heads=False):
    """hgbench.config.parameter_estimate: trainable parameters of the built model, by arithmetic."""

    def conv(c_in, c_out, k=1):
        return c_in * c_out * k * k + c_out

    def residual(c_in, c_out):
        mid = c_out // 2
        skip = conv(c_in, c_out) if c_in != c_out else 0
        return (
            2 * c_in
            + conv(c_in, mid)
            + 2 * mid
            + conv(mid, mid, 3)
            + 2 * mid
            + conv(mid, c_out)
            + skip
        )

    f, c1, c2 = features, features // 4, features // 2
    stem = (
        conv(3, c1, 7) + 2 * c1 + residual(c1, c2) + residual(c2, c2) + residual(c2, f)
    )
    levels = {depth - 1, depth - 2} & set(range(1, depth + 1)) if inner_heads else set()
    hourglass = (3 * depth + 1) * modules * residual(f, f) + len(levels) * (
        conv(f, joints) + conv(joints, f)
    )
    after = modules * residual(f, f) + conv(f, f) + 2 * f + conv(f, joints)
    remap = conv(f, f) + conv(joints, f)
    return stem + stacks * (hourglass + after) + (stacks - 1) * remap


def profile_view(raw):
    """The profile with hgbench's defaults filled in: hgbench.config.as_dict(params_from_dict(raw)).
    The rules' `params:` hold JSON of its sections, so it must not change when hgbench's does not.
    """
    datasets = {}
    for name, ds in raw["datasets"].items():
        syn = ds.get("synthetic")
        datasets[name] = {
            "name": name,
            "source": ds["source"],
            "input_res": ds["input_res"],
            "output_res": ds["output_res"],
            "crop_margin": float(ds["crop_margin"]),
            "synthetic": None if syn is None else {"layout": "mpii", **syn},
            "labels": ds.get("labels", "observer"),
        }
    train = {
        "lr_schedule": "steps",
        "plateau_patience": 5,
        "color_jitter": 0.0,
        "precision": "fp32",
        "compile": False,
        "checkpoint_every": 0,
        "devices": 1,
        **raw["train"],
    }
    return {
        "profile": raw["profile"],
        "device": raw["device"],
        "datasets": datasets,
        "variants": {
            name: {"name": name, "label": "", **v}
            for name, v in raw["variants"].items()
        },
        "experiments": [dict(e) for e in raw["experiments"]],
        "submissions": [dict(e) for e in raw["submissions"]],
        "train": train,
        "predict": dict(raw["predict"]),
        "evaluate": dict(raw["evaluate"]),
        "description": raw.get("description", ""),
        "report_title": raw.get("report", {}).get("title", ""),
    }


# ---------------------------------------------------------------------------------------------
# What a job asks a scheduler for (every executor plugin reads a rule's runtime/mem_mb). Rough,
# generous upper bounds from the profile; each retry (attempt 2, 3, ...) asks for that many
# times more, so a job that ran out of time or memory gets through on a retry.
# ---------------------------------------------------------------------------------------------


def people(ds):
    """(training, validation) people of a dataset section."""
    if ds["source"] == "synthetic":
        return ds["synthetic"]["n_train"], ds["synthetic"]["n_valid"]
    return REAL_PEOPLE[ds["source"]]


def _images_per_s(raw):
    return float(raw.get("resources", {}).get("images_per_s", IMAGES_PER_S))


def train_runtime(raw, dataset, attempt):
    """Minutes: epochs × (training people + validation people / 3, a forward pass costing about
    a third of a training step) ÷ images/s, +25 %, +10 min start-up."""
    n_train, n_valid = people(raw["datasets"][dataset])
    seconds = raw["train"]["epochs"] * (n_train + n_valid / 3) / _images_per_s(raw)
    return attempt * (10 + math.ceil(1.25 * seconds / 60))


def predict_runtime(raw, dataset, attempt):
    """Minutes: validation people (twice with the flip test) at 3× the training throughput."""
    n_valid = people(raw["datasets"][dataset])[1]
    passes = 2 if raw["predict"]["flip_test"] else 1
    seconds = passes * n_valid / (3 * _images_per_s(raw))
    return attempt * (10 + math.ceil(1.25 * seconds / 60))


# fetch: a download (MPII's images are 12.9 GB behind a slow host) or drawing synthetic images;
# prepare: decoding and cropping every image.
_FETCH_MINUTES = {"mpii": 720, "flic": 60}
_PREPARE_MINUTES = {"mpii": 240, "flic": 60}


def fetch_runtime(raw, dataset, attempt):
    ds = raw["datasets"][dataset]
    if ds["source"] in _FETCH_MINUTES:
        return attempt * _FETCH_MINUTES[ds["source"]]
    return attempt * (10 + math.ceil(sum(people(ds)) / 500))


def prepare_runtime(raw, dataset, attempt):
    ds = raw["datasets"][dataset]
    if ds["source"] in _PREPARE_MINUTES:
        return attempt * _PREPARE_MINUTES[ds["source"]]
    return attempt * (10 + math.ceil(sum(people(ds)) / 1000))


def _split_mb(ds, n):
    """MiB of a split's crops when a training job holds them in memory (hgbench.data.dataset
    loads splits under 2 GiB whole, larger ones row by row)."""
    crop = 2 * round(ds["input_res"] * float(ds["crop_margin"]) / 2)
    size = n * 3 * crop**2
    return size / 2**20 if size <= 2 * 1024**3 else 0.0


def _activations_mb(raw, variant, dataset, batch, factor):
    """MiB of activations of one batch on a CPU (on a GPU they are in device memory). factor 24
    matches the measured peak RSS of hg8 at 256², batch 4 (3.4 GiB, bench/results/README.md).
    """
    v, ds = raw["variants"][variant], raw["datasets"][dataset]
    cells = batch * v["stacks"] * v["modules"] * v["features"] * ds["output_res"] ** 2
    return factor * 4 * cells / 2**20


def train_mem_mb(raw, dataset, variant, on_gpu, attempt):
    """MiB: per training process (train.devices of them), 1.5 GiB for Python and torch, 512 MiB
    per data-loader worker, the splits held in memory and, on a CPU, a batch's activations.
    """
    ds = raw["datasets"][dataset]
    n_train, n_valid = people(ds)
    per_process = 1536 + 512 * raw["train"]["workers"]
    per_process += _split_mb(ds, n_train) + _split_mb(ds, n_valid)
    if not on_gpu:
        per_process += _activations_mb(
            raw, variant, dataset, raw["train"]["batch_size"], 24
        )
    devices = raw["train"].get("devices", 1)
    return attempt * math.ceil(devices * per_process)


def predict_mem_mb(raw, dataset, variant, on_gpu, attempt):
    """MiB: 1.5 GiB, the validation split, and (CPU) a batch's activations without gradients."""
    ds = raw["datasets"][dataset]
    mb = 1536 + _split_mb(ds, people(ds)[1])
    if not on_gpu:
        mb += _activations_mb(raw, variant, dataset, raw["predict"]["batch_size"], 8)
    return attempt * math.ceil(mb)
