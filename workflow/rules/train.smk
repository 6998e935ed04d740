rule train:
    input:
        train="data/processed/{dataset}/train.h5",
        valid="data/processed/{dataset}/valid.h5",
    output:
        model="models/{dataset}/{variant}/s{seed}/model.pt",
        log_csv="models/{dataset}/{variant}/s{seed}/log.csv",
    # last.pt is not an output: Snakemake would delete it before a rerun, and it is what a
    # preempted or interrupted job resumes from.
    params:
        profile=PARAMS_FILE,
        section=section("train", "variants.{variant}", "datasets.{dataset}"),
    # train.devices > 1: `hgbench train` starts that many DDP processes (torchrun) inside this one
    # job, each with train.threads CPU threads and, on CUDA, one GPU. Exit status 75 means
    # "interrupted by SIGTERM/SIGINT, last.pt saved": a retry resumes (docs/training.md).
    threads: PARAMS.train.threads * PARAMS.train.devices
    resources:
        gpu=GPUS_PER_JOB * PARAMS.train.devices,
    conda:
        "../envs/hgbench.yaml"
    log:
        "logs/train/{dataset}/{variant}/s{seed}.log",
    benchmark:
        "benchmarks/train/{dataset}/{variant}/s{seed}.tsv"
    shell:
        "hgbench train --params {params.profile:q} --dataset {wildcards.dataset} "
        "--variant {wildcards.variant} --seed {wildcards.seed} --data data/processed/{wildcards.dataset} "
        "--out models/{wildcards.dataset}/{wildcards.variant}/s{wildcards.seed} > {log} 2>&1"
