"""Download, verify and unpack one archive: the generic half of ``fetch`` (no dataset knowledge).

* :func:`download` streams a URL into ``<dest>.part`` and renames it to ``dest`` only after the
  checksum matched. A cut connection is resumed with an HTTP ``Range`` request from the bytes
  already in ``.part`` (also across runs: a ``.part`` left by an interrupted run is continued);
  connection errors, timeouts and HTTP 408/429/5xx are retried with exponential backoff. A server
  that ignores ``Range`` (answers 200) makes the download start again from byte 0. Before the
  first byte of an attempt is written, the bytes still to come (the server's ``Content-Length``,
  or the expected size) plus what the archive will unpack to are checked against the free disk
  (:class:`NotEnoughDisk`, nothing written).
* :func:`verify_file` checks a file's size and checksum; :class:`ChecksumError` names the file,
  the expected and the actual value, and the fix.
* :func:`safe_extract` unpacks a ``.tar``/``.tar.gz``/``.zip`` into a temporary folder next to
  the destination and moves its top-level entries into place only when every member was
  extracted. Members with absolute paths, ``..`` components, links that point outside the
  archive (by name, and through the links already extracted: chains are resolved on disk, and
  every symlink is checked again once the tree is complete), members written through a link,
  device files or FIFOs are refused (:class:`UnsafeArchiveError`) before anything is written
  under the final names, and so are malformed archives (a hard link to a missing member, a file
  over a folder) and archives past their :class:`ExtractLimits` (total bytes, bytes per byte of
  archive, members; counted before each member is written). A truncated or damaged archive (a cut
  stream, a failed zip or gzip CRC, which is read to the end for that) raises
  :class:`CorruptArchiveError`; nothing is moved into place. Every refusal is one line:
  ``refusing to extract <archive>: <why>; <fix>``.

Progress goes to stderr: a tqdm bar on a terminal, plain lines every 10 % otherwise (logs).
Sizes are bytes throughout.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import http.client
import lzma
import math
import os
import shutil
import stat
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..iofiles import free_disk

CHUNK = 1 << 20  # bytes read per iteration (1 MiB)
RETRY_STATUS = {408, 425, 429, 500, 502, 503, 504}
USER_AGENT = "hgbench-fetch (+https://github.com/; research benchmark)"


class DownloadError(RuntimeError):
    """A download failed after every retry (host unreachable, HTTP error, truncated transfer)."""


class ChecksumError(RuntimeError):
    """A file's size or checksum is not the expected one."""


class UnsafeArchiveError(RuntimeError):
    """An archive member would be written outside the destination (or is a device/FIFO)."""


class CorruptArchiveError(UnsafeArchiveError):
    """An archive is truncated or damaged (failed CRC, cut compressed stream); nothing was extracted."""


class NotEnoughDisk(RuntimeError):
    """The free disk cannot hold the rest of a download and what it unpacks to; nothing was written.

    Bytes: ``archive`` still to download, ``already`` in the ``.part`` file resumed, ``unpacked``
    what its extraction will write, ``free`` on ``folder``.
    """

    def __init__(self, dest: Path, url: str, *, archive: int, already: int, unpacked: int, free: int, folder: Path):
        self.dest, self.url, self.folder = dest, url, folder
        self.archive, self.already, self.unpacked, self.free = archive, already, unpacked, free
        super().__init__(
            f"{dest}: downloading {url} needs about {_size(self.need)} ({self.parts()}), only {_size(free)} "
            f"are free on {folder}; free space there or download to another disk"
        )

    @property
    def need(self) -> int:
        return self.archive + self.unpacked

    def parts(self) -> str:
        """``archive Y GB + unpacked Z GB`` (with what a resumed ``.part`` already holds)."""
        resumed = f", {_size(self.already)} already in {self.dest.name}.part" if self.already else ""
        return f"archive {_size(self.archive)}{resumed} + unpacked {_size(self.unpacked)}"


def _size(n: int) -> str:
    """Bytes for people, in the units of the messages of ``fetch`` (decimal GB, MB under 0.1 GB)."""
    return f"{n / 1e9:,.1f} GB" if n >= 1e8 else f"{n / 1e6:,.1f} MB"


