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


# The five real MPII photographs shipped with hgbench as their own split, for the report's gallery
# (the `predict` job predicts it for every run). Labelled for an MPII-layout dataset; a FLIC-layout
# one gets the same people unlabelled in its own joints (DVC, which runs the same stages, cannot
# leave a dataset out of a foreach). Needs no raw data: the photographs come with the package.
rule prepare_samples:
    output:
        f"{PROCESSED}/{{dataset}}/samples.h5",
    log:
        f"{LOGS}/prepare/{{dataset}}-samples.log",
    localrule: True
    conda:
        "../envs/hgbench.yaml"
    params:
        profile=PARAMS_FILE,
        section=section("datasets.{dataset}"),
    shell:
        "hgbench prepare --params {params.profile:q} --dataset {wildcards.dataset} "
        f"--out {PROCESSED}/{{wildcards.dataset}} --split samples > {{log}} 2>&1"
