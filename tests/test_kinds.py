"""hgbench.kinds: one description per dataset kind, checked against itself and against the places
that used to hold its facts (schema layouts, protocols, the report's paper rows)."""

import pytest

from hgbench.config import DatasetConfig, SyntheticConfig
from hgbench.data.flic import FLIC_LAYOUT
from hgbench.data.schema import MPII_LAYOUT
from hgbench.joints import FLIC_JOINTS, MPII_JOINTS, joints_of, layout_of
from hgbench.kinds import FLIC, KINDS, MPII, kind_for_joint_count, kind_for_joints, kind_of, known_layouts
from hgbench.metrics import PROTOCOLS, TRAINING_METRICS, get_protocol, training_metric


def _mirror(name: str) -> str:
    """The joint's name on the other side (``lsho`` ↔ ``rsho``); unsided joints stay."""
    return {"l": "r", "r": "l"}[name[0]] + name[1:] if name[0] in "lr" else name


def test_kinds_by_name():
    assert dict(KINDS) == {"mpii": MPII, "flic": FLIC}
    assert kind_of("mpii") is MPII and kind_of("flic") is FLIC
    for bad in ("coco", "MPII", "", None):
        with pytest.raises(ValueError, match="allowed: mpii, flic"):
            kind_of(bad)


@pytest.mark.parametrize("kind", [MPII, FLIC], ids=lambda k: k.name)
def test_flip_is_an_involution_mapping_left_to_right(kind):
    flip = kind.flip
    assert sorted(flip) == list(range(len(kind.joints)))
    assert all(flip[flip[i]] == i for i in range(len(flip)))
    assert [kind.joints[flip[i]] for i in range(len(flip))] == [_mirror(n) for n in kind.joints]
    assert any(flip[i] != i for i in range(len(flip)))  # it does swap something


@pytest.mark.parametrize("kind", [MPII, FLIC], ids=lambda k: k.name)
def test_groups_cover_exactly_the_scored_joints(kind):
    members = [j for joints in kind.groups.values() for j in joints]
    assert len(members) == len(set(members))  # no joint in two groups
    assert set(members) == set(kind.scored)
    assert set(kind.unscored) <= set(kind.joints)
    # a group is a left/right pair or a set of unsided joints: flipping keeps every group
    for joints in kind.groups.values():
        assert {_mirror(j) for j in joints} == set(joints)


def test_unscored_and_groups_are_the_toolkits():
    assert MPII.unscored == ("pelv", "thrx") and FLIC.unscored == ()
    assert list(MPII.groups) == ["Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle"]
    assert list(FLIC.groups) == ["Head", "Shoulder", "Elbow", "Wrist", "Hip"]
    assert MPII.head_top in MPII.groups["Head"] and FLIC.head_top is None


def test_kind_for_joints_by_names():
    assert kind_for_joints(MPII_JOINTS) is MPII
    assert kind_for_joints(list(FLIC_JOINTS)) is FLIC
    assert kind_for_joints([n.encode() for n in FLIC_JOINTS]) is FLIC  # an HDF5 attribute's bytes


@pytest.mark.parametrize(
    "names",
    [
        FLIC_JOINTS[::-1],  # the right names in another order
        (*FLIC_JOINTS[:-1], "lear"),  # 11 names, one of them not FLIC's: the count alone would say FLIC
        MPII_JOINTS[:-1],
        (),
    ],
    ids=["reordered", "same-count", "short", "empty"],
)
def test_kind_for_joints_refuses_an_unknown_name_list(names):
    with pytest.raises(ValueError, match=r"neither the MPII \(16\) nor the FLIC \(11\) layout.*hgbench prepare"):
        kind_for_joints(names)


def test_kind_for_joint_count_is_for_nameless_files_only():
    assert kind_for_joint_count(16) is MPII and kind_for_joint_count(11) is FLIC
    assert kind_for_joint_count(13) is None
    assert known_layouts() == "the MPII (16) and FLIC (11)"


