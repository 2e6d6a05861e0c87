from __future__ import annotations

from pathlib import Path

import pytest
from planting import MonolithCopy, copy_monolith


@pytest.fixture
def monolith_copy(tmp_path: Path) -> MonolithCopy:
    """The reference monolith, copied under tmp_path with its manifest."""
    return copy_monolith(tmp_path)
