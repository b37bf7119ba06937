"""Configuration text -> model: proxy keywords, `option`, `timeout` and `defaults` inheritance."""

from __future__ import annotations

import socket

from lab.configtext import errors, model, parse_text
from nsproxy.addresses import SockAddr
from nsproxy.config.model import SourceCfg, TcpCheckRule, Timeouts


def test_frontend_keywords() -> None:
    fe = model(
        """
frontend fe
  mode tcp
  id 7
  maxconn 500
  backlog 64
  default_backend be
  option tcplog
  log-format "%ci %b"
  unique-id-format %{+X}o%ci
  option dontlognull
  option log-separate-errors
  option splice-request
  option reject-unknown-netns
  tcp-request connection expect-proxy layer4 if { src 10.0.0.0/8 192.168.1.1 }
backend be
"""
    ).proxy("fe")
    assert fe is not None
    assert (fe.is_frontend, fe.is_backend, fe.id, fe.mode) == (True, False, 7, "tcp")
    assert (fe.maxconn, fe.backlog, fe.default_backend) == (500, 64, "be")
    assert fe.log_format is not None and fe.unique_id_format is not None  # compiled at load
    assert fe.tcplog and fe.dontlognull and fe.log_separate_errors and fe.splice_request
    assert fe.reject_unknown_netns and not fe.splice_response
    (rule,) = fe.rules.tcp_request_connection
    assert rule.action == "expect-proxy" and rule.cond is not None


def test_backend_keywords() -> None:
    be = model(
        """
backend be
  balance leastconn
  hash-type consistent
  retries 5
  option redispatch
  option allbackups
  option log-health-checks
  source 10.1.1.1 usesrc clientip
  option tcp-check
  tcp-check connect port 8080
  tcp-check send-lf PING
  tcp-check expect ! string ERR
  disabled
"""
    ).proxy("be")
    assert be is not None
    assert (be.is_frontend, be.is_backend, be.disabled) == (False, True, True)
    assert (be.balance, be.hash_type, be.hash_avalanche, be.retries) == (
        "leastconn",
        "consistent",
        None,
        5,
    )
    assert be.redispatch and be.allbackups and be.log_health_checks
    assert be.source == SourceCfg(SockAddr(socket.AF_INET, "10.1.1.1", 0), usesrc="clientip")
    assert be.tcp_check == (
        TcpCheckRule("connect", "8080"),
        TcpCheckRule("send", "PING\n"),
        TcpCheckRule("string", "ERR", negate=True),
    )


def test_hash_function_without_avalanche_turns_it_off() -> None:
    be = model("backend be\n  hash-type map-based sdbm\n").proxy("be")
    assert be is not None and be.hash_avalanche is False


def test_timeouts_in_seconds_and_inherited_from_defaults() -> None:
    cfg = model(
        """
defaults
  mode tcp
  timeout connect 500
  timeout client 30s
  timeout server 1m
  timeout tunnel 1h
  timeout client-fin 2s
  timeout queue 3s
  timeout check 4s
  option tcplog
listen l
  timeout server 5s
  no option tcplog
"""
    )
    px = cfg.proxy("l")
    assert px is not None
    assert px.timeouts == Timeouts(
        connect=0.5, client=30.0, server=5.0, tunnel=3600.0, client_fin=2.0, queue=3.0, check=4.0
    )
    assert not px.tcplog
    assert (px.is_frontend, px.is_backend) == (True, True)


def test_named_defaults_and_from() -> None:
    cfg = model(
        """
defaults slow
  timeout client 1m
defaults fast
  timeout client 1s
frontend a from slow
frontend b
"""
    )
    a, b = cfg.proxy("a"), cfg.proxy("b")
    assert a is not None and b is not None
    assert (a.timeouts.client, b.timeouts.client) == (60.0, 1.0)


def test_proxy_ids_count_from_one_in_order() -> None:
    cfg = model("frontend a\nbackend b\nlisten c\n")
    assert [(p.name, p.id) for p in cfg.proxies] == [("a", 1), ("b", 2), ("c", 3)]


def test_a_stats_socket_takes_id_1_as_haproxys_global_frontend() -> None:
    cfg = model("global\n  stats socket /run/s.sock\nfrontend a\nbackend b\n")
    assert [(p.name, p.id) for p in cfg.proxies] == [("a", 2), ("b", 3)]


def test_keyword_of_the_other_side_is_ignored_with_haproxys_warning() -> None:
    config, state = parse_text(
        "backend be\n  default_backend other\n  backlog 5\n"
        "frontend fe\n  balance leastconn\n  hash-type consistent\n  retries 9\n"
        "  source 127.0.0.1\n"
    )
    assert config is not None, state.errors
    be, fe = config.proxy("be"), config.proxy("fe")
    assert be is not None and fe is not None
    assert (be.default_backend, be.backlog) == (None, 0)
    assert (fe.balance, fe.hash_type, fe.retries, fe.source) == ("roundrobin", "map-based", 3, None)
    be_no = "ignored because backend 'be' has no frontend capability."
    fe_no = "ignored because frontend 'fe' has no backend capability."
    assert [w for w in state.warnings if "capability" in w] == [  # HAProxy 2.6's (haproxy -c)
        f"parsing [t.cfg:2] : 'default_backend' {be_no}",
        f"parsing [t.cfg:3] : 'backlog' {be_no}",
        f"parsing [t.cfg:5] : 'balance' {fe_no}",
        f"parsing [t.cfg:6] : 'hash-type' {fe_no}",
        f"parsing [t.cfg:7] : 'retries' {fe_no}",
        f"parsing [t.cfg:8] : 'source' {fe_no}",
    ]


def test_bad_balance_is_an_error() -> None:
    assert errors("backend be\n  balance uri\n") == [
        "parsing [t.cfg:2] : 'balance' only supports 'roundrobin', 'static-rr', 'leastconn', "
        "'first' and 'source' in nsproxy (got 'uri')."
    ]
