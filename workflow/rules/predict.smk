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


# Every run's predictions of the real sample photographs (prepare_samples), read by the gallery:
# `hgbench predict` on that split, on the CPU (five people: no GPU to claim or queue for, and the
# numbers the gallery showed when it predicted them itself); no benchmark (costs.csv times predict).
rule predict_samples:
    input:
        model=f"{MODELS}/{{dataset}}/{{variant}}/s{{seed}}/model.pt",
        samples=f"{PROCESSED}/{{dataset}}/samples.h5",
    output:
        f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/samples_predictions.h5",
    log:
        f"{LOGS}/predict_samples/{{dataset}}/{{variant}}/s{{seed}}.log",
    conda:
        "../envs/hgbench.yaml"
    threads: TRAIN["threads"]
    resources:
        runtime=lambda wildcards, attempt: 10 * attempt,
        mem_mb=lambda wildcards, attempt: predict_mem_mb(
            PROFILE_RAW, wildcards.dataset, wildcards.variant, False, attempt
        ),
    params:
        profile=PARAMS_FILE,
        section=section("predict"),
    shell:
        "hgbench predict --params {params.profile:q} --checkpoint {input.model} --data {input.samples} "
        "--out {output} --device cpu > {log} 2>&1"