@dataclass(frozen=True)
class Checksum:
    """An expected digest: ``algorithm`` is a :mod:`hashlib` name (``md5``, ``sha256``), ``hexdigest`` lower case."""

    algorithm: str
    hexdigest: str

    def __str__(self) -> str:
        return f"{self.algorithm} {self.hexdigest}"


def file_digest(path: str | Path, algorithm: str = "sha256", progress_name: str | None = None) -> str:
    """Hex digest of a file, read in 1 MiB blocks (memory stays bounded for 13 GB archives)."""
    path = Path(path)
    h = hashlib.new(algorithm)
    bar = _Progress(progress_name, path.stat().st_size, verb="checking") if progress_name else None
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
            if bar:
                bar.update(len(block))
    if bar:
        bar.close()
    return h.hexdigest()


def verify_file(
    path: str | Path, size: int | None, checksums: tuple[Checksum, ...], fix: str = "", label: str | None = None
) -> dict[str, str]:
    """Check ``path`` against ``size`` (bytes, None = unknown) and every checksum.

    Returns ``{algorithm: hexdigest}`` for the checksums computed (sha256 is always computed, so
    that it can be recorded). Raises :class:`ChecksumError` naming the file, expected and actual
    values and ``fix``; ``label`` replaces the path in messages (a download names its URL and destination).
    """
    path = Path(path)
    label = label or str(path)
    actual_size = path.stat().st_size
    fix = fix or f"delete {path} and run the fetch again to download it anew"
    if size is not None and actual_size != size:
        raise ChecksumError(
            f"{label}: size {actual_size:,} bytes, expected {size:,} bytes (a truncated or different file); {fix}"
        )
    algorithms = sorted({"sha256", *(c.algorithm for c in checksums)})
    hashes = {a: hashlib.new(a) for a in algorithms}
    bar = _Progress(path.name, actual_size, verb="checking")
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            for h in hashes.values():
                h.update(block)
            bar.update(len(block))
    bar.close()
    digests = {a: h.hexdigest() for a, h in hashes.items()}
    for c in checksums:
        if digests[c.algorithm] != c.hexdigest.lower():
            raise ChecksumError(
                f"{label}: {c.algorithm} is {digests[c.algorithm]}, expected {c.hexdigest} "
                f"(a corrupt, truncated or different file); {fix}"
            )
    return digests


# ---------------------------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------------------------


