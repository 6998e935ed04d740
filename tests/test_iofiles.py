"""atomic_path: the final name holds either the old file or the complete new one."""

import os

import pytest

from hgbench.iofiles import atomic_path


def test_publishes_with_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "sub" / "metrics.json"
        with atomic_path(out) as tmp:
            assert tmp.parent == out.parent and tmp != out
            tmp.write_text("new")
            assert not out.exists()  # nothing under the final name until the block succeeds
        assert out.read_text() == "new"
        assert out.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


def test_failure_keeps_old_file_and_leaves_no_temp(tmp_path):
    out = tmp_path / "metrics.json"
    out.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(out) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed mid-write")
    assert out.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]
