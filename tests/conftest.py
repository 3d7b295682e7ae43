from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from autoinvoice.connectors.http import clear_limiters

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (CI has it); tests that need it skip cleanly without it."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared is absent ({SHARED}): vendor specs and examples not available")
    return SHARED


@pytest.fixture(autouse=True)
def _no_limiter_state_between_tests() -> Iterator[None]:
    """Rate limiters and in-flight caps are process-wide: none outlives the test that made it."""
    clear_limiters()
    yield
    clear_limiters()


@pytest.fixture(scope="session", autouse=True)
def _compiled_rules_in_a_session_cache(tmp_path_factory: pytest.TempPathFactory
                                       ) -> Iterator[None]:
    """Rules compiled from Schematron go to a cache of this test session, not the user's;
    an explicit ``AUTOINVOICE_RULES_CACHE`` (a warm cache) is kept."""
    from autoinvoice.documents.schematron import CACHE_ENV

    if os.environ.get(CACHE_ENV):
        yield
        return
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("rules-cache"))
    yield
    del os.environ[CACHE_ENV]
