"""Metrics as CloudWatch embedded metric format lines, checked against the
EMF specification."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
from prometheus_client import CollectorRegistry
from workspaces import free_port_base

from migrate.errors import ConfigurationError
from migrate.observe import metrics

REPOSITORY = Path(__file__).resolve().parents[2]

# The EMF specification's structure, as AWS documents it: the `_aws`
# metadata with a millisecond timestamp and metric directives; dimension
# sets of at most 30 names; at most 100 metrics a directive; CloudWatch's
# units.
UNITS = [
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes",
    "Gigabytes", "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits",
    "Terabits", "Percent", "Count", "Bytes/Second", "Kilobytes/Second",
    "Megabytes/Second", "Gigabytes/Second", "Terabytes/Second", "Bits/Second",
    "Kilobits/Second", "Megabits/Second", "Gigabits/Second", "Terabits/Second",
    "Count/Second", "None",
]
EMF_SCHEMA = {
    "type": "object",
    "required": ["_aws"],
    "properties": {
        "_aws": {
            "type": "object",
            "required": ["Timestamp", "CloudWatchMetrics"],
            "properties": {
                "Timestamp": {"type": "integer", "minimum": 0},
                "CloudWatchMetrics": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["Namespace", "Dimensions", "Metrics"],
                        "properties": {
                            "Namespace": {"type": "string", "minLength": 1,
                                          "maxLength": 1024,
                                          "pattern": "^[^:].*$"},
                            "Dimensions": {
                                "type": "array",
                                "items": {
                                    "type": "array",
                                    "maxItems": 30,
                                    "items": {"type": "string", "minLength": 1,
                                              "maxLength": 250},
                                },
                            },
                            "Metrics": {
                                "type": "array",
                                "maxItems": 100,
                                "items": {
                                    "type": "object",
                                    "required": ["Name"],
                                    "properties": {
                                        "Name": {"type": "string", "minLength": 1,
                                                 "maxLength": 1024},
                                        "Unit": {"enum": UNITS},
                                        "StorageResolution": {"enum": [1, 60]},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def assert_emf(document: dict[str, Any]) -> None:
    """Valid EMF: the schema, and the references it cannot express (every
    dimension a string member of the root, every metric a number there)."""
    jsonschema.validate(document, EMF_SCHEMA)
    for directive in document["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:
                assert isinstance(document.get(name), str), name
        for metric in directive["Metrics"]:
            value = document.get(metric["Name"])
            assert isinstance(value, int | float) and not isinstance(value, bool)


def _counting() -> tuple[metrics.Instruments, metrics.EmfWriter]:
    measured = metrics.Instruments(CollectorRegistry())
    return measured, metrics.EmfWriter("billing-relay", [measured.registry])


def test_each_label_set_is_one_valid_emf_line() -> None:
    measured, writer = _counting()
    measured("migrate_relay_published_total").labels("billing").inc(3)
    measured("migrate_relay_published_total").labels("ordering").inc()
    measured("migrate_message_duration_seconds").labels("q").observe(0.2)

    documents = writer.documents(now=1_700_000_000.5)

    for document in documents:
        assert_emf(document)
    billing = [d for d in documents if d.get("context") == "billing"]
    assert billing == [{
        "_aws": {
            "Timestamp": 1_700_000_000_500,
            "CloudWatchMetrics": [{
                "Namespace": "Migrate",
                "Dimensions": [["context", "service"]],
                "Metrics": [{"Name": "migrate_relay_published_total",
                             "Unit": "Count"}],
            }],
        },
        "context": "billing",
        "service": "billing-relay",
        "migrate_relay_published_total": 3.0,
    }]
    timing = [d for d in documents if d.get("queue") == "q"][0]
    assert timing["migrate_message_duration_seconds_sum"] == pytest.approx(0.2)
    assert timing["migrate_message_duration_seconds_count"] == 1


def test_counters_are_sent_as_their_increase_since_the_last_line() -> None:
    measured, writer = _counting()
    published = measured("migrate_relay_published_total").labels("billing")
    published.inc(3)
    writer.documents()

    published.inc(2)
    again = writer.documents()

    assert again[0]["migrate_relay_published_total"] == 2


def test_a_gauge_is_sent_as_it_is() -> None:
    measured, writer = _counting()
    measured("migrate_relay_backlog_events").labels("billing").set(7)
    writer.documents()

    again = writer.documents()

    assert again[0]["migrate_relay_backlog_events"] == 7
    assert again[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] == "None"


def test_a_switch_that_is_neither_on_nor_off_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="MIGRATE_METRICS_EMF='yes'"):
        metrics.emf_enabled({"MIGRATE_METRICS_EMF": "yes"})
    with pytest.raises(ConfigurationError, match="'0'.*0.1-3600"):
        metrics.emf_interval({"MIGRATE_METRICS_EMF_SECONDS": "0"})


def test_a_process_prints_emf_lines_into_its_log_stream(tmp_path: Path) -> None:
    base = free_port_base()
    process = subprocess.Popen(
        [sys.executable, "-m", "migrate.observe.collector",
         "--listen", f"127.0.0.1:{base}", "--store", str(tmp_path / "traces.db"),
         "--http-port", str(base + 1)],
        cwd=REPOSITORY, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "MIGRATE_METRICS_EMF": "on",
             "MIGRATE_METRICS_EMF_SECONDS": "0.2",
             "MIGRATE_PROCESS_NAME": "collector"},
    )
    try:
        _wait_for(f"http://127.0.0.1:{base + 1}/health")
        datagram = b'{"format": "json", "version": 1}\n' + json.dumps(
            {"trace_id": "1-00000000-000000000000000000000001", "id": "a",
             "name": "router", "start_time": 1.0}
        ).encode()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            sender.sendto(datagram, ("127.0.0.1", base))

        found = _emf_line_with(process, "migrate_collector_documents_total", 1.0)
    finally:
        process.terminate()
        process.wait(10)

    assert_emf(found)
    assert found["service"] == "collector"


def _wait_for(url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=1)
            return
        except requests.ConnectionError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def _emf_line_with(
    process: subprocess.Popen[str], name: str, value: float
) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        document = json.loads(line)
        if document.get(name) == value:
            return dict(document)
    raise AssertionError(f"no EMF line with {name} = {value}")
