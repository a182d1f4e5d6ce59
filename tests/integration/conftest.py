"""Fixtures that run the packaged extension in the local Lambda sandbox."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from telemetry_ext.simulator.sandbox import SandboxOptions
from telemetry_ext.simulator.scenario import Scenario, run_scenario, unpack_layer
from telemetry_ext.simulator.sink import Sink

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "order_processor"


@pytest.fixture(scope="session")
def layer_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("layer") / "telemetry-ext-layer.zip"
    subprocess.run([sys.executable, str(ROOT / "layer" / "build.py"), "--output", str(output)], check=True, capture_output=True)
    return output


@pytest.fixture(scope="session")
def opt_dir(layer_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return unpack_layer(layer_zip, tmp_path_factory.mktemp("opt"))


@pytest.fixture
def sink() -> Any:
    server = Sink().start()
    yield server
    server.stop()


def write_function(directory: Path, source: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(source)
    return directory


@pytest.fixture
def simulate(opt_dir: Path, sink: Sink) -> Callable[..., dict[str, Any]]:
    """Run a scenario against the unpacked layer; keyword arguments go to SandboxOptions."""

    def run(
        payloads: list[Any] | None = None,
        invokes: int = 3,
        task_dir: Path = EXAMPLE,
        env: dict[str, str] | None = None,
        interval_ms: int = 0,
        destination: Sink | None = None,
        **options: Any,
    ) -> dict[str, Any]:
        sandbox_options = SandboxOptions(opt_dir=opt_dir, task_dir=task_dir, handler="app.handler", **options)
        scenario = Scenario(
            sandbox_options,
            payloads if payloads is not None else [{"orderId": "o-1", "amount": 10}],
            invokes=invokes,
            interval_ms=interval_ms,
            extension_env=env or {},
        )
        return run_scenario(scenario, sink=destination or sink)

    return run
