SUMMARY_TABLES = ["per_joint.csv", "curves.csv", "ablations.csv", "training.csv", "variants.csv", "seeds.csv",
                  "paired.csv"]


rule summarize:
    input:
        metrics=lambda w: runs_of(w.dataset, "results", "metrics.json"),
        logs=lambda w: runs_of(w.dataset, "models", "log.csv"),
    output:
        expand("results/summary/{{dataset}}/{table}", table=SUMMARY_TABLES),
    params:
        profile=PARAMS_FILE,
        section=section("experiments", "variants"),
    conda:
        "../envs/hgbench.yaml"
    log:
        "logs/summarize/{dataset}.log",
    shell:
        "hgbench summarize --params {params.profile} --dataset {wildcards.dataset} --results results "
        "--models models --out results/summary/{wildcards.dataset} > {log} 2>&1"
