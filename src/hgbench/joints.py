"""Joint definitions shared by every stage (MPII order, 0-based ids).

The MPII ids are the official annotation ids (``annopoints.point.id``); every array in the
project with a joint axis uses this order.
"""

MPII_JOINTS = (
    "rank", "rkne", "rhip", "lhip", "lkne", "lank", "pelv", "thrx",
    "neck", "head", "rwri", "relb", "rsho", "lsho", "lelb", "lwri",
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
    ("rank", "rkne"), ("rkne", "rhip"), ("rhip", "pelv"), ("pelv", "lhip"), ("lhip", "lkne"),
    ("lkne", "lank"), ("pelv", "thrx"), ("thrx", "neck"), ("neck", "head"), ("thrx", "rsho"),
    ("rsho", "relb"), ("relb", "rwri"), ("thrx", "lsho"), ("lsho", "lelb"), ("lelb", "lwri"),
)


def joint_index(name: str) -> int:
    """Index of an MPII joint name in :data:`MPII_JOINTS`."""
    return MPII_JOINTS.index(name)


FLIC_JOINTS = ("lsho", "lelb", "lwri", "rsho", "relb", "rwri", "lhip", "rhip", "leye", "reye", "nose")
"""The 11 annotated FLIC joints, in the order of the Torch original's FLIC files."""

FLIC_FLIP = (3, 4, 5, 0, 1, 2, 7, 6, 9, 8, 10)


def joints_of(source: str) -> tuple[str, ...]:
    """Joint names of a dataset source (``synthetic`` uses the MPII layout)."""
    return FLIC_JOINTS if source == "flic" else MPII_JOINTS
