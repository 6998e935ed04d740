rule prepare:
    input:
        manifest=f"{RAW}/{{dataset}}/MANIFEST.json",
    output:
        train=f"{PROCESSED}/{{dataset}}/train.h5",
        valid=f"{PROCESSED}/{{dataset}}/valid.h5",
    params:
        profile=PARAMS_FILE,
        section=section("datasets.{dataset}"),
    threads: 2
    conda:
        "../envs/hgbench.yaml"
    log:
        f"{LOGS}/prepare/{{dataset}}.log",
    shell:
        "hgbench prepare --params {params.profile:q} --dataset {wildcards.dataset} "
        f"--raw {RAW}/{{wildcards.dataset}} --out {PROCESSED}/{{wildcards.dataset}} "
        "--workers {threads} > {log} 2>&1"
