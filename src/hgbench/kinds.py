"""One description per dataset kind: everything that differs between MPII-layout and FLIC-layout data.

A *kind* is the joint layout of prepared data (``DatasetConfig.layout``: ``mpii`` for real MPII and
the synthetic set, ``flic`` for real FLIC and the synthetic set with ``layout: flic``). Every fact
that depends on it lives here, once: joint names and flip permutation, report groups, the
headline metric and default protocol, the normaliser, whether the hourglass box adjustment
applies, the training-time metric, the annotation file, and the paper's published rows. Stages
ask ``kind_of(ds.layout)`` (or :func:`kind_for_joints` for a file that names its joints) and read
a field; they do not compare layout strings or count joints.

    >>> from hgbench.kinds import kind_of
    >>> kind_of("flic").headline, kind_of("mpii").normalizer
    ('pck@0.2', 'head size')

Where a stage must take a different code path for a kind (prepare's FLIC parser), it says
``if kind is FLIC`` at that one place. Imports only :mod:`hgbench.joints` (layer 1,
tests/test_architecture.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from hgbench.joints import ABLATION_JOINTS, FLIC_FLIP, FLIC_JOINTS, MPII_FLIP, MPII_GROUPS, MPII_JOINTS


@dataclass(frozen=True)
class TrainingMetric:
    """The accuracy ``train`` logs after every epoch (``valid_acc``; the plateau schedule steps on it).

    A joint is correct iff ``||pred - gt|| <= threshold · normalizer`` (inclusive, as the official
    and FLIC protocols); the score is pooled over the scored instances of ``joints``.
    """

    layout: str  # the kind's name (DatasetConfig.layout)
    name: str  # the metric, e.g. "PCKh@0.5"
    threshold: float  # fraction of the normaliser (MPII head size, FLIC torso diagonal)
    joints: tuple[str, ...]  # joints scored, names of the layout
    joints_label: str  # how the log and the report name ``joints``

    @property
    def label(self) -> str:
        """e.g. ``PCKh@0.5 (ablation joints)``, for log lines and captions."""
        return f"{self.name} ({self.joints_label})"

    @property
    def indices(self) -> list[int]:
        """Positions of :attr:`joints` in the layout's joint order."""
        names = kind_of(self.layout).joints
        return [names.index(j) for j in self.joints]


@dataclass(frozen=True, eq=False)
class DatasetKind:
    """What every stage needs to know about one joint layout (compared by identity: ``kind is FLIC``)."""

    name: str  # DatasetConfig.layout: "mpii" or "flic"
    label: str  # how messages and the report name it: "MPII", "FLIC"
    joints: tuple[str, ...]  # joint axis of every array of this kind
    flip: tuple[int, ...]  # joint i of a mirrored image is joint flip[i]
    groups: Mapping[str, tuple[str, ...]]  # report group -> joints, in report order
    unscored: tuple[str, ...]  # joints the kind's official toolkit never scores
    head_top: str | None  # joint a "head top only" PCKh protocol scores as Head
    metric: str  # "PCKh" (head-normalised) or "PCK" (torso-normalised)
    headline: str  # the headline metric key of metrics.json and the summary
    protocol: str  # default protocol (what ``official`` means for this kind)
    normalizer: str  # the normaliser in words (report captions)
    normalizer_definition: str  # the split files' ``normalizer_definition`` attribute
    hourglass_adjust: bool  # prepare's box rule: c.y += 15·s, s *= 1.25 (MPII)
    ablation_joints: tuple[str, ...]  # the paper's §4.2 ablation metric's joints; () = none
    test_split: bool  # a test split without labels (MPII's test server)
    training_metric: TrainingMetric  # the per-epoch validation metric
    annotation: str  # the annotation file, in words
    paper_label: str  # the report's row label of the paper's test numbers
    paper_test: Mapping[str, float]  # the paper's 8-stack test-set row: group -> %
    paper_stacks: tuple[Mapping[str, float], ...] = ()  # the paper's stack ablation (MPII validation)

    @property
    def has_ablation(self) -> bool:
        """True when the kind has the paper's §4.2 ablation metric (``ablation@0.5``)."""
        return bool(self.ablation_joints)

    @property
    def scored(self) -> tuple[str, ...]:
        """The joints the kind's official toolkit scores (every joint but :attr:`unscored`)."""
        return tuple(j for j in self.joints if j not in self.unscored)


def _frozen(mapping: dict) -> Mapping:
    return MappingProxyType(dict(mapping))


