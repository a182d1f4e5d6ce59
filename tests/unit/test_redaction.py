"""Tests of secret redaction in text and in log records."""

from __future__ import annotations

import copy

import pytest

from telemetry_ext.redaction import REDACTED, Redactor

ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SESSION_KEY_ID = "ASIAY34FZKBOKMUTVV7A"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"

TEXT_CASES = [
    pytest.param(f"key id {ACCESS_KEY_ID} used", "key id [REDACTED] used", 1, id="access-key-id"),
    pytest.param(f"temporary {SESSION_KEY_ID}", "temporary [REDACTED]", 1, id="session-key-id"),
    pytest.param(f"ids={ACCESS_KEY_ID},{SESSION_KEY_ID}", "ids=[REDACTED],[REDACTED]", 2, id="two-key-ids"),
    pytest.param("password=hunter2 user=bob", "password=[REDACTED] user=bob", 1, id="password-equals"),
    pytest.param("PASSWORD: Hunter2", "PASSWORD: [REDACTED]", 1, id="password-colon-upper"),
    pytest.param("passwd=x1", "passwd=[REDACTED]", 1, id="passwd"),
    pytest.param("db_password = 's3cr3t pass'", "db_password = '[REDACTED]'", 1, id="single-quoted-with-space"),
    pytest.param(
        '{"password": "a \\"b\\" c", "user": "bob"}',
        '{"password": "[REDACTED]", "user": "bob"}',
        1,
        id="json-escaped-quotes",
    ),
    pytest.param('{"token": "abc123"}', '{"token": "[REDACTED]"}', 1, id="json-token"),
    pytest.param("access_token=abc&state=xyz", "access_token=[REDACTED]&state=xyz", 1, id="query-token"),
    pytest.param("sessionToken: IQoJb3JpZ2lu", "sessionToken: [REDACTED]", 1, id="session-token"),
    pytest.param(
        "x-amz-security-token: FwoGZXIvYXdz",
        "x-amz-security-token: [REDACTED]",
        1,
        id="security-token-header",
    ),
    pytest.param("client_secret=shh", "client_secret=[REDACTED]", 1, id="client-secret"),
    pytest.param(
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG",
        "aws_secret_access_key = [REDACTED]",
        1,
        id="secret-access-key",
    ),
    pytest.param(
        "api_key=k1 apiKey=k2 x-api-key: k3",
        "api_key=[REDACTED] apiKey=[REDACTED] x-api-key: [REDACTED]",
        3,
        id="api-keys",
    ),
    pytest.param("Authorization: Bearer abc.def-123", "Authorization: Bearer [REDACTED]", 1, id="authorization-bearer"),
    pytest.param("authorization=Basic dXNlcjpwYXNz", "authorization=Basic [REDACTED]", 1, id="authorization-basic"),
    pytest.param("{'Authorization': 'Bearer xyz'}", "{'Authorization': '[REDACTED]'}", 1, id="python-repr-header"),
    pytest.param(f"calling with Bearer {JWT} now", "calling with Bearer [REDACTED] now", 1, id="bearer-jwt"),
    pytest.param("bearer 0123456789abcdef", "bearer [REDACTED]", 1, id="bearer-lower"),
    pytest.param(
        "credentials=c1 private_key: pk1",
        "credentials=[REDACTED] private_key: [REDACTED]",
        2,
        id="credentials-private-key",
    ),
    pytest.param(
        'body="{\\"password\\": \\"pw\\"}"',
        'body="{\\"password\\": \\"[REDACTED]\\"}"',
        1,
        id="json-inside-json-string",
    ),
    pytest.param(
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY----- done",
        "[REDACTED] done",
        1,
        id="pem-block",
    ),
    pytest.param("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADAN", "[REDACTED]", 1, id="pem-truncated"),
    pytest.param("İstanbul password=x", "İstanbul password=[REDACTED]", 1, id="text-longer-when-lowered"),
    pytest.param("token=a\udcffb rest", "token=[REDACTED] rest", 1, id="lone-surrogate"),
]


@pytest.mark.parametrize("text, expected, count", TEXT_CASES)
def test_redact_text(text: str, expected: str, count: int) -> None:
    redactor = Redactor()
    assert redactor.redact_text(text) == expected
    assert redactor.redaction_count == count