class _Progress:
    """tqdm on a terminal; otherwise one plain line per 10 % (or per 100 MB when the total is unknown)."""

    def __init__(self, name: str | None, total: int | None, initial: int = 0, verb: str = "downloading", stream=None):
        self.name, self.total, self.done, self.verb = name or "", total, initial, verb
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.bar = None
        self.next_mark = 0
        if self.tty:
            from tqdm import tqdm

            self.bar = tqdm(
                total=total,
                initial=initial,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"{verb} {self.name}",
                file=self.stream,
                leave=False,
            )
        else:
            self._advance_mark()

    def _step(self) -> int:
        return max(1, self.total // 10) if self.total else 100_000_000

    def _advance_mark(self) -> None:
        while self.next_mark <= self.done:
            self.next_mark += self._step()

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.done >= self.next_mark and self.name:
            if self.total:
                msg = (
                    f"{self.verb} {self.name}: {self.done / 1e6:,.1f} of {self.total / 1e6:,.1f} MB "
                    f"({100 * self.done // self.total} %)"
                )
            else:
                msg = f"{self.verb} {self.name}: {self.done / 1e6:,.1f} MB"
            print(msg, file=self.stream, flush=True)
            self._advance_mark()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


# ---------------------------------------------------------------------------------------------
# download
# ---------------------------------------------------------------------------------------------


def _total_from_headers(resp, start: int) -> int | None:
    """Total file size from ``Content-Range: bytes a-b/TOTAL`` or ``Content-Length``."""
    cr = resp.headers.get("Content-Range")
    if cr and "/" in cr:
        tail = cr.rsplit("/", 1)[1].strip()
        if tail.isdigit():
            return int(tail)
    length = resp.headers.get("Content-Length")
    if length and length.isdigit():
        return start + int(length)
    return None


def _range_start(resp) -> int | None:
    """First byte of a 206 answer (``Content-Range: bytes START-END/TOTAL``)."""
    cr = resp.headers.get("Content-Range", "")
    try:
        return int(cr.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None


def download(
    url: str,
    dest: str | Path,
    *,
    size: int | None = None,
    checksums: tuple[Checksum, ...] = (),
    retries: int = 5,
    backoff: float = 2.0,
    timeout: float = 60.0,
    progress: bool = True,
    unpack_ratio: float = 0.0,
    unpack_cap: int | None = None,
) -> dict[str, str]:
    """Download ``url`` to ``dest`` (resuming ``<dest>.part``), verify it, rename it into place.

    ``size`` is the expected size in bytes (None = unknown), ``checksums`` the expected digests.
    ``unpack_ratio``: bytes the archive will unpack to per byte of it (0: it is not unpacked), at
    most ``unpack_cap`` bytes; the rest of the download plus that must fit on the disk before a
    byte is written (:class:`NotEnoughDisk`; not checked when neither the server nor ``size``
    gives the file's size).
    ``retries`` is the number of further attempts after a failed one that made no progress (an
    attempt that received bytes resets the count); attempt ``k`` waits ``backoff · 2**(k-1)`` s.
    Returns the digests computed by :func:`verify_file`. Raises :class:`DownloadError` when the
    host stays unreachable or answers with a non-retryable HTTP error, :class:`ChecksumError`
    when the complete file does not match (the ``.part`` file is then deleted, since resuming it
    cannot help).
    """
    dest = Path(dest)
    transfer = _Transfer(url, dest, size, timeout, progress, unpack_ratio, unpack_cap)
    failures = 0
    last_error = ""
    try:
        while (start := transfer.resume_point()) is not None:
            try:
                transfer.attempt(start)
                break
            except urllib.error.HTTPError as exc:
                last_error = transfer.http_failure(exc, start)
                failures += 1
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError) as exc:
                reason = getattr(exc, "reason", None) or exc
                last_error = f"{type(exc).__name__}: {reason}"
                failures = 0 if transfer.received else failures + 1
            if failures > retries:
                raise DownloadError(f"{url}: giving up after {failures} failed attempts (last: {last_error})")
            if failures:
                time.sleep(backoff * 2 ** (failures - 1))
    finally:
        transfer.close()
    part = transfer.part
    try:
        digests = verify_file(
            part,
            size,
            checksums,
            label=f"{dest} (downloaded from {url})",
            fix=f"the server sent a different file; {_manual_hint(dest)}",
        )
    except ChecksumError:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)
    return digests


