"""Imports point inward: the domain uses only the standard library; connectors never reach
into the store or the pipeline."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "autoinvoice"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((SRC / "domain").glob("*.py")), ids=lambda p: p.name)
def test_domain_imports_only_the_standard_library_and_itself(path):
    for name in _imports(path):
        top = name.split(".")[0]
        assert top in sys.stdlib_module_names or name.startswith("autoinvoice.domain"), name


@pytest.mark.parametrize("path", sorted((SRC / "connectors").glob("*.py")), ids=lambda p: p.name)
def test_connectors_know_nothing_of_store_pipeline_or_api(path):
    for name in _imports(path):
        assert not name.startswith(("autoinvoice.store", "autoinvoice.pipeline",
                                    "autoinvoice.api", "sqlalchemy")), name


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_only_the_pipeline_and_preview_build_connectors(path):
    allowed = {"bootstrap.py", "preview.py", "registry.py"}
    if path.name in allowed:
        return
    assert "autoinvoice.connectors.registry" not in _imports(path)
