"""The processed-split HDF5 schema (``data/processed/<dataset>/<split>.h5``, ``schema_version = 1``).

docs/architecture.md is the contract; this module is its executable form. :func:`open_split`
validates a file on open (datasets, dtypes, shapes, attributes) and raises
:class:`DataFileError` — naming the file and the fix — for a missing, truncated, corrupt,
incomplete or outdated file. :func:`read_split_arrays` reads the small per-person fields at once;
:meth:`SplitFile.image` reads one crop row lazily.

    >>> with open_split("data/processed/synthetic/valid.h5") as f:
    ...     crop = f.image(0)                      # (C, C, 3) uint8
    ...     joints = f.read(["joints"])["joints"]  # (N, 16, 2) float32
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from hgbench.joints import MPII_FLIP, MPII_JOINTS

SCHEMA_VERSION = 1
FRAME_OFFSET = 1
NORMALIZER_DEFINITION = "0.6 * head-box diagonal, native px (MPII PCKh SC_BIAS)"


@dataclass(frozen=True)
class Layout:
    """What a dataset's split files record besides the people: joints, flip, normaliser, crop rule."""

    joint_names: tuple[str, ...]
    flip_permutation: tuple[int, ...]
    normalizer_definition: str
    hourglass_adjust: bool  # MPII layout: c.y += 15·s, s *= 1.25 (once, in prepare); FLIC: box as given


MPII_LAYOUT = Layout(
    joint_names=MPII_JOINTS,
    flip_permutation=MPII_FLIP,
    normalizer_definition=NORMALIZER_DEFINITION,
    hourglass_adjust=True,
)
"""MPII and the synthetic set (which copies MPII's layout)."""

# name -> (shape with symbols N persons, J joints, C crop side; numpy dtype kind check)
DATASETS: dict[str, tuple[tuple, str]] = {
    "images": (("N", "C", "C", 3), "uint8"),
    "joints": (("N", "J", 2), "float32"),
    "joints_image": (("N", "J", 2), "float64"),
    "visible": (("N", "J"), "bool"),
    "missing": (("N", "J"), "bool"),
    "crop_to_image": (("N", 2, 3), "float64"),
    "normalizer": (("N",), "float64"),
    "headbox": (("N", 2, 2), "float64"),
    "center": (("N", 2), "float64"),
    "scale": (("N",), "float64"),
    "image_name": (("N",), "str"),
    "image_index": (("N",), "int64"),
    "person_index": (("N",), "int64"),
}
"""Every dataset of a split file: symbolic shape and dtype."""

SMALL_FIELDS = tuple(k for k in DATASETS if k != "images")
"""Fields cheap enough to read whole (everything except the crops)."""

ATTRIBUTES = (
    "schema_version",
    "dataset",
    "split",
    "joint_names",
    "flip_permutation",
    "input_res",
    "crop_size",
    "crop_margin",
    "frame_offset",
    "normalizer_definition",
    "source_checksums",
    "code_version",
)


def fixed_utf8(values) -> np.ndarray:
    """Strings as a fixed-length UTF-8 array (dtype ``S<n>``, h5py string type ``utf-8``).

    Written so rather than as variable-length strings because HDF5 keeps variable-length strings
    in its global heap, which has no checksum: a damaged byte there would change an image name or
    an attribute silently. Fixed-length values live in checksummed chunks (datasets with
    Fletcher-32) or in the checksummed object header (attributes, HDF5 1.10 format). Read back
    with ``Dataset.asstr()`` or by decoding the bytes.
    """
    encoded = [str(v).encode("utf-8") for v in np.asarray(values, dtype=object).reshape(-1)]
    width = max([1, *map(len, encoded)])
    return np.array(encoded, dtype=h5py.string_dtype("utf-8", width)).reshape(np.shape(values))


def set_str_attr(obj, key: str, value) -> None:
    """Attribute ``key`` of an h5py object as a fixed-length UTF-8 string, or array of them."""
    data = fixed_utf8(value)
    obj.attrs.create(key, data, dtype=data.dtype)


