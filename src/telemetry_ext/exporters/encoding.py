"""JSON encoding of record batches, shared by the destinations that send JSON."""

from __future__ import annotations

import json
import re
from typing import Any

_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def to_json_bytes(value: Any) -> bytes:
    """Encode as compact UTF-8 JSON. Lone surrogates from undecodable input become U+FFFD."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # The "replace" error handler of str.encode writes "?", not U+FFFD.
        return _SURROGATE_RE.sub("\ufffd", text).encode("utf-8")


def to_ndjson_bytes(records: list[Any]) -> bytes:
    return b"".join(to_json_bytes(record) + b"\n" for record in records)
