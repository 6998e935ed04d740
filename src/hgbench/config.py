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
        """Joint layout of the prepared data: ``flic`` (11 joints, torso PCK) for source ``flic`` or a
        synthetic set with ``layout: flic``, else ``mpii`` (16 joints, PCKh). Every stage that
        depends on the joints (prepare, model size, metrics, report) asks this, never ``source``."""
        if self.source == "flic" or (self.synthetic is not None and self.synthetic.layout == "flic"):
            return "flic"
        return "mpii"


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
    compile: bool = False
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
    elif error.validator == "required":
        detail = error.message
    else:
        detail = error.message
    return f"{source}: invalid params key '{key}': {detail}"


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
    for i, exp in enumerate(raw["experiments"]):
        for kind, table in (("dataset", "datasets"), ("variant", "variants")):
            if exp[kind] not in raw[table]:
                allowed = ", ".join(sorted(raw[table]))
                raise ParamsError(
                    f"{source}: invalid params key 'experiments.{i}.{kind}': "
                    f"{exp[kind]!r} is not defined under '{table}'; allowed values: {allowed}"
                )
    seen = set()
    for i, exp in enumerate(raw["experiments"]):
        key = (exp["dataset"], exp["variant"], exp["seed"])
        if key in seen:
            raise ParamsError(f"{source}: invalid params key 'experiments.{i}': duplicate run {key}")
        seen.add(key)
    for i, sub in enumerate(raw["submissions"]):
        key = (sub["dataset"], sub["variant"], sub["seed"])
        if key not in seen:
            raise ParamsError(f"{source}: invalid params key 'submissions.{i}': {key} is not one of the experiments; "
                              f"submit a run the profile trains")
        if raw["datasets"][sub["dataset"]]["source"] != "mpii":
            raise ParamsError(f"{source}: invalid params key 'submissions.{i}.dataset': {sub['dataset']!r} is not "
                              f"an MPII dataset (source mpii); only MPII has a test server")
    for name, ds in raw["datasets"].items():
        where = f"datasets.{name}"
        if ds["input_res"] % ds["output_res"]:
            raise ParamsError(
                f"{source}: invalid params key '{where}.output_res': {ds['output_res']} must divide "
                f"input_res {ds['input_res']}"
            )
        if ds["input_res"] // ds["output_res"] != 4:
            raise ParamsError(
                f"{source}: invalid params key '{where}.output_res': the hourglass stem downsamples "
                f"by 4, so output_res must be input_res / 4 = {ds['input_res'] // 4}"
            )
        if (ds["source"] == "synthetic") != ("synthetic" in ds):
            raise ParamsError(
                f"{source}: invalid params key '{where}.synthetic': give a 'synthetic' section "
                f"exactly when source is 'synthetic'"
            )
        flic_layout = ds["source"] == "flic" or ds.get("synthetic", {}).get("layout") == "flic"
        if "labels" in ds and not flic_layout:
            fix = " or set synthetic.layout: flic" if ds["source"] == "synthetic" else ""
            raise ParamsError(f"{source}: invalid params key '{where}.labels': only FLIC has observer/person-centric "
                              f"labels (source flic, or synthetic with layout: flic); remove the key{fix}")
        if "synthetic" in ds:
            lo, hi = ds["synthetic"]["person_height"]
            if lo > hi:
                raise ParamsError(f"{source}: invalid params key '{where}.synthetic.person_height': min > max")
            if ds["synthetic"].get("layout") == "flic" and ds["synthetic"]["missing_rate"]:
                raise ParamsError(f"{source}: invalid params key '{where}.synthetic.missing_rate': FLIC labels all "
                                  f"11 of its joints in every example; set missing_rate: 0 for layout: flic")
    for name, v in raw["variants"].items():
        if v["supervision"] == "inner" and v["stacks"] != 1:
            raise ParamsError(
                f"{source}: invalid params key 'variants.{name}.supervision': 'inner' (HG-Int) "
                f"is defined for one hourglass; set stacks: 1 or supervision: all/last"
            )
        if v["supervision"] == "inner" and v["depth"] < 3:
            raise ParamsError(
                f"{source}: invalid params key 'variants.{name}.depth': 'inner' supervision needs depth >= 3"
            )
    for e in raw["experiments"]:
        ds, v = raw["datasets"][e["dataset"]], raw["variants"][e["variant"]]
        if ds["output_res"] % (2 ** v["depth"]):
            raise ParamsError(
                f"{source}: invalid params key 'variants.{e['variant']}.depth': {v['depth']} halvings "
                f"do not divide output_res {ds['output_res']} of dataset {e['dataset']!r}"
            )


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
            name=name, source=ds["source"], input_res=ds["input_res"], output_res=ds["output_res"],
            crop_margin=float(ds["crop_margin"]), synthetic=synthetic, labels=ds.get("labels", "observer"),
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
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ParamsError(f"{path}: cannot be read as a text file ({exc}); profiles are YAML files") from None
    return params_from_dict(raw, str(path))


class _UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key given twice in one mapping.

    Plain YAML keeps the last value silently, so a pasted second ``lr:`` would quietly win.
    """

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                continue
            if duplicate:
                raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                        f"found duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def as_dict(obj: Any) -> Any:
    """A dataclass (or nesting of them) as plain JSON-able values, for logs and reports."""
    if dataclasses.is_dataclass(obj):
        return {f.name: as_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, dict):
        return {k: as_dict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [as_dict(v) for v in obj]
    return obj
