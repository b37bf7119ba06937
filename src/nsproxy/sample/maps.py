"""Maps: the map_* converters over HAProxy map files, and the runtime API's map/acl commands.

The command functions are pure: they take the `PatRefs` registry and the command words and
return the text HAProxy 2.6 replies (errors included), changing the references in place; a
change is seen by the next lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from nsproxy.sample.args import ArgSpec, ArgType, ArgValue
from nsproxy.sample.context import Txn
from nsproxy.sample.conv import ConvDef, expand_backrefs, register_conv
from nsproxy.sample.match import Method, PatternError, PatternExpr, compile_regex
from nsproxy.sample.patref import (
    ACL,
    MAP,
    SMP,
    CompileEnv,
    PatRef,
    PatRefs,
    PatternFileError,
    read_file,
)
from nsproxy.sample.types import TYPE_NAMES, Sample, SmpType, cast

_OUT_NAMES = {SmpType.STR: "str", SmpType.SINT: "int", SmpType.ADDR: "ip"}


def parse_map_value(text: str, out: SmpType) -> Sample | None:
    """A map value for an output type (map_*_int: an integer, map_*_ip: an address)."""
    if out is SmpType.STR:
        return Sample(SmpType.STR, text)
    if out is SmpType.SINT:
        body = text[1:] if text[:1] in "+-" else text
        if not body.isdigit():
            return None
        return Sample(SmpType.SINT, int(text))
    return cast(Sample(SmpType.STR, text), SmpType.ADDR)


def load_ref(
    refs: PatRefs, filename: str, with_values: bool, user: int, file: str, line: int
) -> PatRef:
    """The reference for `filename`, loading the file the first time (HAProxy's rules)."""
    ref = refs.lookup(filename)
    kind = "map" if user == MAP else "acl"
    if ref is None:
        ref = refs.new(
            filename,
            f"pattern loaded from file '{filename}' used by {kind} at file '{file}' line {line}",
            user | (SMP if with_values else 0),
        )
        try:
            read_file(ref, filename, with_values)
        except PatternFileError:
            refs.refs.remove(ref)
            raise
        return ref
    if with_values and not ref.flags & SMP:
        raise PatternFileError(
            f'The file "{filename}" is already used as one column file '
            "and cannot be used by as two column file."
        )
    if not with_values and ref.flags & SMP:
        raise PatternFileError(
            f'The file "{filename}" is already used as two column file '
            "and cannot be used by as one column file."
        )
    ref.display += f", by {kind} at file '{file}' line {line}"
    ref.flags |= user
    return ref


def check_entries(expr: PatternExpr, out: SmpType | None, filename: str | None) -> None:
    """Every current entry must parse for the method (and the value for the output type)."""
    for e in expr.ref.current():
        try:
            expr.check(e.pattern)
        except PatternError as err:
            if e.line > 0 and filename:
                raise PatternError(f"{err} at line {e.line} of file '{filename}'") from None
            raise
        if out is not None and e.value is not None and parse_map_value(e.value, out) is None:
            msg = f"unable to parse '{e.value}'"
            if e.line > 0 and filename:
                msg += f" at line {e.line} of file '{filename}'"
            raise PatternError(msg)


class MapLookup:
    """A map converter's compiled state: the expression and the parsed default."""

    def __init__(self, expr: PatternExpr, out: SmpType, default: Sample | None) -> None:
        self.expr = expr
        self.out = out
        self.default = default
        self._values: dict[int, Sample | None] = {}
        self._revision = -1

    def __call__(self, smp: Sample, txn: Txn) -> Sample | None:
        e = self.expr.lookup(smp)
        if e is None:
            return self.default
        if self.expr.method is Method.REGM:
            return self._regm(smp, e.pattern, e.value or "")
        if self._revision != self.expr.ref.revision:
            self._values = {}
            self._revision = self.expr.ref.revision
        key = id(e)
        if key not in self._values:
            self._values[key] = parse_map_value(e.value or "", self.out)
        return self._values[key]

    def _regm(self, smp: Sample, pattern: str, value: str) -> Sample | None:
        text = cast(smp, SmpType.STR)
        m = compile_regex(pattern, False).search(str(text.value)) if text is not None else None
        return Sample(SmpType.STR, value if m is None else expand_backrefs(m, value))


def _map_conv(method: Method, out: SmpType) -> ConvDef:
    in_type = {Method.INT: SmpType.SINT, Method.IP: SmpType.ADDR}.get(method, SmpType.STR)
    name = "map_" + method.value + ("" if out is SmpType.STR else "_" + _OUT_NAMES[out])
    def_type = ArgType.SINT if out is SmpType.SINT else ArgType.STR

    def prepare(args: list[ArgValue], env: CompileEnv) -> list[ArgValue]:
        filename = str(args[0])
        try:
            ref = load_ref(env.refs, filename, True, MAP, env.file, env.line)
        except PatternFileError as e:
            raise ValueError(str(e)) from None
        expr = PatternExpr(ref, method, value_type=out)
        try:
            check_entries(expr, out, filename)
        except PatternError as e:
            raise ValueError(str(e)) from None
        default: Sample | None = None
        if len(args) > 1:
            if out is SmpType.SINT:
                default = Sample(SmpType.SINT, int(args[1]))
            else:
                default = parse_map_value(str(args[1]), out)
                if default is None:
                    raise ValueError(f"map: cannot parse default ip <{args[1]}>.")
        return [MapLookup(expr, out, default)]  # type: ignore[list-item]

    def fn(smp: Sample, args: Sequence[ArgValue], txn: Txn) -> Sample | None:
        lookup = args[0]
        assert isinstance(lookup, MapLookup)
        return lookup(smp, txn)

    return ConvDef(
        name,
        fn,
        in_type,
        SmpType.ADDR if out is SmpType.ADDR else out,
        ArgSpec((ArgType.STR, def_type), 1),
        None,
        prepare,
    )


_STR_METHODS = (Method.STR, Method.BEG, Method.SUB, Method.DIR, Method.DOM, Method.END, Method.REG)
register_conv(
    replace(_map_conv(Method.STR, SmpType.STR), name="map"),
    *(
        _map_conv(m, out)
        for m in (*_STR_METHODS, Method.INT, Method.IP)
        for out in (SmpType.STR, SmpType.SINT, SmpType.ADDR)
    ),
    _map_conv(Method.REGM, SmpType.STR),
)


# ---- runtime API ---------------------------------------------------------------------------

# The commands map_command() answers, with HAProxy 2.6's help lines (for `help`).
MAP_COMMANDS: tuple[tuple[tuple[str, str], str], ...] = (
    (("add", "acl"), "add acl [@<ver>] <acl> <pattern>        : add an acl entry"),
    (("clear", "acl"), "clear acl [@<ver>] <acl>                : clear the contents of this acl"),
    (("commit", "acl"), "commit acl @<ver> <acl>                 : commit the ACL at this version"),
    (
        ("del", "acl"),
        "del acl <acl> [<key>|#<ref>]            : delete acl entries matching <key>",
    ),
    (
        ("get", "acl"),
        "get acl <acl> <value>                   : report the patterns matching a sample for "
        "an ACL",
    ),
    (
        ("prepare", "acl"),
        "prepare acl <acl>                       : prepare a new version for atomic ACL "
        "replacement",
    ),
    (
        ("show", "acl"),
        "show acl [@<ver>] <acl>]                : report available acls or dump an acl's contents",
    ),
    (
        ("add", "map"),
        "add map [@<ver>] <map> <key> <val>      : add a map entry (payload supported instead "
        "of key/val)",
    ),
    (("clear", "map"), "clear map [@<ver>] <map>                : clear the contents of this map"),
    (("commit", "map"), "commit map @<ver> <map>                 : commit the map at this version"),
    (
        ("del", "map"),
        "del map <map> [<key>|#<ref>]            : delete map entries matching <key>",
    ),
    (
        ("get", "map"),
        "get map <acl> <value>                   : report the keys and values matching a "
        "sample for a map",
    ),
    (
        ("prepare", "map"),
        "prepare map <acl>                       : prepare a new version for atomic map "
        "replacement",
    ),
    (("set", "map"), "set map <map> [<key>|#<ref>] <value>    : modify a map entry"),
    (
        ("show", "map"),
        "show map [@ver] [map]                   : report available maps or dump a map's contents",
    ),
)


def _unknown(kind: int) -> str:
    if kind == MAP:
        return "Unknown map identifier. Please use #<id> or <file>.\n"
    return "Unknown ACL identifier. Please use #<id> or <file>.\n"


def _gen(text: str) -> int:
    """HAProxy's str2uic(): leading digits as an unsigned int (garbage stops the number)."""
    n = 0
    for c in text:
        if not "0" <= c <= "9":
            break
        n = (n * 10 + ord(c) - 48) & 0xFFFFFFFF
    return n


def _arg(args: Sequence[str], i: int) -> str:
    return args[i] if i < len(args) else ""


def _find_elt(ref: PatRef, ident: str) -> list[int] | None:
    """Indexes of the entries `#0x...` designates, or None when malformed."""
    try:
        uid = int(ident[1:], 16)
    except ValueError:
        return None
    return [i for i, e in enumerate(ref.entries) if e.uid == uid]


def _set_value(ref: PatRef, idxs: list[int], value: str) -> str | None:
    for user in ref.users:
        out = user.value_type if isinstance(user, PatternExpr) else None
        if isinstance(out, SmpType) and parse_map_value(value, out) is None:
            return f"unable to parse '{value}'"
    for i in idxs:
        ref.entries[i].value = value
    ref.revision += 1
    return None


def _push(ref: PatRef, key: str, value: str | None, gen: int) -> str | None:
    for user in ref.users:
        if isinstance(user, PatternExpr):
            try:
                user.check(key)
            except PatternError as e:
                return str(e)
        out = user.value_type if isinstance(user, PatternExpr) else None
        if value is not None and isinstance(out, SmpType) and parse_map_value(value, out) is None:
            return f"unable to parse '{value}'"
    ref.append(key, value, -1, gen)
    return None


def map_command(refs: PatRefs, args: Sequence[str], payload: str | None = None) -> str:
    """Runs one runtime API command on maps/ACLs (`show map ...`, `add acl ...`, ...).

    `args` are the command's words, starting with the verb. Returns HAProxy's reply text.
    """
    verb, what = _arg(args, 0), _arg(args, 1)
    if what not in ("map", "acl"):
        return ""
    kind = MAP if what == "map" else ACL
    name = "map" if kind == MAP else "ACL"
    rest = list(args[2:])
    if verb == "show":
        return _show(refs, kind, rest)
    if verb == "get":
        return _get(refs, kind, rest)
    if verb == "prepare":
        ref = refs.lookup(_arg(rest, 0))
        if ref is None or not ref.flags & kind:
            return _unknown(kind)
        return f"New version created: {ref.new_gen()}\n"
    if verb == "commit":
        if not _arg(rest, 0).startswith("@"):
            return "Missing version number.\n"
        version = _gen(rest[0][1:])
        if not _arg(rest, 1):
            return f"Missing {name} identifier.\n"
        ref = refs.lookup(rest[1])
        if ref is None or not ref.flags & kind:
            return _unknown(kind)
        if not ref.commit(version):
            return "Version number out of range.\n"
        return ""
    gen: int | None = None
    if verb == "clear":
        if _arg(rest, 0).startswith("@"):
            gen = _gen(rest[0][1:])
            rest = rest[1:]
        if not _arg(rest, 0):
            return f"Missing {name} identifier.\n"
        ref = refs.lookup(rest[0])
        if ref is None or not ref.flags & kind:
            return _unknown(kind)
        ref.purge(ref.curr_gen if gen is None else gen)
        return ""
    if verb == "set" and kind == MAP:
        if not _arg(rest, 0) or not _arg(rest, 1) or not _arg(rest, 2):
            return "'set map' expects three parameters: map identifier, key and value.\n"
        ref = refs.lookup(rest[0])
        if ref is None:
            return _unknown(MAP)
        key, value = rest[1], rest[2]
        if key.startswith("#0x"):
            idxs = _find_elt(ref, key)
            if idxs is None:
                return "Malformed identifier. Please use #<id> or <file>.\n"
            if not idxs:
                return "key or pattern not found.\n"
        else:
            idxs = [i for i, e in enumerate(ref.entries) if e.pattern == key]
            if not idxs:
                return "entry not found.\n"
        err = _set_value(ref, idxs, value)
        return "" if err is None else err + ".\n"
    if verb == "add":
        if _arg(rest, 0).startswith("@"):
            gen = _gen(rest[0][1:])
            rest = rest[1:]
        if kind == MAP:
            if (payload is None and not (_arg(rest, 0) and _arg(rest, 1) and _arg(rest, 2))) or (
                payload is not None and not _arg(rest, 0)
            ):
                return (
                    "'add map' expects three parameters (map identifier, key and value)"
                    " or one parameter (map identifier) and a payload\n"
                )
        elif not _arg(rest, 0) or not _arg(rest, 1):
            return "'add acl' expects two parameters: ACL identifier and pattern.\n"
        ref = refs.lookup(rest[0])
        if ref is None:
            return _unknown(kind)
        if gen is not None and 0 < ((gen - ref.next_gen) & 0xFFFFFFFF) < 0x80000000:
            return f"Version number in the future, please use 'prepare {what}' before.\n"
        if kind == ACL and ref.flags & SMP:
            return (
                "This ACL is shared with a map containing samples. "
                "You must use the command 'add map' to add values.\n"
            )
        target = ref.curr_gen if gen is None else gen
        pairs: list[tuple[str, str | None]] = []
        if payload is not None:
            for line in payload.split("\n"):
                if not line:
                    continue
                cut = min((i for i in (line.find(" "), line.find("\t")) if i >= 0), default=-1)
                if cut < 0:
                    if kind == MAP:
                        return f"Missing value for key '{line}'.\n"
                    pairs.append((line, None))
                    continue
                pairs.append((line[:cut], line[cut + 1 :].lstrip(" \t") if kind == MAP else None))
        else:
            pairs.append((rest[1], rest[2] if kind == MAP else None))
        for key, val in pairs:
            err = _push(ref, key, val, target)
            if err is not None:
                return err + ".\n"
        return ""
    if verb == "del":
        if not _arg(rest, 0) or not _arg(rest, 1):
            return f"This command expects two parameters: {name} identifier and key.\n"
        ref = refs.lookup(rest[0])
        if ref is None or not ref.flags & kind:
            return _unknown(MAP)
        key = rest[1]
        if key.startswith("#0x"):
            found = _find_elt(ref, key)
            if found is None:
                return "Malformed identifier. Please use #<id> or <file>.\n"
            drop = set(found)
        else:
            drop = {i for i, e in enumerate(ref.entries) if e.pattern == key}
        if not drop:
            return "Key not found.\n"
        doomed = {id(ref.entries[i]) for i in drop}
        ref.remove(lambda e: id(e) not in doomed)
        return ""
    return ""


def _show(refs: PatRefs, kind: int, rest: list[str]) -> str:
    if not _arg(rest, 0):
        lines = ["# id (file) description\n"]
        for r in refs.refs:
            if r.flags & kind:
                lines.append(
                    f"{r.unique_id} ({r.reference or ''}) {r.display}. curr_ver={r.curr_gen} "
                    f"next_ver={r.next_gen} entry_cnt={r.entry_cnt}\n"
                )
        return "".join(lines)
    gen = None
    if rest[0].startswith("@"):
        gen = _gen(rest[0][1:])
        rest = rest[1:]
    ref = refs.lookup(_arg(rest, 0))
    if ref is None or not ref.flags & kind:
        return _unknown(kind)
    want = ref.curr_gen if gen is None else gen
    out = []
    for e in ref.entries:
        if e.gen != want:
            continue
        out.append(
            f"{e.ident} {e.pattern} {e.value}\n"
            if e.value is not None
            else f"{e.ident} {e.pattern}\n"
        )
    return "".join(out)


def _get(refs: PatRefs, kind: int, rest: list[str]) -> str:
    if not _arg(rest, 0) or not _arg(rest, 1):
        return f"Missing {'map' if kind == MAP else 'ACL'} identifier and/or key.\n"
    ref = refs.lookup(rest[0])
    if ref is None:
        return _unknown(kind)
    smp = Sample(SmpType.STR, rest[1])
    out = []
    for user in ref.users:
        if not isinstance(user, PatternExpr):
            continue
        line = f"type={user.method.value}, case={'insensitive' if user.icase else 'sensitive'}"
        e = user.lookup(smp)
        if e is None:
            line += ", found=no" if kind == MAP else ", match=no"
        else:
            line += ", found=yes" if kind == MAP else ", match=yes"
            tree = user.method in (Method.STR, Method.IP) or (
                user.method is Method.BEG and not user.icase
            )
            line += ", idx=tree" if tree else ", idx=list"
            if kind == MAP:
                line += f', key="{e.pattern}"'
                out_type = user.value_type if isinstance(user, PatternExpr) else None
                if e.value is not None and isinstance(out_type, SmpType):
                    v = parse_map_value(e.value, out_type)
                    tname = TYPE_NAMES[v.type] if v is not None else "str"
                    line += f', value="{e.value}", type="{tname}"'
                else:
                    line += ", value=none"
            else:
                line += f', pattern="{e.pattern}"'
        out.append(line + "\n")
    return "".join(out)
