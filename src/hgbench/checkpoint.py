"""The two files of a training run, in both directions: ``last.pt`` (resumable state) and ``model.pt``
(final weights), what is in them and writing/reading them safely.

A checkpoint holds everything the next step depends on, so that a run interrupted at any step and
resumed ends with the same weights, bit for bit on CPU, as a run that was never interrupted:

- ``model``, ``optimizer``, ``scheduler`` (the plateau scheduler's state, or None) state dicts;
- ``epoch`` (0-based epoch in progress) and ``batch`` (batches of it already done): the data
  order itself is a pure function of (seed, epoch) and every step's augmentation of
  (seed, iteration) (``data/dataset.py``), so this position is all the sampler state there is;
- ``iteration`` (steps done in total), ``rng`` (torch CPU and CUDA generator states, for any
  randomness outside the data path), ``progress`` (the running sums of the epoch in progress,
  so its log row is complete), ``log`` (the rows of the finished epochs);
- ``seed``, ``model_config``, ``run`` (``{dataset, variant, seed}``) and ``format``, checked on
  resume: another run's ``last.pt`` is refused, never replaced.

Files are written through :func:`hgbench.iofiles.atomic_path`: a kill during the write leaves the
previous ``last.pt`` intact. Every file (``last.pt`` and ``model.pt``) also carries ``sha256``, a
digest of its whole content (:func:`content_digest`), checked on every read: torch's zip container
does not check the tensor bytes, so without it a damaged byte in a weight would load silently.
Files are read with ``torch.load(weights_only=True)`` only (no code runs from a checkpoint), and
every failure is a :class:`CheckpointError` naming the file and the fix.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch

from .iofiles import atomic_path

FORMAT = 2
"""Bumped when the layout changes; a ``last.pt`` of another format is refused with a clear message."""


def rng_state() -> dict:
    """The torch generators' states (CPU, and every CUDA device when present)."""
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class CheckpointError(RuntimeError):
    """A checkpoint file is unreadable, damaged, or belongs to another run; the message names the file and fix."""


def _feed(h, value) -> None:
    """Hash ``value`` (nested dicts/lists of tensors and plain values) into ``h``, type-tagged."""
    if isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        h.update(f"D{len(value)}".encode())
        for k, v in value.items():  # insertion order: pickle keeps it
            h.update(f"K{k!r}".encode())
            _feed(h, v)
    elif isinstance(value, (list, tuple)):
        h.update(f"{type(value).__name__}{len(value)}".encode())
        for v in value:
            _feed(h, v)
    else:  # int, float (repr round-trips), str, bool, None, torch.Size, ...
        h.update(f"V{type(value).__name__}:{value!r}".encode())


def content_digest(state: dict) -> str:
    """sha256 (hex) of everything in ``state`` except its ``sha256`` key: tensor bytes, dtypes,
    shapes and every plain value."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != "sha256"})
    return h.hexdigest()


def own_tensors(state_dict: dict) -> dict:
    """``state_dict`` with every tensor copied into its own storage, strides kept: the weights of
    a run trained with :class:`hgbench.recipe.FlatRMSprop` are views into one buffer, and a saved
    view would carry (and a safetensors export refuse) the shared buffer."""
    owned = type(state_dict)((k, v.detach().clone()) for k, v in state_dict.items())
    if hasattr(state_dict, "_metadata"):  # module versions, which load_state_dict reads
        owned._metadata = state_dict._metadata
    return owned


def save_checkpoint(state: dict, path: Path) -> None:
    """Write ``state`` to ``path`` atomically (never a half-written file under the final name)."""
    save_state({"format": FORMAT, **state}, path)


def save_state(state: dict, path: Path) -> None:
    """Write ``state`` plus its ``sha256`` content digest to ``path`` atomically."""
    state = {**state, "sha256": None}
    state["sha256"] = content_digest(state)
    # Serialised in memory first: torch.save names the zip's root folder after the file it writes,
    # and atomic_path's temporary name is random, so the same state would give other bytes each
    # time (and DVC another hash for a model.pt rewritten from last.pt). In memory it is "archive".
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def read_state(path: Path, fix: str, map_location="cpu") -> dict:
    """Read a file written by :func:`save_state` with ``weights_only=True`` and check its digest.

    Raises :class:`CheckpointError` naming ``path`` and ``fix`` when the file is missing,
    truncated, damaged (digest mismatch), or not a plain checkpoint (a crafted pickle is refused by
    the weights-only loader, never executed). Files without a digest (older hgbench) are accepted.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found; {fix}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, EOFError, UnpicklingError, UnicodeDecodeError, KeyError...
        raise CheckpointError(
            f"{path} cannot be read: it is truncated, corrupt or not an hgbench checkpoint "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); {fix}"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not an hgbench checkpoint (holds a {type(state).__name__}); {fix}")
    expected = state.get("sha256")
    if expected is not None and content_digest(state) != expected:
        raise CheckpointError(
            f"{path} is corrupt: its content does not match the sha256 recorded when it was "
            f"written (a damaged or partly overwritten file); {fix}"
        )
    return state


