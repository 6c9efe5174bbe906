"""``Content-Disposition`` for a file whose name a job chose: any Unicode, control characters,
quotes, hundreds of characters. RFC 6266: ``filename*`` carries the name percent-encoded as
UTF-8 (RFC 8187), ``filename`` an ASCII stand-in for clients that know no better. The header
is then pure ASCII whatever the name, so it can always be sent."""

from __future__ import annotations

from pathlib import PurePosixPath
from urllib.parse import quote

#: a name in a header has no use for more (file systems stop at 255 bytes); the client's
#: header reader may refuse a much longer line
MAX_NAME = 200


def attachment(filename: str) -> str:
    # the base name only: a client saves a download where it chooses, never in a subfolder
    name = PurePosixPath(filename).name or "result"
    name = name[:MAX_NAME]
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\%' else "_" for c in name)
    encoded = quote(name, safe="", errors="replace")
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