MPII = DatasetKind(
    name="mpii",
    label="MPII",
    joints=MPII_JOINTS,
    flip=MPII_FLIP,
    groups=_frozen(MPII_GROUPS),
    unscored=("pelv", "thrx"),  # annolist2matrix keeps 14 of the 16 joints
    head_top="head",
    metric="PCKh",
    headline="pckh@0.5",
    protocol="official",
    normalizer="head size",
    normalizer_definition="0.6 * head-box diagonal, native px (MPII PCKh SC_BIAS)",
    hourglass_adjust=True,
    ablation_joints=ABLATION_JOINTS,
    test_split=True,
    # Paper §4.2: the ablations are scored on wrists, elbows, knees and ankles (the hard joints).
    training_metric=TrainingMetric("mpii", "PCKh@0.5", 0.5, ABLATION_JOINTS, "ablation joints"),
    annotation="the MPII RELEASE struct (mpii_human_pose_v1_u12_1.mat), hgbench.data.mpii",
    paper_label="8-stack (paper, MPII test set)",
    # Newell et al., ECCV 2016, Table 2: 8-stack network, MPII test set, PCKh@0.5 (Mean = "Total").
    paper_test=_frozen(
        {
            "Head": 98.2,
            "Shoulder": 96.3,
            "Elbow": 91.2,
            "Wrist": 87.1,
            "Hip": 90.1,
            "Knee": 87.4,
            "Ankle": 83.6,
            "Mean": 90.9,
        }
    ),
    # Newell et al., ECCV 2016, Fig. 9: equal capacity (2×4, 4×2, 8×1), intermediate supervision,
    # MPII validation, PCKh@0.5 over wrists, elbows, knees and ankles; final and half-way stack.
    paper_stacks=(
        _frozen({"stacks": 2, "modules": 4, "final": 87.4, "halfway": 84.6}),
        _frozen({"stacks": 4, "modules": 2, "final": 87.8, "halfway": 86.5}),
        _frozen({"stacks": 8, "modules": 1, "final": 88.1, "halfway": 87.1}),
    ),
)
"""Real MPII and the synthetic set (which copies MPII's layout): 16 joints, PCKh."""

FLIC = DatasetKind(
    name="flic",
    label="FLIC",
    joints=FLIC_JOINTS,
    flip=FLIC_FLIP,
    groups=_frozen(
        {  # the paper's Table 1 shows Elbow and Wrist (mean of left and right)
            "Head": ("leye", "reye", "nose"),
            "Shoulder": ("lsho", "rsho"),
            "Elbow": ("lelb", "relb"),
            "Wrist": ("lwri", "rwri"),
            "Hip": ("lhip", "rhip"),
        }
    ),
    unscored=(),
    head_top=None,
    metric="PCK",
    headline="pck@0.2",
    protocol="flic",
    normalizer="torso size",
    normalizer_definition="torso diagonal ||rsho - lhip|| of the person-centric labels, native px (FLIC PCK)",
    hourglass_adjust=False,
    ablation_joints=(),
    test_split=False,
    # Paper Table 1: FLIC is reported as PCK@0.2 on elbows and wrists.
    training_metric=TrainingMetric("flic", "PCK@0.2", 0.2, ("lelb", "relb", "lwri", "rwri"), "elbows, wrists"),
    annotation="FLIC's examples.mat (FLIC/examples.mat, Sapp & Taskar 2013), hgbench.data.flic",
    paper_label="8-stack (paper, FLIC test set, observer-centric)",
    # Newell et al., ECCV 2016, Table 1: FLIC test set, PCK@0.2 (torso-normalised), observer-centric.
    paper_test=_frozen({"Elbow": 99.0, "Wrist": 97.0}),
)
"""Real FLIC and the synthetic set with ``layout: flic``: 11 joints, torso-normalised PCK."""

KINDS: Mapping[str, DatasetKind] = _frozen({k.name: k for k in (MPII, FLIC)})
"""Every dataset kind by name (the allowed values of ``DatasetConfig.layout``)."""


def _listing(joiner: str) -> str:
    """e.g. ``the MPII (16) and FLIC (11)`` (or ``the MPII (16) nor the FLIC (11)``): the kinds and
    their joint counts, for messages."""
    sep = f" {joiner} " if joiner == "and" else f" {joiner} the "
    return "the " + sep.join(f"{k.label} ({len(k.joints)})" for k in KINDS.values())


def kind_of(layout: str) -> DatasetKind:
    """The kind called ``layout`` (``DatasetConfig.layout``); ValueError naming the allowed values."""
    try:
        return KINDS[layout]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown joint layout {layout!r}; allowed: {', '.join(KINDS)} (DatasetConfig.layout)"
        ) from None


def kind_for_joints(joint_names) -> DatasetKind:
    """The kind whose joints are exactly ``joint_names``, in order (a split file's ``joint_names``
    attribute; bytes are decoded). Decided by the names, never by their count: an unknown list is
    a ValueError naming the known layouts and the fix."""
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in joint_names)
    for kind in KINDS.values():
        if names == kind.joints:
            return kind
    raise ValueError(
        f"joint names {list(names)} are neither {_listing('nor')} layout "
        f"({', '.join(' '.join(k.joints) for k in KINDS.values())}); rewrite the file with "
        f"`hgbench prepare`, or give the joints in one of these orders"
    )


def kind_for_joint_count(n_joints: int) -> DatasetKind | None:
    """The kind with ``n_joints`` joints, for a file that records no joint names (``model.pt``,
    pose-hg-train's annotation ``.h5``, a split file without the ``joint_names`` attribute); None
    when no kind has that many. A file that names its joints goes through :func:`kind_for_joints`."""
    found = [k for k in KINDS.values() if len(k.joints) == n_joints]
    if len(found) > 1:
        raise ValueError(
            f"{n_joints} joints fit the layouts {', '.join(k.name for k in found)}; the file must name its joints"
        )
    return found[0] if found else None


def known_layouts() -> str:
    """``the MPII (16) and FLIC (11)``: the kinds and their joint counts, for error messages."""
    return _listing("and")
