"""The one door: ``hgbench <stage>`` (also ``python -m hgbench <stage>``).

Every stage takes explicit input and output paths; Snakemake rules and DVC stages call these
commands and nothing else. Run ``hgbench <stage> --help`` for each stage's arguments.

    hgbench describe --params params/paper.yaml
    hgbench fetch    --params params/demo.yaml --dataset synthetic --out data/raw/demo/synthetic
    hgbench prepare  --params params/demo.yaml --dataset synthetic --raw data/raw/demo/synthetic \
                     --out data/processed/demo/synthetic
    hgbench train    --params params/demo.yaml --dataset synthetic --variant hg2x1 --seed 0 \
                     --data data/processed/demo/synthetic --out models/demo/synthetic/hg2x1/s0
    hgbench predict  --params params/demo.yaml --checkpoint models/demo/synthetic/hg2x1/s0/model.pt \
                     --data data/processed/demo/synthetic/valid.h5 --out results/demo/synthetic/hg2x1/s0/predictions.h5
    hgbench evaluate --ground-truth data/processed/demo/synthetic/valid.h5 \
                     --predictions results/demo/synthetic/hg2x1/s0/predictions.h5 \
                     --out results/demo/synthetic/hg2x1/s0/metrics.json --headline metrics/demo/synthetic/hg2x1/s0.json
    hgbench summarize --params params/demo.yaml --dataset synthetic --results results/demo --models models/demo \
                     --out results/demo/summary/synthetic
    hgbench report   --params params/demo.yaml --results results/demo --out reports/demo/index.html \
                     --index reports/index.html
    hgbench infer    --checkpoint models/demo/synthetic/hg2x1/s0/model.pt --images photos/ --out poses/
    hgbench export   --checkpoint models/demo/synthetic/hg2x1/s0/model.pt --format onnx --out hg2x1.onnx
    hgbench export-mpii --predictions results/paper/mpii/hg8/s0/test_predictions.h5 \
                     --annotations data/raw/paper/mpii/mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat \
                     --split test --out results/paper/mpii/hg8/s0/pred_keypoints_mpii.mat

Each profile's outputs live under its name (``<root>/<profile>/...``, README "Outputs").
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import re
import sys
import warnings
from pathlib import Path

from . import __version__
from .config import ParamsError, load_params
from .metrics import PROTOCOLS

# Exit statuses of every command (docs/reliability.md).
EXIT_OK = 0
EXIT_BUG = 1
"""An unexpected error: a bug in hgbench (one line; HGBENCH_DEBUG=1 shows the traceback)."""
EXIT_ERROR = 2
"""An expected failure (bad params, a missing or damaged file, a missing install extra): one line
naming the file or key and the fix; nothing was written under the final names."""
EXIT_INTERRUPTED = 75
"""``hgbench train`` stopped by SIGTERM/SIGINT after saving ``last.pt`` (sysexits' EX_TEMPFAIL:
"try again later"); a retry resumes from the saved step."""
EXIT_KEYBOARD = 130


def _params(path: str):
    return load_params(path)


def _dataset(params, name: str):
    if name not in params.datasets:
        raise ParamsError(
            f"dataset {name!r} is not in profile {params.profile!r}; allowed values: "
            + ", ".join(sorted(params.datasets))
        )
    return params.datasets[name]


def _gpu_claim(device: str, n: int):
    """Claim ``n`` concrete GPUs when ``device`` resolves to CUDA (see hgbench.gpus), else nothing.

    Decided before anything initialises CUDA (:func:`hgbench.gpus.physical_gpu_count` reads the
    driver, not torch): ``CUDA_VISIBLE_DEVICES`` set after CUDA initialised would be ignored, and
    parallel jobs on a multi-GPU machine would all land on GPU 0.
    """
    from .gpus import claim_gpus, physical_gpu_count

    if device not in ("auto", "cuda"):
        return claim_gpus(0, total=0)
    total = physical_gpu_count()
    if total == 0 and device == "cuda" and "CUDA_VISIBLE_DEVICES" not in os.environ:
        import torch  # no driver folder and no nvidia-smi (an unusual container): ask CUDA itself

        total = torch.cuda.device_count()
    if device == "cuda" and total == 0 and "CUDA_VISIBLE_DEVICES" not in os.environ:
        # (claim_gpus would say "lower train.devices", which is no fix for predict or infer)
        raise RuntimeError(
            "device 'cuda' was asked for (--device or the profile's device), but this machine has no "
            "NVIDIA GPU; use --device cpu (or auto), or run it where a GPU is"
        )
    return claim_gpus(n if device == "cuda" or total > 0 else 0, total=total)


EXTRAS = {
    "pipeline": ("snakemake", "dvc"),
    "report": ("pandas", "matplotlib", "seaborn", "jinja2"),
    "export": ("onnx", "onnxruntime"),
}
"""Optional install layers (pyproject.toml) and the modules each brings; the core install runs
describe, fetch, prepare, train, predict, evaluate, bench and infer."""


class MissingExtra(Exception):
    """A command needs an optional dependency group that is not installed."""

    def __init__(self, command: str, extra: str):
        super().__init__(f"hgbench {command} needs the '{extra}' extra: pip install 'hgbench[{extra}]'")


def _has_module(name: str) -> bool:
    import importlib.util

    if name in sys.modules:
        return sys.modules[name] is not None
    return importlib.util.find_spec(name) is not None


def _require_extra(command: str, extra: str) -> None:
    """Stop ``command`` with one line naming the extra when any of its modules is missing."""
    if not all(_has_module(m) for m in EXTRAS[extra]):
        raise MissingExtra(command, extra)


def cmd_describe(args) -> int:
    from .describe import describe

    rows = describe(_params(args.params))
    if args.json:
        print(
            json.dumps(
                [{k: r[k] for k in ("variant", "dataset", "params", "macs", "input_res")} for r in rows], indent=2
            )
        )
        return 0
    print(
        f"{'dataset':<10} {'variant':<12} {'label':<22} {'stacks':>6} {'modules':>7} {'feat':>5} {'depth':>5} "
        f"{'supervision':<11} {'input':>5} {'params (M)':>10} {'GMACs':>7}"
    )
    for r in rows:
        print(
            f"{r['dataset']:<10} {r['variant']:<12} {r['label']:<22} {r['stacks']:>6} {r['modules']:>7} {r['features']:>5} "
            f"{r['depth']:>5} {r['supervision']:<11} {r['input_res']:>5} {r['params'] / 1e6:>10.2f} "
            f"{r['macs'] / 1e9:>7.2f}"
        )
    return 0


def cmd_fetch(args) -> int:
    from .data import fetch

    params = _params(args.params)
    ds = _dataset(params, args.dataset)
    out = Path(args.out)
    if ds.source == "synthetic":
        fetch.fetch_synthetic(out, ds.synthetic)
    else:  # mpii, flic: official archives, verified (env HGBENCH_<DATASET>_URL overrides the host)
        fetch.fetch_real(ds.source, out, retries=args.retries, backoff=args.backoff, progress=True)
    print(f"{args.dataset}: raw data ready in {out}")
    return 0


def cmd_prepare(args) -> int:
    from .data import mpii
    from .data.prepare import prepare_dataset
    from .kinds import FLIC, kind_of

    params = _params(args.params)
    ds = _dataset(params, args.dataset)
    kind = kind_of(ds.layout)
    if args.split == "samples":  # the real photographs shipped with hgbench, for the report's gallery
        from .data.prepare import SAMPLES_FILENAME, prepare_samples

        counts = prepare_samples(
            Path(args.out),
            dataset=args.dataset,
            input_res=ds.input_res,
            crop_margin=ds.crop_margin,
            layout=ds.layout,
            workers=args.workers,
        )
        print(f"{args.dataset}: prepared {counts} into {Path(args.out) / SAMPLES_FILENAME}")
        return 0
    if args.raw is None:
        raise ParamsError(f"hgbench prepare --split {args.split} needs --raw DIR (the output of fetch)")
    if args.split == "test":  # the MPII test split (no labels), for `hgbench export-mpii --split test`
        if not kind.test_split:
            raise ParamsError(
                f"dataset {args.dataset!r} has the {kind.label} layout: its test set is valid.h5 "
                f"(prepared without --split); --split test is the MPII test split"
            )
        from .data.prepare import prepare_test

        counts = prepare_test(
            Path(args.raw),
            Path(args.out),
            dataset=args.dataset,
            input_res=ds.input_res,
            crop_margin=ds.crop_margin,
            workers=args.workers,
            progress=sys.stderr.isatty(),
        )
        print(f"{args.dataset}: prepared {counts} into {Path(args.out) / 'test.h5'}")
        return 0
    if kind is FLIC:  # real FLIC and the synthetic FLIC layout: the same examples.mat code
        from .data.prepare import prepare_flic

        counts = prepare_flic(
            Path(args.raw),
            Path(args.out),
            dataset=args.dataset,
            input_res=ds.input_res,
            crop_margin=ds.crop_margin,
            labels=ds.labels,
            workers=args.workers,
            progress=sys.stderr.isatty(),
        )
        print(f"{args.dataset}: prepared {counts} into {args.out}")
        return 0
    # Real MPII uses the standard validation split shipped with the package (Tompson et al.);
    # the synthetic dataset writes its own valid_split.csv next to its annotations (a fact of the
    # source, not of the kind: both are MPII-layout).
    split_csv = mpii.MPII_VALID_SPLIT if ds.source == "mpii" else None
    counts = prepare_dataset(
        Path(args.raw),
        Path(args.out),
        dataset=args.dataset,
        input_res=ds.input_res,
        crop_margin=ds.crop_margin,
        workers=args.workers,
        progress=sys.stderr.isatty(),
        split_csv=split_csv,
    )
    print(f"{args.dataset}: prepared {counts} into {args.out}")
    return 0


def cmd_train(args) -> int:
    from . import distributed
    from .data.schema import open_split
    from .train import TrainingInterrupted, train

    params = _params(args.params)
    ds = _dataset(params, args.dataset)
    if args.variant not in params.variants:
        raise ParamsError(
            f"variant {args.variant!r} is not in profile {params.profile!r}; allowed values: "
            + ", ".join(sorted(params.variants))
        )
    if params.train.devices > 1 and not distributed.under_torchrun():
        # The splits are checked once, here: refused inside the workers, every rank would print the
        # error and the launcher would add its own lines.
        for split in ("train.h5", "valid.h5"):
            open_split(Path(args.data) / split).close()
        # DDP inside one job: rerun this same command as train.devices torchrun workers.
        argv = [
            "train",
            "--params",
            args.params,
            "--dataset",
            args.dataset,
            "--variant",
            args.variant,
            "--seed",
            str(args.seed),
            "--data",
            args.data,
            "--out",
            args.out,
        ]
        with _gpu_claim(args.device or params.device, params.train.devices):
            return distributed.launch(
                params.train.devices,
                argv + (["--device", args.device] if args.device else []),
                interrupted=EXIT_INTERRUPTED,
            )
    data = Path(args.data)
    try:
        # Inside torchrun the launcher's claim is inherited through CUDA_VISIBLE_DEVICES (kept as is).
        with _gpu_claim(args.device or params.device, params.train.devices):
            path = train(
                dataset=ds,
                variant=params.variants[args.variant],
                cfg=params.train,
                seed=args.seed,
                train_file=data / "train.h5",
                valid_file=data / "valid.h5",
                out_dir=Path(args.out),
                device=args.device or params.device,
            )
    except TrainingInterrupted as exc:
        print(f"hgbench train: interrupted: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    if not distributed.under_torchrun() or os.environ.get("RANK") == "0":
        print(f"model written to {path}")
    return 0


def cmd_predict(args) -> int:
    from .checkpoint import read_model_file
    from .predict import predict_splits

    params = _params(args.params)
    if len(args.data) != len(args.out):
        raise ValueError(
            f"--data names {len(args.data)} split(s) and --out {len(args.out)} file(s); give one --out "
            f"per split, in the same order"
        )
    if not Path(args.checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint {args.checkpoint} not found; run `hgbench train` first")
    meta = read_model_file(Path(args.checkpoint))  # weights_only, digest checked; errors name the fix
    run = {"dataset": meta["dataset"], "variant": meta["variant"], "seed": int(meta["seed"])}
    with _gpu_claim(args.device or params.device, 1):
        predict_splits(
            checkpoint=Path(args.checkpoint),
            splits=[(Path(d), Path(o)) for d, o in zip(args.data, args.out)],
            flip_test=params.predict.flip_test,
            batch_size=params.predict.batch_size,
            device=args.device or params.device,
            threads=params.train.threads,
            run=run,
        )
    print(f"predictions written to {', '.join(args.out)}")
    return 0


def cmd_evaluate(args) -> int:
    from .evaluate import evaluate_files
    from .runs import write_headline, write_metrics

    gt = Path(args.ground_truth) if args.ground_truth else None  # None: the shipped MPII validation GT
    inputs = {Path(args.predictions).resolve(), *([gt.resolve()] if gt else [])}
    outputs = [
        (flag, t) for flag, t in (("--out", args.out), ("--headline", args.headline), ("--curve", args.curve)) if t
    ]
    for k, (flag, target) in enumerate(outputs):
        if Path(target).resolve() in inputs:
            raise ValueError(f"output {target} is an input of this evaluation; give another {flag} path")
        twice = [f for f, t in outputs[:k] if Path(t).resolve() == Path(target).resolve()]
        if twice:  # the later write would replace metrics.json with the headline or the curve
            raise ValueError(f"{flag} {target} is also given as {twice[0]}; give each output its own path")
    metrics = evaluate_files(gt, Path(args.predictions), protocol=args.protocol, allow_nan=args.allow_nan)
    write_metrics(metrics, Path(args.out))
    if args.headline:
        from .evaluate import headline_metrics

        write_headline(headline_metrics(metrics), Path(args.headline))
    if args.curve:
        from .evaluate import write_curve_csv

        write_curve_csv(metrics, Path(args.curve))
    for key in metrics["thresholds"]:  # pckh@0.5, pckh@0.1 (MPII) or pck@0.2 (FLIC)
        print(f"{key} ({metrics['protocol']}): " + "  ".join(f"{k} {v:.1f}" for k, v in metrics[key].items()))
    ci = metrics.get("ci95", {}).get("Mean")
    print(f"AUC {metrics['auc']:.1f}" + (f"  Mean 95% CI [{ci['low']:.1f}, {ci['high']:.1f}]" if ci else ""))
    diff = metrics.get("ground_truth_differences")
    if diff:  # official + gt_valid.mat: say what was scored instead, and where the file is wrong
        first = ", ".join(f"row {d['row']} {d['joint']}" for d in diff["joints"][:3])
        print(
            f"note: official scores against the MPII annotation list, not {args.ground_truth}, which differs from "
            f"it in {diff['n']} joints ({first}, ...: all in {args.out} under ground_truth_differences)",
            file=sys.stderr,
        )
    return 0


def cmd_summarize(args) -> int:
    _require_extra("summarize", "report")  # pandas
    from .costs import collect_costs
    from .iofiles import atomic_dir, output_lock, remove_stale_temps
    from .summarize import summarize, write_csv_atomic

    params = _params(args.params)
    _dataset(params, args.dataset)
    out = Path(args.out)
    _check_summary_out(
        out, {"--results": args.results, "--models": args.models, "--data": args.data, "--benchmarks": args.benchmarks}
    )
    # Written whole or not at all: a damaged input found half-way leaves the previous summary.
    with output_lock(out, "hgbench summarize"), atomic_dir(out) as tmp:
        remove_stale_temps(out)  # folders a killed summary left (the lock says it is dead)
        summarize(params, args.dataset, Path(args.results), Path(args.models), tmp)
        # Costs and gallery are copied into the summary so the report regenerates from results/ alone.
        benchmarks = Path(args.benchmarks) if args.benchmarks else None
        costs = collect_costs(params, args.dataset, benchmarks, Path(args.models), Path(args.results))
        write_csv_atomic(costs, tmp / "costs.csv")
        if args.data:  # validation and real sample people, read from splits and predictions files
            from .gallery import build_gallery

            build_gallery(params, args.dataset, Path(args.results), Path(args.data), tmp / "gallery.h5")
    print(f"summary written to {args.out}")
    return 0


def _check_summary_out(out: Path, inputs: dict[str, str | None]) -> None:
    """Refuse a ``--out`` that the summary, swapped in whole (``atomic_dir``), must not replace: an
    input folder or one holding an input (``--out results/demo`` deleted every run's results), a
    file, or a folder with subfolders (a summary holds files only)."""
    fix = "give the summary a folder of its own, e.g. results/<profile>/summary/<dataset>"
    resolved = out.resolve()
    for flag, given in inputs.items():
        if given and (resolved == Path(given).resolve() or resolved in Path(given).resolve().parents):
            raise ValueError(
                f"--out {out} is or holds the {flag} folder {given}, which the summary would replace; {fix}"
            )
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a summary folder; {fix}")
    if out.is_dir():
        inner = next((p.name for p in sorted(out.iterdir()) if p.is_dir()), None)
        if inner is not None:
            raise ValueError(
                f"--out {out} holds the folder {inner!r}, so it is no summary folder (a summary holds files "
                f"only) and would be replaced whole; {fix}"
            )


def cmd_report(args) -> int:
    _require_extra("report", "report")
    from .report.build import build_report

    if args.index and Path(args.index).resolve() == Path(args.out).resolve():
        raise ValueError(
            f"--index {args.index} is also --out: the landing page would replace the report; give each its own path"
        )

    path = build_report(_params(args.params), Path(args.results), Path(args.out), params_file=args.params)
    print(f"report written to {path.resolve()}")
    if args.index:
        from .report.landing import write_landing

        index = write_landing(Path(args.index), latest=path)
        print(f"index of reports written to {index.resolve()}")
    return 0


def cmd_sync_timestamps(args) -> int:
    _require_extra("sync-timestamps", "pipeline")
    from .timestamps import sync_timestamps

    # A missing or invalid profile is named here, not deep in `snakemake --touch`'s output (the path
    # is read from --dir, where snakemake runs).
    _params(str(Path(args.dir) / args.params))
    n = sync_timestamps(args.params, Path(args.dir))
    print(f"DVC reports everything up to date; timestamps of {n} Snakemake job(s) aligned")
    return 0


def cmd_bench(args) -> int:
    from . import bench

    if args.what == "train":
        params = _params(args.params)
        record = bench.bench_train(
            params,
            args.variant,
            batch=args.batch or params.train.batch_size,
            steps=args.steps,
            threads=args.threads,
            device=args.device,
            precision=args.precision,
            compile=args.compile_mode or args.compile,
            warmup=args.warmup,
        )
    else:
        record = bench.bench_data(
            Path(args.data),
            batch=args.batch,
            batches=args.batches,
            threads=args.threads,
            workers=args.workers,
            device=args.device,
        )
    path = bench.append_result(record, Path(args.results))
    print(bench.summary_line(record))
    print(f"appended to {path}")
    if args.json:
        print(bench.dumps(record))
    return 0


def cmd_infer(args) -> int:
    from .infer import run_infer

    with _gpu_claim(args.device, 1):
        done = run_infer(
            Path(args.checkpoint),
            args.images,
            Path(args.out),
            Path(args.boxes) if args.boxes else None,
            device=args.device,
            batch_size=args.batch_size,
            flip_test=args.flip_test,
            min_score=args.min_score,
            progress=sys.stderr.isatty(),
        )
    print(f"{done['people']} people in {done['images']} images: <name>.json and <name>.png written to {args.out}")
    return 0


def cmd_export(args) -> int:
    from . import export

    if args.format == "safetensors":
        out, side = export.export_safetensors(Path(args.checkpoint), Path(args.out), crop_margin=args.crop_margin)
        print(f"weights written to {out}, config to {side}")
        return 0
    _require_extra("export --format onnx", "export")
    out, diff = export.export_onnx(
        Path(args.checkpoint), Path(args.out), opset=args.opset, crop_margin=args.crop_margin
    )
    print(
        f"ONNX (opset {args.opset}, dynamic batch) written to {out}; onnxruntime vs PyTorch max abs heatmap "
        f"difference {diff:.2e}"
    )
    return 0


def cmd_export_mpii(args) -> int:
    from .submission import write_submission

    for target in (args.predictions, args.annotations, args.valid_split):
        if target and Path(args.out).resolve() == Path(target).resolve():
            raise ValueError(f"output {args.out} is an input of this export; give another --out path")
    done = write_submission(
        Path(args.predictions),
        Path(args.annotations),
        args.split,
        Path(args.out),
        valid_split=Path(args.valid_split) if args.valid_split else _default_split(),
        allow_nan=args.allow_nan,
    )
    cx, cy = done["thorax_correlation"]
    print(
        f"{done['people']} people in {done['images']} {args.split} images written to {args.out} (MAT variable pred); "
        f"objpos vs predicted thorax correlation x {cx:.2f}, y {cy:.2f}"
    )
    if min(cx, cy) < 0.5:  # the official prepareTestResults.m warns at the same level
        print(
            "warning: low correlation between person centres (objpos) and predicted thorax: the prediction rows "
            "are probably not in the split's order, or the predictions are very poor",
            file=sys.stderr,
        )
    return 0


def _default_split() -> Path:
    from .data.mpii import MPII_VALID_SPLIT

    return MPII_VALID_SPLIT


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in the one line of every other error (docs/reliability.md)."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}; see `{self.prog} --help`", file=sys.stderr)
        sys.exit(EXIT_ERROR)


def _bounded(kind: type, lo: float, hi: float):
    """An argparse type: ``kind`` (int or float) within [lo, hi]; NaN and infinities are outside."""

    within = f"[{lo}, {hi}]" if kind is int else f"[{lo:g}, {hi:g}]"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'an integer' if kind is int else 'a number'}; give one in {within}"
            ) from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{text} is outside {within}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


# Upper bounds of the numeric flags (docs/reliability.md 3k for the params): the params schema's
# where a flag mirrors a params key, else what no real run needs more than.
SEEDS = _bounded(int, 0, 2**32 - 1)  # experiments.*.seed
BATCH = _bounded(int, 1, 1024)  # train.batch_size, predict.batch_size
THREADS = _bounded(int, 1, 1024)  # train.threads (a million threads segfaulted torch)
PROCESSES = 128  # train.workers


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="hgbench",
        description="Stacked hourglass benchmark: one subcommand per pipeline stage.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[-1],
    )
    parser.add_argument("--version", action="version", version=f"hgbench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="STAGE")

    def add(name, func, help_text):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    def params_arg(p):
        p.add_argument("--params", required=True, metavar="YAML", help="params profile, e.g. params/demo.yaml")

    p = add("describe", cmd_describe, "List a profile's variants with parameter count and forward MACs.")
    params_arg(p)
    p.add_argument(
        "--json", action="store_true", help="print a JSON list of {variant, dataset, params, macs, input_res}"
    )

    p = add("fetch", cmd_fetch, "Get a dataset's raw files (the synthetic dataset is generated).")
    params_arg(p)
    p.add_argument("--dataset", required=True, help="dataset name in the profile")
    p.add_argument("--out", required=True, metavar="DIR", help="raw data directory, e.g. data/raw/synthetic")
    p.add_argument(
        "--retries",
        type=_bounded(int, 0, 100),
        default=5,
        help="download retries after a failed attempt (default 5, at most 100)",
    )
    p.add_argument(
        "--backoff",
        type=_bounded(float, 0, 3600),
        default=2.0,
        help="seconds before the first retry, doubled for each further one (default 2)",
    )

    p = add(
        "prepare",
        cmd_prepare,
        "Crop people and write {train,valid}.h5 (or the MPII test.h5, or samples.h5) in the processed schema.",
    )
    params_arg(p)
    p.add_argument("--dataset", required=True)
    p.add_argument("--raw", metavar="DIR", help="output of fetch (needed except for --split samples)")
    p.add_argument("--out", required=True, metavar="DIR", help="e.g. data/processed/synthetic")
    p.add_argument(
        "--workers", type=_bounded(int, 1, PROCESSES), default=1, help="image decoding processes (default 1)"
    )
    p.add_argument(
        "--split",
        choices=["train-valid", "test", "samples"],
        default="train-valid",
        help="train-valid (default): train.h5 and valid.h5; test: test.h5, the MPII test split "
        "(single-person people of img_train == 0 images, no labels) for export-mpii; samples: "
        "samples.h5, the five real MPII photographs shipped with hgbench (labelled for an "
        "MPII-layout dataset, unlabelled in a FLIC layout) for the report's gallery",
    )

    p = add("train", cmd_train, "Train one variant with one seed.")
    params_arg(p)
    p.add_argument("--dataset", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--seed", type=SEEDS, required=True, help="0 to 2**32 - 1")
    p.add_argument("--data", required=True, metavar="DIR", help="directory with train.h5 and valid.h5")
    p.add_argument("--out", required=True, metavar="DIR", help="writes model.pt, last.pt, log.csv here")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="overrides the profile's device")

    p = add("predict", cmd_predict, "Predict a split with flip test; write predictions.h5 (native pixels).")
    params_arg(p)
    p.add_argument("--checkpoint", required=True, metavar="PT", help="model.pt written by train")
    p.add_argument(
        "--data",
        required=True,
        nargs="+",
        metavar="H5",
        help="processed split(s), e.g. data/processed/demo/synthetic/valid.h5 (several: one model load)",
    )
    p.add_argument("--out", required=True, nargs="+", metavar="H5", help="one predictions file per --data split")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])

    p = add("evaluate", cmd_evaluate, "Score predictions with PCKh; write metrics.json.")
    p.add_argument(
        "--ground-truth",
        metavar="FILE",
        help="processed split .h5, the MPII annotation file (RELEASE .mat: the standard validation "
        "split's people), gt_valid.mat layout, or hourglass annotation .h5; default: the standard "
        "MPII validation split as the annotation list has it (shipped; official protocol)",
    )
    p.add_argument("--predictions", required=True, metavar="FILE", help=".h5 or .mat with preds (N, J, 2)")
    p.add_argument(
        "--protocol",
        default="official",
        choices=sorted(PROTOCOLS),
        help="PCK protocol (docs/evaluation.md); default official; FLIC ground truth uses flic",
    )
    p.add_argument("--allow-nan", action="store_true", help="score NaN predictions as wrong instead of failing")
    p.add_argument("--out", required=True, metavar="JSON")
    p.add_argument("--curve", metavar="CSV", help="also write the Mean/group curve here, for DVC plots")
    p.add_argument(
        "--headline",
        metavar="JSON",
        help="also write the headline numbers (about a dozen) here, for DVC metrics (dvc exp show)",
    )

    p = add(
        "export-mpii",
        cmd_export_mpii,
        "Write predictions as the MPII submission file (pred_keypoints_mpii.mat) for the evaluation server.",
    )
    p.add_argument(
        "--predictions",
        required=True,
        metavar="FILE",
        help="preds (N, 16, 2), native 1-based px, rows in the split's order (predict on test.h5 or valid.h5)",
    )
    p.add_argument(
        "--annotations", required=True, metavar="MAT", help="the official RELEASE file, mpii_human_pose_v1_u12_1.mat"
    )
    p.add_argument(
        "--split",
        required=True,
        choices=["valid", "test"],
        help="test: every img_train == 0 image (the server's set); valid: the validation images",
    )
    p.add_argument("--out", required=True, metavar="MAT", help="e.g. pred_keypoints_mpii.mat")
    p.add_argument(
        "--valid-split",
        metavar="CSV",
        help="validation split list (image_index,person_index, 0-based); default: the standard split",
    )
    p.add_argument("--allow-nan", action="store_true", help="write NaN predictions (the toolkit scores them as wrong)")

    p = add(
        "summarize",
        cmd_summarize,
        "Collect a dataset's metrics and logs into CSV tables, the claims table (claims.csv) and the skeleton gallery.",
    )
    params_arg(p)
    p.add_argument("--dataset", required=True)
    p.add_argument(
        "--results",
        required=True,
        metavar="DIR",
        help="results root (results/): metrics.json, predictions.h5, samples_predictions.h5",
    )
    p.add_argument("--models", required=True, metavar="DIR", help="models root (models/), for training logs")
    p.add_argument("--out", required=True, metavar="DIR", help="e.g. results/summary/synthetic")
    p.add_argument(
        "--data",
        metavar="DIR",
        help="processed data (valid.h5, samples.h5) for the skeleton gallery, "
        "e.g. data/processed/synthetic; without it no gallery.h5 is written",
    )
    p.add_argument(
        "--benchmarks",
        metavar="DIR",
        help="Snakemake benchmark root (benchmarks/) for costs.csv; absent files give NaN",
    )

    p = add("report", cmd_report, "Build reports/index.html and its figures from results/summary.")
    params_arg(p)
    p.add_argument("--results", required=True, metavar="DIR", help="results root (results/)")
    p.add_argument("--out", required=True, metavar="HTML", help="e.g. reports/demo/index.html")
    p.add_argument(
        "--index",
        metavar="HTML",
        help="also rewrite this landing page linking every report next to --out's folder (reports/index.html)",
    )

    p = add(
        "sync-timestamps",
        cmd_sync_timestamps,
        "After dvc pull/checkout: if DVC reports no change, snakemake --touch so nothing reruns.",
    )
    p.add_argument("--params", required=True, metavar="YAML", help="the profile Snakemake runs, e.g. params.yaml")
    p.add_argument("--dir", default=".", help="project directory (default: current)")

    p = add("bench", cmd_bench, "Time the real training step (train) or the data path from an HDF5 (data).")
    bench_sub = p.add_subparsers(dest="what", required=True)
    b = bench_sub.add_parser("train", help="training step on random data at the profile's resolution")
    b.add_argument("--params", default="params/paper.yaml", metavar="YAML", help="default params/paper.yaml")
    b.add_argument("--variant", required=True)
    b.add_argument(
        "--steps", type=_bounded(int, 1, 100_000), default=5, help="timed steps, after --warmup untimed ones"
    )
    b.add_argument("--warmup", type=_bounded(int, 0, 100_000), default=2)
    b.add_argument("--precision", choices=["fp32", "bf16"], help="default: the profile's train.precision")
    b.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None, help="torch.compile")
    b.add_argument(
        "--compile-mode",
        choices=["default", "reduce-overhead", "max-autotune"],
        help="torch.compile with this mode (reduce-overhead: CUDA graphs, for small batches)",
    )
    d = bench_sub.add_parser("data", help="ms per training sample from a prepared HDF5 split")
    d.add_argument("--data", required=True, metavar="H5", help="e.g. data/processed/mpii/train.h5")
    d.add_argument("--batches", type=_bounded(int, 1, 100_000), default=20)
    d.add_argument(
        "--workers", type=_bounded(int, 0, PROCESSES), default=0, help="reader processes (0 = in this process)"
    )
    for q in (b, d):
        if q is b:
            q.add_argument("--batch", type=BATCH, default=None, help="default: the profile's train.batch_size")
        else:
            q.add_argument("--batch", type=BATCH, default=16)
        q.add_argument("--threads", type=THREADS, default=1, help="torch CPU threads")
        q.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto" if q is b else "cpu")
        q.add_argument("--results", default="bench/results", metavar="DIR", help="CSV directory")
        q.add_argument("--json", action="store_true", help="print the result as one JSON object, last line")

    p = add("infer", cmd_infer, "Run a trained model on your own JPEG/PNG images: joints (JSON) and overlays (PNG).")
    p.add_argument(
        "--checkpoint",
        required=True,
        metavar="MODEL",
        help="model.pt written by train, or a .safetensors written by export",
    )
    p.add_argument("--images", required=True, nargs="+", metavar="PATH", help="image files and/or folders of them")
    p.add_argument(
        "--boxes",
        metavar="JSON",
        help="people per image file name: [x1, y1, x2, y2] or "
        '{"center": [x, y], "scale": s} (or a list of them), 0-based px; without an entry the '
        "whole image is one person (docs/inference.md)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="writes <name>.json and <name>.png here")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--batch-size", type=BATCH, default=16, help="people per forward pass, across images (default 16)")
    p.add_argument(
        "--flip-test",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="average with the mirrored image's heatmaps, as predict does (default on)",
    )
    p.add_argument(
        "--min-score",
        type=_bounded(float, 0, 100),
        metavar="S",
        help="leave joints scoring below S out of the overlay (the JSON keeps every joint)",
    )

    p = add("export", cmd_export, "Write a trained model as ONNX or safetensors (+ JSON config) for deployment.")
    p.add_argument("--checkpoint", required=True, metavar="MODEL", help="model.pt written by train (or a .safetensors)")
    p.add_argument(
        "--format",
        required=True,
        choices=["onnx", "safetensors"],
        help="onnx needs the 'export' extra; safetensors writes <name>.json beside the weights",
    )
    p.add_argument("--out", required=True, metavar="FILE", help="e.g. hg2x1.onnx or hg2x1.safetensors")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    p.add_argument(
        "--crop-margin",
        type=float,
        metavar="M",
        help="record the training dataset's crop_margin (default: the checkpoint's, else 1.25)",
    )
    return parser


DEBUG_ENV = "HGBENCH_DEBUG"
"""Set to 1 to get the Python traceback of an unexpected error instead of the one-line message."""


def _line_buffered() -> None:
    """Flush every line, also into a file: Snakemake and DVC send stdout to logs/, where Python
    would otherwise buffer blocks, leaving the log empty while a job runs and losing the last
    lines of a killed one."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(line_buffering=True)


# Library warnings that carry nothing a user can act on, ignored by every command (the rest are
# shown in one line, see _one_line_warnings; HGBENCH_DEBUG=1 shows all of them in full):
SILENCED_WARNINGS = (
    # Pillow, opening a palette PNG with a transparency chunk: advice to code that keeps the alpha
    # channel ("should be converted to RGBA"); infer converts every image to RGB itself.
    (r"Palette images with Transparency expressed in bytes", UserWarning),
    # Pillow's DecompressionBombWarning, decoding an image of 89 to 179 Mpx: "could be decompression
    # bomb DOS attack" about the user's own photograph; infer checks every image's size itself and
    # refuses more than infer.MAX_PIXELS in one line.
    (r"Image size \(\d+ pixels\) exceeds limit of \d+ pixels", RuntimeWarning),
)

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")
"""ANSI escape sequences (colours, cursor moves, terminal titles), which some libraries put in
their messages; in a log file they are noise."""


ONE_LINE_MAX = 1500
"""Characters up to which ``one_line(keep_end=True)`` keeps every line of a message (the manual
download route of ``fetch``: URLs, where to save each file, sizes and checksums)."""


def one_line(text, keep_end: bool = False) -> str:
    """``text`` without ANSI escape codes, in one line: its first non-empty line, or with
    ``keep_end`` all its lines joined (an error names its fix at the end), or, past
    :data:`ONE_LINE_MAX` characters, the first and the last joined by " … "."""
    lines = [line.strip() for line in _ANSI.sub("", str(text)).splitlines() if line.strip()]
    if not lines:
        return ""
    if not keep_end or len(lines) == 1:
        return lines[0]
    joined = " ".join(lines)
    return joined if len(joined) <= ONE_LINE_MAX else f"{lines[0]} … {lines[-1]}"


class _WarningLine(logging.Formatter):
    """hgbench's own log warnings (gallery, summarize, costs) in the one-line style."""

    def __init__(self, stage: str):
        super().__init__()
        self.stage = stage

    def format(self, record: logging.LogRecord) -> str:
        level = "warning" if record.levelno < logging.ERROR else "error"
        return f"hgbench {self.stage}: {level}: {one_line(record.getMessage())}"


@contextlib.contextmanager
def _one_line_warnings(stage: str):
    """For one command: every warning shown as ``hgbench <stage>: warning: <first line>`` (no source
    line, no path into a library, no ANSI codes), each distinct line once (Pillow's missing-glyph
    warning came once per figure and glyph), the :data:`SILENCED_WARNINGS` not at all."""
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = f"hgbench {stage}: warning: {one_line(message)}"
        if text not in shown:
            shown.add(text)
            print(text, file=sys.stderr if file is None else file)

    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_WarningLine(stage))
    logger = logging.getLogger("hgbench")
    logger.addHandler(handler)
    try:
        with warnings.catch_warnings():  # filters and showwarning restored afterwards
            for message, category in SILENCED_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
            warnings.showwarning = show
            yield
    finally:
        logger.removeHandler(handler)


