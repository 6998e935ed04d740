# Light (seconds to minutes on a CPU): on a cluster it runs where Snakemake runs, not as a job.
rule evaluate:
    input:
        predictions=f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/predictions.h5",
        valid=f"{PROCESSED}/{{dataset}}/valid.h5",
    output:
        # metrics.json: everything (per joint, per person, curves, CIs); the headline file: the
        # dozen numbers DVC shows per run (`dvc exp show`, `dvc metrics diff`), tracked by git.
        metrics=f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/metrics.json",
        headline=report(
            f"{METRICS}/{{dataset}}/{{variant}}/s{{seed}}.json",
            caption="../report/headline.rst",
            category="{dataset}",
            subcategory="Runs",
            labels={
                "variant": "{variant}",
                "seed": "{seed}",
                "file": "headline numbers",
            },
        ),
        curve=report(
            f"{RESULTS}/{{dataset}}/{{variant}}/s{{seed}}/pck_curve.csv",
            caption="../report/pck_curve.rst",
            category="{dataset}",
            subcategory="Runs",
            labels={"variant": "{variant}", "seed": "{seed}", "file": "PCK curve"},
        ),
    log:
        f"{LOGS}/evaluate/{{dataset}}/{{variant}}/s{{seed}}.log",
    localrule: True
    conda:
        "../envs/hgbench.yaml"
    params:
        protocol=PARAMS["evaluate"]["protocol"],
    shell:
        "hgbench evaluate --ground-truth {input.valid} --predictions {input.predictions} "
        "--protocol {params.protocol} --out {output.metrics} --headline {output.headline} "
        "--curve {output.curve} > {log} 2>&1"
