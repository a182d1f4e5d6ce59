"""Command line of the simulator: ``python -m telemetry_ext.simulator --layer dist/layer.zip``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Optional

from telemetry_ext.simulator.sandbox import SandboxOptions
from telemetry_ext.simulator.scenario import Scenario, run_scenario, temporary_opt


def parse_args(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="telemetry-ext-simulate",
        description="Run a Python function and the extensions of a layer through a local Lambda lifecycle.",
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--layer", type=Path, help="layer zip to unpack into a temporary /opt")
    source.add_argument("--opt", type=Path, help="folder that is already laid out like /opt")
    parser.add_argument("--function", type=Path, default=Path("examples/order_processor"), help="function code folder (the task root)")
    parser.add_argument("--handler", default="app.handler", help="module.function of the handler (default app.handler)")
    parser.add_argument(
        "--function-name",
        help="AWS_LAMBDA_FUNCTION_NAME of the function (default: the function folder's name, with - for _)",
    )
    parser.add_argument("--payloads", type=Path, help="JSON file with a list of event payloads, used in turn")
    parser.add_argument("--invokes", type=int, default=10, help="number of invocations (default 10)")
    parser.add_argument("--interval-ms", type=int, default=100, help="idle time between invocations, in ms (default 100)")
    parser.add_argument("--memory-mb", type=int, default=256, help="function memory size in MB (default 256)")
    parser.add_argument("--timeout-s", type=float, default=3.0, help="function timeout in seconds (default 3)")
    parser.add_argument("--log-format", choices=("Text", "JSON"), default="Text", help="AWS_LAMBDA_LOG_FORMAT (default Text)")
    parser.add_argument("--log-level", help="AWS_LAMBDA_LOG_LEVEL, with --log-format JSON")
    parser.add_argument("--shutdown-budget-ms", type=int, default=2000, help="time from SHUTDOWN to SIGKILL, in ms (default 2000)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="function environment variable; repeatable")
    parser.add_argument(
        "--sink-mode",
        default="ok",
        choices=("ok", "slow", "status", "hang", "refuse", "close_idle"),
        help="behaviour of the local HTTP sink: ok; slow (responds after 200 ms); status (responds 503); "
        "hang (never responds); refuse (refuses connections); close_idle (closes each connection after responding)",
    )
    parser.add_argument("--no-freeze", action="store_true", help="do not SIGSTOP the processes between invokes")
    parser.add_argument("--echo", action="store_true", help="print function and extension output as it happens")
    parser.add_argument("--report", type=Path, help="also write the report as JSON to this file")
    return parser.parse_args(argv)


def main(argv: Optional[list[str]] = None) -> int:
    args = parse_args(argv)
    env: dict[str, str] = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"error: --env {item!r} is invalid: expected NAME=VALUE", file=sys.stderr)
            return 2
        env[name] = value
    payloads: list[Any] = [{}]
    if args.payloads:
        payloads = json.loads(args.payloads.read_text())
        if not isinstance(payloads, list) or not payloads:
            print(f"error: {args.payloads} must hold a non-empty JSON list of payloads", file=sys.stderr)
            return 2

    temporary = temporary_opt(args.layer) if args.layer else None
    opt_dir = Path(temporary.name) if temporary else args.opt
    try:
        options = SandboxOptions(
            opt_dir=opt_dir,
            task_dir=args.function.resolve(),
            handler=args.handler,
            function_name=args.function_name or args.function.resolve().name.replace("_", "-"),
            memory_mb=args.memory_mb,
            timeout_s=args.timeout_s,
            log_format=args.log_format,
            log_level=args.log_level,
            freeze=not args.no_freeze,
            shutdown_budget_ms=args.shutdown_budget_ms,
            echo_output=args.echo,
            function_env=env,
        )
        scenario = Scenario(options, payloads, invokes=args.invokes, interval_ms=args.interval_ms, sink_mode=args.sink_mode)
        report = run_scenario(scenario)
    finally:
        if temporary is not None:
            temporary.cleanup()
    print_report(report)
    if args.report:
        args.report.write_text(json.dumps(report, indent=2) + "\n")
        print(f"\nreport written to {args.report}")
    return 0 if report["ok"] else 1


def print_report(report: dict[str, Any]) -> None:
    init = report["init"]
    print(f"init: {init['status']} in {init['durationMs']} ms, {init['logLinesDelivered']}/{init['logLinesProduced']} log lines delivered")
    print()
    header = f"{'requestId':36}  {'status':8} {'cold':4} {'dur ms':>8} {'billed':>6} {'mem MB':>6} {'logs':>7} {'metrics':>7}"
    print(header)
    print("-" * len(header))
    for inv in report["invocations"]:
        status = inv["status"] + ("" if not inv["errorType"] else "*")
        print(
            f"{inv['requestId']:36}  {status:8} {'yes' if inv['coldStart'] else 'no':4} {inv['durationMs']:>8.1f} "
            f"{inv['billedDurationMs']:>6} {inv['maxMemoryUsedMB']:>6} "
            f"{inv['logLinesDelivered']:>3}/{inv['logLinesProduced']:<3} {inv['metricsDelivered']:>3}/{inv['metricsProduced']:<3}"
        )
    print("(logs and metrics: delivered to the sink / produced by the function; * has an errorType)")
    print()
    for name, ext in report["extensions"].items():
        after = ext["afterRuntimeDoneMs"]
        print(f"extension {name}:")
        print(f"  exec to first /event/next: {ext['execToFirstNextMs']} ms")
        print(f"  runtimeDone to next /event/next: median {after['median']} ms, max {after['max']} ms")
        if ext["killedAtDeadline"]:
            verdict = "killed at the deadline"
        elif ext["crashed"]:
            verdict = "crashed"
        else:
            verdict = f"exit code {ext['exitCode']}"
        print(f"  exit after SHUTDOWN: {ext['shutdownExitMs']} ms of {ext['shutdownBudgetMs']} ms ({verdict})")
    for name, ext in report["extensions"].items():
        problems = [line for line in ext["output"] if " ERROR " in line or " WARNING " in line]
        for line in problems[:5]:
            print(f"\n{name}: {line.split('] ', 1)[-1]}")
        if len(problems) > 5:
            print(f"{name}: {len(problems) - 5} more errors and warnings; --echo or REPORT= shows them all")
        if ext.get("finalLine"):
            print(f"\n{name} accounting: {ext['finalLine'].split('INFO ', 1)[-1]}")
    if report.get("stoppedEarly"):
        print(f"\n{report['stoppedEarly']}")
    for crash in report["crashes"]:
        print(f"CRASH: {crash}")
    if report["missing"]:
        print(f"MISSING at the sink: {', '.join(report['missing'])}")
    if report.get("misattributed"):
        print(f"note: lines filed under other records than the simulator expected: {', '.join(report['misattributed'])}")
    print()
    print("result: OK" if report["ok"] else "result: FAILED")


if __name__ == "__main__":
    sys.exit(main())