class DataFileError(ValueError):
    """A processed data file is missing, damaged or does not follow the schema."""


def _fix(path: Path) -> str:
    return (
        f"delete {path} and rerun `hgbench prepare ...` for this dataset "
        f"(or the prepare stage of the workflow) to rebuild it"
    )


HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _has_hdf5_signature(path: Path) -> bool:
    """The HDF5 format signature at byte 0 or at a user-block offset (512, 1024, 2048, …)."""
    try:
        with open(path, "rb") as f:
            offset = 0
            while True:
                f.seek(offset)
                head = f.read(8)
                if len(head) < 8:
                    return False
                if head == HDF5_SIGNATURE:
                    return True
                offset = 512 if offset == 0 else offset * 2
    except OSError:
        return False


def _err(path: Path, problem: str) -> DataFileError:
    return DataFileError(f"{path}: {problem}; {_fix(path)}")


def _dtype_ok(ds: h5py.Dataset, kind: str) -> bool:
    if kind == "str":
        return h5py.check_string_dtype(ds.dtype) is not None
    return ds.dtype == np.dtype(kind)


class SplitFile:
    """A validated, open split file (read-only). Use as a context manager or call :meth:`close`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataFileError(
                f"{self.path}: processed split file not found; run `hgbench prepare ...` for this dataset to create it"
            )
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as exc:
            if self.path.suffix.lower() not in (".h5", ".hdf5") and not _has_hdf5_signature(self.path):
                # Another kind of file (a metrics.json, a model.pt): "delete it and rerun prepare"
                # would be the wrong fix, and a harmful one. A damaged .h5 keeps that fix.
                raise DataFileError(
                    f"{self.path} is not an HDF5 file, so no split file; give the train.h5/valid.h5/samples.h5 "
                    f"that `hgbench prepare` wrote"
                ) from None
            raise _err(self.path, f"cannot open as HDF5, the file is truncated or corrupt ({exc})") from None
        try:
            self._validate()
        except (OSError, KeyError, RuntimeError, TypeError, ValueError) as exc:
            self._h5.close()
            if isinstance(exc, DataFileError):
                raise
            # Damaged metadata surfaces from h5py as any of these (e.g. "incorrect metadata checksum").
            raise _err(
                self.path,
                f"cannot read the file's structure, it is corrupt ({type(exc).__name__}: {str(exc).strip(chr(39))})",
            ) from None
        except BaseException:
            self._h5.close()
            raise

    # -- validation ---------------------------------------------------------------------------
    def _validate(self) -> None:
        h5, path = self._h5, self.path
        missing_attrs = [a for a in ATTRIBUTES if a not in h5.attrs]
        if missing_attrs:
            raise _err(path, f"attribute(s) {', '.join(missing_attrs)} missing (not a complete hgbench split file)")
        try:
            version = int(h5.attrs["schema_version"])
        except (TypeError, ValueError):
            raise _err(path, "attribute schema_version is not an integer") from None
        if version != SCHEMA_VERSION:
            raise _err(path, f"schema_version {version}, this hgbench reads version {SCHEMA_VERSION}")
        missing = [k for k in DATASETS if k not in h5]
        if missing:
            raise _err(path, f"dataset(s) {', '.join(missing)} missing")
        n = h5["image_name"].shape[0] if h5["image_name"].ndim == 1 else -1
        names = [self._attr_str(v) for v in np.asarray(h5.attrs["joint_names"]).reshape(-1)]
        dims = {"N": n, "J": len(names), "C": int(h5.attrs["crop_size"])}
        for key, (shape, kind) in DATASETS.items():
            ds = h5[key]
            if not isinstance(ds, h5py.Dataset):
                raise _err(path, f"'{key}' is not a dataset")
            want = tuple(dims[s] if isinstance(s, str) else s for s in shape)
            if ds.shape != want:
                raise _err(path, f"dataset '{key}' has shape {ds.shape}, expected {want}")
            if not _dtype_ok(ds, kind):
                raise _err(path, f"dataset '{key}' has dtype {ds.dtype}, expected {kind}")
        flip = np.asarray(h5.attrs["flip_permutation"]).reshape(-1)
        if sorted(flip.tolist()) != list(range(len(names))):
            raise _err(path, "attribute flip_permutation is not a permutation of the joints")
        self.n = n
        self.joint_names = tuple(names)
        self.crop_size = dims["C"]
        self.input_res = int(h5.attrs["input_res"])

    @staticmethod
    def _attr_str(v) -> str:
        return v.decode() if isinstance(v, bytes) else str(v)

    # -- access ---------------------------------------------------------------------------------
    @property
    def attrs(self) -> dict:
        """File attributes as plain Python values (``source_checksums`` decoded from JSON)."""
        items = self._guard("the attributes", lambda: list(self._h5.attrs.items()))
        out = {}
        for k, v in items:
            if isinstance(v, bytes):
                v = v.decode()
            elif isinstance(v, np.ndarray):
                v = [self._attr_str(x) if isinstance(x, (bytes, str)) else x.item() for x in v.reshape(-1)]
            elif isinstance(v, np.generic):
                v = v.item()
            out[k] = v
        try:
            out["source_checksums"] = json.loads(out["source_checksums"])
        except (TypeError, ValueError):
            raise _err(self.path, "attribute source_checksums is not JSON") from None
        return out

    def __len__(self) -> int:
        return self.n

    def _guard(self, what: str, fn):
        try:
            return fn()
        except (OSError, KeyError, RuntimeError) as exc:
            # OSError: a failed Fletcher-32 chunk checksum or a cut file; KeyError/RuntimeError:
            # damaged metadata met on the way (h5py reports "incorrect metadata checksum" so).
            raise _err(
                self.path, f"reading {what} failed, the file is truncated or corrupt ({type(exc).__name__}: {exc})"
            ) from None

    def image(self, i: int) -> np.ndarray:
        """Crop ``i`` as a (C, C, 3) uint8 array (reads one chunk)."""
        if not -self.n <= i < self.n:
            raise IndexError(f"{self.path}: person {i} out of range 0..{self.n - 1}")
        return self._guard(f"images[{i}]", lambda: self._h5["images"][i])

    def images(self, indices: Iterable[int]) -> np.ndarray:
        """Crops of ``indices`` (any order, repeats allowed) as (k, C, C, 3) uint8."""
        idx = [int(i) for i in indices]
        if idx and idx == list(range(idx[0], idx[0] + len(idx))) and 0 <= idx[0] and idx[-1] < self.n:
            return self._guard(f"images[{idx[0]}:{idx[-1] + 1}]", lambda: self._h5["images"][idx[0] : idx[-1] + 1])
        out = np.empty((len(idx), self.crop_size, self.crop_size, 3), np.uint8)
        for k, i in enumerate(idx):
            out[k] = self.image(i)
        return out

    def read(self, fields: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Whole small fields (default: every field except ``images``); strings as ``str`` arrays."""
        fields = list(SMALL_FIELDS if fields is None else fields)
        unknown = [f for f in fields if f not in DATASETS]
        if unknown:
            raise KeyError(f"unknown field(s) {unknown}; the schema has {', '.join(DATASETS)}")
        out = {}
        for f in fields:
            ds = self._guard(f, lambda f=f: self._h5[f])
            if f == "image_name":
                out[f] = self._guard(f, lambda ds=ds: ds.asstr()[...]).astype(str)
            else:
                out[f] = self._guard(f, lambda ds=ds: ds[...])
        return out

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> SplitFile:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_split(path: str | Path) -> SplitFile:
    """Open and validate a processed split file; :class:`DataFileError` explains any problem."""
    return SplitFile(path)


def read_split_arrays(path: str | Path, fields: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Validate ``path`` and return the requested fields (default: all but ``images``) as arrays."""
    with open_split(path) as f:
        return f.read(fields)


def read_split_attrs(path: str | Path) -> dict:
    """Validate ``path`` and return its attributes as plain Python values."""
    with open_split(path) as f:
        return f.attrs