class _Transfer:
    """The state of one download across its attempts: the ``.part`` file, the progress bar, the
    bytes the last attempt received."""

    def __init__(
        self,
        url: str,
        dest: Path,
        size: int | None,
        timeout: float,
        progress: bool,
        unpack_ratio: float = 0.0,
        unpack_cap: int | None = None,
    ):
        self.url, self.dest, self.size, self.timeout, self.progress = url, dest, size, timeout, progress
        self.unpack_ratio, self.unpack_cap = unpack_ratio, unpack_cap
        self.part = dest.with_name(dest.name + ".part")
        self.bar: _Progress | None = None
        self.received = 0

    def resume_point(self) -> int | None:
        """Bytes already in ``.part`` to continue from; None when it holds the whole file already."""
        start = self.part.stat().st_size if self.part.exists() else 0
        if self.size is not None and start == self.size:
            return None  # a previous run got every byte; only the check and the rename are left
        if self.size is not None and start > self.size:
            self.part.unlink()  # longer than the file can be: not ours, start again
            start = 0
        return start

    def attempt(self, start: int) -> None:
        """One request from byte ``start``; returns when ``.part`` holds every byte, raises on a
        cut transfer (``http.client.IncompleteRead``) or a refused answer."""
        headers = {"User-Agent": USER_AGENT}
        if start:
            headers["Range"] = f"bytes={start}-"
        self.received = 0
        with urllib.request.urlopen(urllib.request.Request(self.url, headers=headers), timeout=self.timeout) as resp:
            if start and resp.status == 200:
                start = 0  # the server ignored Range: it sends the whole file again
            elif start and resp.status == 206 and _range_start(resp) != start:
                raise DownloadError(
                    f"{self.url}: asked for bytes from {start}, the server answered "
                    f"{resp.headers.get('Content-Range')!r}"
                )
            total = _total_from_headers(resp, start)
            if self.size is not None and total is not None and total != self.size:
                raise ChecksumError(
                    f"{self.url}: the server offers {total:,} bytes, expected {self.size:,} bytes "
                    f"(a different file at this address?); {_manual_hint(self.dest)}"
                )
            self._check_disk(start, total)
            self._progress(start, total)
            self.part.parent.mkdir(parents=True, exist_ok=True)  # only now: a refusal leaves nothing
            with open(self.part, "ab" if start else "wb") as f:
                for block in iter(lambda: resp.read(CHUNK), b""):
                    f.write(block)
                    self.received += len(block)
                    if self.bar is not None:
                        self.bar.update(len(block))
        now = self.part.stat().st_size
        if (total is not None and now < total) or (self.size is not None and now < self.size):
            raise http.client.IncompleteRead(b"", (total or self.size) - now)

    def _check_disk(self, start: int, total: int | None) -> None:
        """Refuse (:class:`NotEnoughDisk`) when the bytes still to come from ``start`` and the
        extraction after them cannot fit on the disk of ``.part``."""
        full = total if total is not None else self.size
        if full is None:
            return  # a server without Content-Length and no expected size: nothing to compare
        unpacked = math.ceil(self.unpack_ratio * full)
        if self.unpack_cap is not None:
            unpacked = min(unpacked, self.unpack_cap)
        folder, free = free_disk(self.part.parent)  # downloads/ is made after the check
        if start == 0 and self.part.is_file():
            free += self.part.stat().st_size  # a .part rewritten from byte 0 gives its bytes back
        if full - start + unpacked > free:
            raise NotEnoughDisk(
                self.dest, self.url, archive=full - start, already=start, unpacked=unpacked, free=free, folder=folder
            )

    def _progress(self, start: int, total: int | None) -> None:
        if not self.progress:
            return
        if self.bar is None:
            self.bar = _Progress(self.dest.name, total or self.size, initial=start)
        elif start == 0:  # starting over: a new bar
            self.bar.close()
            self.bar = _Progress(self.dest.name, total or self.size)

    def http_failure(self, exc: urllib.error.HTTPError, start: int) -> str:
        """The reason a retryable HTTP answer gives; raises :class:`DownloadError` for the others."""
        if exc.code == 416 and start:
            # Range not satisfiable: the .part is complete already, or it is not ours
            if self.size is None or start != self.size:
                self.part.unlink(missing_ok=True)
            return "HTTP 416 (range not satisfiable)"
        if exc.code in RETRY_STATUS:
            return f"HTTP {exc.code} {exc.reason}"
        raise DownloadError(f"{self.url}: HTTP {exc.code} {exc.reason}") from None

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _manual_hint(dest: Path) -> str:
    return f"delete {dest} (and {dest.name}.part) and run the fetch again, or place the right file at {dest}"


# ---------------------------------------------------------------------------------------------
# extraction
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractLimits:
    """What one archive may unpack to; each dataset's spec (``data/fetch.py``) sets its own, well
    above what the official file holds. Sizes are the members' own (declared) sizes, which
    ``tarfile`` and ``zipfile`` never write beyond."""

    max_bytes: int  # the members' sizes added up
    max_ratio: float  # that sum ÷ the archive's size (a compression bomb has thousands)
    max_members: int  # files, folders and links


DEFAULT_LIMITS = ExtractLimits(max_bytes=64 * 2**30, max_ratio=100.0, max_members=1_000_000)
"""For an archive without a spec of its own."""

_FIX = "the archive is not the official file: delete it and fetch again"


def _refuse(archive: Path, why: str, fix: str = _FIX) -> UnsafeArchiveError:
    """The one-line refusal: ``refusing to extract <archive>: <why>; <fix>``."""
    return UnsafeArchiveError(f"refusing to extract {archive}: {why}; {fix}")


def _corrupt(archive: Path, why: str) -> CorruptArchiveError:
    return CorruptArchiveError(
        f"refusing to extract {archive}: {why}; nothing was extracted. Delete it and run the "
        f"fetch again to download it anew"
    )


