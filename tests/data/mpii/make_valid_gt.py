"""Rebuild the shipped MPII validation ground truth (src/hgbench/data/mpii_valid_gt.h5).

    .venv/bin/python tests/data/mpii/make_valid_gt.py /work/shared/data/mpii/detections.mat

The argument is Tompson et al.'s ``detections.mat`` (bearpaw/pytorch-pose
``evaluation/data/detections.mat``, commit edc7aece…, sha256 cfb56b43…ef4d13; see the project's
shared/data/SOURCES.md) or its compressed copy ``tests/data/mpii/detections_annolist.mat`` (same
struct contents), or the official ``mpii_human_pose_v1_u12_1.mat``: all three give the same arrays.
Its ``annolist`` holds the annotation-list records of the 2958 standard validation people, placed in
``RELEASE`` by ``RELEASE_img_index``/``RELEASE_person_index``, in the order of
``src/hgbench/data/mpii_valid_split.csv`` (checked). Needs only hgbench's own dependencies.
"""

import sys
from pathlib import Path

from hgbench.data import mpii_gt


def main(source: Path, out: Path = mpii_gt.VALID_GT) -> Path:
    arrays = mpii_gt.build_valid_gt(source)
    return mpii_gt.write_valid_gt(arrays, out, source=source, built_by="tests/data/mpii/make_valid_gt.py")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    path = main(Path(sys.argv[1]), *(Path(a) for a in sys.argv[2:]))
    print(f"written {path} ({path.stat().st_size} bytes)")