def test_paper_rows_are_the_published_numbers():
    # The numbers report/build.py held before (Newell et al., ECCV 2016, Tables 1, 2 and Fig. 9).
    assert MPII.paper_test == {
        "Head": 98.2,
        "Shoulder": 96.3,
        "Elbow": 91.2,
        "Wrist": 87.1,
        "Hip": 90.1,
        "Knee": 87.4,
        "Ankle": 83.6,
        "Mean": 90.9,
    }
    assert FLIC.paper_test == {"Elbow": 99.0, "Wrist": 97.0}
    assert [dict(r) for r in MPII.paper_stacks] == [
        {"stacks": 2, "modules": 4, "final": 87.4, "halfway": 84.6},
        {"stacks": 4, "modules": 2, "final": 87.8, "halfway": 86.5},
        {"stacks": 8, "modules": 1, "final": 88.1, "halfway": 87.1},
    ]
    assert FLIC.paper_stacks == ()
    assert MPII.paper_label == "8-stack (paper, MPII test set)"
    assert FLIC.paper_label == "8-stack (paper, FLIC test set, observer-centric)"
    for kind in KINDS.values():  # every paper group is a report group (or Mean)
        assert set(kind.paper_test) <= {*kind.groups, "Mean"}
    with pytest.raises(TypeError):  # facts are read-only
        MPII.paper_test["Mean"] = 0.0


def test_claims_use_the_kinds_paper_rows():
    from hgbench import claims

    assert claims.PAPER_STACKS is MPII.paper_stacks


@pytest.mark.parametrize("kind", [MPII, FLIC], ids=lambda k: k.name)
def test_headline_protocol_and_training_metric_agree(kind):
    proto = get_protocol(kind.protocol)
    assert proto.kind is kind and proto.headline[0] == kind.headline
    assert proto.joint_names == kind.joints and proto.unscored == kind.unscored
    assert all(p.kind is kind for p in PROTOCOLS.values() if p.dataset == kind.name)
    assert kind.headline.startswith(kind.metric.lower() + "@")
    metric = kind.training_metric
    assert metric.layout == kind.name and TRAINING_METRICS[kind.name] is metric
    assert training_metric(kind.name) is metric
    assert set(metric.joints) <= set(kind.scored)
    assert [kind.joints[i] for i in metric.indices] == list(metric.joints)


def test_facts_of_each_kind():
    assert (MPII.headline, FLIC.headline) == ("pckh@0.5", "pck@0.2")
    assert (MPII.protocol, FLIC.protocol) == ("official", "flic")
    assert (MPII.normalizer, FLIC.normalizer) == ("head size", "torso size")
    assert MPII.hourglass_adjust and not FLIC.hourglass_adjust
    assert MPII.has_ablation and not FLIC.has_ablation
    assert MPII.test_split and not FLIC.test_split
    assert "RELEASE" in MPII.annotation and "examples.mat" in FLIC.annotation


@pytest.mark.parametrize("kind, layout", [(MPII, MPII_LAYOUT), (FLIC, FLIC_LAYOUT)], ids=["mpii", "flic"])
def test_the_split_files_layout_is_the_kinds(kind, layout):
    assert layout.joint_names == kind.joints
    assert layout.flip_permutation == kind.flip
    assert layout.normalizer_definition == kind.normalizer_definition
    assert layout.hourglass_adjust == kind.hourglass_adjust


def test_joints_helpers_agree_with_the_kinds():
    for name, kind in KINDS.items():
        assert joints_of(name) == kind.joints
        assert layout_of(kind.joints) == name


def test_dataset_config_layout_names_a_kind():
    def ds(source, layout=None):
        syn = (
            None
            if layout is None
            else SyntheticConfig(
                seed=0,
                n_train=1,
                n_valid=1,
                image_size=64,
                person_height=(0.5, 0.9),
                rotation=0.0,
                occluders=0.0,
                distractors=0.0,
                clutter=0.0,
                lr_cue=0.0,
                missing_rate=0.0,
                layout=layout,
            )
        )
        return DatasetConfig(name="d", source=source, input_res=64, output_res=16, crop_margin=1.25, synthetic=syn)

    assert kind_of(ds("mpii").layout) is MPII
    assert kind_of(ds("flic").layout) is FLIC
    assert kind_of(ds("synthetic", "mpii").layout) is MPII
    assert kind_of(ds("synthetic", "flic").layout) is FLIC
