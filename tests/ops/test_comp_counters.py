"""The compression filter's counters (comp_in, comp_out, comp_byp, comp_rsp, CompressBpsIn/Out
and the bytes out) as HAProxy 2.6 counts them, in `show stat` (CSV and typed), `show info`,
the stats page and the Prometheus exporter, for the same traffic on the same configuration.

HAProxy compresses with libslz, nsproxy with zlib: the compressed sizes (comp_out) differ,
everything else must not."""

from __future__ import annotations

import http.client
import re
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from lab.netlab import Lab, cli, free_port

BODY = b"hello hello hello hello hello " * 40
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
    b"Connection: close\r\n\r\n%s" % (len(BODY), BODY)
)
COUNTERS = ("comp_in", "comp_byp", "comp_rsp", "bout", "req_tot", "hrsp_2xx")


def _config(sock: str, port: int, web: int, algo: str, where: str) -> str:
    comp = f"  compression algo {algo}\n  compression type text/plain\n"
    return (
        f"global\n  stats socket {sock} level admin\n"
        "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 2s\n"
        f"frontend fe\n  bind 127.0.0.1:{port}\n"
        + (comp if where == "fe" else "")
        + "  stats enable\n  stats uri /stats\n"
        "  http-request use-service prometheus-exporter if { path /metrics }\n"
        "  default_backend be\n"
        "backend be\n" + (comp if where == "be" else "") + f"  server s1 127.0.0.1:{web}\n"
    )


def _get(port: int, path: str, encoding: str | None) -> tuple[dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path, headers={"Accept-Encoding": encoding} if encoding else {})
        resp = conn.getresponse()
        return {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def _rows(csv: str) -> dict[str, dict[str, str]]:
    lines = csv.splitlines()
    names = lines[0].removeprefix("# ").split(",")
    rows = (dict(zip(names, line.split(","), strict=True)) for line in lines[1:] if line)
    return {r["svname"]: r for r in rows if r["pxname"] in ("fe", "be")}


def _typed(text: str) -> dict[str, str]:
    """`show stat typed`: the comp_* values per object letter (F, B, S)."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"([FBS])\.\d+\.\d+\.\d+\.(comp_\w+)\.1:(\w+):(\w+):(.*)$", line)
        if m:
            out[f"{m[1]}.{m[2]}"] = f"{m[3]}:{m[4]}:{m[5]}"
    return out


def _metric(page: str, name: str, proxy: str) -> float:
    for fam in text_string_to_metric_families(page):
        for s in fam.samples:
            if s.name == name and s.labels.get("proxy") == proxy:
                return float(s.value)
    raise AssertionError(f"{name}{{proxy={proxy}}} missing")


def _observe(lab: Lab, tmp_path: Path, program: str, algo: str, where: str) -> dict[str, object]:
    web = lab.sink(None, "127.0.0.1", reply=RESPONSE)
    sock, port = str(tmp_path / f"{program}.sock"), free_port()
    text = _config(sock, port, web.port, algo, where)
    if program == "haproxy":
        lab.haproxy(text, sock)
    else:
        lab.proxy(text)
    encodings = {}
    for accept in ("gzip", "gzip", None, "gzip"):
        head, _ = _get(port, "/x", accept)
        encodings[accept] = head.get("content-encoding")
    rows = _rows(cli(sock, "show stat").decode())
    typed = _typed(cli(sock, "show stat typed").decode())
    info = dict(
        line.split(": ", 1) for line in cli(sock, "show info").decode().splitlines() if ": " in line
    )
    _, page = _get(port, "/metrics", None)
    metrics = page.decode()
    _, html = _get(port, "/stats", None)
    digits = re.sub(r'<span class="rls">(\d)</span>', r"\1", html.decode())  # HAProxy's grouping
    tips = re.findall(r"(Compression in|Compression bypass):</th><td>(\d+)", digits)
    out: dict[str, object] = {"encodings": encodings, "page": tips}
    for sv in ("FRONTEND", "BACKEND", "s1"):
        out[sv] = {k: rows[sv][k] for k in COUNTERS}
        out[sv + ".comp_out>0"] = rows[sv]["comp_out"] not in ("", "0")
    out["typed"] = {
        k: v.rsplit(":", 1)[0] if k.endswith("comp_out") else v for k, v in typed.items()
    }
    out["info"] = {k: info[k] != "0" for k in ("CompressBpsIn", "CompressBpsOut")}
    for kind, proxy in (("frontend", "fe"), ("backend", "be")):
        for what in ("bytes_in", "bytes_bypassed", "responses"):
            name = f"haproxy_{kind}_http_comp_{what}_total"
            out[name] = _metric(metrics, name, proxy)
        name = f"haproxy_{kind}_http_comp_bytes_out_total"
        out[name] = _metric(metrics, name, proxy) > 0
    return out


@pytest.mark.parametrize(("algo", "where"), [("gzip", "be"), ("gzip", "fe"), ("identity", "be")])
def test_compression_counters_as_haproxy(lab: Lab, tmp_path: Path, algo: str, where: str) -> None:
    ours = _observe(lab, tmp_path, "nsproxy", algo, where)
    fe = ours["FRONTEND"]
    assert isinstance(fe, dict)
    if algo == "gzip":  # three of the four responses compressed, 1200 bytes each before
        assert (fe["comp_in"], fe["comp_byp"], fe["comp_rsp"]) == ("3600", "0", "3")
        assert ours["FRONTEND.comp_out>0"] and ours["haproxy_backend_http_comp_bytes_out_total"]
    else:  # identity: every response goes through the filter, its bytes bypass it
        assert (fe["comp_in"], fe["comp_byp"], fe["comp_rsp"]) == ("0", "4800", "4")
    assert int(fe["bout"]) > 4 * len(BODY)  # the bytes before compression
    assert ours["BACKEND"] == fe
    # the stats page's tooltips on the bytes out, frontend then backend
    assert ours["page"] == 2 * [
        ("Compression in", fe["comp_in"]),
        ("Compression bypass", fe["comp_byp"]),
    ]
    assert ours == _observe(lab, tmp_path, "haproxy", algo, where)
