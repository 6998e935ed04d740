"""Rebuild the FLIC test files in this folder from pose-hg-train's FLIC annotation files (see README.md).

    .venv/bin/python tests/data/flic/make_subset.py /work/shared/data/flic

Picks 12 train and 12 test examples (in each split the first 4 people seen from behind, whose
observer- and person-centric labels differ, and the first 8 others), and writes
``examples_subset.mat`` (FLIC ``examples.mat`` layout, built by ``tests/realdata.py``) and
``reference.npz`` (the same rows of the hourglass files: observer- and person-centric ``part``,
``normalize``, ``center``, ``index``, ``imgname``).
"""

import sys
from pathlib import Path

import numpy as np
import scipy.io

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from realdata import flic_examples, read_flic_h5  # noqa: E402


def main(src: Path, dst: Path) -> None:
    rows = read_flic_h5(src)
    differs = (rows["part_obs"] != rows["part_pc"]).any(axis=(1, 2))
    pick = []
    for is_train in (True, False):
        split = rows["istrain"] == is_train
        pick += list(np.flatnonzero(split & differs)[:4]) + list(np.flatnonzero(split & ~differs)[:8])
    pick = np.sort(pick)
    sub = {k: v[pick] for k, v in rows.items()}
    scipy.io.savemat(dst / "examples_subset.mat", {"examples": flic_examples(sub)}, do_compression=True, oned_as="row")
    np.savez_compressed(dst / "reference.npz", **sub)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(__file__).resolve().parent)
