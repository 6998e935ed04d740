# Tables, the claims table, costs and the gallery: everything the report reads (it regenerates
# from results/ alone). Light: on a cluster it runs where Snakemake runs, not as a job. The tables
# are in `snakemake --report` (summary_outputs(), common.smk). It reads files only: no model.
rule summarize:
    input:
        metrics=lambda w: runs_of(w.dataset, RESULTS, "metrics.json"),
        logs=lambda w: runs_of(w.dataset, MODELS, "log.csv"),
        # the gallery crops people out of the split the predictions were made on
        predictions=lambda w: runs_of(w.dataset, RESULTS, "predictions.h5"),
        valid=f"{PROCESSED}/{{dataset}}/valid.h5",
        # ...and shows every model's predictions of the real MPII photographs (prepare_samples)
        samples_predictions=lambda w: runs_of(
            w.dataset, RESULTS, "samples_predictions.h5"
        ),
        samples=f"{PROCESSED}/{{dataset}}/samples.h5",
    output:
        summary_outputs(),
    log:
        f"{LOGS}/summarize/{{dataset}}.log",
    localrule: True
    conda:
        "../envs/hgbench.yaml"
    params:
        profile=PARAMS_FILE,
        section=section("experiments", "variants"),
    shell:
        f"hgbench summarize --params {{params.profile:q}} --dataset {{wildcards.dataset}} --results {RESULTS} "
        f"--models {MODELS} --out {RESULTS}/summary/{{wildcards.dataset}} --data {PROCESSED}/{{wildcards.dataset}} "
        f"--benchmarks {BENCHMARKS} > {{log}} 2>&1"