FALSE_POSITIVE_CASES = [
    pytest.param("the token expired", id="token-prose"),
    pytest.param("Token expired, please log in again", id="token-prose-capital"),
    pytest.param("max_tokens=500 token_count: 4 tokens=9", id="token-counters"),
    pytest.param("password reset email sent", id="password-prose"),
    pytest.param("password: null, token: None", id="null-values"),
    pytest.param("Bearer authentication is required", id="bearer-prose"),
    pytest.param("request 8f5e4c1a-1111-2222-3333-444455556666 done", id="request-id"),
    pytest.param("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1", id="trace-header"),
    pytest.param("AKIAIOSFODNN7EXAMPL is too short", id="key-id-too-short"),
    pytest.param("AKIAIOSFODNN7EXAMPLE1 is too long", id="key-id-too-long"),
    pytest.param("akiaiosfodnn7example in lower case", id="key-id-lower-case"),
    pytest.param("XAKIAIOSFODNN7EXAMPLE inside a word", id="key-id-inside-word"),
    pytest.param("Asia/Tokyo time zone", id="asia-prose"),
    pytest.param(
        "User is not authorized to perform: secretsmanager:GetSecretValue on resource: "
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
        id="secrets-manager-arn",
    ),
    pytest.param("NoCredentialsError: Unable to locate credentials", id="exception-name"),
    pytest.param("the secret sauce, api docs, credential rotation", id="words-without-values"),
    pytest.param("", id="empty"),
]


@pytest.mark.parametrize("text", FALSE_POSITIVE_CASES)
def test_false_positives_kept(text: str) -> None:
    redactor = Redactor()
    assert redactor.redact_text(text) == text
    assert redactor.redaction_count == 0


def test_unchanged_text_is_same_object() -> None:
    text = "nothing to see " * 10
    assert Redactor().redact_text(text) is text


def test_count_accumulates() -> None:
    redactor = Redactor()
    redactor.redact_text("password=a")
    redactor.redact_text("token=b secret=c")
    redactor.redact_text("plain")
    assert redactor.redaction_count == 3


def test_huge_line_with_secret_at_end() -> None:
    text = "word " * 200_000 + "password=hunter2"
    redactor = Redactor()
    result = redactor.redact_text(text)
    assert result.endswith("password=[REDACTED]")
    assert len(result) == len(text) - len("hunter2") + len(REDACTED)
    assert redactor.redaction_count == 1


def test_huge_line_of_keywords() -> None:
    text = "secret token api " * 60_000
    redactor = Redactor()
    assert redactor.redact_text(text) == text
    assert redactor.redaction_count == 0


# --- Extra patterns -------------------------------------------------------------------------


def test_extra_patterns() -> None:
    redactor = Redactor([r"cust-\d{4}", r"\b\d{3}-\d{2}-\d{4}\b"])
    result = redactor.redact_text("customer cust-1234 ssn 123-45-6789 cust-12")
    assert result == "customer [REDACTED] ssn [REDACTED] cust-12"
    assert redactor.redaction_count == 2


def test_extra_pattern_with_builtin() -> None:
    redactor = Redactor([r"order-\d+"])
    assert redactor.redact_text("order-7 password=x") == "[REDACTED] password=[REDACTED]"
    assert redactor.redaction_count == 2


def test_extra_pattern_zero_width_match_ignored() -> None:
    redactor = Redactor([r"(?=abc)|def"])
    assert redactor.redact_text("xx abc def") == "xx abc [REDACTED]"
    assert redactor.redaction_count == 1


@pytest.mark.parametrize(
    "pattern, message_part",
    [
        pytest.param("([a-z]", "'([a-z]'", id="unbalanced"),
        pytest.param("*abc", "'*abc'", id="nothing-to-repeat"),
        pytest.param("", "matches the empty string", id="empty"),
        pytest.param("a*", "matches the empty string", id="matches-empty"),
    ],
)
def test_invalid_extra_pattern(pattern: str, message_part: str) -> None:
    with pytest.raises(ValueError) as raised:
        Redactor(["ok", pattern])
    assert "invalid redaction pattern" in str(raised.value)
    assert message_part in str(raised.value)


def test_extra_pattern_not_a_string() -> None:
    with pytest.raises(ValueError, match="expected a string"):
        Redactor([5])  # type: ignore[list-item]


def test_extra_patterns_single_string_rejected() -> None:
    with pytest.raises(TypeError, match="not a single string"):
        Redactor("abc")


# --- Log records ----------------------------------------------------------------------------


def make_record(message: str = "hello", fields: dict | None = None, request_id: str | None = "req-1") -> dict:
    return {
        "timestamp": "2024-03-05T06:07:08.901Z",
        "level": "INFO",
        "message": message,
        "requestId": request_id,
        "format": "json",
        "fields": fields if fields is not None else {},
    }


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "db_password",
        "passwd",
        "secret",
        "clientSecret",
        "token",
        "access_token",
        "sessionToken",
        "session-token",
        "x-amz-security-token",
        "api_key",
        "apiKey",
        "x-api-key",
        "API Key",
        "Authorization",
        "credentials",
        "private_key",
        "privateKey",
    ],
)
def test_sensitive_field_keys(key: str) -> None:
    redactor = Redactor()
    result = redactor.redact_record(make_record(fields={key: "value1", "other": "kept"}))
    assert result["fields"][key] == REDACTED
    assert result["fields"]["other"] == "kept"
    assert redactor.redaction_count == 1


