"""The runtime API's sans-I/O connection: HAProxy's line rules and the bounds on what a
client can make nsproxy hold, over bytes only."""

from __future__ import annotations

from typing import Any, cast

from hypothesis import given
from hypothesis import strategies as st

from nsproxy.ops.cli_stream import MAX_LINE, OUTPUT_CAP, CliStream
from nsproxy.ops.runtime_api import ADMIN, SESSION, CommandSet, CommandTable, Session

TOY = CommandSet()


@TOY.command("echo")
def _echo(session: Session, args: list[str]) -> str:
    return " ".join(args[1:]) + "\n"


@TOY.command("big")
def _big(session: Session, args: list[str]) -> str:
    return "x" * 10_000 + "\n"


def _stream() -> CliStream:
    return CliStream(CommandTable((SESSION, TOY)), Session(cast(Any, None), ADMIN))


def _run(cli: CliStream, limit: int = 10_000) -> bytes:
    """Steps until nothing can run, taking every answer byte as a fast client would."""
    out = bytearray()
    for _ in range(limit):
        if not cli.runnable():
            break
        cli.step()
        out += cli.outbuf
        cli.sent(len(cli.outbuf))
    return bytes(out)


def test_without_prompt_close_once_the_commands_received_are_done() -> None:
    cli = _stream()
    cli.feed(b"echo a;echo b\n")
    assert _run(cli) == b"a\n\nb\n\n"
    assert cli.finished()
    late = _stream()
    late.feed(b"echo a\necho b\n")  # both already there: both run, as in HAProxy
    assert _run(late) == b"a\n\nb\n\n"


def test_prompt_keeps_the_connection_and_quit_ends_it() -> None:
    cli = _stream()
    cli.feed(b"prompt\necho a\nquit\necho never\n")
    assert _run(cli) == b"\n> a\n\n> "
    assert cli.finished()


def test_at_the_end_of_input_an_unterminated_command_is_dropped() -> None:
    cli = _stream()
    cli.feed(b"echo a;echo last")
    assert not cli.runnable()  # no newline yet: wait for more
    cli.feed(b"")
    assert _run(cli) == b"a\n\n"
    assert cli.finished()


def test_an_empty_command_gets_the_help() -> None:
    cli = _stream()
    cli.feed(b"prompt\n;echo a\n")
    out = _run(cli)
    assert out.startswith(b"\n> Unknown command. Please enter one of the following commands")
    assert out.endswith(b"\n\n> a\n\n> ")


def test_unread_answers_stop_commands_and_reading() -> None:
    cli = _stream()
    cli.feed(b"prompt\n" + b"big\n" * 100)
    for _ in range(1000):  # a client that never reads
        if not cli.runnable():
            break
        cli.step()
    assert OUTPUT_CAP < len(cli.outbuf) <= OUTPUT_CAP + 10_010
    assert not cli.runnable() and not cli.wants_input()
    cli.sent(len(cli.outbuf))  # it reads: the next command runs
    assert cli.runnable()


def test_a_line_longer_than_max_line_is_refused() -> None:
    cli = _stream()
    assert cli.feed(b"e" * MAX_LINE)
    assert not cli.feed(b"e")


def test_non_utf8_bytes_come_back_as_sent() -> None:
    cli = _stream()
    cli.feed(b"echo \xff\xfe\n")
    assert _run(cli) == b"\xff\xfe\n\n"


LINES = st.lists(
    st.sampled_from([b"echo a", b"echo b;echo c", b"", b"echo \\;x", b"quit", b"big"]),
    max_size=8,
)


@given(LINES, st.lists(st.integers(1, 7), min_size=1, max_size=20))
def test_interactive_answers_do_not_depend_on_how_input_is_split(
    lines: list[bytes], cuts: list[int]
) -> None:
    data = b"prompt\n" + b"".join(line + b"\n" for line in lines)  # interactive: no timing
    whole = _stream()
    whole.feed(data)
    whole.feed(b"")
    expected = _run(whole)
    split = _stream()
    got = bytearray()
    pos, i = 0, 0
    while pos < len(data):
        n = cuts[i % len(cuts)]
        if split.wants_input() or not split.runnable():
            split.feed(data[pos : pos + n])
            pos += n
        i += 1
        got += _run(split)
    split.feed(b"")
    got += _run(split)
    assert bytes(got) == expected
