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


def test_atomic_dir_replaces_a_folder_whole_or_not_at_all(tmp_path):
    from hgbench.iofiles import atomic_dir

    out = tmp_path / "summary"
    with atomic_dir(out) as tmp:
        (tmp / "a.csv").write_text("1")
        (tmp / "b.csv").write_text("1")
    assert sorted(p.name for p in out.iterdir()) == ["a.csv", "b.csv"]
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as tmp:
            (tmp / "a.csv").write_text("2")
            raise RuntimeError("a damaged input found half-way")
    assert (out / "a.csv").read_text() == "1" and (out / "b.csv").read_text() == "1"
    with atomic_dir(out) as tmp:
        (tmp / "c.csv").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == ["c.csv"]  # a whole new folder, no leftovers
    assert [p.name for p in tmp_path.iterdir()] == ["summary"]  # no temporary folder left


def test_a_lock_that_cannot_be_made_names_the_output(tmp_path):
    # The lock file is hidden beside the output; an error naming it (".out.lock") sent users looking
    # for a file they never gave. A file where the output's folder should be: no lock can be made.
    from hgbench.iofiles import output_lock

    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "run"
    with pytest.raises(OSError) as caught, output_lock(out, "hgbench train"):
        pass
    assert caught.value.filename == str(out) and ".lock" not in str(caught.value)
