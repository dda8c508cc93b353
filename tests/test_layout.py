"""The package's shape: no two files of src/iid import each other (directly or round a longer loop), and
no module is over 400 lines. Imports are read from the source (ast), so an import inside a function
counts the same as one at the top: a lazy import hides a cycle from Python, not from a reader."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "iid"
MAX_LINES = 400


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _file_of(name: str, src: Path) -> Path | None:
    """The file that defines module `name` (a package's __init__.py), or None when it is not under src."""
    base = src.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(path: Path, src: Path) -> set[str]:
    """The module names `path` imports: `import a.b`, `from a import b` (b when it is a module, else a),
    relative imports resolved against the file's package."""
    here = _module_name(path, src)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                names.add(sub if _file_of(sub, src) else module)
    return names


def import_graph(package: Path = PACKAGE, src: Path = SRC) -> dict[Path, set[Path]]:
    """file -> the files under src it imports (itself excluded)."""
    graph = {}
    for path in sorted(package.rglob("*.py")):
        targets = {_file_of(n, src) for n in _imported_names(path, src)}
        graph[path] = {t for t in targets if t is not None and t != path}
    return graph


def find_cycles(graph: dict[Path, set[Path]]) -> list[list[Path]]:
    """The loops of each strongly connected component of more than one file (Tarjan): for every file of
    the component, a shortest loop through it, as a path a -> ... -> a (rotations of one loop counted once)."""
    index: dict[Path, int] = {}
    low: dict[Path, int] = {}
    stack: list[Path] = []
    on_stack: set[Path] = set()
    components: list[set[Path]] = []

    def visit(v: Path) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    loops: list[list[Path]] = []
    for component in components:
        seen: set[frozenset[Path]] = set()
        for start in sorted(component):
            loop = _loop_within(start, component, graph)
            if frozenset(zip(loop, loop[1:])) not in seen:
                seen.add(frozenset(zip(loop, loop[1:])))
                loops.append(loop)
    return loops


def _loop_within(start: Path, component: set[Path], graph: dict[Path, set[Path]]) -> list[Path]:
    """A shortest loop through `start`, staying inside its component (breadth-first)."""
    parents: dict[Path, Path] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & component):
                if w == start:
                    loop = [v]
                    while loop[-1] != start:
                        loop.append(parents[loop[-1]])
                    return [start, *reversed(loop[:-1]), start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError("a strongly connected component always holds a loop")


def _show(loop: list[Path]) -> str:
    return " -> ".join(str(p.relative_to(SRC)) for p in loop)


def test_the_cycle_finder_sees_a_lazy_import_loop(tmp_path):
    # a loop closed by an import inside a function counts; a one-way import does not
    pkg = tmp_path / "iid_fake"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from iid_fake.b import f\n")
    (pkg / "b.py").write_text("def f():\n    from . import a\n    return a\n")
    (pkg / "c.py").write_text("import iid_fake.a\n")
    loops = find_cycles(import_graph(pkg, tmp_path))
    assert [[p.name for p in loop] for loop in loops] == [["a.py", "b.py", "a.py"]]


def test_no_import_cycle_between_files():
    loops = find_cycles(import_graph())
    assert not loops, "import cycles in src/iid:\n" + "\n".join(_show(loop) for loop in loops)


def test_no_module_over_400_lines():
    long = {str(p.relative_to(SRC)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
