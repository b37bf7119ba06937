"""promex's text exposition as HAProxy 2.6 writes it: integer values without a fraction,
times in seconds with six decimals, NaN for an empty value, families without samples left out,
`_total` on counters except promex's plain ones, labels in the order they were declared."""

from __future__ import annotations

import math

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from nsproxy.ops.promex import FLOATS, exposition_text


def test_values_names_and_labels() -> None:
    sessions = CounterMetricFamily("haproxy_frontend_sessions", "Sessions.", labels=["proxy"])
    sessions.add_metric(["fe"], 12.0)
    avg = GaugeMetricFamily(
        "haproxy_backend_total_time_average_seconds", "Avg.", labels=["proxy", "netns"]
    )
    avg.add_metric(["be", ""], 0.003)
    status = GaugeMetricFamily(
        "haproxy_server_status", "State.", labels=["proxy", "server", "state"]
    )
    status.add_metric(["be", "s1", "UP"], 1)
    limit = GaugeMetricFamily("haproxy_server_limit_sessions", "Limit.", labels=["proxy"])
    limit.add_metric(["be"], math.nan)
    empty = GaugeMetricFamily("haproxy_server_check_code", "Code.", labels=["proxy"])
    plain = CounterMetricFamily("haproxy_process_failed_resolutions", "Failed.")
    plain.add_metric([], 0)
    ours = GaugeMetricFamily("nsproxy_netns_max_connections", "Limit.", labels=["netns"])
    text = exposition_text([sessions, avg, status, limit, empty, plain, ours]).decode()
    assert text == (
        "# HELP haproxy_frontend_sessions_total Sessions.\n"
        "# TYPE haproxy_frontend_sessions_total counter\n"
        'haproxy_frontend_sessions_total{proxy="fe"} 12\n'
        "# HELP haproxy_backend_total_time_average_seconds Avg.\n"
        "# TYPE haproxy_backend_total_time_average_seconds gauge\n"
        'haproxy_backend_total_time_average_seconds{proxy="be",netns=""} 0.003000\n'
        "# HELP haproxy_server_status State.\n"
        "# TYPE haproxy_server_status gauge\n"
        'haproxy_server_status{proxy="be",server="s1",state="UP"} 1\n'
        "# HELP haproxy_server_limit_sessions Limit.\n"
        "# TYPE haproxy_server_limit_sessions gauge\n"
        'haproxy_server_limit_sessions{proxy="be"} NaN\n'
        "# HELP haproxy_process_failed_resolutions Failed.\n"
        "# TYPE haproxy_process_failed_resolutions counter\n"
        "haproxy_process_failed_resolutions 0\n"
        "# HELP nsproxy_netns_max_connections Limit.\n"
        "# TYPE nsproxy_netns_max_connections gauge\n"
    )


def test_the_float_families_are_the_times() -> None:
    assert "haproxy_server_check_duration_seconds" in FLOATS
    assert "haproxy_backend_max_queue_time_seconds" in FLOATS
    assert "haproxy_backend_last_session_seconds" not in FLOATS
    assert "haproxy_server_downtime_seconds_total" not in FLOATS
