"""Time PCKh evaluation of the 2958-person MPII validation set (issue 4: target < 50 ms).

    .venv/bin/python bench/bench_evaluate.py [--repeat 20] [--protocol official]

Prints the median wall time of :func:`hgbench.metrics.pck` (all 51 curve thresholds, both key
thresholds, per-joint curves, visibility split, per-person strings) on in-memory arrays, and of the
1000-replicate bootstrap CI that ``evaluate`` adds, and the whole ``evaluate_files`` call (file
reading included).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from hgbench.evaluate import confidence_intervals, evaluate_files, load_ground_truth, load_predictions
from hgbench.metrics import get_protocol, pck

REF = Path(__file__).resolve().parents[1] / "tests" / "data" / "reference"


def _median_ms(func, repeat: int) -> float:
    func()  # warm-up (imports, caches)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return 1000.0 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--protocol", default="official")
    parser.add_argument("--ground-truth", default=str(REF / "valid.h5"))
    parser.add_argument("--predictions", default=str(REF / "eval-mpii-pose_newell.h5"))
    args = parser.parse_args()

    gt = load_ground_truth(args.ground_truth)
    preds = load_predictions(args.predictions, gt.joints.shape[0])
    proto = get_protocol(args.protocol)

    def score():
        return pck(preds, gt.joints, gt.missing, gt.normalizer, protocol=proto, visible=gt.visible)

    per_person = score()["per_person"]
    t_pck = _median_ms(score, args.repeat)
    t_ci = _median_ms(lambda: confidence_intervals(per_person, proto), max(3, args.repeat // 4))
    t_file = _median_ms(
        lambda: evaluate_files(args.ground_truth, args.predictions, args.protocol), max(3, args.repeat // 4)
    )
    n = preds.shape[0]
    print(f"pck ({args.protocol}, {n} people, 53 thresholds): {t_pck:.1f} ms (target < 50 ms)")
    print(f"bootstrap 95% CIs (1000 replicates, Mean + ablation): {t_ci:.1f} ms")
    print(f"evaluate_files (read both files + score + CIs): {t_file:.1f} ms")


if __name__ == "__main__":
    main()
