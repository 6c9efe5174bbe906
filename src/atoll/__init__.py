"""Atoll: Compute-to-Data."""

from importlib.metadata import PackageNotFoundError, version

try:
    # the version is written once, in pyproject.toml; installing records it in the metadata
    __version__ = version("atoll")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
