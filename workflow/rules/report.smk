# reports/<profile>/index.html is this profile's report; `hgbench report` also rewrites the
# landing page reports/index.html, which links every profile's report found in reports/ (it
# describes what is on disk, so it is no output of any one profile). Both the page and each of
# its figures (<dataset>_<figure>.png) go into `snakemake --report`. Light: on a cluster it runs
# where Snakemake runs, not as a job.
rule report:
    input:
        expand(
            f"{RESULTS}/summary/{{dataset}}/{{table}}",
            dataset=DATASETS,
            table=SUMMARY_FILES,
        ),
    output:
        html=report(
            f"{REPORTS}/index.html",
            caption="../report/page.rst",
            category="hgbench report",
            labels={"profile": PROFILE, "file": "index.html"},
        ),
        figures=report(
            directory(f"{REPORTS}/figures"),
            patterns=figure_patterns(),
            caption="../report/figure.rst",
            category="{dataset}",
            subcategory="Figures",
            labels=lambda wildcards: {"figure": FIGURES[wildcards.figure]},
        ),
        # per-joint tables as CSV and LaTeX, for papers (linked from the page)
        tables=directory(f"{REPORTS}/tables"),
    log:
        f"{LOGS}/report.log",
    localrule: True
    conda:
        "../envs/hgbench.yaml"
    params:
        profile=PARAMS_FILE,
    shell:
        f"hgbench report --params {{params.profile:q}} --results {RESULTS} --out {{output.html}} "
        "--index reports/index.html > {log} 2>&1"
