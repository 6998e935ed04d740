rule train:
    input:
        train=f"{PROCESSED}/{{dataset}}/train.h5",
        valid=f"{PROCESSED}/{{dataset}}/valid.h5",
    output:
        model=f"{MODELS}/{{dataset}}/{{variant}}/s{{seed}}/model.pt",
        log_csv=report(
            f"{MODELS}/{{dataset}}/{{variant}}/s{{seed}}/log.csv",
            caption="../report/training_log.rst",
            category="{dataset}",
            subcategory="Runs",
            labels={"variant": "{variant}", "seed": "{seed}", "file": "training log"},
        ),
    log:
        f"{LOGS}/train/{{dataset}}/{{variant}}/s{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/train/{{dataset}}/{{variant}}/s{{seed}}.tsv"
    conda:
        "../envs/hgbench.yaml"
    # train.devices > 1: `hgbench train` starts that many DDP processes (torchrun) inside this one
    # job, each with train.threads CPU threads and, on CUDA, one GPU. Exit status 75 means
    # "interrupted by SIGTERM/SIGINT, last.pt saved": a retry resumes (docs/training.md).
    # runtime and mem_mb: what a cluster job asks for (profile.smk: epochs × people ÷ images/s).
    threads: TRAIN["threads"] * TRAIN["devices"]
    resources:
        gpu=GPUS_PER_JOB * TRAIN["devices"],
        runtime=runtime_of(train_runtime),
        mem_mb=mem_mb_of(train_mem_mb),
    # last.pt is not an output: Snakemake would delete it before a rerun, and it is what a
    # preempted or interrupted job resumes from. A rerun of a finished run (--forcerun, a params
    # change of a speed knob, a retry) rewrites model.pt and log.csv from it without training.
    params:
        profile=PARAMS_FILE,
        # the train keys that change results (not threads, workers, devices, ...: SPEED_KEYS)
        section=section("train", "variants.{variant}", "datasets.{dataset}"),
    shell:
        "hgbench train --params {params.profile:q} --dataset {wildcards.dataset} "
        f"--variant {{wildcards.variant}} --seed {{wildcards.seed}} --data {PROCESSED}/{{wildcards.dataset}} "
        f"--out {MODELS}/{{wildcards.dataset}}/{{wildcards.variant}}/s{{wildcards.seed}} > {{log}} 2>&1"
