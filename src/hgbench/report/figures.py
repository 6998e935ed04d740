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

from hgbench.draw import GT_COLOUR, PRED_COLOUR, gallery_panel
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
    rc = {
        **sns.axes_style("whitegrid"),
        **sns.plotting_context("notebook", font_scale=0.95),
        "axes.prop_cycle": mpl.cycler(color=sns.color_palette(PALETTE)),
        "axes.titleweight": "bold",
        "legend.frameon": False,
        "savefig.bbox": "tight",
    }
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
        fig.legend(
            handles,
            labels,
            loc="lower center",
            ncol=min(ncol, 4),
            bbox_to_anchor=(0.5, -0.02),
            title="variant (line: mean over seeds; band: range of seeds)",
        )


def pckh_curve(
    curves: pd.DataFrame, names: dict[str, str], path: Path, protocol: str, norm: str = "head size"
) -> Path | None:
    """Mean PCK(h) vs normalised distance threshold (fraction of ``norm``), one line per variant."""
    data = _named(curves, names, ("group", "threshold", "pckh"))
    data = data[data["group"] == "Mean"]
    if data.empty:
        return None
    order, palette = _hue(names, data["variant"])
    with theme():
        fig = Figure(figsize=(7.5, 5.2))
        ax = fig.add_subplot()
        sns.lineplot(
            data=data, x="threshold", y="pckh", hue="name", hue_order=order, palette=palette, errorbar=SEED_BAND, ax=ax
        )
        metric = "PCKh" if norm == "head size" else "PCK"
        ax.set(
            xlabel=f"normalised distance threshold (fraction of {norm})",
            ylabel=f"{metric}, Mean (%)",
            ylim=(0, 100),
            xlim=(0, data["threshold"].max()),
            title=f"{metric} curve (protocol: {plain_text(protocol)})",
        )
        for x in (0.1, 0.5) if norm == "head size" else (0.2,):
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
        sns.lineplot(
            data=loss,
            x="iteration",
            y="train_loss",
            hue="name",
            hue_order=order,
            palette=palette,
            errorbar=SEED_BAND,
            ax=ax_loss,
        )
        _log_scale_if_positive(ax_loss, loss["train_loss"])
        ax_loss.set(xlabel="training iteration", ylabel="train loss (heatmap MSE)", title="Training loss")
        if "valid_acc" in data and data["valid_acc"].notna().any():
            sns.lineplot(
                data=data.dropna(subset=["valid_acc"]),
                x="iteration",
                y="valid_acc",
                hue="name",
                hue_order=order,
                palette=palette,
                errorbar=SEED_BAND,
                marker="o",
                markersize=4,
                legend=False,
                ax=ax_acc,
            )
        ax_acc.set(
            xlabel="training iteration",
            ylabel="validation PCKh@0.5 (%)\nwrists, elbows, knees, ankles",
            title="Validation accuracy, final stack (no flip test)",
        )
        _legend_below(fig, ax_loss, len(order))
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        return _save(fig, path)


def output_columns(training: pd.DataFrame, prefix: str) -> list[str]:
    """Per-output columns of the training log (``valid_acc_s1``, ``train_loss_s2``, …) in log order.

    The trainer names one column per supervised output; the names are read, not assumed, so inner
    heads (HG-Int) or new outputs show up without a change here."""
    return [c for c in training.columns if c.startswith(prefix + "_") and c != prefix]


def _output_label(column: str, prefix: str, last: bool) -> str:
    name = column[len(prefix) + 1 :]
    text = f"stack {name[1:]}" if name[:1] == "s" and name[1:].isdigit() else name
    return f"{text} (final)" if last else text


