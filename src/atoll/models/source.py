"""What a publisher gives, beside a URL or S3 location, to open it: HTTP headers (a token,
say) or S3 keys. The provider keeps them with the location, private: never in a DDO, a
status, a log, an error or a job."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}")
#: headers the fetch sets itself: a publisher's would change what is fetched or how
_RESERVED = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "accept-encoding",
        "range",
        "te",
        "upgrade",
        "proxy-authorization",
    }
)

#: how a published file names a URL or S3 location instead of a path on the provider
REMOTE_SCHEMES = ("https://", "http://", "s3://")


class SourceAccess(BaseModel):
    """Headers sent with a publisher's URL sources, and keys for its S3 sources (none: the
    provider's own credentials, on buckets its operator allows)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    headers: dict[str, str] = Field(default_factory=dict, max_length=32)
    accessKeyId: str = Field(default="", max_length=256)
    secretAccessKey: str = Field(default="", max_length=256, repr=False)
    sessionToken: str = Field(default="", max_length=4096, repr=False)

    @field_validator("headers")
    @classmethod
    def _plain_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            if not _NAME.fullmatch(name) or name.lower() in _RESERVED:
                raise ValueError("a source header name is not one a publisher may set")
            if len(value) > 8192 or any(c in value for c in "\r\n\0"):
                raise ValueError("a source header value must be one line of at most 8192")
        return headers
