rule prepare:
    input:
        manifest=f"{RAW}/{{dataset}}/MANIFEST.json",
    output:
        train=f"{PROCESSED}/{{dataset}}/train.h5",
        valid=f"{PROCESSED}/{{dataset}}/valid.h5",
    log:
        f"{LOGS}/prepare/{{dataset}}.log",
    conda:
        "../envs/hgbench.yaml"
    threads: 2
    resources:
        runtime=runtime_of(prepare_runtime),
        # workers decode one image at a time and stream crops to the HDF5 file
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
    params:
        profile=PARAMS_FILE,
        section=section("datasets.{dataset}"),
    shell:
        "hgbench prepare --params {params.profile:q} --dataset {wildcards.dataset} "
        f"--raw {RAW}/{{wildcards.dataset}} --out {PROCESSED}/{{wildcards.dataset}} "
        "--workers {threads} > {log} 2>&1"
