"""JSON encoding of record batches, shared by the destinations that send JSON."""

from __future__ import annotations

import json
from typing import Any


def to_json_bytes(value: Any) -> bytes:
    """Encode as compact UTF-8 JSON. Lone surrogates from undecodable input become U+FFFD."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return text.encode("utf-8", "replace")


def to_ndjson_bytes(records: list[Any]) -> bytes:
    return b"".join(to_json_bytes(record) + b"\n" for record in records)
