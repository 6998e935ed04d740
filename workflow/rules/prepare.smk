rule prepare:
    input:
        manifest="data/raw/{dataset}/MANIFEST.json",
    output:
        train="data/processed/{dataset}/train.h5",
        valid="data/processed/{dataset}/valid.h5",
    params:
        profile=PARAMS_FILE,
        section=section("datasets.{dataset}"),
    threads: 2
    conda:
        "../envs/hgbench.yaml"
    log:
        "logs/prepare/{dataset}.log",
    shell:
        "hgbench prepare --params {params.profile:q} --dataset {wildcards.dataset} "
        "--raw data/raw/{wildcards.dataset} --out data/processed/{wildcards.dataset} "
        "--workers {threads} > {log} 2>&1"
