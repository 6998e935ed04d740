# Synthetic: generated. MPII/FLIC: official archives downloaded and verified, or placed by hand in
# data/raw/<profile>/<dataset>/downloads/ (README "Real datasets"). MANIFEST.json is written last.
rule fetch:
    output:
        manifest=f"{RAW}/{{dataset}}/MANIFEST.json",
    log:
        f"{LOGS}/fetch/{{dataset}}.log",
    conda:
        "../envs/hgbench.yaml"
    resources:
        runtime=runtime_of(fetch_runtime),
        mem_mb=2000,
    params:
        profile=PARAMS_FILE,
        section=section("datasets.{dataset}"),
    shell:
        "hgbench fetch --params {params.profile:q} --dataset {wildcards.dataset} "
        f"--out {RAW}/{{wildcards.dataset}} > {{log}} 2>&1"