@pytest.mark.parametrize(
    "key",
    ["max_tokens", "token_count", "tokenizer", "requestId", "xray_trace_id", "trace_id", "author", "keyName", "monkey"],
)
def test_ordinary_field_keys(key: str) -> None:
    redactor = Redactor()
    record = make_record(fields={key: "value1"})
    assert redactor.redact_record(record) is record
    assert redactor.redaction_count == 0


def test_nested_fields() -> None:
    fields = {
        "request": {
            "headers": {"Authorization": "Bearer t0k3n", "Accept": "*/*"},
            "params": [{"api_key": "k"}, {"page": 2}, "token=abc"],
        },
        "credentials": {"AccessKeyId": ACCESS_KEY_ID, "SecretAccessKey": "s"},
        "note": f"used {ACCESS_KEY_ID}",
    }
    redactor = Redactor()
    result = redactor.redact_record(make_record(fields=fields))
    assert result["fields"]["request"]["headers"] == {"Authorization": REDACTED, "Accept": "*/*"}
    assert result["fields"]["request"]["params"] == [{"api_key": REDACTED}, {"page": 2}, "token=[REDACTED]"]
    assert result["fields"]["credentials"] == REDACTED
    assert result["fields"]["note"] == "used [REDACTED]"
    assert redactor.redaction_count == 5


def test_secret_in_field_key() -> None:
    redactor = Redactor()
    result = redactor.redact_record(make_record(fields={ACCESS_KEY_ID: 1}))
    assert result["fields"] == {REDACTED: 1}
    assert redactor.redaction_count == 1


@pytest.mark.parametrize(
    "value",
    [None, True, False, "", [], {}, REDACTED],
)
def test_empty_sensitive_values_not_counted(value: object) -> None:
    redactor = Redactor()
    record = make_record(fields={"password": value})
    assert redactor.redact_record(record) is record
    assert redactor.redaction_count == 0


@pytest.mark.parametrize("value", [1234, 12.5, ["a"], {"k": "v"}])
def test_non_string_sensitive_values(value: object) -> None:
    redactor = Redactor()
    result = redactor.redact_record(make_record(fields={"pin_password": value}))
    assert result["fields"]["pin_password"] == REDACTED
    assert redactor.redaction_count == 1


def test_message_redacted() -> None:
    redactor = Redactor()
    result = redactor.redact_record(make_record(message='{"user": "bob", "password": "pw"}'))
    assert result["message"] == '{"user": "bob", "password": "[REDACTED]"}'
    assert redactor.redaction_count == 1


def test_record_input_not_modified() -> None:
    record = make_record(message="token=abc", fields={"secret": "s", "nested": {"password": "p"}})
    original = copy.deepcopy(record)
    result = Redactor().redact_record(record)
    assert record == original
    assert result is not record


def test_record_without_secrets_is_same_object() -> None:
    record = make_record(message="all fine", fields={"nested": {"list": ["a", 1, None]}})
    redactor = Redactor()
    assert redactor.redact_record(record) is record
    assert redactor.redaction_count == 0


def test_request_id_and_other_members_untouched() -> None:
    record = make_record(message="token=abc", request_id="token=abc")
    record["timestamp"] = "password=x"
    result = Redactor().redact_record(record)
    assert result["requestId"] == "token=abc"
    assert result["timestamp"] == "password=x"
    assert result["message"] == "token=[REDACTED]"


def test_record_with_missing_members() -> None:
    redactor = Redactor()
    record = {"message": None, "level": "INFO"}
    assert redactor.redact_record(record) is record
    assert redactor.redaction_count == 0


def test_extra_pattern_in_fields() -> None:
    redactor = Redactor([r"cust-\d+"])
    result = redactor.redact_record(make_record(fields={"customer": "cust-77", "tags": ["cust-1", "x"]}))
    assert result["fields"] == {"customer": REDACTED, "tags": [REDACTED, "x"]}
    assert redactor.redaction_count == 2


def test_deeply_nested_fields() -> None:
    fields: dict = {"password": "p"}
    for _ in range(30):
        fields = {"level": fields}
    redactor = Redactor()
    result = redactor.redact_record(make_record(fields=fields))
    inner = result["fields"]
    for _ in range(30):
        inner = inner["level"]
    assert inner == {"password": REDACTED}
    assert redactor.redaction_count == 1