def stack_training_curves(training: pd.DataFrame, names: dict[str, str], path: Path) -> Path | None:
    """Loss (top) and validation accuracy (bottom) of every supervised output vs iteration, one
    column per variant that logs more than one output (the paper's Fig. 8/9 per stack)."""
    data = _named(training, names, ("iteration",))
    panels = []
    for v in names:
        run = data[data["variant"] == v]
        cols = {
            kind: [c for c in output_columns(data, kind) if c in run and run[c].notna().any()]
            for kind in ("train_loss", "valid_acc")
        }
        if len(cols["valid_acc"]) > 1 or len(cols["train_loss"]) > 1:
            panels.append((v, run, cols))
    if not panels:
        return None
    with theme():
        fig = Figure(figsize=(max(4.0 * len(panels), 7.0), 7.4))
        axes = fig.subplots(2, len(panels), squeeze=False)
        for i, (v, run, cols) in enumerate(panels):
            for row, kind in enumerate(("train_loss", "valid_acc")):
                ax = axes[row, i]
                colours = sns.color_palette(SEQUENTIAL, max(len(cols[kind]), 1))
                for k, col in enumerate(cols[kind]):
                    mean = run.groupby("iteration")[col].mean()
                    last = k == len(cols[kind]) - 1
                    ax.plot(
                        mean.index,
                        mean.values,
                        color=colours[k],
                        lw=2 if last else 1.3,
                        label=_output_label(col, kind, last),
                    )
                if kind == "train_loss":
                    _log_scale_if_positive(ax, run[cols[kind]].stack() if cols[kind] else pd.Series([], dtype=float))
                    ax.set(title=plain_text(names[v]), xlabel="")
                else:
                    ax.set(xlabel="training iteration")
                if cols[kind]:
                    ax.legend(fontsize="small", loc="upper right" if kind == "train_loss" else "lower right")
        axes[0, 0].set_ylabel("train loss per output\n(heatmap MSE)")
        axes[1, 0].set_ylabel("validation PCKh@0.5 (%)\nwrists, elbows, knees, ankles")
        fig.suptitle("Loss and validation accuracy at every supervised output (mean over seeds; no flip test)")
        fig.tight_layout()
        return _save(fig, path)


def ablation_chart(
    ablations: pd.DataFrame, names: dict[str, str], path: Path, cis: pd.DataFrame | None = None
) -> Path | None:
    """Final-stack ablation metric per variant (seeds as points, each with its 95 % bootstrap CI
    over people from ``cis``: columns variant, seed, low, high) and accuracy at every stack."""
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
            runs = final[final["name"] == name].sort_values("seed")
            seeds = runs["ablation@0.5"].to_numpy(dtype=float)
            offsets = np.linspace(-0.15, 0.15, len(seeds)) if len(seeds) > 1 else np.zeros(1)
            ys = i + offsets[: len(seeds)]
            if cis is not None and not cis.empty:
                ci = cis.set_index(["variant", "seed"])
                keys = list(zip(runs["variant"], runs["seed"].astype(int)))
                low = np.array([ci["low"].get(k, np.nan) for k in keys], float)
                high = np.array([ci["high"].get(k, np.nan) for k in keys], float)
                ok = np.isfinite(low) & np.isfinite(high)
                ax_final.errorbar(
                    seeds[ok],
                    ys[ok],
                    xerr=[seeds[ok] - low[ok], high[ok] - seeds[ok]],
                    fmt="none",
                    ecolor="black",
                    elinewidth=1.1,
                    capsize=3,
                    zorder=2,
                )
            ax_final.scatter(seeds, ys, color=palette[name], edgecolor="black", linewidth=0.6, s=36, zorder=3)
        ax_final.set_yticks(y, order)
        ax_final.invert_yaxis()
        ax_final.set(
            xlabel="PCKh@0.5 (%), wrists, elbows, knees, ankles",
            xlim=(0, 100),
            title="Final stack (bar: mean; points: seeds ± 95% CI)",
        )
        multi = data[data["stacks"] > 1]
        if multi.empty:
            ax_stack.text(
                0.5,
                0.5,
                "only single-stack variants",
                ha="center",
                va="center",
                transform=ax_stack.transAxes,
                color="0.4",
            )
            ax_stack.set_axis_off()
        else:
            m_order = [n for n in order if n in set(multi["name"])]
            sns.lineplot(
                data=multi,
                x="stack",
                y="ablation@0.5",
                hue="name",
                hue_order=m_order,
                palette=palette,
                errorbar=SEED_BAND,
                marker="o",
                ax=ax_stack,
            )
            ax_stack.set_xticks(range(1, int(multi["stack"].max()) + 1))
            ax_stack.set(
                xlabel="stack (1 = first hourglass)",
                ylabel="PCKh@0.5 (%)\nwrists, elbows, knees, ankles",
                title="Accuracy at every stack",
            )
            ax_stack.legend(title=None, fontsize="small", loc="lower right")
        fig.tight_layout()
        return _save(fig, path)