def _run_name(run: dict) -> str:
    return f"{run.get('dataset')}/{run.get('variant')}/s{run.get('seed')}"


def load_checkpoint(
    path: Path, *, seed: int, model_config: dict, fingerprint: str | None = None, run: dict | None = None
) -> dict | None:
    """Read a ``last.pt`` written by :func:`save_checkpoint` for the same run.

    Tensors are loaded on the CPU (``load_state_dict`` moves them). ``run`` = ``{dataset,
    variant, seed}``: a file written for another run (its folder was given as ``--out`` of this
    one) raises :class:`CheckpointError`, so one run never replaces another's state. Returns None
    when ``fingerprint`` is given and the file was written for this run under other training
    settings (the caller starts over). Raises :class:`CheckpointError` (a RuntimeError) naming
    the file and the fix when it is unreadable, damaged or belongs to another run.
    """
    fix = "delete it to start the run over"
    state = read_state(path, fix)
    if state.get("format") != FORMAT:
        raise CheckpointError(f"{path} was written by another version of hgbench train; {fix}")
    found = state.get("run")
    if run is not None and found is not None and found != run:
        raise CheckpointError(another_run(path, found, run))
    if fingerprint is not None and state.get("fingerprint") != fingerprint:
        return None
    if state.get("model_config") != model_config or state.get("seed") != seed:
        raise CheckpointError(f"{path} was written for another model or seed; delete it to start over")
    return state


def another_run(path: Path, found: dict, wanted: dict) -> str:
    """The one-line refusal of a file of run ``found`` where run ``wanted`` would write."""
    return (
        f"{path} belongs to run {_run_name(found)}, not {_run_name(wanted)}; give this run its own --out "
        f"(the pipeline uses models/<profile>/<dataset>/<variant>/s<seed>), or delete {Path(path).parent} "
        f"if that run is no longer wanted"
    )


def save_last(
    path: Path,
    *,
    net: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler,
    epoch: int,
    batch: int,
    iteration: int,
    progress: dict | None,
    log: list[dict],
    seed: int,
    model_config: dict,
    fingerprint: str,
    run: dict | None = None,
) -> None:
    """Write ``last.pt`` (contents: this module's docstring) atomically from the live objects;
    ``run`` = ``{dataset, variant, seed}`` names the run it belongs to."""
    save_checkpoint(
        {
            "model": own_tensors(net.state_dict()),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "rng": rng_state(),
            "epoch": epoch,
            "batch": batch,
            "iteration": iteration,
            "progress": progress,
            "log": log,
            "seed": seed,
            "model_config": model_config,
            "fingerprint": fingerprint,
            "run": run,
        },
        path,
    )


def restore_last(state: dict, *, net: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler) -> dict:
    """Load a :func:`load_checkpoint` state into the live objects (weights, optimiser, schedule,
    generators); returns the position ``{"epoch", "batch", "iteration", "progress", "log"}``."""
    net.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state["scheduler"] is not None:
        scheduler.load_state_dict(state["scheduler"])
    set_rng_state(state["rng"])
    return {k: state[k] for k in ("epoch", "batch", "iteration", "progress", "log")}


def save_model_file(
    path: Path,
    *,
    net: torch.nn.Module,
    model_config: dict,
    variant: str,
    supervision: str,
    dataset: str,
    input_res: int,
    output_res: int,
    seed: int,
    epochs: int,
) -> None:
    """Write ``model.pt``: final weights and what inference needs to rebuild and feed the network
    (input px, heatmap cells, the dataset's name; :data:`MODEL_KEYS`), atomically with its digest."""
    save_state(
        {
            "model": own_tensors(net.state_dict()),
            "model_config": model_config,
            "variant": variant,
            "supervision": supervision,
            "dataset": dataset,
            "input_res": input_res,
            "output_res": output_res,
            "seed": seed,
            "epochs": epochs,
        },
        path,
    )


MODEL_KEYS = ("model", "model_config", "variant", "dataset", "input_res", "output_res", "seed")
"""Keys every ``model.pt`` holds (:func:`save_model_file` writes them; ``predict`` needs them)."""


def read_model_file(path: Path, map_location="cpu") -> dict:
    """Read a ``model.pt`` written by ``hgbench train``; :class:`CheckpointError` names the file and fix."""
    fix = (
        f"delete it and rerun `hgbench train` with --out {Path(path).parent} (it rewrites model.pt from "
        f"last.pt, or trains again)"
    )
    state = read_state(path, fix, map_location)
    missing = [k for k in MODEL_KEYS if k not in state]
    if missing:
        raise CheckpointError(
            f"{path} is not a model.pt written by hgbench train (missing {', '.join(missing)}); {fix}"
        )
    return state
