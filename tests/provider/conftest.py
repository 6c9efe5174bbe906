from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import Running, running_provider


@pytest.fixture
def provider(tmp_path: Path) -> Iterator[Running]:
    with running_provider(tmp_path / "home") as running:
        yield running


# the real registry and the Debian test image, for the provider's image checks
from tests.images.conftest import (  # noqa: E402, F401
    debian_image,
    debian_python_image,
    pandas_image,
    registry,
)
