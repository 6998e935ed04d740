"""The report's figures: seaborn on matplotlib's Agg canvas, one theme, colour-blind-safe colours.

Every function takes summary tables (``results/summary/<dataset>/*.csv`` as DataFrames), the
variants in display order with their display names, and the PNG path to write. It returns the
path, or None when the tables hold nothing to draw (the page then says so). Figures are built on
:class:`matplotlib.figure.Figure` objects, never through pyplot, so no global state or GUI
backend is involved, and written atomically.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from hgbench.iofiles import atomic_path

GROUPS = ("Head", "Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "Mean")
PALETTE = "colorblind"
"""Seaborn's colour-blind-safe qualitative palette, one colour per variant in every figure."""
SEQUENTIAL = "viridis"
"""Perceptually uniform, colour-blind-safe map for ordered things (stacks, heat tables)."""
DPI = 110
SEED_BAND = ("pi", 100)
"""Shaded band around a mean over seeds: the full range of the seeds (deterministic, no bootstrap)."""


@contextlib.contextmanager
def theme():
    """The report's one look: seaborn whitegrid, notebook sizes, colour-blind palette."""
    rc = {**sns.axes_style("whitegrid"), **sns.plotting_context("notebook", font_scale=0.95),
          "axes.prop_cycle": mpl.cycler(color=sns.color_palette(PALETTE)),
          "axes.titleweight": "bold", "legend.frameon": False, "savefig.bbox": "tight"}
    with mpl.rc_context(rc):
        yield


def plain_text(text: str) -> str:
    """``text`` for matplotlib with ``$`` escaped, so a label is never parsed as mathtext."""
    return str(text).replace("$", r"\$")


def variant_colours(variants: list[str]) -> dict[str, tuple]:
    """One fixed colour per variant, in display order (the same in every figure)."""
    colours = sns.color_palette(PALETTE, max(len(variants), 1))
    return {v: colours[i % len(colours)] for i, v in enumerate(variants)}


def _save(fig: Figure, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, metadata={"Software": None})
    return Path(path)


def _named(frame: pd.DataFrame | None, names: dict[str, str], columns: tuple[str, ...]) -> pd.DataFrame:
    """``frame`` restricted to the given variants, with a display ``name`` column.

    Empty when the frame is missing or lacks any of ``columns`` (nothing to draw).
    """
    if frame is None or frame.empty or not {"variant", *columns} <= set(frame.columns):
        return pd.DataFrame(columns=["variant", "name", *columns])
    frame = frame[frame["variant"].isin(names)].copy()
    frame["name"] = frame["variant"].map(lambda v: plain_text(names[v]))
    return frame


def _hue(names: dict[str, str], present) -> tuple[list[str], dict[str, tuple]]:
    """hue_order and palette (keyed by display name) for the variants present."""
    colours = variant_colours(list(names))
    order = [v for v in names if v in set(present)]
    return [plain_text(names[v]) for v in order], {plain_text(names[v]): colours[v] for v in order}


def _legend_below(fig: Figure, ax, ncol: int) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(ncol, 4), bbox_to_anchor=(0.5, -0.02),
                   title="variant (line: mean over seeds; band: range of seeds)")


def pckh_curve(curves: pd.DataFrame, names: dict[str, str], path: Path, protocol: str) -> Path | None:
    """Mean PCKh vs normalised distance threshold, one line per variant."""
    data = _named(curves, names, ("group", "threshold", "pckh"))
    data = data[data["group"] == "Mean"]
    if data.empty:
        return None
    order, palette = _hue(names, data["variant"])
    with theme():
        fig = Figure(figsize=(7.5, 5.2))
        ax = fig.add_subplot()
        sns.lineplot(data=data, x="threshold", y="pckh", hue="name", hue_order=order, palette=palette,
                     errorbar=SEED_BAND, ax=ax)
        ax.set(xlabel="normalised distance threshold (fraction of head size)",
               ylabel="PCKh, Mean (%)", ylim=(0, 100), xlim=(0, data["threshold"].max()),
               title=f"PCKh curve (protocol: {plain_text(protocol)})")
        for x in (0.1, 0.5):
            ax.axvline(x, color="0.6", lw=0.8, ls=":")
        _legend_below(fig, ax, len(order))
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        return _save(fig, path)


