"""Every module the package imports at run time comes with Python or a declared dependency."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
from pathlib import Path

import hiveon_async

PACKAGE = Path(hiveon_async.__file__).parent
#: Imported only inside pytest, which loads the plugin (``testing/_plugin.py``) itself.
PROVIDED_BY_THE_HOST = {"pytest"}


def imported_top_levels() -> dict[str, set[str]]:
    """Top-level names of every absolute import in the package, with the files importing them."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(path.name)
    return found


def declared_distributions() -> set[str]:
    """Distributions named in the package's requirements, extras included."""
    requirements = importlib.metadata.requires("hiveon-async") or []
    names = {re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0] for requirement in requirements}
    return {name.lower().replace("_", "-") for name in names}


def test_every_import_is_the_standard_librarys_or_declared() -> None:
    """A module we import that no requirement brings would fail on a clean install."""
    distributions = importlib.metadata.packages_distributions()
    declared = declared_distributions()
    undeclared = {}
    for module, files in imported_top_levels().items():
        if module in sys.stdlib_module_names or module in {"hiveon_async", "__future__"}:
            continue
        if module in PROVIDED_BY_THE_HOST:
            continue
        owners = {name.lower().replace("_", "-") for name in distributions.get(module, [])}
        if not owners & declared:
            undeclared[module] = sorted(files)

    assert undeclared == {}


def test_the_check_sees_the_imports_that_matter() -> None:
    """The scan finds the transports' libraries, so the test above can fail."""
    found = imported_top_levels()

    assert {"httpx", "httpcore", "h11", "anyio", "attrs", "aiohttp", "click"} <= set(found)
