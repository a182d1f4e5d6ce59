"""layer/publish.sh against a moto server that the tests start on 127.0.0.1.

Every AWS CLI run gets an environment built from scratch: fake credentials, no AWS profile or
config file, and instance metadata lookups disabled. HTTP(S)_PROXY points at a closed local port,
and NO_PROXY exempts only 127.0.0.1. A request that ignored the moto endpoint would therefore
fail at that closed port instead of reaching AWS, and fail the test.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Dict, Iterator, List

import boto3
import pytest
from botocore.config import Config

REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLISH_SCRIPT = REPO_ROOT / "layer" / "publish.sh"
VENV_BIN = Path(sys.executable).parent
AWS_CLI = VENV_BIN / "aws"
MOTO_SERVER = VENV_BIN / "moto_server"

REGION = "us-east-1"
LOOPBACK = "127.0.0.1"
SERVER_START_TIMEOUT_S = 30.0
CLI_TIMEOUT_S = 120.0
RUNTIMES = ["python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14"]
ARCHITECTURES = ["x86_64", "arm64"]


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def http_get_status(url: str, timeout_s: float) -> int:
    """GET url without any proxy and return the status code."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture(scope="module")
def closed_port_proxy_url() -> Iterator[str]:
    """Yield the URL of a bound but not listening local port, so every connection is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((LOOPBACK, 0))
        yield f"http://{LOOPBACK}:{holder.getsockname()[1]}"


@pytest.fixture(scope="module")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start moto_server on 127.0.0.1 and yield its URL once it serves HTTP requests."""
    assert MOTO_SERVER.is_file(), f"moto_server not found at {MOTO_SERVER}; install the dev extras"
    port = free_loopback_port()
    endpoint = f"http://{LOOPBACK}:{port}"
    log_path = tmp_path_factory.mktemp("moto") / "moto_server.log"
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(log_path.parent)}

    with log_path.open("wb") as log_file:
        server = subprocess.Popen(
            [str(MOTO_SERVER), "-H", LOOPBACK, "-p", str(port)],
            env=environ,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            try:
                if http_get_status(f"{endpoint}/moto-api/", timeout_s=1.0) == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"moto_server did not answer on {endpoint} within {SERVER_START_TIMEOUT_S} s:\n"
                    + log_path.read_text()
                )
            try:
                # Waits before the next poll, and ends the loop at once if the server has exited.
                server.wait(timeout=0.1)
            except subprocess.TimeoutExpired:
                continue
            pytest.fail(f"moto_server exited with status {server.returncode}:\n{log_path.read_text()}")
        yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


@pytest.fixture(scope="module")
def small_layer_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("layer") / "small-layer.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("extensions/telemetry-ext", "#!/bin/bash\nexec sleep infinity\n")
    return path


def cli_environment(tmp_path: Path, proxy_url: str, **extra: str) -> Dict[str, str]:
    """Return an environment with fake credentials, no AWS config files and a proxy on a closed port."""
    environ = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_MAX_ATTEMPTS": "1",
        "HTTP_PROXY": proxy_url,
        "HTTPS_PROXY": proxy_url,
        "http_proxy": proxy_url,
        "https_proxy": proxy_url,
        "NO_PROXY": LOOPBACK,
        "no_proxy": LOOPBACK,
    }
    environ.update(extra)
    return environ


def run_publish(environ: Dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(PUBLISH_SCRIPT)],
        env=environ,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )


def lambda_client(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Return a boto3 Lambda client for the moto endpoint that bypasses any configured proxy."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", LOOPBACK)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}),
    )


