from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """../shared beside the checkout (CI has it); tests that need it skip cleanly without it."""
    if not SHARED.is_dir():
        pytest.skip(f"../shared is absent ({SHARED}): vendor specs and examples not available")
    return SHARED
