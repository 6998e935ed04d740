"""Safe outputs: atomic file writes, one writer per output, stale temporary files.

* :func:`atomic_path`: a stage never leaves a half-written file under its final name;
  :func:`atomic_dir` the same for a folder written as a whole (a summary).
* :func:`output_lock`: two processes never write the same output (two pipeline runs in one
  working directory, two training jobs with the same ``--out``); the second fails fast.
* :func:`remove_stale_temps`: temporary files that a killed process left behind (SIGKILL runs no
  cleanup) are removed by the next run, which holds the output's lock, so they are not in use.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def public_mode(path: str | Path, directory: bool = False) -> None:
    """Give ``path`` the permissions a plain ``open``/``mkdir`` would give it.

    ``mkstemp`` makes files 0600 and ``mkdtemp`` folders 0700, which would hide results from the
    rest of a shared group once the temporary is renamed into place.
    """
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path next to ``path``; on success it is renamed to ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was. The published
    file gets the permissions a plain ``open`` would give it. A SIGKILL leaves the temporary
    (``.<name>.<random>.tmp``) behind, never a partial ``path``; :func:`remove_stale_temps` clears it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        public_mode(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path):
    """Yield an empty temporary folder next to ``path``; on success it replaces ``path`` whole.

    For outputs that are a set of files read together (a summary folder): a failure half-way
    leaves the previous folder as it was, never a mix of new and old files. The swap is two
    renames (the old folder aside as ``.<name>.<random>.tmp``, the new one in, the old one
    deleted); a SIGKILL between them leaves no ``path`` and the complete old folder aside, which
    :func:`remove_stale_temps` clears on the next run.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        public_mode(tmp, directory=True)
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
            os.replace(path, old)  # onto the empty folder just made: a rename
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temps(path: str | Path, patterns: tuple[str, ...] = ()) -> list[Path]:
    """Remove the temporaries of ``path`` left by killed runs; returns what was removed.

    Matches :func:`atomic_path`'s ``.<name>.*.tmp`` next to ``path`` plus ``patterns`` (globs in
    the same folder). Call it only while holding :func:`output_lock` of the output, so that no
    live process is still writing them.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return []
    removed = []
    for pattern in (f".{path.name}.*.tmp", *patterns):
        for stale in path.parent.glob(pattern):
            if stale.is_dir() and not stale.is_symlink():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
    return removed


class OutputLockedError(RuntimeError):
    """Another live process holds the lock of an output; the message names it and the fix."""


def lock_file(output: str | Path) -> Path:
    """The lock file of ``output`` (a file or a folder): ``.<name>.lock`` beside it.

    Beside, not inside: a folder output (``data/raw/<dataset>``) is replaced by a rename, and
    DVC hashes every file inside a tracked folder.
    """
    output = Path(output)
    return output.parent / f".{output.name}.lock"


def free_disk(folder: str | Path) -> tuple[Path, int]:
    """(the nearest folder at or above ``folder`` that exists, bytes free on its disk): where an
    output's folder is not made yet, its disk is the one of the folder it will be made in."""
    folder = Path(folder)
    while not folder.is_dir() and folder != folder.parent:
        folder = folder.parent
    return folder, shutil.disk_usage(folder).free


def _open_lock(path: Path, output: str | Path):
    """The lock file, opened for appending; an OSError names ``output``, the path the user gave,
    not the hidden lock file beside it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return open(path, "a+")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(output)) from None


@contextlib.contextmanager
def output_lock(output: str | Path, stage: str):
    """Hold an exclusive lock on ``output`` for the block, or fail at once.

    ``stage`` names the command for the message (``"hgbench train"``). Raises
    :class:`OutputLockedError` (naming the output, the holder's pid and the fix) when another
    process holds it. The lock is a ``flock`` on :func:`lock_file`, so the kernel releases it
    when the holder dies, even by SIGKILL: a killed job never blocks its rerun. The file is
    removed on release; a kill leaves it, and the next holder reuses it.
    """
    path = lock_file(output)
    while True:
        fh = _open_lock(path, output)
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise OutputLockedError(
                f"{output} is being written by {holder} (lock {path}); two runs must not write the same "
                f"output: wait for that run to finish or stop it, then rerun"
            ) from None
        # The previous holder may have removed the file between our open and our flock: then we
        # locked a deleted file, which protects nothing. Lock the file that is there now instead.
        try:
            same = os.path.samestat(os.fstat(fh.fileno()), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        fh.close()
    try:
        fh.seek(0)
        fh.truncate()
        fh.write(f"{stage} (pid {os.getpid()})\n")
        fh.flush()
        yield path
    finally:
        # Remove before unlocking, so that nobody can lock the file we are about to delete.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        fh.close()
