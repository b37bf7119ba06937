"""The files the ingress configurations name, laid out in one directory at test time."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import trustme

DATA = Path(__file__).parent.parent / "config" / "data"
CONFIGS = {
    "haproxy-ingress": DATA / "haproxy-ingress.cfg",
    "kubernetes-ingress": DATA / "kubernetes-ingress.cfg",
}
HOSTS = ("app.example.com", "secure.example.com")

# A 2048-bit group (RFC 7919 ffdhe2048): the `ssl-dh-param-file` haproxy-ingress names.
DHPARAM = """-----BEGIN DH PARAMETERS-----
MIIBCAKCAQEA//////////+t+FRYortKmq/cViAnPTzx2LnFg84tNpWp4TZBFGQz
+8yTnc4kmz75fS/jY2MMddj2gbICrsRhetPfHtXV/WVhJDP1H18GbtCFY2VVPe0a
87VXE15/V8k1mE8McODmi3fipona8+/och3xWKE2rec1MKzKT0g6eXq8CrGCsyT7
YdEIqUuyyOP7uWrat2DX9GgdT0Kj3jlN9K5W7edjcrsZCwenyO4KbXCeAvzhzffi
7MA0BM0oNC9hkXL+nOmFg/+OTxIy7vKBg8P+OxtMb61zO7X8vC7CIAXFjvGDfRaD
ssbzSibBsu/6iGtCOGEoXJf//////////wIBAg==
-----END DH PARAMETERS-----
"""

SERVICES_LUA = """-- HTTP services for `http-request use-service lua.NAME`.
core.register_service("send-response", "http", function(applet)
    applet:start_response()
end)
core.register_service("send-cors-preflight", "http", function(applet)
    applet:set_status(204)
    applet:add_header("Content-Length", 0)
    applet:add_header("Access-Control-Max-Age", applet:get_var("txn.cors_max_age"))
    applet:start_response()
end)
"""

RESPONSES_LUA = """-- The controller's own pages, one service per status.
local function page(name, status, reason, text)
    core.register_service(name, "http", function(applet)
        local body = "<html><body><h1>" .. status .. " " .. reason .. "</h1>\\n" .. text ..
            "\\n</body></html>\\n"
        applet:set_status(status, reason)
        applet:add_header("Content-Length", string.len(body))
        applet:add_header("Content-Type", "text/html")
        applet:add_header("Cache-Control", "no-cache")
        applet:start_response()
        applet:send(body)
    end)
end
page("send-404", 404, "Not Found", "The requested URL was not found.")
page("send-413", 413, "Payload Too Large", "The request is too large.")
page("send-421", 421, "Misdirected Request", "Request sent to a non-authoritative server.")
"""

AUTH_LUA = """-- An `http-request lua.auth-intercept` action: may the request pass?
core.register_action("auth-intercept", { "http-req" }, function(txn, backend, path, method)
    txn:set_var("txn.auth_response_successful", false)
end, 3)
"""


@dataclass(frozen=True)
class IngressFiles:
    """A directory holding what a configuration names, and the CA of its certificates."""

    root: Path
    ca: trustme.CA

    @property
    def env(self) -> dict[str, str]:
        return {"INGRESS_DIR": str(self.root)}


def lay_out(root: Path) -> IngressFiles:
    """Maps and crt-list from data/ingress, certificates (a default one and one per host),
    DH parameters and the Lua scripts, all under `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for src in (DATA / "ingress").iterdir():
        shutil.copy(src, root / src.name)
    crt_list = root / "_front_https_bind_crt.list"
    crt_list.write_text(
        "".join(f"{root}/{line}\n" for line in crt_list.read_text().splitlines() if line)
    )
    ca = trustme.CA(organization_name="Ingress Test CA")
    certs = root / "certs"
    certs.mkdir(exist_ok=True)
    for name, hosts in (("default", ("ingress.default",)), ("secure", ("secure.example.com",))):
        cert = ca.issue_cert(*hosts)
        pem = cert.private_key_and_cert_chain_pem.bytes()
        (root / f"{name}.pem").write_bytes(pem)
        # kubernetes-ingress loads a directory: the first file is the default certificate.
        prefix = "0-" if name == "default" else "1-"
        (certs / f"{prefix}{name}.pem").write_bytes(pem)
    (root / "dhparam.pem").write_text(DHPARAM)
    lua = root / "lua"
    lua.mkdir(exist_ok=True)
    (lua / "services.lua").write_text(SERVICES_LUA)
    (lua / "responses.lua").write_text(RESPONSES_LUA)
    (lua / "auth-request.lua").write_text(AUTH_LUA)
    return IngressFiles(root, ca)