class _Budget:
    """Counts what an archive unpacks to against its :class:`ExtractLimits`, before each write."""

    def __init__(self, archive: Path, limits: ExtractLimits):
        self.archive, self.limits = archive, limits
        self.archive_bytes = archive.stat().st_size
        self.bytes = 0
        self.members = 0

    def add(self, name: str, size: int) -> None:
        """Count one member of ``size`` bytes; refuse the archive when it goes over a limit."""
        self.members += 1
        self.bytes += max(size, 0)
        lim = self.limits
        if self.members > lim.max_members:
            raise _refuse(self.archive, f"it holds more than {lim.max_members:,} members, the limit for this archive")
        if self.bytes > lim.max_bytes:
            raise _refuse(
                self.archive,
                f"its members add up to more than {lim.max_bytes:,} bytes (at {name!r}), the limit for this archive",
            )
        if self.bytes > lim.max_ratio * self.archive_bytes:
            raise _refuse(
                self.archive,
                f"its members add up to more than {lim.max_ratio:g} times its own "
                f"{self.archive_bytes:,} bytes (at {name!r}): a compression bomb",
            )


def _member_path(name: str, archive: Path, is_dir: bool = False) -> PurePosixPath:
    """The member's relative path; refuses absolute paths, ``..`` components, and a file or link
    whose name is the extraction root itself (``.``, empty)."""
    p = PurePosixPath(name.replace("\\", "/"))
    if p.is_absolute() or name.startswith(("/", "\\")) or (p.parts and ":" in p.parts[0]):
        raise _refuse(archive, f"member {name!r} has an absolute path")
    if ".." in p.parts:
        raise _refuse(archive, f"member {name!r} contains '..'")
    if not is_dir and not [part for part in p.parts if part not in ("", ".")]:
        raise _refuse(archive, f"member {name!r} names the extraction folder itself")
    return p


def _inside(target: PurePosixPath) -> bool:
    """True if a relative path, normalised lexically, stays inside the extraction root."""
    depth = 0
    for part in target.parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return False
        elif part not in ("", "."):
            depth += 1
    return not target.is_absolute()


def _within(root: str, path: Path | str) -> bool:
    """``path`` with every link on disk followed (chains too) is ``root`` (a real path) or below it."""
    real = os.path.realpath(path)
    return real == root or real.startswith(root + os.sep)


def _check_tar_member(m: tarfile.TarInfo, archive: Path, into: Path, root: str) -> None:
    """Refuse a member that would write or point outside ``into``: by its name, lexically, and
    through the links extracted so far (``root`` is ``into``'s real path)."""
    p = _member_path(m.name, archive, is_dir=m.isdir())
    if not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
        raise _refuse(archive, f"member {m.name!r} is a device file or FIFO")
    # A link member replaces what is at its name; a file or folder is written through a link there.
    if not _within(root, into / p.parent if m.issym() or m.islnk() else into / p):
        raise _refuse(archive, f"member {m.name!r} would be written through a link that leads outside the archive")
    if m.issym() or m.islnk():
        kind = "symlink" if m.issym() else "hard link"
        link = PurePosixPath(m.linkname)
        target = p.parent / link if m.issym() else link  # a hard link names a member, from the root
        if link.is_absolute() or not _inside(target):
            raise _refuse(archive, f"{kind} {m.name!r} -> {m.linkname!r} points outside the archive")
        if not _within(root, into / target):
            raise _refuse(
                archive, f"{kind} {m.name!r} -> {m.linkname!r} leads outside the archive through other links in it"
            )


def _extract_tar(archive: Path, into: Path, progress: bool, limits: ExtractLimits) -> None:
    size = archive.stat().st_size
    budget = _Budget(archive, limits)
    root = os.path.realpath(into)
    symlinks = []
    with open(archive, "rb") as raw:
        bar = _Progress(archive.name, size, verb="extracting") if progress else None
        last = 0
        # one pass over the (possibly 13 GB) compressed stream: check each member, then extract it
        with tarfile.open(fileobj=raw, mode="r:*") as tar:
            for m in tar:
                _check_tar_member(m, archive, into, root)
                budget.add(m.name, m.size if m.isfile() else 0)
                tar.extract(m, into, set_attrs=False, filter="data")
                if m.issym():
                    symlinks.append(m)
                if bar is not None:
                    pos = raw.tell()
                    bar.update(pos - last)
                    last = pos
            # tarfile stops at the end-of-archive blocks, before the gzip/bz2/xz trailer, so the
            # stream's CRC would never be checked: a damaged byte inside stored (incompressible,
            # e.g. JPEG) data would be extracted silently. Reading to the end checks it.
            if tar.fileobj is not raw:
                while tar.fileobj.read(CHUNK):
                    pass
        if bar is not None:
            bar.close()
    # A link that was inside when it was made can lead out through a link made after it (x -> a/b/..,
    # then a/b -> ..): every symlink is checked again against the finished tree.
    for m in symlinks:
        if not _within(root, into / PurePosixPath(m.name)):
            raise _refuse(
                archive, f"symlink {m.name!r} -> {m.linkname!r} leads outside the archive through other links in it"
            )


