# Synthetic: generated. MPII/FLIC: official archives downloaded and verified, or placed by hand in
# data/raw/<dataset>/downloads/ (README "Real datasets"). MANIFEST.json is written last.
rule fetch:
    output:
        manifest="data/raw/{dataset}/MANIFEST.json",
    params:
        profile=PARAMS_FILE,
        section=section("datasets.{dataset}"),
    conda:
        "../envs/hgbench.yaml"
    log:
        "logs/fetch/{dataset}.log",
    shell:
        "hgbench fetch --params {params.profile:q} --dataset {wildcards.dataset} "
        "--out data/raw/{wildcards.dataset} > {log} 2>&1"