def _log_scale_if_positive(ax, values: pd.Series) -> None:
    if len(values) and (values > 0).all():
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(mpl.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(mpl.ticker.FormatStrFormatter("%.2g"))
        ax.yaxis.set_minor_formatter(mpl.ticker.NullFormatter())


def training_curves(training: pd.DataFrame, names: dict[str, str], path: Path) -> Path | None:
    """Train loss and final-stack validation accuracy vs iteration (the paper's Fig. 8)."""
    data = _named(training, names, ("iteration", "train_loss"))
    if data.empty:
        return None
    order, palette = _hue(names, data["variant"])
    with theme():
        fig = Figure(figsize=(11, 4.6))
        ax_loss, ax_acc = fig.subplots(1, 2)
        loss = data.dropna(subset=["train_loss"])
        sns.lineplot(data=loss, x="iteration", y="train_loss", hue="name", hue_order=order,
                     palette=palette, errorbar=SEED_BAND, ax=ax_loss)
        _log_scale_if_positive(ax_loss, loss["train_loss"])
        ax_loss.set(xlabel="training iteration", ylabel="train loss (heatmap MSE)",
                    title="Training loss")
        if "valid_acc" in data and data["valid_acc"].notna().any():
            sns.lineplot(data=data.dropna(subset=["valid_acc"]), x="iteration", y="valid_acc", hue="name",
                         hue_order=order, palette=palette, errorbar=SEED_BAND, marker="o",
                         markersize=4, legend=False, ax=ax_acc)
        ax_acc.set(xlabel="training iteration",
                   ylabel="validation PCKh@0.5 (%)\nwrists, elbows, knees, ankles",
                   title="Validation accuracy, final stack (no flip test)")
        _legend_below(fig, ax_loss, len(order))
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        return _save(fig, path)


def stack_training_curves(training: pd.DataFrame, names: dict[str, str], stacks: dict[str, int],
                          path: Path) -> Path | None:
    """Validation accuracy of every stack vs iteration, one panel per multi-stack variant (Fig. 9)."""
    data = _named(training, names, ("iteration",))
    variants = [v for v in names if stacks.get(v, 1) > 1 and v in set(data["variant"])
                and f"valid_acc_s{stacks[v]}" in data]
    if not variants:
        return None
    ncols = min(len(variants), 3)
    nrows = -(-len(variants) // ncols)
    with theme():
        fig = Figure(figsize=(max(4.2 * ncols, 7.0), 3.6 * nrows + 0.4))
        axes = np.atleast_1d(fig.subplots(nrows, ncols, sharey=True, squeeze=False)).ravel()
        for ax, v in zip(axes, variants):
            run = data[data["variant"] == v]
            colours = sns.color_palette(SEQUENTIAL, stacks[v])
            for k in range(1, stacks[v] + 1):
                col = f"valid_acc_s{k}"
                if col not in run or run[col].isna().all():
                    continue
                mean = run.groupby("iteration")[col].mean()
                label = "final stack" if k == stacks[v] else f"stack {k}"
                ax.plot(mean.index, mean.values, color=colours[k - 1], lw=2 if k == stacks[v] else 1.3,
                        label=label)
            ax.set(title=plain_text(names[v]), xlabel="training iteration")
            ax.legend(fontsize="small", loc="lower right")
        for ax in axes[len(variants):]:
            ax.set_visible(False)
        for ax in axes[::ncols]:
            ax.set_ylabel("validation PCKh@0.5 (%)\nwrists, elbows, knees, ankles")
        fig.suptitle("Validation accuracy at every stack (mean over seeds; no flip test)")
        fig.tight_layout()
        return _save(fig, path)


def ablation_chart(ablations: pd.DataFrame, names: dict[str, str], path: Path) -> Path | None:
    """Final-stack ablation metric per variant (seeds as points) and accuracy at every stack."""
    data = _named(ablations, names, ("stack", "stacks", "seed", "ablation@0.5", "is_final"))
    data = data.dropna(subset=["ablation@0.5"])
    if data.empty:
        return None
    order, palette = _hue(names, data["variant"])
    final = data[data["is_final"].astype(str).str.lower() == "true"]
    with theme():
        fig = Figure(figsize=(11, max(3.8, 0.55 * len(order) + 2.2)))
        ax_final, ax_stack = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
        means = final.groupby("name")["ablation@0.5"].mean().reindex(order)
        y = np.arange(len(order))
        ax_final.barh(y, means.values, color=[palette[n] for n in order], alpha=0.45, height=0.6)
        for i, name in enumerate(order):
            seeds = final[final["name"] == name].sort_values("seed")["ablation@0.5"].to_numpy()
            offsets = np.linspace(-0.15, 0.15, len(seeds)) if len(seeds) > 1 else np.zeros(1)
            ax_final.scatter(seeds, i + offsets[: len(seeds)], color=palette[name], edgecolor="black",
                             linewidth=0.6, s=36, zorder=3)
        ax_final.set_yticks(y, order)
        ax_final.invert_yaxis()
        ax_final.set(xlabel="PCKh@0.5 (%), wrists, elbows, knees, ankles", xlim=(0, 100),
                     title="Final stack (bar: mean; points: seeds)")
        multi = data[data["stacks"] > 1]
        if multi.empty:
            ax_stack.text(0.5, 0.5, "only single-stack variants", ha="center", va="center",
                          transform=ax_stack.transAxes, color="0.4")
            ax_stack.set_axis_off()
        else:
            m_order = [n for n in order if n in set(multi["name"])]
            sns.lineplot(data=multi, x="stack", y="ablation@0.5", hue="name", hue_order=m_order,
                         palette=palette, errorbar=SEED_BAND, marker="o", ax=ax_stack)
            ax_stack.set_xticks(range(1, int(multi["stack"].max()) + 1))
            ax_stack.set(xlabel="stack (1 = first hourglass)", ylabel="PCKh@0.5 (%)\nwrists, elbows, knees, ankles",
                         title="Accuracy at every stack")
            ax_stack.legend(title=None, fontsize="small", loc="lower right")
        fig.tight_layout()
        return _save(fig, path)


def per_joint_heat(table: pd.DataFrame, path: Path, protocol: str) -> Path | None:
    """Heat table of per-group PCKh@0.5, one row per variant (index = display name)."""
    table = table[[g for g in GROUPS if g in table]].dropna(how="all")
    if table.empty:
        return None
    table = table.rename(index=plain_text)
    with theme():
        fig = Figure(figsize=(9, 0.5 * len(table) + 1.8))
        ax = fig.add_subplot()
        sns.heatmap(table, annot=True, fmt=".1f", cmap=SEQUENTIAL, vmin=0, vmax=100, linewidths=0.5,
                    cbar_kws={"label": "PCKh@0.5 (%)"}, ax=ax)
        ax.set(xlabel="", ylabel="", title=f"PCKh@0.5 per joint group, mean over seeds "
                                          f"(protocol: {plain_text(protocol)})")
        ax.tick_params(axis="y", rotation=0)
        fig.tight_layout()
        return _save(fig, path)
