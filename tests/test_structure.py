"""The shape of the code, checked: short functions, typed dependencies, a repo that stands alone.

The layer contracts (web -> actors -> protocol, applications independent of each other) are
checked by ``lint-imports`` in ``make test``; these are the rules it cannot express.
"""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAX_FUNCTION_LINES = 80


def _sources(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((REPO / folder).rglob("*.py"))


def _functions(tree: ast.AST) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def test_no_function_in_web_or_actors_is_longer_than_80_lines() -> None:
    long = []
    for path in _sources("web", "actors"):
        for fn in _functions(ast.parse(path.read_text())):
            assert fn.end_lineno is not None
            lines = fn.end_lineno - fn.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                long.append(f"{path.relative_to(REPO)}:{fn.lineno} {fn.name} ({lines} lines)")
    assert not long, "functions over 80 lines:\n" + "\n".join(long)


def test_the_runtime_and_application_dependencies_are_typed() -> None:
    """No ``runtime: Any`` (or untyped runtime) anywhere, and no application patches the
    runtime or looks a neighbour up by name."""
    found = []
    for path in _sources("web", "actors"):
        text = path.read_text()
        for fn in _functions(ast.parse(text)):
            for arg in [*fn.args.args, *fn.args.kwonlyargs]:
                if arg.arg != "runtime":
                    continue
                if arg.annotation is None or ast.unparse(arg.annotation) in ("Any", "object"):
                    found.append(f"{path.relative_to(REPO)}:{fn.lineno} {fn.name}({arg.arg})")
        for match in re.finditer(r"runtime\.\w+ = |getattr\(runtime", text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{path.relative_to(REPO)}:{line} {match.group(0)}")
    assert not found, "untyped or patched runtime:\n" + "\n".join(found)


def test_the_repo_stands_alone() -> None:
    """No code or doc points outside the repo or at an issue number."""
    tracked = subprocess.run(
        ["git", "ls-files", "*.py", "*.md", "*.toml", "*.js", "*.json", "Makefile"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    places = ("../" + "shared/", "shared" + "/seeds", "/wo" + "rk/")  # split: not a hit itself
    outside = "|".join(re.escape(place) for place in places)
    pattern = re.compile(outside + "|[Ii]ss" + "ue [0-9]+")
    hits = []
    for name in tracked:
        if "node_modules" in name or name.endswith("package-lock.json"):
            continue
        path = REPO / name
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{name}:{number}: {line.strip()[:100]}")
    assert not hits, "references outside the repo:\n" + "\n".join(hits)
