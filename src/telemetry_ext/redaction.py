"""Replace secrets in log records with ``[REDACTED]`` before they leave the sandbox.

Built-in rules redact:

* AWS access key ids (``AKIA`` or ``ASIA`` and 16 more upper-case letters or digits);
* values of keys named like password, passwd, secret, credentials, private key, api key,
  authorization or ending in token (``access_token``, ``sessionToken``, ``x-amz-security-token``):
  in structured fields by dict key, and in text as ``key=value``, ``key: value``,
  ``"key": "value"`` or ``'key': 'value'``;
* bearer tokens (``Bearer <token>``) and PEM private key blocks.

Keys are compared case-insensitively and without ``-``, ``_``, ``.`` or spaces. A key word
without ``=`` or ``:`` and a value after it, as in "the token expired", is left alone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

REDACTED = "[REDACTED]"

_SENSITIVE_KEY_PARTS = ("password", "passwd", "secret", "credential", "privatekey", "apikey", "authorization")
_KEY_SEPARATORS = str.maketrans("", "", "-_. ")
# Nested fields deeper than this are not redacted.
_MAX_DEPTH = 64
_MAX_CACHED_KEYS = 4096

# The built-in pattern runs on the lower-cased text, so its literals are lower case. Every
# alternative starts with a literal character, so the re module skips in C every position whose
# character cannot start a match. A case-insensitive pattern would be tried at every position.
# _secret_span then checks each match against the original text.
_SEPARATOR = r"(?:\\?[\"'])?[ \t]*[:=][ \t]*"
_BARE_VALUE_CHAR = r"[^\s\"'\\,;&<>(){}\[\]]"
_VALUE = (
    r"(?:"
    r"\\\"([^\"\\\r\n]+)\\\""  # \"value\" inside a JSON-encoded string
    r"|\"([^\"\\\r\n]*(?:\\.[^\"\\\r\n]*)*)\""  # "value"
    r"|'([^'\r\n]+)'"  # 'value'
    r"|(?:(?:bearer|basic|digest|negotiate|token)[ \t]+)?"  # bare value, after an auth scheme
    rf"((?!(?:null|none|true|false)(?!{_BARE_VALUE_CHAR})){_BARE_VALUE_CHAR}+)"
    r")"
)
# A key is the sensitive word and up to 40 more word characters, except that a word ending in
# "token" must end the key, so that max_tokens or token_count are not taken for secrets.
_KEY_WORDS = (
    r"passw(?:or)?d",
    r"secret(?!s?manager)",
    r"credentials?",
    r"private[-_ ]?key",
    r"api[-_ ]?key",
    r"authorization",
)
_BUILTIN_PATTERN_SOURCE = "|".join(
    [
        r"a(?:kia|sia)[a-z0-9]{16}(?![a-z0-9])",  # AWS access key id
        r"-----begin (?:[a-z0-9]+ )*private key-----.*?(?:-----end (?:[a-z0-9]+ )*private key-----|\Z)",
        r"bearer[ \t]+([a-z0-9\-._~+/]{8,}=*)",
        *(word + r"[\w-]{0,40}" + _SEPARATOR + _VALUE for word in _KEY_WORDS),
        r"token" + _SEPARATOR + _VALUE,
    ]
)
_BUILTIN_PATTERN = re.compile(_BUILTIN_PATTERN_SOURCE, re.DOTALL)
_ACCESS_KEY_ID = re.compile(r"(?:AKIA|ASIA)[A-Z0-9]{16}")
_UPPER_CASE_AND_DIGITS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_KEY_CHARACTERS = re.compile(r"[\w-]{0,64}")
_LETTERS_ONLY = re.compile(r"[a-z]+=*", re.IGNORECASE)


class Redactor:
    """Secret redaction for text and log records, with a count of every replacement."""

    def __init__(self, extra_patterns: Sequence[str] = ()) -> None:
        """Compile the built-in rules and ``extra_patterns``, regular expressions whose whole match is redacted.

        Raises ValueError naming the first pattern that does not compile or that matches the empty string.
        """
        if isinstance(extra_patterns, str):
            raise TypeError("extra_patterns must be a sequence of regular expressions, not a single string")
        self.redaction_count = 0
        self._extra_patterns = [_compile_extra_pattern(pattern) for pattern in extra_patterns]
        self._sensitive_keys: dict[str, bool] = {}

    def redact_text(self, text: str) -> str:
        """Return ``text`` with every secret replaced by ``[REDACTED]``, or ``text`` itself when nothing matched."""
        count_before = self.redaction_count
        result = self._redact_builtin(text)
        for pattern in self._extra_patterns:
            result = pattern.sub(self._replace_extra, result)
        return result if self.redaction_count != count_before else text

    def redact_record(self, log_record: dict) -> dict:
        """Redact a log record's ``message`` and ``fields``, recursing into keys and string values.

        A field whose key looks sensitive has its whole value replaced. Returns a new dict when
        anything changed, else ``log_record`` itself. The input is never modified.
        """
        message = log_record.get("message")
        new_message = self.redact_text(message) if isinstance(message, str) else message
        fields = log_record.get("fields")
        new_fields = self._redact_value(fields, 0) if isinstance(fields, dict) else fields
        if new_message is message and new_fields is fields:
            return log_record

        result = dict(log_record)
        result["message"] = new_message
        result["fields"] = new_fields
        return result

    def is_sensitive_key(self, key: str) -> bool:
        """Return whether the value of a field named ``key`` is redacted whole."""
        cached = self._sensitive_keys.get(key)
        if cached is not None:
            return cached
        normalized = key.lower().translate(_KEY_SEPARATORS)
        sensitive = normalized.endswith("token") or any(part in normalized for part in _SENSITIVE_KEY_PARTS)
        if len(self._sensitive_keys) < _MAX_CACHED_KEYS:
            self._sensitive_keys[key] = sensitive
        return sensitive

    def _redact_value(self, value: object, depth: int) -> object:
        if isinstance(value, str):
            return self.redact_text(value)
        # NOTE: values nested deeper than _MAX_DEPTH are returned unredacted.
        if depth >= _MAX_DEPTH:
            return value

        if isinstance(value, dict):
            changed = False
            result = {}
            for key, item in value.items():
                new_key = key
                if isinstance(key, str):
                    new_key = self.redact_text(key)
                if isinstance(key, str) and self.is_sensitive_key(key) and _holds_secret(item):
                    new_item = REDACTED
                    self.redaction_count += 1
                else:
                    new_item = self._redact_value(item, depth + 1)
                if new_key is not key or new_item is not item:
                    changed = True
                result[new_key] = new_item
            return result if changed else value

        if isinstance(value, list):
            items = [self._redact_value(item, depth + 1) for item in value]
            if any(new is not old for new, old in zip(items, value)):
                return items
            return value

        return value

    def _redact_builtin(self, text: str) -> str:
        searched = text.lower()
        pattern = _BUILTIN_PATTERN
        if len(searched) != len(text):
            # Rare characters such as "İ" lower-case to two, so offsets in the lower-cased text
            # would not match. re caches the compiled pattern after the first such text.
            searched = text
            pattern = re.compile(_BUILTIN_PATTERN_SOURCE, re.DOTALL | re.IGNORECASE)

        pieces = []
        position = 0
        for match in pattern.finditer(searched):
            span = _secret_span(match, searched, text)
            if span is None:
                continue
            pieces.append(text[position : span[0]])
            pieces.append(REDACTED)
            position = span[1]
            self.redaction_count += 1
        if not pieces:
            return text
        pieces.append(text[position:])
        return "".join(pieces)

    def _replace_extra(self, match: re.Match) -> str:
        if not match.group(0):
            # An empty match, as from a lookahead, has nothing to redact.
            return ""
        self.redaction_count += 1
        return REDACTED


def _compile_extra_pattern(pattern: str) -> re.Pattern:
    if not isinstance(pattern, str):
        raise ValueError(f"invalid redaction pattern {pattern!r}: expected a string")
    try:
        compiled = re.compile(pattern)
    except re.error as error:
        raise ValueError(f"invalid redaction pattern {pattern!r}: {error}") from error
    if compiled.fullmatch("") is not None:
        raise ValueError(f"invalid redaction pattern {pattern!r}: it matches the empty string")
    return compiled


def _secret_span(match: re.Match, searched: str, text: str) -> tuple[int, int] | None:
    """Return the span of ``text`` to redact for a match of the built-in pattern, or None to keep it.

    ``searched`` is the string the pattern ran on: ``text`` lower-cased, with the same offsets.
    """
    start, end = match.span()
    if searched.startswith(("akia", "asia"), start):
        preceded_by_key_character = start > 0 and text[start - 1] in _UPPER_CASE_AND_DIGITS
        if preceded_by_key_character or _ACCESS_KEY_ID.fullmatch(text, start, end) is None:
            return None
        return start, end
    if searched.startswith("-----", start):
        return start, end
    if searched.startswith("bearer", start):
        # "Bearer authentication" is prose, not a token.
        if _LETTERS_ONLY.fullmatch(searched, *match.span(1)):
            return None
        return match.span(1)

    # A key=value match. A key inside an ARN ("arn:aws:...:secret:name") or an exception name
    # such as NoCredentialsError is not a key.
    if start > 0 and searched[start - 1] in ":/":
        return None
    key_end = _KEY_CHARACTERS.match(searched, start).end()
    if searched.endswith(("error", "exception"), start, key_end):
        return None
    return match.span(match.lastindex)


def _holds_secret(value: object) -> bool:
    if value is None or isinstance(value, bool) or value == "" or value == REDACTED:
        return False
    if isinstance(value, (dict, list)) and not value:
        return False
    return True
