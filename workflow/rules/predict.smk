rule predict:
    input:
        model=f"{MODELS}/{{dataset}}/{{variant}}/s{{seed}}/model.pt",
        valid=f"{PROCESSED}/{{dataset}}/valid.h5",
    output:
        f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/predictions.h5",
    params:
        profile=PARAMS_FILE,
        section=section("predict"),
    threads: PARAMS.train.threads
    resources:
        gpu=GPUS_PER_JOB,
    conda:
        "../envs/hgbench.yaml"
    log:
        f"{LOGS}/predict/{{dataset}}/{{variant}}/s{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/predict/{{dataset}}/{{variant}}/s{{seed}}.tsv"
    shell:
        "hgbench predict --params {params.profile:q} --checkpoint {input.model} --data {input.valid} "
        "--out {output} > {log} 2>&1"
