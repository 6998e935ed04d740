"""Joint definitions shared by every stage (MPII order, 0-based ids).

The MPII ids are the official annotation ids (``annopoints.point.id``); every array in the
project with a joint axis uses this order.
"""

MPII_JOINTS = (
    "rank",
    "rkne",
    "rhip",
    "lhip",
    "lkne",
    "lank",
    "pelv",
    "thrx",
    "neck",
    "head",
    "rwri",
    "relb",
    "rsho",
    "lsho",
    "lelb",
    "lwri",
)
"""16 MPII joints, index = official MPII joint id (0 = right ankle ... 15 = left wrist)."""

MPII_FLIP = (5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10)
"""Left/right permutation: joint ``i`` of a mirrored image is joint ``MPII_FLIP[i]``."""

MPII_GROUPS = {
    "Head": ("neck", "head"),
    "Shoulder": ("rsho", "lsho"),
    "Elbow": ("relb", "lelb"),
    "Wrist": ("rwri", "lwri"),
    "Hip": ("rhip", "lhip"),
    "Knee": ("rkne", "lkne"),
    "Ankle": ("rank", "lank"),
}
"""Report groups of the official toolkit (genTablePCK.m). Pelvis and thorax are never scored."""

ABLATION_JOINTS = ("relb", "lelb", "rwri", "lwri", "rkne", "lkne", "rank", "lank")
"""The paper's §4.2 ablation metric averages wrists, elbows, knees and ankles."""

# Limbs for drawing skeletons and for the synthetic body model, as (parent, child) names.
MPII_SKELETON = (
    ("rank", "rkne"),
    ("rkne", "rhip"),
    ("rhip", "pelv"),
    ("pelv", "lhip"),
    ("lhip", "lkne"),
    ("lkne", "lank"),
    ("pelv", "thrx"),
    ("thrx", "neck"),
    ("neck", "head"),
    ("thrx", "rsho"),
    ("rsho", "relb"),
    ("relb", "rwri"),
    ("thrx", "lsho"),
    ("lsho", "lelb"),
    ("lelb", "lwri"),
)


def joint_index(name: str) -> int:
    """Index of an MPII joint name in :data:`MPII_JOINTS`."""
    return MPII_JOINTS.index(name)


FLIC_JOINTS = ("lsho", "lelb", "lwri", "rsho", "relb", "rwri", "lhip", "rhip", "leye", "reye", "nose")
"""The 11 annotated FLIC joints, in the order of the Torch original's FLIC files."""

FLIC_FLIP = (3, 4, 5, 0, 1, 2, 7, 6, 9, 8, 10)

# FLIC has no legs, pelvis or thorax: arms, the torso quadrilateral, and the face.
FLIC_SKELETON = (
    ("rsho", "relb"),
    ("relb", "rwri"),
    ("lsho", "lelb"),
    ("lelb", "lwri"),
    ("rsho", "lsho"),
    ("rsho", "rhip"),
    ("lsho", "lhip"),
    ("rhip", "lhip"),
    ("reye", "nose"),
    ("leye", "nose"),
)


def skeleton_limbs(joint_names) -> list[tuple[int, int]]:
    """Limbs as index pairs into ``joint_names``, from the skeleton (:data:`MPII_SKELETON` or
    :data:`FLIC_SKELETON`) of which most limbs have both joints in ``joint_names``."""
    names = list(joint_names)

    def present(skeleton):
        return [(names.index(a), names.index(b)) for a, b in skeleton if a in names and b in names]

    return max(present(MPII_SKELETON), present(FLIC_SKELETON), key=len)


LAYOUT_JOINTS = {"mpii": MPII_JOINTS, "flic": FLIC_JOINTS}
"""Joint names of each layout of prepared data (``DatasetConfig.layout``). Everything else about a
layout (flip, groups, metric, normaliser, paper rows) is its :class:`hgbench.kinds.DatasetKind`;
new code asks ``hgbench.kinds.kind_of(layout).joints`` / ``kind_for_joints(names)``."""
LAYOUTS = tuple(LAYOUT_JOINTS)
"""Joint layouts of prepared data (``DatasetConfig.layout``): 16 MPII joints or 11 FLIC joints."""


def joints_of(layout: str) -> tuple[str, ...]:
    """Joint names of a layout, ``mpii`` or ``flic`` (ask ``DatasetConfig.layout``, not its source:
    a synthetic dataset has either layout). Same as ``hgbench.kinds.kind_of(layout).joints``."""
    if layout not in LAYOUT_JOINTS:
        raise ValueError(f"unknown joint layout {layout!r}; allowed: {', '.join(LAYOUTS)} (DatasetConfig.layout)")
    return LAYOUT_JOINTS[layout]


def layout_of(joint_names) -> str:
    """``flic`` or ``mpii`` from the joint names of a split file (``joint_names`` attribute); same as
    ``hgbench.kinds.kind_for_joints(joint_names).name``."""
    names = tuple(joint_names)
    for layout, joints in LAYOUT_JOINTS.items():
        if names == joints:
            return layout
    raise ValueError(f"joint names {list(names)} are neither the MPII (16) nor the FLIC (11) layout")
