"""Extract metric records from CloudWatch embedded metric format (EMF) documents.

An EMF document is a JSON object whose ``_aws`` member contains ``Timestamp`` (epoch milliseconds)
and ``CloudWatchMetrics``, a list of directives. Each directive names a ``Namespace``, a list of
dimension sets and a list of metric definitions, and the dimension values and metric values are
members of the document's root. The limits below are the ones CloudWatch documents for EMF.
"""

from __future__ import annotations

import json
import math

MAX_METRICS_PER_DIRECTIVE = 100
MAX_DIMENSIONS_PER_SET = 30
MAX_VALUES_PER_METRIC = 100

# Root members that are neither dimensions nor metric values are copied into each metric
# record's "properties" only while they stay this small.
MAX_PROPERTIES = 32
MAX_PROPERTY_STRING_LENGTH = 1024

HIGH_RESOLUTION_SECONDS = 1
STANDARD_RESOLUTION_SECONDS = 60


class InvalidEmfError(ValueError):
    """An EMF document that CloudWatch would reject. The message is a short reason."""


def parse_emf(document: dict, default_timestamp_ms: int) -> list[dict]:
    """Validate an EMF document and return one metric record per metric definition.

    ``default_timestamp_ms`` is used when ``_aws.Timestamp`` is missing or not a number.
    Raises InvalidEmfError naming the first problem found.
    """
    aws = document.get("_aws")
    if not isinstance(aws, dict):
        raise InvalidEmfError("_aws is not an object")

    directives = aws.get("CloudWatchMetrics")
    if directives is None:
        raise InvalidEmfError("_aws.CloudWatchMetrics is missing")
    if not isinstance(directives, list):
        raise InvalidEmfError("_aws.CloudWatchMetrics is not a list")
    if not directives:
        raise InvalidEmfError("_aws.CloudWatchMetrics is empty")

    timestamp_ms = _read_timestamp(aws.get("Timestamp"), default_timestamp_ms)

    parsed = [_parse_directive(document, index, directive) for index, directive in enumerate(directives)]

    dimension_keys = set()
    metric_names = set()
    for directive in parsed:
        dimension_keys.update(directive["dimensions"])
        metric_names.update(metric["name"] for metric in directive["metrics"])
    properties = _collect_properties(document, dimension_keys, metric_names)

    records = []
    for directive in parsed:
        for metric in directive["metrics"]:
            record = {
                "namespace": directive["namespace"],
                "name": metric["name"],
                "unit": metric["unit"],
                "values": metric["values"],
                "dimensions": dict(directive["dimensions"]),
                "dimensionSets": [list(dimension_set) for dimension_set in directive["dimensionSets"]],
                "resolution": metric["resolution"],
                "timestamp": timestamp_ms,
            }
            if properties:
                record["properties"] = dict(properties)
            records.append(record)

    if not records:
        raise InvalidEmfError("document defines no metrics")
    return records


def _parse_directive(document: dict, index: int, directive: object) -> dict:
    if not isinstance(directive, dict):
        raise InvalidEmfError(f"directive {index} is not an object")

    namespace = directive.get("Namespace")
    if not isinstance(namespace, str) or not namespace:
        raise InvalidEmfError(f"directive {index} has no Namespace string")

    dimension_sets = directive.get("Dimensions")
    if not isinstance(dimension_sets, list) or not all(isinstance(keys, list) for keys in dimension_sets):
        raise InvalidEmfError(f"directive {index} Dimensions is not a list of lists")

    dimensions = {}
    for keys in dimension_sets:
        if len(keys) > MAX_DIMENSIONS_PER_SET:
            raise InvalidEmfError(
                f"directive {index} has a dimension set with {len(keys)} keys (max {MAX_DIMENSIONS_PER_SET})"
            )
        for key in keys:
            if not isinstance(key, str):
                raise InvalidEmfError(f"directive {index} has a dimension key that is not a string")
            if key not in document:
                raise InvalidEmfError(f'dimension "{key}" has no value at the root')
            value = document[key]
            if isinstance(value, (dict, list)):
                raise InvalidEmfError(f'dimension "{key}" value is an object or a list')
            if key not in dimensions:
                dimensions[key] = _dimension_value(value)

    definitions = directive.get("Metrics")
    if not isinstance(definitions, list):
        raise InvalidEmfError(f"directive {index} Metrics is not a list")
    if len(definitions) > MAX_METRICS_PER_DIRECTIVE:
        raise InvalidEmfError(
            f"directive {index} has {len(definitions)} metrics (max {MAX_METRICS_PER_DIRECTIVE})"
        )

    metrics = [_parse_metric(document, index, definition) for definition in definitions]
    return {
        "namespace": namespace,
        "dimensions": dimensions,
        "dimensionSets": dimension_sets,
        "metrics": metrics,
    }


def _parse_metric(document: dict, directive_index: int, definition: object) -> dict:
    name = definition.get("Name") if isinstance(definition, dict) else None
    if not isinstance(name, str) or not name:
        raise InvalidEmfError(f"directive {directive_index} has a metric without a Name string")

    unit = definition.get("Unit")
    if unit is None:
        unit = "None"
    if not isinstance(unit, str):
        raise InvalidEmfError(f'metric "{name}" has a Unit that is not a string')

    if name not in document:
        raise InvalidEmfError(f'metric "{name}" has no value at the root')
    value = document[name]
    values = value if isinstance(value, list) else [value]
    if not values:
        raise InvalidEmfError(f'metric "{name}" has an empty value list')
    if len(values) > MAX_VALUES_PER_METRIC:
        raise InvalidEmfError(f'metric "{name}" has {len(values)} values (max {MAX_VALUES_PER_METRIC})')
    for item in values:
        if not _is_number(item):
            raise InvalidEmfError(f'metric "{name}" value is not a number or a list of numbers')
        if isinstance(item, float) and not math.isfinite(item):
            raise InvalidEmfError(f'metric "{name}" has a value that is not finite')

    storage_resolution = definition.get("StorageResolution")
    high_resolution = _is_number(storage_resolution) and storage_resolution == HIGH_RESOLUTION_SECONDS
    return {
        "name": name,
        "unit": unit,
        "values": list(values),
        "resolution": HIGH_RESOLUTION_SECONDS if high_resolution else STANDARD_RESOLUTION_SECONDS,
    }


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _read_timestamp(value: object, default_timestamp_ms: int) -> int:
    if isinstance(value, float) and not math.isfinite(value):
        return default_timestamp_ms
    if _is_number(value) and value >= 0:
        return int(value)
    return default_timestamp_ms


def _dimension_value(value: object) -> str:
    # CloudWatch expects string dimension values, so numbers, booleans and null are written as JSON text.
    if isinstance(value, str):
        return value
    return json.dumps(value)


def _collect_properties(document: dict, dimension_keys: set, metric_names: set) -> dict:
    properties = {}
    for key, value in document.items():
        if key == "_aws" or key in dimension_keys or key in metric_names:
            continue
        if len(properties) >= MAX_PROPERTIES:
            break
        if isinstance(value, str):
            if len(value) <= MAX_PROPERTY_STRING_LENGTH:
                properties[key] = value
        elif value is None or isinstance(value, (bool, int, float)):
            properties[key] = value
    return properties
