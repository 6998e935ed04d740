rule predict:
    input:
        model=f"{MODELS}/{{dataset}}/{{variant}}/s{{seed}}/model.pt",
        valid=f"{PROCESSED}/{{dataset}}/valid.h5",
    output:
        f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/predictions.h5",
    log:
        f"{LOGS}/predict/{{dataset}}/{{variant}}/s{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/predict/{{dataset}}/{{variant}}/s{{seed}}.tsv"
    conda:
        "../envs/hgbench.yaml"
    threads: TRAIN["threads"]
    resources:
        gpu=GPUS_PER_JOB,
        runtime=runtime_of(predict_runtime),
        mem_mb=mem_mb_of(predict_mem_mb),
    params:
        profile=PARAMS_FILE,
        section=section("predict"),
    shell:
        "hgbench predict --params {params.profile:q} --checkpoint {input.model} --data {input.valid} "
        "--out {output} > {log} 2>&1"
