from __future__ import annotations

# the real registry and a Debian image, for the CLI's image options
from tests.images.conftest import debian_python_image, registry  # noqa: F401
