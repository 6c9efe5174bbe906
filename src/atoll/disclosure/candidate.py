"""A file a job wrote, waiting to be checked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class Candidate:
    """``name`` is the job's own name for the file (checked for echoed identifiers too);
    ``index`` is how the consumer refers to it."""

    index: int
    kind: Literal["output", "log"]
    name: str
    path: Path