def test_cli_honours_endpoint_variable(
    moto_endpoint: str, closed_port_proxy_url: str, tmp_path: Path
) -> None:
    # Checks the AWS CLI from .venv without publish.sh, which passes --endpoint-url anyway.
    environ = cli_environment(tmp_path, closed_port_proxy_url, AWS_ENDPOINT_URL=moto_endpoint)
    result = subprocess.run(
        [str(AWS_CLI), "lambda", "list-layers", "--output", "json"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )

    assert result.returncode == 0, f"the AWS CLI did not reach {moto_endpoint}:\n{result.stderr}"
    assert '"Layers"' in result.stdout


def test_publish_twice_increments_version(
    moto_endpoint: str,
    closed_port_proxy_url: str,
    small_layer_zip: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    environ = cli_environment(
        tmp_path,
        closed_port_proxy_url,
        AWS=str(AWS_CLI),
        AWS_ENDPOINT_URL=moto_endpoint,
        LAYER_ZIP=str(small_layer_zip),
    )

    first = run_publish(environ)
    assert first.returncode == 0, first.stderr
    first_arn = first.stdout.strip()
    assert re.fullmatch(r"arn:aws:lambda:us-east-1:\d+:layer:telemetry-ext:1", first_arn), first.stdout

    second = run_publish(environ)
    assert second.returncode == 0, second.stderr
    second_arn = second.stdout.strip()
    assert re.fullmatch(r"arn:aws:lambda:us-east-1:\d+:layer:telemetry-ext:2", second_arn), second.stdout

    client = lambda_client(moto_endpoint, monkeypatch)
    versions = client.list_layer_versions(LayerName="telemetry-ext")["LayerVersions"]
    assert sorted(version["Version"] for version in versions) == [1, 2]

    layer_version = client.get_layer_version(LayerName="telemetry-ext", VersionNumber=2)
    assert layer_version["LayerVersionArn"] == second_arn
    assert layer_version["CompatibleRuntimes"] == RUNTIMES
    assert layer_version["CompatibleArchitectures"] == ARCHITECTURES
    assert layer_version["LicenseInfo"] == "Apache-2.0"
    assert layer_version["Description"].startswith("telemetry-ext ")


def test_publish_uses_layer_name_and_region(
    moto_endpoint: str,
    closed_port_proxy_url: str,
    small_layer_zip: Path,
    tmp_path: Path,
) -> None:
    # AWS CLI v1 ignores AWS_REGION, so this passes only if publish.sh forwards it as --region.
    environ = cli_environment(
        tmp_path,
        closed_port_proxy_url,
        AWS=str(AWS_CLI),
        AWS_ENDPOINT_URL=moto_endpoint,
        AWS_REGION="eu-west-1",
        LAYER_NAME="telemetry-ext-staging",
        LAYER_ZIP=str(small_layer_zip),
    )

    result = run_publish(environ)

    assert result.returncode == 0, result.stderr
    arn = result.stdout.strip()
    assert re.fullmatch(r"arn:aws:lambda:eu-west-1:\d+:layer:telemetry-ext-staging:1", arn), result.stdout


def write_recording_cli(path: Path, arguments_file: Path) -> None:
    """Write a stand-in for the AWS CLI that stores its arguments and prints a layer ARN."""
    path.write_text(
        "#!/usr/bin/env bash\n"
        f"printf '%s\\n' \"$@\" > '{arguments_file}'\n"
        "echo arn:aws:lambda:us-east-1:123456789012:layer:telemetry-ext:7\n"
    )
    path.chmod(0o755)


def recorded_arguments(
    tmp_path: Path, closed_port_proxy_url: str, small_layer_zip: Path, **extra: str
) -> List[str]:
    """Run publish.sh with the recording stand-in and return the arguments it passed to the CLI."""
    arguments_file = tmp_path / "arguments.txt"
    recording_cli = tmp_path / "aws"
    write_recording_cli(recording_cli, arguments_file)
    environ = cli_environment(
        tmp_path, closed_port_proxy_url, AWS=str(recording_cli), LAYER_ZIP=str(small_layer_zip), **extra
    )

    result = run_publish(environ)

    assert result.returncode == 0, result.stderr
    assert result.stdout == "arn:aws:lambda:us-east-1:123456789012:layer:telemetry-ext:7\n"
    return arguments_file.read_text().splitlines()


def option_value(arguments: List[str], option: str) -> str:
    assert option in arguments, f"{option} missing from {arguments}"
    return arguments[arguments.index(option) + 1]


def test_publish_passes_endpoint_url(closed_port_proxy_url: str, small_layer_zip: Path, tmp_path: Path) -> None:
    arguments = recorded_arguments(
        tmp_path, closed_port_proxy_url, small_layer_zip, AWS_ENDPOINT_URL="http://127.0.0.1:1"
    )

    assert option_value(arguments, "--endpoint-url") == "http://127.0.0.1:1"
    assert option_value(arguments, "--region") == REGION
    assert option_value(arguments, "--layer-name") == "telemetry-ext"
    assert option_value(arguments, "--license-info") == "Apache-2.0"
    assert option_value(arguments, "--zip-file") == f"fileb://{small_layer_zip}"
    assert option_value(arguments, "--query") == "LayerVersionArn"
    assert option_value(arguments, "--output") == "text"
    runtimes_start = arguments.index("--compatible-runtimes") + 1
    assert arguments[runtimes_start:runtimes_start + len(RUNTIMES)] == RUNTIMES
    architectures_start = arguments.index("--compatible-architectures") + 1
    assert arguments[architectures_start:architectures_start + len(ARCHITECTURES)] == ARCHITECTURES


def test_publish_without_endpoint_omits_option(
    closed_port_proxy_url: str, small_layer_zip: Path, tmp_path: Path
) -> None:
    arguments = recorded_arguments(tmp_path, closed_port_proxy_url, small_layer_zip)

    assert "--endpoint-url" not in arguments


def test_publish_rejects_missing_zip(closed_port_proxy_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "missing.zip"
    environ = cli_environment(tmp_path, closed_port_proxy_url, AWS=str(AWS_CLI), LAYER_ZIP=str(missing))

    result = run_publish(environ)

    assert result.returncode != 0
    assert f"layer zip not found: {missing}" in result.stderr
    assert "make package" in result.stderr
    assert result.stdout == ""


def test_publish_rejects_missing_cli(closed_port_proxy_url: str, small_layer_zip: Path, tmp_path: Path) -> None:
    missing_cli = tmp_path / "no-such-aws"
    environ = cli_environment(
        tmp_path, closed_port_proxy_url, AWS=str(missing_cli), LAYER_ZIP=str(small_layer_zip)
    )

    result = run_publish(environ)

    assert result.returncode != 0
    assert f"AWS CLI not found: '{missing_cli}'" in result.stderr
