"""The extension's lifecycle: register, subscribe, loop on /event/next, drain at SHUTDOWN.

Threads:
- main: the Extensions API loop. It ends the process after SHUTDOWN, and before registering
  only when it cannot register at all.
- telemetry-listener and its connection threads: receive Telemetry API POSTs (listener.py).
- telemetry-processor: parses bodies and groups events by request (processor.py).
- telemetry-setup: started with the first /event/next; loads ``logging`` (records logged
  until then are held, see deferred_logging.py), then builds parsing, redaction and the
  destinations, so that none of these imports delays the first /event/next.
- telemetry-shipper: periodic flushes, for the periodic and adaptive strategies.

Lambda fails the invoke when an extension exits before SHUTDOWN, even with status 0, so every
unexpected error is logged and the loop goes on. Invalid configuration is logged as one error
line and the extension stays registered but ships nothing.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Mapping, Optional

from telemetry_ext import deferred_logging
from telemetry_ext.accounting import Accounting
from telemetry_ext.config import Config, FlushStrategy
from telemetry_ext.errors import ConfigError, LambdaApiError, RegistrationRejected
from telemetry_ext.extensions_api import ExtensionsApiClient
from telemetry_ext.listener import TelemetryListener, resolve_listener_host
from telemetry_ext.processor import Processor
from telemetry_ext.telemetry_api import SANDBOX_HOST, SubscriptionResult, build_subscription, subscribe

if TYPE_CHECKING:
    from telemetry_ext.invocations import Aggregator

logger = deferred_logging.get_logger("telemetry_ext")

# Lambda allows at most 2,000 ms for SHUTDOWN when external extensions are present.
MAX_SHUTDOWN_S = 2.0
# At SHUTDOWN, the longest wait for platform.report of invocations that already reached
# runtimeDone, as a share of the time left.
REPORT_WAIT_SHARE = 0.3
# Maximum wait for the telemetry-setup thread when an event needs its results.
PIPELINE_WAIT_S = 5.0
# Adaptive strategy: invokes closer together than the flush interval count as frequent.
_ADAPTIVE_HISTORY = 4


def main(extension_name: str, environ: Optional[Mapping[str, str]] = None) -> None:
    """Run the extension until SHUTDOWN, then exit the process with status 0."""
    started_at = time.monotonic()
    environ = os.environ if environ is None else environ
    deferred_logging.configure(extension_name, environ.get("TELEMETRY_EXT_LOG_LEVEL", "INFO"))
    api_address = environ.get("AWS_LAMBDA_RUNTIME_API")
    if not api_address:
        logger.error("AWS_LAMBDA_RUNTIME_API is not set: this program runs as a Lambda extension only")
        deferred_logging.load()
        sys.exit(2)
    extension = Extension(extension_name, api_address, environ, started_at)
    extension.run()
    deferred_logging.load()
    import logging

    logging.shutdown()
    # Skip interpreter teardown: daemon threads may sit in blocking calls, and nothing is left
    # to flush.
    os._exit(0)


class Extension:
    def __init__(self, name: str, api_address: str, environ: Mapping[str, str], started_at: float) -> None:
        self.name = name
        self.api_address = api_address
        self.environ = environ
        self.started_at = started_at
        self.client = ExtensionsApiClient(api_address, name)
        self.accounting = Accounting()
        self.config: Optional[Config] = None
        self.aggregator: Optional[Aggregator] = None
        self.processor: Optional[Processor] = None
        self.listener: Optional[TelemetryListener] = None
        self.delivery: Any = None
        self.delivery_ready = threading.Event()
        self.pipeline_ready = threading.Event()
        self.redactor: Any = None
        self._pipeline_config: Optional[Config] = None
        self.subscribed = False
        self._invoke_gaps_s: list[float] = []
        self._last_invoke_at: Optional[float] = None
        self._last_flush_at = time.monotonic()

    # --- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self.config = Config.from_env(self.environ)
        except ConfigError as error:
            logger.error("%s; shipping nothing until the configuration is fixed", error)
            self.config = None
        except Exception:  # noqa: BLE001 - a bug in parsing must not keep the extension out of the lifecycle
            logger.exception("reading the configuration failed; shipping nothing")
            self.config = None

        if not self._register():
            return
        if self.config is not None and self.config.has_destination:
            try:
                self._start_pipeline(self.config)
            except Exception:  # noqa: BLE001 - without telemetry the function must still run
                logger.exception("could not start the telemetry pipeline; shipping nothing")
                self.subscribed = False
                self.processor = None
                self._pipeline_config = None
        elif self.config is not None:
            logger.warning(
                "no destination configured (set TELEMETRY_EXT_HTTP_URL, TELEMETRY_EXT_OTLP_ENDPOINT, "
                "TELEMETRY_EXT_EMF or TELEMETRY_EXT_FILE_PATH); shipping nothing"
            )
        logger.debug("ready after %.1f ms", (time.monotonic() - self.started_at) * 1000)
        self._event_loop()

    def _register(self) -> bool:
        try:
            info = self.client.register()
        except RegistrationRejected as error:
            logger.error("registration rejected: %s; retrying without events, so the function is unaffected", error)
            return self._register_passive()
        except LambdaApiError as error:
            logger.error("registration failed: %s; retrying once", error)
            try:
                info = self.client.register()
            except LambdaApiError as second_error:
                logger.error("registration failed again: %s; the extension cannot run", second_error)
                return False
        logger.info(
            "registered as %s for %s %s",
            self.name,
            info.get("functionName", "?"),
            info.get("functionVersion", "?"),
        )
        return True

    def _register_passive(self) -> bool:
        try:
            self.client.register(events=())
        except LambdaApiError as error:
            logger.error("registration without events failed too: %s; the extension cannot run", error)
            return False
        self.config = None
        logger.warning("registered without events: this sandbox gets no telemetry from telemetry-ext")
        return True

    def _start_pipeline(self, config: Config) -> None:
        # Only the listener is started here: it must be up before subscribing. Parsing,
        # redaction and the destinations are built on the telemetry-setup thread while this
        # thread subscribes and calls /event/next, which keeps their imports off the cold start.
        self.processor = Processor(None, self.accounting, max_queued_bytes=config.max_buffer_bytes)
        host = resolve_listener_host(config.listener_host, SANDBOX_HOST)
        self.listener = TelemetryListener(host, config.listener_port, self.processor.submit, self.processor.reject)
        self.listener.start()
        self._pipeline_config = config

        subscription = build_subscription(config, self.listener.port)
        assert self.client.extension_id is not None
        try:
            result = subscribe(self.api_address, self.client.extension_id, subscription)
        except LambdaApiError as error:
            logger.error("telemetry subscription failed: %s; shipping nothing", error)
            return
        if result is SubscriptionResult.NOT_SUPPORTED:
            logger.warning("the Telemetry API is not supported here (HTTP 202); shipping nothing")
            return
        self.subscribed = True
        logger.info(
            "subscribed to %s telemetry (schema %s) on %s:%d",
            ",".join(config.telemetry_types),
            config.schema_version,
            host,
            self.listener.port,
        )

    def _start_background_setup(self) -> None:
        """Start the work that waited for the first /event/next: logging, parsing, destinations.

        Started only now, so that its imports do not compete with the main thread for the
        interpreter lock while it registers and subscribes.
        """
        config = self._pipeline_config
        if config is None:
            deferred_logging.load_in_background()
            return
        threading.Thread(target=self._build_pipeline, args=(config,), name="telemetry-setup", daemon=True).start()

    def _build_pipeline(self, config: Config) -> None:
        deferred_logging.load()
        try:
            from telemetry_ext.invocations import Aggregator
            from telemetry_ext.redaction import Redactor

            self.redactor = Redactor(config.redact_patterns)
            self.aggregator = Aggregator(
                function_name=self.client.function_name or self.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
                function_version=self.client.function_version or self.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
                region=self.environ.get("AWS_REGION"),
                min_log_level=config.min_log_level,
                redact=self.redactor.redact_record,
                max_pending_bytes=config.max_buffer_bytes // 2,
                on_filtered=lambda count: self.accounting.drop(count, "below_min_log_level"),
            )
            assert self.processor is not None
            self.processor.start(self.aggregator)
        except Exception:  # noqa: BLE001 - without telemetry the function must still run
            logger.exception("could not start telemetry processing; shipping nothing")
            self.aggregator = None
            self.delivery_ready.set()
            self.pipeline_ready.set()
            return
        self.pipeline_ready.set()
        try:
            from telemetry_ext.destinations import build_delivery

            self.delivery = build_delivery(config, self.environ, self.accounting, self.aggregator, self._extra_stats)
            if config.flush_strategy in (FlushStrategy.PERIODIC, FlushStrategy.ADAPTIVE):
                threading.Thread(target=self._ship_periodically, name="telemetry-shipper", daemon=True).start()
        except Exception:  # noqa: BLE001 - a broken destination must not stop the lifecycle
            logger.exception("could not set up the destinations; shipping nothing")
            self.delivery = None
        finally:
            self.delivery_ready.set()

    def _wait_for_pipeline(self, timeout_s: float) -> Optional[Aggregator]:
        if self.processor is None:
            return None
        self.pipeline_ready.wait(timeout_s)
        return self.aggregator

    def _extra_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = {}
        if self.aggregator is not None:
            stats["platformDroppedRecords"] = self.aggregator.platform_dropped_records
            stats["platformDroppedBytes"] = self.aggregator.platform_dropped_bytes
        if self.redactor is not None:
            stats["redactions"] = self.redactor.redaction_count
        return stats

    def _event_loop(self) -> None:
        failures = 0
        setup_started = False
        while True:
            if not setup_started:
                # Nothing the first /event/next depends on is left; the rest runs beside it.
                self._start_background_setup()
                setup_started = True
            try:
                event = self.client.next_event()
            except LambdaApiError as error:
                failures += 1
                delay_s = min(0.05 * 2 ** min(failures, 5), 1.0)
                logger.error("event/next failed (%s); retrying in %.2f s", error, delay_s)
                time.sleep(delay_s)
                continue
            failures = 0
            event_type = event.get("eventType")
            try:
                if event_type == "INVOKE":
                    self._on_invoke(event)
                elif event_type == "SHUTDOWN":
                    self._on_shutdown(event)
                    return
                else:
                    logger.warning("ignoring an event of unknown type %r", event_type)
            except Exception:  # noqa: BLE001 - an extension that exits fails the function's invoke
                logger.exception("handling %s failed; continuing", event_type)

    # --- invoke ------------------------------------------------------------------------------

    def _on_invoke(self, event: Mapping[str, Any]) -> None:
        request_id = event.get("requestId")
        config = self.config
        if not isinstance(request_id, str) or config is None:
            return
        aggregator = self._wait_for_pipeline(PIPELINE_WAIT_S)
        if aggregator is None:
            return
        aggregator.note_invoke(request_id)
        if not self._should_flush_at_end(config):
            return

        now_s = time.time()
        deadline_ms = event.get("deadlineMs")
        function_left_s = 900.0
        if isinstance(deadline_ms, (int, float)) and not isinstance(deadline_ms, bool):
            function_left_s = max(0.0, deadline_ms / 1000.0 - now_s - config.shutdown_margin_ms / 1000.0)
        if self.subscribed:
            # The data must leave before this call returns and the sandbox freezes, so wait for
            # the runtime to finish. The function's own deadline, less the margin, bounds the wait.
            # NOTE: if Lambda drops this invocation's runtimeDone event, the invoke is held until
            # that bound, which the function is billed for; platform.logsDropped then says so.
            aggregator.wait_for_runtime_done(request_id, function_left_s)
        if self.processor is not None:
            self.processor.drain()
        budget_s = config.flush_timeout_ms / 1000.0
        deadline = time.monotonic() + min(budget_s, function_left_s)
        # The destinations are built beside the first invokes; until they are ready, the data
        # waits for a later flush rather than making this invoke wait for the imports.
        if not self.delivery_ready.is_set() or self.delivery is None:
            return
        self.delivery.flush(deadline)
        self._last_flush_at = time.monotonic()

    def _should_flush_at_end(self, config: Config) -> bool:
        now = time.monotonic()
        if self._last_invoke_at is not None:
            self._invoke_gaps_s.append(now - self._last_invoke_at)
            del self._invoke_gaps_s[:-_ADAPTIVE_HISTORY]
        self._last_invoke_at = now
        strategy = config.flush_strategy
        if strategy is FlushStrategy.END:
            return True
        if strategy is not FlushStrategy.ADAPTIVE:
            return False
        interval_s = config.flush_interval_ms / 1000.0
        frequent = len(self._invoke_gaps_s) >= 2 and max(self._invoke_gaps_s) < interval_s
        # While invokes are frequent the shipper thread flushes in the background, but it only
        # runs while the sandbox is thawed; flush at the end too when it has fallen behind,
        # in time or in bytes, before the buffer bound starts dropping records.
        return not frequent or now - self._last_flush_at >= interval_s or self._backlog_bytes() >= config.max_buffer_bytes // 8

    def _backlog_bytes(self) -> int:
        if self.delivery is None or self.aggregator is None:
            return 0
        self.delivery.collect()
        return self.delivery.buffered_bytes + self.aggregator.pending_bytes

    def _ship_periodically(self) -> None:
        config = self.config
        assert config is not None and self.delivery is not None
        interval_s = config.flush_interval_ms / 1000.0
        while not self.delivery.stop_event.wait(interval_s):
            try:
                if self.processor is not None:
                    self.processor.drain()
                self.delivery.flush(time.monotonic() + config.export_timeout_ms / 1000.0)
                self._last_flush_at = time.monotonic()
            except Exception:  # noqa: BLE001 - the shipper must keep running
                logger.exception("background flush failed; retrying at the next interval")

    # --- shutdown ----------------------------------------------------------------------------

    def _drain_until_quiet(self, delivery: Any, reason: Optional[str], deadline: float) -> None:
        """Flush, then flush again while telemetry keeps arriving and time is left."""
        assert self.processor is not None and self.aggregator is not None
        quiet_s = _quiet_period_s(self.config)
        stop = threading.Event()
        while True:
            bodies_before = self.processor.bodies_received
            self.processor.drain()
            delivery.collect_everything(self.aggregator.take_everything(reason))
            if not delivery.flush(deadline, stop=stop):
                if time.monotonic() >= deadline - 0.01:
                    lost = delivery.drop_unsent("shutdown_deadline")
                    logger.error("SHUTDOWN deadline reached: %d telemetry events were not delivered", lost)
                else:
                    lost = delivery.drop_unsent("export_failed")
                    logger.error("export failed at SHUTDOWN: %d telemetry events were not delivered", lost)
                return
            self.processor.wait_for_quiet(quiet_s, deadline)
            if self.processor.bodies_received == bodies_before or time.monotonic() >= deadline:
                return

    def _on_shutdown(self, event: Mapping[str, Any]) -> None:
        received_at = time.monotonic()
        reason = event.get("shutdownReason")
        margin_s = (self.config.shutdown_margin_ms if self.config else 150) / 1000.0
        left_s = MAX_SHUTDOWN_S
        deadline_ms = event.get("deadlineMs")
        if isinstance(deadline_ms, (int, float)) and not isinstance(deadline_ms, bool):
            left_s = min(left_s, deadline_ms / 1000.0 - time.time())
        deadline = received_at + max(0.0, left_s - margin_s)
        logger.info("SHUTDOWN (%s), %.0f ms left", reason, left_s * 1000)

        if self.processor is None or self._wait_for_pipeline(max(0.0, deadline - time.monotonic())) is None:
            return
        assert self.aggregator is not None
        delivery = self.delivery
        if delivery is not None:
            delivery.stop_event.set()
        if self.subscribed:
            self.aggregator.wait_for_reports(max(0.0, (deadline - time.monotonic()) * REPORT_WAIT_SHARE))
        if self.delivery_ready.wait(max(0.0, deadline - time.monotonic())) and self.delivery is not None:
            self._drain_until_quiet(self.delivery, reason, deadline)
        else:
            self.processor.drain()
            lost = sum(item.event_count for item in self.aggregator.take_everything(reason))
            self.accounting.drop(lost, "destination_unavailable")
            if lost:
                logger.error("no destination is available: %d telemetry events were not delivered", lost)

        # Whatever arrives from here on can no longer be sent; count it.
        if self.listener is not None:
            self.listener.close()
        self.processor.stop()
        self.processor.drain()
        late = sum(item.event_count for item in self.aggregator.take_everything(reason))
        if late:
            self.accounting.drop(late, "after_final_flush")
            logger.error("%d telemetry events arrived after the final flush and were not delivered", late)
        counts = self.accounting.snapshot()
        logger.info(
            "exiting after %.0f ms: received %d, delivered %d, dropped %s, unaccounted %d%s",
            (time.monotonic() - received_at) * 1000,
            counts["received"],
            counts["delivered"],
            _format_counts(counts["dropped"]),
            counts["buffered"],
            f"; not taken by every destination: {_format_counts(counts['undelivered'])}" if counts["undelivered"] else "",
        )


def _format_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{reason}={count}" for reason, count in sorted(counts.items())) or "none"


def _quiet_period_s(config: Optional[Config]) -> float:
    """Return how long the telemetry stream must stay silent before the final flush ends.

    Lambda buffers events for up to the subscription's timeoutMs before POSTing them, and
    function output may still be on its way after the last report.
    """
    buffer_timeout_ms = config.buffer_timeout_ms if config is not None else 25
    return max(0.05, 2 * buffer_timeout_ms / 1000.0)
