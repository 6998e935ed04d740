"""Print every reference prediction file scored under every MPII protocol (issue 4 closing figures; not a test).

    .venv/bin/python tests/measure_reference_tables.py

Each protocol reads the ground truth its codebase reads (docs/evaluation.md, "Protocols"): ``official``
the MPII annotation list (the shipped ground truth, ``--ground-truth`` omitted), the others the file
named in GT. The second table is issue 18's closing figure: ``official`` on the annotation list minus
``official``'s rules applied to ``detections_our_format.mat`` (gt_valid.mat) as given, per group.
"""

from pathlib import Path

from hgbench.evaluate import evaluate_files, load_ground_truth, load_predictions
from hgbench.metrics import pck

REF = Path(__file__).resolve().parent / "data" / "reference"
FILES = [
    "eval-mpii-pose_newell.h5",
    "pose-hg-demo_valid-ours.h5",
    "bearpaw-hg_s1_b1.mat",
    "bearpaw-hg_s2_b1.mat",
    "bearpaw-hg_s8_b1.mat",
]
GT = {
    "official": None,
    "bearpaw": "detections_our_format.mat",
    "hrnet": "detections_our_format.mat",
    "mmpose": "detections_our_format.mat",
    "pytorch-stacked-hourglass": "valid.h5",
    "pose-hg-train": "valid.h5",
}
GROUPS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean")
print("| file | protocol | GT | Head | Sho | Elb | Wri | Hip | Knee | Ank | Mean | Mean@0.1 | AUC | ablation |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for f in FILES:
    for proto, gt in GT.items():
        m = evaluate_files(REF / gt if gt else None, REF / f, protocol=proto, n_boot=0)
        t = m["pckh@0.5"]
        t1 = m.get("pckh@0.1", {})
        print(
            f"| {f} | {proto} | {gt or 'annotation list (shipped)'} | "
            + " | ".join(f"{t[k]:.2f}" for k in GROUPS)
            + f" | {t1.get('Mean', float('nan')):.2f} | {m['auc']:.2f} | {m.get('ablation@0.5', float('nan')):.2f} |"
        )

gt_valid = load_ground_truth(REF / "detections_our_format.mat")  # pos_gt_src as stored (13 zeroed joints)
print("\n| file | route | " + " | ".join(GROUPS) + " | Mean@0.1 | AUC | ablation |")
print("|---|---|" + "---|" * (len(GROUPS) + 3))
for f in FILES:
    exact = evaluate_files(None, REF / f, n_boot=0)
    as_given = pck(load_predictions(REF / f, 2958), gt_valid.joints, gt_valid.missing, gt_valid.normalizer, "official")
    for name, m in (("annotation list", exact), ("gt_valid.mat as given", as_given)):
        print(
            f"| {f} | {name} | "
            + " | ".join(f"{m['pckh@0.5'][k]:.2f}" for k in GROUPS)
            + f" | {m['pckh@0.1']['Mean']:.2f} | {m['auc']:.2f} | {m['ablation@0.5']:.2f} |"
        )
    print(
        f"| {f} | difference | "
        + " | ".join(f"{exact['pckh@0.5'][k] - as_given['pckh@0.5'][k]:+.4f}" for k in GROUPS)
        + f" | {exact['pckh@0.1']['Mean'] - as_given['pckh@0.1']['Mean']:+.4f} | {exact['auc'] - as_given['auc']:+.4f}"
        f" | {exact['ablation@0.5'] - as_given['ablation@0.5']:+.4f} |"
    )
