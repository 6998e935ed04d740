"""Resumable training state (``last.pt``): what is in it, and writing/reading it safely.

A checkpoint holds everything the next step depends on, so that a run interrupted at any step and
resumed ends with the same weights, bit for bit on CPU, as a run that was never interrupted:

- ``model``, ``optimizer``, ``scheduler`` (the plateau scheduler's state, or None) state dicts;
- ``epoch`` (0-based epoch in progress) and ``batch`` (batches of it already done): the data
  order itself is a pure function of (seed, epoch) and every step's augmentation of
  (seed, iteration) (``data/dataset.py``), so this position is all the sampler state there is;
- ``iteration`` (steps done in total), ``rng`` (torch CPU and CUDA generator states, for any
  randomness outside the data path), ``progress`` (the running sums of the epoch in progress,
  so its log row is complete), ``log`` (the rows of the finished epochs);
- ``seed``, ``model_config`` and ``format``, checked on resume.

Files are written through :func:`hgbench.iofiles.atomic_path`: a kill during the write leaves the
previous ``last.pt`` intact.
"""

from __future__ import annotations

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


def save_checkpoint(state: dict, path: Path) -> None:
    """Write ``state`` to ``path`` atomically (never a half-written file under the final name)."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def load_checkpoint(path: Path, *, seed: int, model_config: dict, fingerprint: str | None = None) -> dict | None:
    """Read a ``last.pt`` written by :func:`save_checkpoint` for the same model and seed.

    Tensors are loaded on the CPU (``load_state_dict`` moves them). Returns None when
    ``fingerprint`` is given and the file was written under other training settings (the caller
    starts over). Raises RuntimeError naming the file and the fix when it is unreadable or
    belongs to another run.
    """
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError) as exc:
        raise RuntimeError(f"{path} cannot be read ({exc}); delete it to start the run over") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise RuntimeError(f"{path} was written by another version of hgbench train; delete it to start over")
    if fingerprint is not None and state.get("fingerprint") != fingerprint:
        return None
    if state["model_config"] != model_config or state["seed"] != seed:
        raise RuntimeError(f"{path} was written for another model or seed; delete it to start over")
    return state
