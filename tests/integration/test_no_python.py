"""A function on a runtime without Python 3.9+: the extension must stay out of the way."""

from __future__ import annotations

import shutil
from pathlib import Path

# What the launcher needs besides Python, as on a minimal image such as provided.al2023.
TOOLS = ("bash", "basename", "dirname", "readlink", "cat", "sleep")


def test_launcher_without_python_is_inactive(simulate, sink, tmp_path: Path):
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (tools / tool).symlink_to(found)

    report = simulate(invokes=3, extension_path=str(tools))

    assert [inv["status"] for inv in report["invocations"]] == ["success"] * 3
    assert report["crashes"] == []
    assert report["init"]["status"] == "success"
    extension = report["extensions"]["telemetry-ext"]
    assert extension["events"] == []
    inactive = [line for line in extension["output"] if "inactive: no Python 3.9 or newer" in line]
    assert len(inactive) == 1
    assert not extension["killedAtDeadline"]
    assert sink.records == []
