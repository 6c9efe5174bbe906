"""Canonical JSON: the one encoding everything that is hashed or signed goes through (request
bodies, DIDs, DDO checksums, runtime checksums, receipts), so that two parties hashing the
same data always get the same bytes."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(data: Any) -> str:
    """Sorted keys, no spaces."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def canonical_sha256(data: Any) -> str:
    """Hex sha256 of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(data).encode()).hexdigest()