def per_joint_heat(table: pd.DataFrame, path: Path, protocol: str, metric: str = "PCKh@0.5") -> Path | None:
    """Heat table of per-group ``metric``, one row per variant (index = display name)."""
    table = table[[g for g in GROUPS if g in table]].dropna(how="all")
    if table.empty:
        return None
    table = table.rename(index=plain_text)
    with theme():
        fig = Figure(figsize=(9, 0.5 * len(table) + 1.8))
        ax = fig.add_subplot()
        sns.heatmap(
            table,
            annot=True,
            fmt=".1f",
            cmap=SEQUENTIAL,
            vmin=0,
            vmax=100,
            linewidths=0.5,
            cbar_kws={"label": f"{metric} (%)"},
            ax=ax,
        )
        ax.set(
            xlabel="", ylabel="", title=f"{metric} per joint group, mean over seeds (protocol: {plain_text(protocol)})"
        )
        ax.tick_params(axis="y", rotation=0)
        fig.tight_layout()
        return _save(fig, path)


def visibility_chart(table: pd.DataFrame, names: dict[str, str], path: Path, metric: str) -> Path | None:
    """PCK of visible vs occluded joints per variant (bars: mean over seeds; points: seeds).

    ``table``: headline per-run rows with columns variant, seed, visible, occluded."""
    data = _named(table, names, ("seed", "visible", "occluded"))
    data = data.melt(
        id_vars=["variant", "name", "seed"], value_vars=["visible", "occluded"], var_name="joints", value_name="pck"
    ).dropna(subset=["pck"])
    if data.empty:
        return None
    order, _ = _hue(names, data["variant"])
    with theme():
        fig = Figure(figsize=(8.5, max(3.2, 0.6 * len(order) + 1.8)))
        ax = fig.add_subplot()
        pair = sns.color_palette(SEQUENTIAL, 5)
        palette = {"visible": pair[1], "occluded": pair[3]}
        sns.barplot(
            data=data, y="name", x="pck", hue="joints", order=order, palette=palette, errorbar=None, alpha=0.8, ax=ax
        )
        sns.stripplot(
            data=data,
            y="name",
            x="pck",
            hue="joints",
            order=order,
            palette=palette,
            dodge=True,
            edgecolor="black",
            linewidth=0.6,
            size=5,
            legend=False,
            ax=ax,
        )
        ax.set(
            xlim=(0, 100),
            ylabel="",
            xlabel=f"{metric} (%)",
            title="Visible vs occluded joints (bar: mean over seeds; points: seeds)",
        )
        ax.legend(title=None, loc="lower right")
        fig.tight_layout()
        return _save(fig, path)


def gallery_figure(rows: list[dict], limbs: list[tuple[int, int]], path: Path) -> Path | None:
    """Crops with ground-truth (blue, dashed) and predicted (orange) skeletons.

    The skeletons are drawn by :func:`hgbench.draw.draw_skeleton` (via ``gallery_panel``), the
    function behind ``hgbench infer``'s overlays too; matplotlib only lays the panels out.

    ``rows``: one dict per panel row, ``{"title", "panels": [{"image", "gt", "pred", "caption"}]}``
    (build.py decides the rows: variants in display order, then other sources)."""
    rows = [r for r in rows if r["panels"]]
    if not rows:
        return None
    ncols = max(len(r["panels"]) for r in rows)
    with theme():
        fig = Figure(figsize=(2.5 * ncols + 1.6, 2.75 * len(rows) + 0.5))
        axes = fig.subplots(len(rows), ncols, squeeze=False)
        for r, row in enumerate(rows):
            for c in range(ncols):
                ax = axes[r, c]
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if c >= len(row["panels"]):
                    ax.set_visible(False)
                    continue
                panel = row["panels"][c]
                size = panel["image"].shape[0]
                drawn = gallery_panel(panel["image"], panel["gt"], panel["pred"], limbs)
                ax.imshow(drawn, extent=(-0.5, size - 0.5, size - 0.5, -0.5))
                ax.set_xlim(-0.5, size - 0.5)
                ax.set_ylim(size - 0.5, -0.5)
                ax.set_title(plain_text(panel["caption"]), fontsize="small")
            axes[r, 0].set_ylabel(plain_text(row["title"]), fontsize="small")
        handles = [
            mpl.lines.Line2D([], [], color=GT_COLOUR, ls="--", lw=2, label="ground truth"),
            mpl.lines.Line2D([], [], color=PRED_COLOUR, lw=2, label="prediction"),
        ]
        fig.legend(handles=handles, loc="lower center", ncol=2, bbox_to_anchor=(0.5, 0.0))
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        return _save(fig, path)
