# The MPII test-set submission of the profile's `submissions:` runs (the paper profile: hg8): the
# unlabelled single-person test people cropped from their rough location, predicted with flip
# test, and written in the benchmark's format (README "Submitting to the MPII test server").
MPII_RELEASE = "mpii_human_pose_v1_u12_2/mpii_human_pose_v1_u12_1.mat"
SUBMISSIONS = [
    f"{RESULTS}/{s['dataset']}/{s['variant']}/s{s['seed']}/pred_keypoints_mpii.mat"
    for s in PARAMS["submissions"]
]


rule prepare_test:
    input:
        manifest=f"{RAW}/{{dataset}}/MANIFEST.json",
    output:
        f"{PROCESSED}/{{dataset}}/test.h5",
    log:
        f"{LOGS}/prepare/{{dataset}}-test.log",
    conda:
        "../envs/hgbench.yaml"
    threads: 2
    resources:
        runtime=runtime_of(prepare_runtime),
        mem_mb=lambda wildcards, attempt: 4000 * attempt,
    params:
        profile=PARAMS_FILE,
        section=section("datasets.{dataset}"),
    shell:
        "hgbench prepare --params {params.profile:q} --dataset {wildcards.dataset} "
        f"--raw {RAW}/{{wildcards.dataset}} --out {PROCESSED}/{{wildcards.dataset}} --split test "
        "--workers {threads} > {log} 2>&1"


rule predict_test:
    input:
        model=f"{MODELS}/{{dataset}}/{{variant}}/s{{seed}}/model.pt",
        test=f"{PROCESSED}/{{dataset}}/test.h5",
    output:
        f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/test_predictions.h5",
    log:
        f"{LOGS}/predict_test/{{dataset}}/{{variant}}/s{{seed}}.log",
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
        "hgbench predict --params {params.profile:q} --checkpoint {input.model} --data {input.test} "
        "--out {output} > {log} 2>&1"


rule export_mpii:
    input:
        predictions=f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/test_predictions.h5",
        manifest=f"{RAW}/{{dataset}}/MANIFEST.json",
    output:
        f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/pred_keypoints_mpii.mat",
    log:
        f"{LOGS}/export_mpii/{{dataset}}/{{variant}}/s{{seed}}.log",
    localrule: True
    conda:
        "../envs/hgbench.yaml"
    shell:
        "hgbench export-mpii --predictions {input.predictions} "
        f"--annotations {RAW}/{{wildcards.dataset}}/{MPII_RELEASE} --split test --out {{output}} > {{log}} 2>&1"
