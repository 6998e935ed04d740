"""Params profiles: YAML → JSON-schema validation → frozen dataclasses.

Configuration flows one way: ``params/<profile>.yaml`` is validated against
``params.schema.yaml`` (the same file Snakemake validates with) and turned into a
:class:`Params`; stages receive plain values taken from it.

    >>> from hgbench.config import load_params
    >>> p = load_params("params/demo.yaml")
    >>> p.variants["hg2x2"].stacks
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml


class ParamsError(ValueError):
    """A params file or value is invalid; the message names the key and the fix."""


@dataclass(frozen=True)
class SyntheticConfig:
    """Knobs of the embedded synthetic dataset (see ``data/synthetic.py``)."""

    seed: int
    n_train: int
    n_valid: int
    image_size: int
    person_height: tuple[float, float]
    rotation: float
    occluders: float
    distractors: float
    clutter: float
    lr_cue: float
    missing_rate: float
    # Raw layout written by ``hgbench fetch``: ``mpii`` (RELEASE .mat, 16 joints) or ``flic``
    # (FLIC/examples.mat, 11 joints); the same renderer draws both.
    layout: str = "mpii"


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    source: str
    input_res: int
    output_res: int
    crop_margin: float
    synthetic: SyntheticConfig | None = None
    labels: str = "observer"  # FLIC: observer- or person-centric left/right labels

    @property
    def crop_size(self) -> int:
        """Side of the stored crop in pixels (input_res × crop_margin, even)."""
        return 2 * round(self.input_res * self.crop_margin / 2)

    @property
    def layout(self) -> str:
        """Joint layout of the prepared data, the name of its dataset kind (``hgbench.kinds.kind_of``):
        a real dataset's own (source ``mpii``: 16 joints, PCKh; ``flic``: 11 joints, torso PCK), a
        synthetic set's ``synthetic.layout``. Every stage that depends on the joints (prepare, model
        size, metrics, report) asks this, never ``source``."""
        if self.source == "synthetic":
            return self.synthetic.layout if self.synthetic is not None else "mpii"
        return self.source


@dataclass(frozen=True)
class VariantConfig:
    name: str
    stacks: int
    modules: int
    features: int
    depth: int
    supervision: str
    label: str = ""


@dataclass(frozen=True)
class Experiment:
    dataset: str
    variant: str
    seed: int


@dataclass(frozen=True)
class TrainConfig:
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    lr_drop_epochs: tuple[int, ...]
    lr_drop_factor: float
    sigma: float
    rotation: float
    scale: float
    flip: bool
    threads: int
    workers: int
    lr_schedule: str = "steps"
    plateau_patience: int = 5
    color_jitter: float = 0.0
    precision: str = "fp32"
    compile: bool | str = False  # true, or a torch.compile mode (recipe.compile_mode)
    checkpoint_every: int = 0
    devices: int = 1


SPEED_KEYS = ("threads", "workers", "checkpoint_every", "devices", "compile")
"""``train`` keys that change how fast a run goes, never what it learns: they are no rerun trigger
(Snakemake ``params``, DVC ``params``), not part of ``last.pt``'s fingerprint (a preempted job
retried with other threads or GPUs resumes), and the only optional ``train`` keys."""


def result_keys() -> tuple[str, ...]:
    """``train`` keys that decide the trained weights (every TrainConfig field but :data:`SPEED_KEYS`)."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig) if f.name not in SPEED_KEYS)


@dataclass(frozen=True)
class PredictConfig:
    flip_test: bool
    batch_size: int


@dataclass(frozen=True)
class EvaluateConfig:
    protocol: str


@dataclass(frozen=True)
class Params:
    profile: str
    device: str
    datasets: dict[str, DatasetConfig]
    variants: dict[str, VariantConfig]
    experiments: tuple[Experiment, ...]
    train: TrainConfig
    predict: PredictConfig
    evaluate: EvaluateConfig
    description: str = ""
    report_title: str = ""
    submissions: tuple[Experiment, ...] = ()

    def experiments_for(self, dataset: str) -> tuple[Experiment, ...]:
        return tuple(e for e in self.experiments if e.dataset == dataset)


def schema() -> dict[str, Any]:
    """The params JSON schema (``src/hgbench/params.schema.yaml``) as a dict."""
    text = resources.files("hgbench").joinpath("params.schema.yaml").read_text()
    return yaml.safe_load(text)


@functools.lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    """The schema's validator, built once per process (parsing the schema costs milliseconds)."""
    return jsonschema.Draft202012Validator(schema())


