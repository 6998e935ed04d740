"""The floor plan of docs/architecture.md, checked: every module of src/hgbench has a layer, imports
point down (or sideways) only, and there is no import circle. Module-level and function-level
imports both count (a lazy import is still a dependency)."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

LAYERS = {
    # 0. Building blocks: no hgbench import at all (the package root imports lazily).
    0: (
        "hgbench",
        "hgbench.config",
        "hgbench.joints",
        "hgbench.iofiles",
        "hgbench.machine",
        "hgbench.precision",
        "hgbench.heatmaps",
        "hgbench.model",
        "hgbench.stats",
        "hgbench.gpus",
        "hgbench.timestamps",
        "hgbench.draw",
        "hgbench.distributed",
        "hgbench.data",
        "hgbench.data.download",
        "hgbench.report.provenance",
    ),
    # 1. Facts and file formats: the dataset kinds, the metric, the split schema, the dataset parsers, checkpoints.
    1: (
        "hgbench.kinds",
        "hgbench.metrics",
        "hgbench.data.schema",
        "hgbench.data.mpii",
        "hgbench.data.flic",
        "hgbench.data.dataset",
        "hgbench.checkpoint",
        "hgbench.describe",
        "hgbench.claims",
    ),
    # 2. What the data stages write and the run layout (predictions.h5, metrics.json).
    2: ("hgbench.runs", "hgbench.data.synthetic", "hgbench.data.mpii_gt", "hgbench.data.prepare", "hgbench.data.fetch"),
    # 3. Compute: the training recipe, its memory estimate and the one inference loop.
    3: ("hgbench.recipe", "hgbench.memory", "hgbench.inference"),
    # 4. Stages: one module per command.
    4: (
        "hgbench.train",
        "hgbench.predict",
        "hgbench.evaluate",
        "hgbench.bench",
        "hgbench.infer",
        "hgbench.export",
        "hgbench.submission",
        "hgbench.costs",
        "hgbench.gallery",
        "hgbench.summarize",
    ),
    # 5. The report (reads the summary stage's files).
    5: ("hgbench.report", "hgbench.report.build", "hgbench.report.figures", "hgbench.report.landing"),
    # 6. The one door.
    6: ("hgbench.cli", "hgbench.__main__"),
}
LAYER_OF = {m: layer for layer, mods in LAYERS.items() for m in mods}


def modules() -> dict[str, Path]:
    out = {}
    for path in (SRC / "hgbench").rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """hgbench modules ``name`` imports anywhere in its file."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = (
                ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
                if node.level
                else node.module or ""
            )
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found.update(t for t in targets if t in known and t != name)
    return found


GRAPH = {name: imports(name, path, set(modules())) for name, path in modules().items()}


def test_every_module_has_a_layer():
    assert sorted(set(GRAPH) - set(LAYER_OF)) == [], "give each new module a layer here and in docs/architecture.md"
    assert sorted(set(LAYER_OF) - set(GRAPH)) == [], "a module in LAYERS no longer exists"


def test_imports_point_down():
    upward = sorted(
        f"{m} (layer {LAYER_OF[m]}) imports {d} (layer {LAYER_OF[d]})"
        for m, deps in GRAPH.items()
        for d in deps
        if LAYER_OF[d] > LAYER_OF[m]
    )
    assert upward == []


def test_no_import_circle():
    state: dict[str, int] = {}

    def visit(m: str, trail: list[str]) -> None:
        state[m] = 1
        for d in sorted(GRAPH[m]):
            assert state.get(d) != 1, "import circle: " + " -> ".join([*trail, m, d])
            if d not in state:
                visit(d, [*trail, m])
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m, [])


def test_stages_do_not_import_each_other_where_the_plan_says_not():
    assert "hgbench.train" not in GRAPH["hgbench.predict"] | GRAPH["hgbench.bench"] | GRAPH["hgbench.infer"]
    users_of_train = sorted(m for m, deps in GRAPH.items() if "hgbench.train" in deps)
    assert users_of_train == ["hgbench.cli"]  # the run is a stage, not a library
    assert not {"hgbench.predict", "hgbench.inference", "hgbench.recipe"} & GRAPH["hgbench.gallery"]  # reads files only
