"""Streamed answers: a body sent in chunks as it is read (logs, result files)."""

from __future__ import annotations

from collections.abc import AsyncIterator


async def primed(stream: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Read the first chunk now, so that an error surfaces as a status code rather than as a
    stream cut after a 200."""
    first = await anext(stream, None)

    async def rest() -> AsyncIterator[bytes]:
        if first is not None:
            yield first
        async for chunk in stream:
            yield chunk

    return rest()
