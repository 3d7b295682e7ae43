from __future__ import annotations

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