def _error_message(error: jsonschema.ValidationError, source: str) -> str:
    key = ".".join(str(p) for p in error.absolute_path) or "<top level>"
    if error.validator == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        detail = f"got {error.instance!r}; allowed values: {allowed}"
    elif error.validator == "additionalProperties":
        allowed = ", ".join(sorted(error.schema.get("properties", {})))
        detail = f"{error.message}; allowed keys here: {allowed}"
    elif error.validator in _SIZE_UNITS:  # the message would quote the whole too-long value
        detail = (
            f"{len(error.instance)} {_SIZE_UNITS[error.validator]}, more than the maximum of {error.validator_value}"
        )
    else:
        detail = error.message
    return f"{source}: invalid params key '{key}': {detail}"


_SIZE_UNITS = {"maxItems": "items", "maxLength": "characters", "maxProperties": "entries"}
"""Length bounds whose jsonschema message repeats the value (a 2000-run list in one line)."""


def _non_finite(raw: Any, path: tuple = ()):
    """Key paths of NaN/inf numbers in ``raw`` (YAML ``.nan``/``.inf``)."""
    if isinstance(raw, float) and not math.isfinite(raw):
        yield path
    elif isinstance(raw, dict):
        for k, v in raw.items():
            yield from _non_finite(v, path + (k,))
    elif isinstance(raw, list):
        for i, v in enumerate(raw):
            yield from _non_finite(v, path + (i,))


def validate_dict(raw: Any, source: str = "params") -> None:
    """Raise :class:`ParamsError` naming the first invalid key of ``raw``, if any."""
    errors = sorted(_validator().iter_errors(raw), key=lambda e: (len(e.absolute_path), str(e.absolute_path)))
    if errors:
        raise ParamsError(_error_message(errors[0], source))
    # JSON Schema's minimum/maximum compare with < and >, which are false for NaN, so `.nan`
    # passes every range (and `.inf` every open one); no params value may be NaN or infinite.
    for path in _non_finite(raw):
        key = ".".join(str(p) for p in path)
        raise ParamsError(f"{source}: invalid params key '{key}': {_get(raw, path)!r} is not a finite number")
    _check_cross_references(raw, source)


def _get(raw: Any, path: tuple) -> Any:
    for p in path:
        raw = raw[p]
    return raw


def _check_cross_references(raw: dict[str, Any], source: str) -> None:
    """The checks beyond the schema, in this order; the first problem found is raised.
    (workflow/rules/profile.smk makes the same ones, in the same words.)"""
    for problems in (_run_problems, _dataset_problems, _variant_problems, _depth_problems, _size_problems):
        for key, detail in problems(raw):
            raise ParamsError(f"{source}: invalid params key '{key}': {detail}")


def _run_problems(raw: dict[str, Any]):
    """``(key, detail)`` of experiments and submissions naming what is not there."""
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
        key = (exp["dataset"], exp["variant"], exp["seed"])
        if key in seen:
            yield f"experiments.{i}", f"duplicate run {key}"
        seen.add(key)
    for i, sub in enumerate(raw["submissions"]):
        key = (sub["dataset"], sub["variant"], sub["seed"])
        if key not in seen:
            yield f"submissions.{i}", f"{key} is not one of the experiments; submit a run the profile trains"
        if raw["datasets"][sub["dataset"]]["source"] != "mpii":
            yield (
                f"submissions.{i}.dataset",
                (f"{sub['dataset']!r} is not an MPII dataset (source mpii); only MPII has a test server"),
            )


def _dataset_problems(raw: dict[str, Any]):
    for name, ds in raw["datasets"].items():
        where = f"datasets.{name}"
        if ds["input_res"] % ds["output_res"]:
            yield f"{where}.output_res", f"{ds['output_res']} must divide input_res {ds['input_res']}"
        if ds["input_res"] // ds["output_res"] != 4:
            yield (
                f"{where}.output_res",
                (f"the hourglass stem downsamples by 4, so output_res must be input_res / 4 = {ds['input_res'] // 4}"),
            )
        if (ds["source"] == "synthetic") != ("synthetic" in ds):
            yield f"{where}.synthetic", "give a 'synthetic' section exactly when source is 'synthetic'"
        flic_layout = ds["source"] == "flic" or ds.get("synthetic", {}).get("layout") == "flic"
        if "labels" in ds and not flic_layout:
            fix = " or set synthetic.layout: flic" if ds["source"] == "synthetic" else ""
            yield (
                f"{where}.labels",
                (
                    f"only FLIC has observer/person-centric labels (source flic, or synthetic "
                    f"with layout: flic); remove the key{fix}"
                ),
            )
        if "synthetic" in ds:
            lo, hi = ds["synthetic"]["person_height"]
            if lo > hi:
                yield f"{where}.synthetic.person_height", "min > max"
            if ds["synthetic"].get("layout") == "flic" and ds["synthetic"]["missing_rate"]:
                yield (
                    f"{where}.synthetic.missing_rate",
                    ("FLIC labels all 11 of its joints in every example; set missing_rate: 0 for layout: flic"),
                )