def _extract_zip(archive: Path, into: Path, progress: bool, limits: ExtractLimits) -> None:
    budget = _Budget(archive, limits)
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        for info in infos:  # check all first: a zip has a central directory, so this is cheap
            _member_path(info.filename, archive, is_dir=info.is_dir())
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise _refuse(archive, f"member {info.filename!r} is a symbolic link (the official archives hold none)")
            budget.add(info.filename, info.file_size)
        bar = _Progress(archive.name, sum(i.compress_size for i in infos), verb="extracting") if progress else None
        for info in infos:
            zf.extract(info, into)
            if bar is not None:
                bar.update(info.compress_size)
        if bar is not None:
            bar.close()


_MALFORMED_ERRNOS = {errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ELOOP, errno.ENAMETOOLONG, errno.EINVAL}
"""Extraction errors that the archive's own members cause (a file where a folder must be, a
link that loops, a name too long): the archive is refused. Others (a full disk) propagate."""


def _malformed(archive: Path, exc: Exception) -> UnsafeArchiveError:
    return _refuse(archive, f"malformed archive ({type(exc).__name__}: {exc})")


def safe_extract(
    archive: str | Path,
    dest_dir: str | Path,
    progress: bool = True,
    protected: tuple[str, ...] = (),
    limits: ExtractLimits = DEFAULT_LIMITS,
) -> list[str]:
    """Unpack ``archive`` (tar, tar.gz/bz2/xz or zip) into ``dest_dir``; return the top-level names.

    Extraction goes to a temporary folder inside ``dest_dir``; each top-level entry then replaces
    the entry of the same name in ``dest_dir`` with one rename, so a failed or interrupted
    extraction leaves ``dest_dir`` as it was. An archive whose top level holds a name in
    ``protected`` (e.g. the downloads folder itself) is refused, and so is one that unpacks to
    more than ``limits`` allow (counted before each member is written).
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".extract-{archive.name}-", dir=dest_dir))
    try:
        _unpack(archive, tmp, progress, limits)
        names = sorted(os.listdir(tmp))
        clash = [n for n in names if n in protected]
        if clash:
            raise _refuse(archive, f"its top level holds {clash[0]!r}, which would replace {dest_dir / clash[0]}")
        for name in names:
            target = dest_dir / name
            if target.exists() or target.is_symlink():
                os.replace(target, tmp / f".old-{name}")  # moved aside, deleted with tmp below
            os.replace(tmp / name, target)
        return names
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _unpack(archive: Path, into: Path, progress: bool, limits: ExtractLimits) -> None:
    """Extract into ``into``, turning every error the archive's bytes cause into a refusal."""
    try:
        if zipfile.is_zipfile(archive):
            _extract_zip(archive, into, progress, limits)
        elif tarfile.is_tarfile(archive):
            _extract_tar(archive, into, progress, limits)
        else:
            raise _corrupt(archive, "neither a tar nor a zip archive (a truncated, corrupt or wrong file)")
    except tarfile.FilterError as exc:  # tarfile's own "data" filter, behind the checks above
        raise _refuse(archive, str(exc)) from None
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as exc:
        # A truncated download or a damaged file: a cut gzip stream raises EOFError, damaged
        # deflate data zlib.error, a failed CRC BadGzipFile/BadZipFile.
        raise _corrupt(archive, f"the archive is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    except KeyError as exc:  # a hard link to a member that is not in the archive
        raise _malformed(archive, exc) from None
    except OSError as exc:
        if exc.errno in _MALFORMED_ERRNOS:
            raise _malformed(archive, exc) from None
        if "Invalid data stream" in str(exc):  # bz2 reports damaged data as a bare OSError
            raise _corrupt(archive, f"the archive is corrupt ({exc})") from None
        raise
