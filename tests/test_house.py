"""The structure of the code, held by tests (DESIGN.md, "Layers"): the import graph has no circle and no
upward import, the library and its services never import Gradio, nothing compares a family's name
outside the adapters, and nothing writes the process's environment."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*ROOT.glob("vitviz/**/*.py"), *ROOT.glob("ui/*.py"), ROOT / "app.py"])

# Layers, bottom first: a module may import its own layer and the ones below, never one above.
LAYERS = (
    ("core", ("vitviz/core/",)),
    ("families", ("vitviz/families/",)),
    ("models, methods, evidence, pictures", ("vitviz/",)),          # the rest of the library
    ("services", ("vitviz/service/",)),
    ("views", ("ui/",)),
    ("app", ("app.py",)),
)
ENTRY_POINTS = {"vitviz/__main__.py", "vitviz/evaluate.py"}     # command lines: above the library, below nothing


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in SOURCES}


def resolve(importer: str, is_package: bool, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The project modules an import statement loads (a package's __init__ for `from pkg import name`
    unless name is a module of the package)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name in MODULES or a.name.split(".")[0] in ("vitviz", "ui", "app")]
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    if node.level:
        base = base[:len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    out = []
    for alias in node.names:
        full = f"{target}.{alias.name}" if target else alias.name
        out.append(full if full in MODULES else target)
    return [m for m in out if m in MODULES]


def graph() -> dict[str, set[str]]:
    edges = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                found.update(resolve(name, path.name == "__init__.py", node))
        found.discard(name)
        edges[name] = found
    return edges


def layer_of(name: str) -> int:
    rel = str(MODULES[name].relative_to(ROOT))
    if rel in ENTRY_POINTS:
        return len(LAYERS) - 2                      # beside the views: may use the whole library
    best = None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if rel.startswith(prefix) and (best is None or len(prefix) > best[1]):
                best = (i, len(prefix))
    assert best is not None, rel
    return best[0]


def find_circle(edges: dict[str, set[str]]) -> list[str]:
    """One import circle as a path (first module repeated at the end), or [] when there is none."""
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, stack + [nxt])
                if found:
                    return found
        state[node] = 2
        return []

    for node in sorted(edges):
        if node not in state:
            found = visit(node, [node])
            if found:
                return found
    return []


def upward(edges: dict[str, set[str]]) -> list[str]:
    return [f"{a} ({LAYERS[layer_of(a)][0]}) imports {b} ({LAYERS[layer_of(b)][0]})"
            for a, targets in edges.items() for b in targets if layer_of(b) > layer_of(a)]


def test_the_import_graph_has_no_circle():
    assert find_circle(graph()) == []


def test_no_module_imports_a_layer_above_its_own():
    assert upward(graph()) == []


def test_the_import_checks_see_a_circle_and_an_upward_import():
    """The checks can fail: a core module that imported the services would be caught by both."""
    edges = graph()
    edges["vitviz.core.cache"] = edges["vitviz.core.cache"] | {"vitviz.service.context"}
    assert "vitviz.core.cache" in find_circle(edges)
    assert upward(edges) == ["vitviz.core.cache (core) imports vitviz.service.context (services)"]


def sources_under(*prefixes: str) -> list[Path]:
    return [p for p in SOURCES if str(p.relative_to(ROOT)).startswith(prefixes)]


def test_the_library_and_its_services_never_import_gradio():
    found = [str(p.relative_to(ROOT)) for p in sources_under("vitviz/")
             if re.search(r"^\s*(import gradio|from gradio)", p.read_text(), re.M)]
    assert found == []


def test_no_family_name_is_compared_outside_the_adapters():
    """Model facts are asked of the loaded model (its facts, its adapter), never of its family's name."""
    pattern = re.compile(r"\.family\s*(==|!=|\bin\b|\bnot in\b)|\bfamily\s+(==|!=)\s*[\"']")
    outside = [p for p in SOURCES if not str(p.relative_to(ROOT)).startswith("vitviz/families/")]
    found = [f"{p.relative_to(ROOT)}:{i}" for p in outside
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert found == []


WRITES = re.compile(r"os\.environ\[[^\]]+\]\s*=|os\.environ\.(update|pop|clear)\(|os\.putenv\(|"
                    r"os\.environ\.setdefault\((?![\"']OMP_)")


@pytest.mark.parametrize("text,writes", [('os.environ["VITVIZ_X"] = "1"', True), ("os.environ.update(a=1)", True),
                                         ('os.environ.setdefault("VITVIZ_COMPILE", "0")', True),
                                         ('os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")', False),
                                         ('os.environ.get("X")', False)])
def test_the_environment_check_tells_a_write_from_a_read(text, writes):
    assert bool(WRITES.search(text)) is writes


def test_nothing_outside_the_tests_writes_the_environment():
    """Settings are parsed once (vitviz.core.settings) and carried; the one write left is OpenMP's own
    setting, made before torch loads (app.py)."""
    others = [*ROOT.glob("benchmarks/*.py"), *ROOT.glob("scripts/*.py")]
    found = [f"{p.relative_to(ROOT)}:{i}" for p in [*SOURCES, *others]
             for i, line in enumerate(p.read_text().splitlines(), 1) if WRITES.search(line)]
    assert found == []


def test_only_the_settings_read_vitviz_variables():
    pattern = re.compile(r"(environ|getenv|\benv)(\.get\(|\[|\()\s*[\"'](VITVIZ_|SPACE_ID|SPACES_ZERO_GPU)")
    found = [str(p.relative_to(ROOT)) for p in SOURCES if pattern.search(p.read_text())]
    assert found == ["vitviz/core/settings.py"]