def _variant_problems(raw: dict[str, Any]):
    for name, v in raw["variants"].items():
        if v["supervision"] == "inner" and v["stacks"] != 1:
            yield (
                f"variants.{name}.supervision",
                ("'inner' (HG-Int) is defined for one hourglass; set stacks: 1 or supervision: all/last"),
            )
        if v["supervision"] == "inner" and v["depth"] < 3:
            yield f"variants.{name}.depth", "'inner' supervision needs depth >= 3"


def _depth_problems(raw: dict[str, Any]):
    for e in raw["experiments"]:
        ds, v = raw["datasets"][e["dataset"]], raw["variants"][e["variant"]]
        if ds["output_res"] % (2 ** v["depth"]):
            yield (
                f"variants.{e['variant']}.depth",
                (f"{v['depth']} halvings do not divide output_res {ds['output_res']} of dataset {e['dataset']!r}"),
            )


MAX_PARAMETERS = 1_000_000_000
"""Largest variant a profile may define (trainable parameters). The paper's hg8 has 25.4 M; a
variant at the bound already needs 16 GB for fp32 weights, gradients and Adam's state before its
first activation (one accelerator can still hold that); larger is refused at validation instead of
failing later on an allocation. The schema's maxima alone allow 17.5 G (16 stacks × 16 modules of
1024 features, depth 6)."""


def _size_problems(raw: dict[str, Any]):
    for name, v in raw["variants"].items():
        n = parameter_estimate(
            v["stacks"], v["modules"], v["features"], v["depth"], inner_heads=v["supervision"] == "inner"
        )
        if n > MAX_PARAMETERS:
            yield (
                f"variants.{name}",
                (
                    f"variant {name!r} has ~{n / 1e6:,.0f} M parameters; the bound is "
                    f"{MAX_PARAMETERS / 1e6:,.0f} M (weights, gradients and optimizer state "
                    f"alone would take {16 * n / 1e9:,.0f} GB); use fewer stacks, modules or "
                    f"features"
                ),
            )


def parameter_estimate(
    stacks: int, modules: int, features: int, depth: int, joints: int = 16, inner_heads: bool = False
) -> int:
    """Trainable parameters of ``hgbench.model.StackedHourglass`` with these knobs, by arithmetic
    (no torch, no model built): equal to ``count_parameters`` of the built model
    (tests/reliability/test_costs_bounded.py). ``joints`` 16 (MPII) is the larger layout (FLIC: 11)."""

    def conv(c_in: int, c_out: int, k: int = 1) -> int:
        return c_in * c_out * k * k + c_out

    def residual(c_in: int, c_out: int) -> int:
        mid = c_out // 2
        skip = conv(c_in, c_out) if c_in != c_out else 0
        return 2 * c_in + conv(c_in, mid) + 2 * mid + conv(mid, mid, 3) + 2 * mid + conv(mid, c_out) + skip

    f, c1, c2 = features, features // 4, features // 2
    stem = conv(3, c1, 7) + 2 * c1 + residual(c1, c2) + residual(c2, c2) + residual(c2, f)
    levels = {depth - 1, depth - 2} & set(range(1, depth + 1)) if inner_heads else set()
    hourglass = (3 * depth + 1) * modules * residual(f, f) + len(levels) * (conv(f, joints) + conv(joints, f))
    after = modules * residual(f, f) + conv(f, f) + 2 * f + conv(f, joints)  # features, BN, head
    remap = conv(f, f) + conv(joints, f)
    return stem + stacks * (hourglass + after) + (stacks - 1) * remap


def params_from_dict(raw: Any, source: str = "params") -> Params:
    """Validate a params mapping and build :class:`Params`."""
    validate_dict(raw, source)
    datasets = {}
    for name, ds in raw["datasets"].items():
        syn = ds.get("synthetic")
        synthetic = None
        if syn is not None:
            synthetic = SyntheticConfig(**{**syn, "person_height": tuple(syn["person_height"])})
        datasets[name] = DatasetConfig(
            name=name,
            source=ds["source"],
            input_res=ds["input_res"],
            output_res=ds["output_res"],
            crop_margin=float(ds["crop_margin"]),
            synthetic=synthetic,
            labels=ds.get("labels", "observer"),
        )
    variants = {name: VariantConfig(name=name, **v) for name, v in raw["variants"].items()}
    train = dict(raw["train"])
    train["lr_drop_epochs"] = tuple(train["lr_drop_epochs"])
    return Params(
        profile=raw["profile"],
        device=raw["device"],
        datasets=datasets,
        variants=variants,
        experiments=tuple(Experiment(**e) for e in raw["experiments"]),
        train=TrainConfig(**train),
        predict=PredictConfig(**raw["predict"]),
        evaluate=EvaluateConfig(**raw["evaluate"]),
        description=raw.get("description", ""),
        report_title=raw.get("report", {}).get("title", ""),
        submissions=tuple(Experiment(**e) for e in raw["submissions"]),
    )


