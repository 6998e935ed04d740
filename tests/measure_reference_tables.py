"""Print every reference prediction file scored under every MPII protocol (issue 4 closing figures; not a test).

    .venv/bin/python tests/measure_reference_tables.py

Each protocol reads the ground truth its codebase reads (docs/evaluation.md, "Protocols").
"""
from pathlib import Path
from hgbench.evaluate import evaluate_files
REF = Path(__file__).resolve().parent / "data" / "reference"
FILES = ["eval-mpii-pose_newell.h5", "pose-hg-demo_valid-ours.h5", "bearpaw-hg_s1_b1.mat",
         "bearpaw-hg_s2_b1.mat", "bearpaw-hg_s8_b1.mat"]
GT = {"official": "detections_our_format.mat", "bearpaw": "detections_our_format.mat", "hrnet": "detections_our_format.mat",
      "mmpose": "detections_our_format.mat", "pytorch-stacked-hourglass": "valid.h5", "pose-hg-train": "valid.h5"}
print("| file | protocol | GT | Head | Sho | Elb | Wri | Hip | Knee | Ank | Mean | Mean@0.1 | AUC | ablation |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for f in FILES:
    for proto, gt in GT.items():
        m = evaluate_files(REF / gt, REF / f, protocol=proto, n_boot=0)
        t = m["pckh@0.5"]; t1 = m.get("pckh@0.1", {})
        print(f"| {f} | {proto} | {gt} | " + " | ".join(f"{t[k]:.2f}" for k in ("Head","Shoulder","Elbow","Wrist","Hip","Knee","Ankle","Mean"))
              + f" | {t1.get('Mean', float('nan')):.2f} | {m['auc']:.2f} | {m.get('ablation@0.5', float('nan')):.2f} |")
