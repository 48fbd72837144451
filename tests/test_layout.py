"""The package's layout holds: each part imports only what docs/architecture.md says it may, and
edge_model has no import cycle. Imports inside functions count too (they are read from the source)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "daemon" / "moodcast"
TOP = "top level"
# what each part may import besides itself and the top level (config, topics, labels, util, ...)
ALLOWED = {
    TOP: set(),
    "vision": set(),
    "mqtt": set(),
    "recommend": {"mqtt"},  # the contract's events and times it publishes
    "service": {"vision", "mqtt", "recommend"},
    "cli": {"vision", "mqtt", "recommend", "service"},
}
# config reads the recommender's shipped music and link parsing: two modules that import nothing
CONFIG_READS = {"moodcast.recommend.defaults", "moodcast.recommend.spotify_links"}


def module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join([package, *parts[:-1]] if parts[-1] == "__init__" else [package, *parts])


def imports(path: Path, name: str, modules: set[str]) -> set[str]:
    """The modules of `modules` that `path` imports: `from a import b` is a.b when that is a module
    (its package's __init__ is not counted then), else a."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")[: len(name.split(".")) - node.level + is_package]
                base = ".".join(anchor + ([base] if base else []))
            found.update(f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names)
    return {m for m in found if m in modules and m != name}


def graph(root: Path, package: str) -> dict[str, set[str]]:
    paths = {module_name(p, root, package): p for p in root.rglob("*.py")}
    return {name: imports(path, name, set(paths)) for name, path in paths.items()}


def part(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and (PACKAGE / parts[1]).is_dir()) else TOP


def test_each_part_imports_only_downwards():
    wrong = []
    for module, targets in graph(PACKAGE, "moodcast").items():
        for target in targets:
            if part(target) in (part(module), TOP) or part(target) in ALLOWED[part(module)]:
                continue
            if module == "moodcast.config" and target in CONFIG_READS:
                continue
            wrong.append(f"{module} -> {target}")
    assert not wrong, wrong


def test_what_config_reads_from_recommend_imports_nothing_of_moodcast():
    modules = graph(PACKAGE, "moodcast")
    assert all(not modules[name] for name in CONFIG_READS), {name: modules[name] for name in CONFIG_READS}


def test_edge_model_has_no_import_cycle():
    modules = graph(ROOT / "edge_model", "edge_model")
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, " -> ".join(path[path.index(module):] + [module])
        if module not in done:
            for target in sorted(modules[module]):
                visit(target, path + [module])
            done.add(module)

    for module in sorted(modules):
        visit(module, [])