def load_params(path: str | Path) -> Params:
    """Read and validate a params YAML file; :class:`ParamsError` names the file and key."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"params file {path} not found; profiles live in params/*.yaml (e.g. params/demo.yaml)")
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsError(f"{path}: cannot be read as a text file ({exc}); profiles are YAML files") from None
    return params_from_dict(read_yaml(text, str(path)), str(path))


# ---------------------------------------------------------------------------------------------
# The YAML loader. workflow/rules/profile.smk holds a copy (it cannot import hgbench); each
# refusal gives the same message there (tests/reliability/test_yaml_loader.py keeps them equal).
# ---------------------------------------------------------------------------------------------


class _AliasRefused(yaml.YAMLError):
    """An anchor (``&name``) or alias (``*name``) met by :class:`_NoAliasLoader`."""

    def __init__(self, event: yaml.Event):
        super().__init__(event.anchor)
        self.name, self.line = event.anchor, event.start_mark.line + 1


class _NoAliasLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses anchors and aliases at the first one, before composing.

    A few nested aliases (a "billion laughs") expand a 1 KB file into billions of values, which
    every later walk over the profile (the schema, the NaN check) would visit. A profile never
    needs them, so the parser's first anchor or alias event ends the load.
    """

    def compose_node(self, parent, index):
        event = self.peek_event()
        if getattr(event, "anchor", None) is not None:  # AliasEvent, or a node carrying &name
            raise _AliasRefused(event)
        return super().compose_node(parent, index)


def read_yaml(text: str, source: str) -> Any:
    """The YAML document ``text`` as plain values; :class:`ParamsError` in one line naming
    ``source``, the line and the fix for bad YAML, an anchor or alias, or a key given twice."""
    loader = None
    try:
        loader = _NoAliasLoader(text)  # (reading starts here: a control character is refused)
        node = loader.get_single_node()
        duplicate = _duplicate_key(node)
        raw = None if node is None or duplicate else loader.construct_document(node)
    except _AliasRefused as exc:
        raise ParamsError(_alias_message(source, exc.name, exc.line)) from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{source}: not valid YAML: {_yaml_problem(exc, text)}; correct the file there") from None
    except ValueError as exc:  # an integer of more than 4300 digits
        raise ParamsError(f"{source}: not valid YAML: {str(exc).split(';')[0]}; no params value is that long") from None
    except RecursionError:
        raise ParamsError(
            f"{source}: not valid YAML: nested too deeply to read; a profile is a few levels deep"
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    if duplicate:
        key, first, second = duplicate
        # YAML keeps the last value silently, so a pasted second `lr:` would quietly win.
        where = f"on line {first}" if first == second else f"(lines {first} and {second})"
        raise ParamsError(f"{source}: invalid params key '{key}': given twice {where}; keep one")
    return raw


def _alias_message(source: str, name: str, line: int) -> str:
    return (
        f"{source}: not valid params YAML at line {line}: anchors and aliases (&{name}, *{name}) are refused "
        f"(a few nested aliases expand to billions of values); write the value out instead of *{name} "
        f"and drop &{name}"
    )


def _yaml_problem(exc: yaml.YAMLError, text: str) -> str:
    """PyYAML's error in one line: the problem and its line (its own text is several lines and
    names ``"<unicode string>"``)."""
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if getattr(exc, "context", None):  # "while parsing a flow sequence", ...
        problem = f"{exc.context}, {problem}"
    mark = getattr(exc, "problem_mark", None)
    if mark is not None:
        return f"{problem} (line {mark.line + 1})"
    position = getattr(exc, "position", None)  # a ReaderError (a control character) gives an offset
    if isinstance(position, int):
        return f"{problem} (line {text.count(chr(10), 0, position) + 1})"
    return problem


def _duplicate_key(node, path: tuple = ()):
    """``(dotted key, first line, second line)`` of the first key given twice in one mapping."""
    if isinstance(node, yaml.MappingNode):
        seen: dict = {}
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


def as_dict(obj: Any) -> Any:
    """A dataclass (or nesting of them) as plain JSON-able values, for logs and reports."""
    if dataclasses.is_dataclass(obj):
        return {f.name: as_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: as_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_dict(v) for v in obj]
    return obj
