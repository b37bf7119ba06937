"""The `sha2([bits])` converter (haproxy-ingress hashes client certificates with it) against
the local HAProxy 2.6, and its argument check."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nsproxy.sample import Hook, SampleError, compile_logformat

from .haproxy_ref import Client, needs_haproxy, running
from .txn import with_input

CHAINS = ["sha2,hex", "sha2(224),hex", "sha2(256),base64", "sha2(384),hex", "sha2(512),hex"]
INPUTS = ["", "abc", "caf\xe9", "x" * 300]


@pytest.fixture(scope="module")
def reference() -> Iterator[Client]:
    lines = ["  http-request set-var(txn.in) req.fhdr(x-in)"]
    for i, chain in enumerate(CHAINS):
        lines.append(
            "  http-request return status 200 content-type text/plain lf-string "
            f'"%[var(txn.in),{chain}]" if {{ path /c{i} }}'
        )
    with running("\n".join(lines)) as port:
        client = Client(port)
        yield client
        client.close()


@needs_haproxy
@pytest.mark.parametrize("index", range(len(CHAINS)), ids=CHAINS)
def test_sha2_matches_haproxy(reference: Client, index: int) -> None:
    render = compile_logformat(
        f"%[var(txn.in),{CHAINS[index]}]", Hook.FE_HRQ_HDR, mandatory=False, http=True
    )
    for value in INPUTS:
        assert render(with_input(value)) == reference.get(f"/c{index}", value), value


@pytest.mark.parametrize("bits", ["0", "100", "255", "1024"])
def test_sha2_refuses_other_sizes(bits: str) -> None:
    with pytest.raises(SampleError) as exc:
        compile_logformat(f"%[str(a),sha2({bits})]", Hook.FE_HRQ_HDR)
    assert str(exc.value).endswith(
        f"invalid args in converter 'sha2' : Unsupported number of bits: '{bits}'"
    )
