# Thin shim so that `snakemake` works from the repository root; the rules live in workflow/.
# The default target is declared here because Snakemake does not carry a default target out of
# an included file.
include: "workflow/Snakefile"


rule all:
    default_target: True
    input:
        f"reports/{PROFILE}/index.html",
