# Synthetic: generated. MPII/FLIC: official archives downloaded and verified, or placed by hand in
# data/raw/<profile>/<dataset>/downloads/ (README "Real datasets"). MANIFEST.json is written last.
rule fetch:
    output:
        manifest=f"{RAW}/{{dataset}}/MANIFEST.json",
    params:
        profile=PARAMS_FILE,
        section=section("datasets.{dataset}"),
    conda:
        "../envs/hgbench.yaml"
    log:
        f"{LOGS}/fetch/{{dataset}}.log",
    shell:
        "hgbench fetch --params {params.profile:q} --dataset {wildcards.dataset} "
        f"--out {RAW}/{{wildcards.dataset}} > {{log}} 2>&1"
