"""The stats page (`stats enable|uri|refresh|auth|admin|show-legends`) served in HTTP mode:
answered as HAProxy 2.6 answers (401, refresh, admin form, CSV), rendered by headless
Chromium with the proxies' tables and the per-namespace plots (checked on the screenshot)."""

from __future__ import annotations

import base64
import http.client
import re
import shutil
import socket
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from lab.netlab import Lab, cli, connect, free_port, recv_all, tcp_defaults, wait_until

HTTP_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
AUTH = {"Authorization": "Basic " + base64.b64encode(b"admin:secret").decode()}


def request(
    port: int, path: str, headers: dict[str, str] | None = None, body: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        hdrs = dict(headers or {})
        if body is not None:
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request("POST" if body is not None else "GET", path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def page_config(sock: str, port: int, web: int, extra: str = "") -> str:
    return (
        f"global\n  stats socket {sock} level admin\n"
        + tcp_defaults(tcplog=False)
        + f"\nfrontend st\n  mode http\n  bind 127.0.0.1:{port}\n  stats enable\n"
        "  stats uri /stats\n  stats refresh 5s\n  stats auth admin:secret\n"
        "  stats admin if TRUE\n  stats show-legends\n  default_backend bh\n"
        f"backend bh\n  mode http\n  server h1 127.0.0.1:{web}\n  server h2 127.0.0.1:{web}\n"
        + extra
    )


def test_stats_page_auth_refresh_admin_csv_as_haproxy(lab: Lab, tmp_path: Path) -> None:
    web = lab.sink(None, "127.0.0.1", reply=HTTP_OK)
    seen = {}
    for name in ("haproxy", "nsproxy"):
        sock, port = str(tmp_path / f"{name}.sock"), free_port()
        text = page_config(sock, port, web.port)
        if name == "haproxy":
            lab.haproxy(text, sock)
        else:
            lab.proxy(text)
        denied = request(port, "/stats")
        page = request(port, "/stats", AUTH)
        posted = request(port, "/stats", AUTH, "s=h2&action=maint&b=bh")
        state = cli(sock, "show servers state bh").decode().split()[-25:]
        csv = request(port, "/stats;csv;norefresh", AUTH)
        seen[name] = (
            denied[0],
            denied[1]["www-authenticate"],
            denied[2],
            page[0],
            page[1]["refresh"],
            page[1]["content-type"],
            [h in page[2] for h in (b">Queue<", b">Session rate<", b">Dwntme<", b">bh<")],
            b"active UP, going down" in page[2],
            b'<form method="post">' in page[2],
            posted[0],
            posted[1]["location"],
            state[3],
            state[6],  # srv_admin_state: 1, forced maintenance
            csv[0],
            csv[2].startswith(b"# pxname,svname,qcur,qmax,"),
            b"\nbh,h2," in csv[2],
        )
    assert seen["nsproxy"] == seen["haproxy"]
    assert seen["nsproxy"][:2] == (401, 'Basic realm="HAProxy Statistics"')
    assert seen["nsproxy"][11:13] == ("h2", "1")


# -- headless Chromium ------------------------------------------------------------------------
def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """Width, height and RGB pixels of an 8-bit RGB/RGBA non-interlaced PNG (Chromium's)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, bytearray()
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and interlace == 0 and color in (2, 6)
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    prev = bytearray(stride)
    pixels: list[tuple[int, int, int]] = []
    i = 0
    for _ in range(height):
        ftype, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - channels] if x >= channels else 0
            b = prev[x]
            c = prev[x - channels] if x >= channels else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[x] = (line[x] + pred) & 0xFF
        pixels += [tuple(line[x : x + 3]) for x in range(0, stride, channels)]  # type: ignore[misc]
        prev = line
    return width, height, pixels


def near(pixels: list[tuple[int, int, int]], rgb: tuple[int, int, int], tol: int = 40) -> int:
    return sum(1 for p in pixels if all(abs(p[i] - rgb[i]) <= tol for i in range(3)))


def test_stats_page_renders_in_chromium_with_namespace_plots(lab: Lab, tmp_path: Path) -> None:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("chromium (Debian package) is needed")
    ns = lab.netns("tenant")
    echo = lab.sink(ns, "127.0.0.1", echo=True)
    web = lab.sink(None, "127.0.0.1", reply=HTTP_OK)
    sock, port, tport = str(tmp_path / "n.sock"), free_port(), free_port(ns)
    text = page_config(sock, port, web.port).replace("  stats auth admin:secret\n", "")
    text += (
        f"listen tenant_tcp\n  bind 127.0.0.1:{tport} namespace {ns}\n"
        f"  server e1 127.0.0.1:{echo.port} namespace {ns}\n"
    )
    lab.proxy(text)

    def traffic_sampled() -> bool:
        for _ in range(5):  # bounded: a few connections between two looks at the page
            with connect(ns, ("127.0.0.1", tport)) as c:
                c.sendall(b"x" * 20000)
                c.shutdown(socket.SHUT_WR)
                assert len(recv_all(c)) == 20000
        body = request(port, "/stats;norefresh")[2].decode("latin-1")
        m = re.search(r"<td class=samples>(\d+)</td>", body)
        peak = re.search(r"traffic \(bytes/s\)</b> \(peak ([\d.]+)/s\)", body)
        return m is not None and int(m.group(1)) >= 4 and peak is not None and peak[1] != "0.0"

    wait_until(traffic_sampled, 30, "namespace samples with traffic")
    shot = tmp_path / "stats.png"
    subprocess.run(
        [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'chromium'}",
            "--window-size=1280,1400",
            f"--screenshot={shot}",
            f"http://127.0.0.1:{port}/stats;norefresh",
        ],
        check=True,
        timeout=60,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    width, height, pixels = png_pixels(shot.read_bytes())
    assert (width, height) == (1280, 1400)
    assert near(pixels, (0x20, 0xD0, 0xD0)) > 2000  # the tables' header rows
    assert near(pixels, (0xC0, 0xFF, 0xC0), 8) > 50  # the legend (`stats show-legends`)
    assert near(pixels, (0xE0, 0x70, 0x00)) > 150  # the traffic plot's line
    assert near(pixels, (0x20, 0xA0, 0x20)) > 150  # the connections plot's line
