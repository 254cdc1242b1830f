"""The package's arrows point one way: data -> model -> fit -> forecast -> report, with a thin CLI.

Every ``regimecast`` module has a layer; a module may import (at module level or inside a function)
only modules of its own layer or below.  The layer map is the architecture paragraph of the README.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "regimecast"

#: (module prefix, layer), longest prefix wins.  Lower layers never import higher ones.
LAYERS: tuple[tuple[str, int], ...] = (
    ("regimecast", 0),  # the package root: __version__ and public names
    ("regimecast.errors", 0),
    ("regimecast.io", 0),
    ("regimecast.config", 0),
    ("regimecast.schema", 0),
    ("regimecast.data.columns", 0),
    ("regimecast.data", 1),
    ("regimecast.hmm", 2),
    ("regimecast.fit", 3),
    ("regimecast.models", 4),
    ("regimecast.results", 5),
    ("regimecast.runs", 6),
    ("regimecast.forecast", 6),
    ("regimecast.events", 6),
    ("regimecast.plots", 7),
    ("regimecast.report", 8),
    ("regimecast.news", 5),
    ("regimecast.reweight", 5),
    ("regimecast.attribution", 6),
    ("regimecast.changes", 7),
    ("regimecast.workflow", 9),
    ("regimecast.update", 9),
    ("regimecast.backtest.scoring", 1),
    ("regimecast.backtest.chronology", 1),
    ("regimecast.backtest.baselines", 1),
    ("regimecast.backtest.results", 1),
    ("regimecast.backtest", 10),
    ("regimecast.cli", 11),
)


def layer(module: str) -> int:
    """The layer of ``module``: its longest listed prefix (the package root counts only for itself)."""
    found = [p for p, _ in LAYERS if module == p or (p != "regimecast" and module.startswith(p + "."))]
    assert found, f"{module} has no layer: add it to LAYERS (and to the README's architecture table)"
    return dict(LAYERS)[max(found, key=len)]


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("regimecast"):
            for alias in node.names:  # `from regimecast.models import backend` names a submodule
                sub = f"{node.module}.{alias.name}"
                out.add(sub if (SRC.parent / Path(*sub.split("."))).with_suffix(".py").exists() else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("regimecast")}
    return out


def test_every_module_has_a_layer():
    for path in SRC.rglob("*.py"):
        assert layer(module_name(path)) >= 0


def test_no_module_imports_upward():
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        mod = module_name(path)
        for dep in imports(path):
            if dep != "regimecast" and layer(dep) > layer(mod):
                upward.append(f"{mod} (layer {layer(mod)}) imports {dep} (layer {layer(dep)})")
    assert not upward, "\n".join(upward)


def test_the_layer_check_catches_an_upward_import(tmp_path, monkeypatch):
    """The check itself can fail: a data module importing the forecast is flagged."""
    fake = SRC / "data" / "panel.py"
    text = fake.read_text() + "\nfrom regimecast.forecast import forecast  # planted\n"
    planted = tmp_path / "panel.py"
    planted.write_text(text)
    deps = imports(planted)
    assert "regimecast.forecast" in deps
    assert layer("regimecast.forecast") > layer("regimecast.data.panel")


def test_no_function_in_src_reaches_80_lines():
    long = []
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                n = node.end_lineno - node.lineno + 1
                if n >= 80:
                    long.append(f"{module_name(path)}.{node.name}: {n} lines")
    assert not long, "\n".join(long)
