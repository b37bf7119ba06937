"""The master's `show stat` and `show info` add up the workers' HTTP request, response and
compression counters (each worker counts its own share of the traffic)."""

from __future__ import annotations

from nsproxy.ops.master.merge import merge_info, merge_stat

HEADER = "# pxname,svname,req_tot,hrsp_4xx,comp_in,comp_out,comp_byp,comp_rsp,status"


def test_request_and_compression_columns_are_summed() -> None:
    one = f"{HEADER}\nfe,FRONTEND,3,1,3600,135,0,3,OPEN\n"
    two = f"{HEADER}\nfe,FRONTEND,2,0,1200,45,10,1,OPEN\n"
    merged = merge_stat([one, two]).splitlines()
    assert merged == [HEADER, "fe,FRONTEND,5,1,4800,180,10,4,OPEN"]


def test_compression_rates_are_summed() -> None:
    one = "Name: HAProxy\nCompressBpsIn: 100\nCompressBpsOut: 7\nCompressBpsRateLim: 0\n"
    two = "Name: HAProxy\nCompressBpsIn: 50\nCompressBpsOut: 3\nCompressBpsRateLim: 0\n"
    assert merge_info([one, two], 1, 2).splitlines() == [
        "Name: HAProxy",
        "CompressBpsIn: 150",
        "CompressBpsOut: 10",
        "CompressBpsRateLim: 0",
    ]
