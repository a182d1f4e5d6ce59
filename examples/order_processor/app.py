"""An order processor instrumented with Powertools: the function `make simulate` runs.

Each order is charged by POSTing it to the payment service at PAYMENT_URL. Orders with an
amount of zero or less are rejected with an exception, so failed invocations show up in the
telemetry too.
"""

from __future__ import annotations

import os
from typing import Any

import requests
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()
metrics = Metrics()
metrics.set_default_dimensions(environment=os.environ.get("ENVIRONMENT", "dev"))

PAYMENT_URL = os.environ.get("PAYMENT_URL", "http://127.0.0.1:8080/charge")
PAYMENT_TIMEOUT_S = 2.0


class InvalidOrder(ValueError):
    """The order cannot be charged as it is."""


class OrderProcessor:
    def __init__(self, session: requests.Session) -> None:
        self._session = session

    @tracer.capture_method
    def charge(self, order: dict[str, Any]) -> dict[str, Any]:
        amount = float(order.get("amount", 0))
        if amount <= 0:
            raise InvalidOrder(f"order {order.get('orderId')} has amount {amount}; it must be above zero")
        response = self._session.post(PAYMENT_URL, json=order, timeout=PAYMENT_TIMEOUT_S)
        response.raise_for_status()
        metrics.add_metric(name="OrderAmount", unit=MetricUnit.Count, value=amount)
        return response.json()


processor = OrderProcessor(requests.Session())


@logger.inject_lambda_context(log_event=True)
@tracer.capture_lambda_handler
@metrics.log_metrics(capture_cold_start_metric=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="OrdersReceived", unit=MetricUnit.Count, value=1)
    try:
        receipt = processor.charge(event)
    except Exception:
        metrics.add_metric(name="OrdersFailed", unit=MetricUnit.Count, value=1)
        logger.exception("order %s failed", event.get("orderId"))
        raise
    metrics.add_metric(name="OrdersSucceeded", unit=MetricUnit.Count, value=1)
    logger.info("order charged", extra={"order_id": event.get("orderId"), "amount": event.get("amount")})
    return {"orderId": event.get("orderId"), "status": receipt.get("status")}