# What to do about an error the operating system reports on a path (errno → what, fix).
OS_ERRORS = {
    errno.EEXIST: ("exists but is not a folder", "remove it, or choose another output path"),
    errno.ENOTDIR: ("a part of this path is a file, not a folder", "choose another path"),
    errno.EISDIR: ("is a folder, not a file", "remove it, or give a file path"),
    errno.EACCES: ("permission denied", "choose a location you may write to, or fix its permissions"),
    errno.EPERM: ("operation not permitted", "choose a location you may write to, or fix its permissions"),
    errno.ENOSPC: ("no space left on the device", "free space there and rerun"),
    errno.EDQUOT: ("disk quota exceeded", "free space there and rerun"),
    errno.EROFS: ("read-only file system", "choose another location"),
    errno.ENOENT: ("no such file or folder", "check the path"),
    errno.ENAMETOOLONG: ("file name too long", "choose a shorter path"),
}
_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.[^.]+\.tmp$")
"""iofiles.atomic_path/atomic_dir's hidden temporary names, ``.<name>.<random>.tmp``."""


def _os_error(exc: OSError) -> str:
    """An error the operating system raised on a path (``[Errno 17] File exists: '…'``) as
    ``<path>: <what>; <fix>``, naming the final path, never the hidden temporary one beside it;
    any other OSError (hgbench's own messages, h5py's) as it is."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    if exc.errno is None or not paths or not str(exc).startswith("[Errno"):
        return str(exc)
    final = [p for p in paths if not _TEMPORARY.match(Path(p).name)]
    path = final[0] if final else str(Path(paths[0]).with_name(_TEMPORARY.match(Path(paths[0]).name)["name"]))
    what, fix = OS_ERRORS.get(exc.errno, (exc.strerror or "cannot be used", "check the path and its permissions"))
    return f"{path}: {what}; {fix}"


def _run(args) -> int:
    try:
        return args.func(args)
    except MissingExtra as exc:
        print(exc, file=sys.stderr)
        return EXIT_ERROR
    except ModuleNotFoundError as exc:
        extra = next((e for e, mods in EXTRAS.items() if (exc.name or "").split(".")[0] in mods), None)
        if extra is None:
            print(
                f"hgbench {args.command}: error: {exc}; the installation is incomplete: reinstall hgbench",
                file=sys.stderr,
            )
        else:
            print(MissingExtra(args.command, extra), file=sys.stderr)
        return EXIT_ERROR
    except (ParamsError, FileNotFoundError, ValueError, RuntimeError, OSError) as exc:
        # Expected failures (bad params, missing or corrupt files) end with one clear line, no traceback.
        text = _os_error(exc) if isinstance(exc, OSError) else str(exc)
        print(f"hgbench {args.command}: error: {one_line(text, keep_end=True)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"hgbench {args.command}: interrupted", file=sys.stderr)
        return EXIT_KEYBOARD
    except Exception as exc:
        # Anything else is a bug in hgbench, not a user error: still one line (a traceback means
        # nothing to most users), with the way to get the details for a report.
        if os.environ.get(DEBUG_ENV):
            raise
        print(
            f"hgbench {args.command}: error: unexpected {type(exc).__name__}: {one_line(exc)} (this is a bug in "
            f"hgbench; rerun with {DEBUG_ENV}=1 to see the traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_BUG


def main(argv: list[str] | None = None) -> int:
    _line_buffered()
    args = build_parser().parse_args(argv)
    if os.environ.get(DEBUG_ENV):  # Python's own warnings, in full, with where they were raised
        return _run(args)
    with _one_line_warnings(args.command):
        return _run(args)


if __name__ == "__main__":
    sys.exit(main())
