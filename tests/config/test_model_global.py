"""Configuration text -> model: the `global` section's keyword table."""

from __future__ import annotations

import socket

from lab.configtext import errors, model
from nsproxy.addresses import SockAddr
from nsproxy.config.model import GlobalCfg, LogTarget, StatsSocketCfg


def test_defaults_without_a_global_section() -> None:
    assert model("defaults\n  mode tcp\n").global_ == GlobalCfg()


def test_every_global_keyword_reaches_its_field() -> None:
    g = model(
        """
global
  maxconn 2000
  daemon
  master-worker
  pidfile /run/nsproxy.pid
  nbthread 3
  user nobody
  group nogroup
  chroot /var/empty
  pp2-never-send-local
  stats socket /run/admin.sock mode 600 level admin expose-fd listeners
  stats socket ipv4@127.0.0.1:9999 level user
  stats timeout 30s
  prometheus-exporter 127.0.0.1:9101
  tune.bufsize 32768
  maxpipes 64
  hard-stop-after 1m
  log-tag edge
  log stdout format raw local1 info
"""
    ).global_
    assert g == GlobalCfg(
        maxconn=2000,
        daemon=True,
        master_worker=True,
        pidfile="/run/nsproxy.pid",
        nbthread=3,
        user="nobody",
        group="nogroup",
        chroot="/var/empty",
        pp2_never_send_local=True,
        stats_sockets=(
            StatsSocketCfg(SockAddr(socket.AF_UNIX, "/run/admin.sock", 0), 0o600, "admin", True),
            StatsSocketCfg(SockAddr(socket.AF_INET, "127.0.0.1", 9999), None, "user"),
        ),
        stats_timeout=30.0,
        prometheus_exporter=SockAddr(socket.AF_INET, "127.0.0.1", 9101),
        bufsize=32768,
        maxpipes=64,
        hard_stop_after=60.0,
        log_tag="edge",
        logs=(LogTarget("stdout", "local1", "info", format="raw"),),
    )


def test_stats_socket_level_defaults_to_operator() -> None:
    (sock,) = model("global\n  stats socket /run/s.sock\n").global_.stats_sockets
    assert (sock.level, sock.mode, sock.expose_fd) == ("operator", None, False)


def test_tolerated_keywords_leave_the_model_unchanged() -> None:
    assert model("global\n  spread-checks 5\n  tune.maxaccept 10\n").global_ == GlobalCfg()


def test_bad_values_are_errors() -> None:
    assert errors("global\n  stats socket /s level root\n") == [
        "parsing [t.cfg:2] : 'level' only supports 'user', 'operator', and 'admin' (got 'root')"
    ]


def test_stats_maxconn_global_and_per_socket() -> None:
    g = model("global\n  stats maxconn 20\n  stats socket /run/a.sock maxconn 3\n").global_
    assert g.stats_maxconn == 20 and g.stats_sockets[0].maxconn == 3
    assert GlobalCfg().stats_maxconn == 10  # HAProxy's default
    assert errors("global\n  stats maxconn x\n") == [
        "parsing [t.cfg:2] : 'stats maxconn' expects a positive value"
    ]
