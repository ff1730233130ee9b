"""``normalize()``: one spelling for statements that differ only in their values.

pg_stat_statements replaces constants with ``$1``, ``$2``; MariaDB digests with ``?`` and
lists with ``(...)``; statements captured from a driver carry ``%(name)s``, ``%s``, ``?`` or
``:name`` placeholders, and SQL written by hand carries literals. ``normalize`` maps all of
them to one form, so the same statement groups together whatever its source.
"""

from __future__ import annotations

import re

__all__ = ["normalize", "numbered_placeholders"]

# One alternation, scanned left to right, so a quote inside a comment (or the reverse) is
# never mistaken for the start of something else.
_TOKEN = re.compile(
    r"""
      (?P<comment>--[^\n]*|/\*.*?\*/)
    | (?P<string>(?:(?<![\w$?])[EeBbXxNn])?'(?:[^']|'')*')
    | (?P<quoted>"(?:[^"]|"")*"|`(?:[^`]|``)*`)
    | (?P<placeholder>\$\d+|%\([^)]*\)s|%s|\?|(?<![:\w?]):[A-Za-z_]\w*|__\[POSTCOMPILE_\w+\])
    | (?P<number>(?<![\w$.?])(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)(?![\w.]))
    | (?P<space>\s+)
    | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_PLAIN_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*\Z")
# Backticks never change case in MySQL, so any plain name loses them; double quotes do in
# PostgreSQL, so only lower-case names lose those.
_PLAIN_ANY_CASE = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
# MariaDB digests put a space around every token: ``performance_schema . t``, ``f ( ? , ? )``.
_TIGHT_BEFORE = re.compile(r" (?=[,).])")
_TIGHT_AFTER = re.compile(r"(?<=[(.]) ")
_COMMA = re.compile(r",(?! )")
_KEPT = re.compile("\x00(\\d+)\x00")
# A minus sign that is not subtraction belongs to its number: -1 is one constant.
_SIGNED = re.compile(r"(^|[=<>(,]|\b(?:AND|OR|NOT|THEN|ELSE|WHEN|SELECT|BETWEEN|VALUES|RETURN)\b)"
                     r"(\s*)-\s*\?", re.IGNORECASE)
# A parenthesised list of values (after IN, or an ARRAY[...] of values) becomes one marker.
_LIST = re.compile(r"\b(IN)\s*\(\s*\?(?:\s*,\s*\?)*\s*\)", re.IGNORECASE)
_ARRAY = re.compile(r"\b(ARRAY)\s*\[\s*\?(?:\s*,\s*\?)*\s*\]", re.IGNORECASE)


def normalize(sql: str) -> str:
    """``sql`` with comments removed, whitespace collapsed (none before ``,`` ``)`` ``.`` or
    after ``(`` ``.``), every literal and placeholder written ``?``, every ``IN`` list written
    ``IN (...)`` and plain identifiers unquoted (double-quoted ones only when lower-case).

    Two statements that differ only in their values, their placeholder style or their
    layout normalise to the same text; the result is for grouping and display, not for
    running (use the statement's own text for that). Idempotent: the rules are applied until
    nothing changes (unquoting can make a new token, as in ``:`c`` becoming ``:c``).
    """
    for _ in range(8):
        once = _normalize_once(sql)
        if once == sql:
            break
        sql = once
    return sql


def _normalize_once(sql: str) -> str:
    out: list[str] = []
    kept: list[str] = []  # quoted names, out of reach of the spacing and list rules
    for match in _TOKEN.finditer(sql):
        kind = match.lastgroup
        token = match.group()
        if kind in ("comment", "space"):
            if out and out[-1] != " ":
                out.append(" ")
        elif kind in ("string", "placeholder", "number"):
            out.append("?")
        elif kind == "quoted":
            inner = token[1:-1]
            plain = _PLAIN_ANY_CASE if token[0] == "`" else _PLAIN_IDENTIFIER
            if plain.match(inner):
                out.append(inner)
            else:
                kept.append(token)
                out.append(f"\x00{len(kept) - 1}\x00")
        else:
            out.append(token)
    text = "".join(out).strip()
    text = _COMMA.sub(", ", _TIGHT_AFTER.sub("", _TIGHT_BEFORE.sub("", text)))
    text = _SIGNED.sub(r"\1\2?", text)
    text = _LIST.sub(lambda m: f"{m.group(1)} (...)", text)
    text = _ARRAY.sub(lambda m: f"{m.group(1)}[...]", text)
    return _KEPT.sub(lambda m: kept[int(m.group(1))], text)


def numbered_placeholders(sql: str, *, escaped_percent: bool = False) -> tuple[str, int]:
    """``sql`` (in any driver's paramstyle) with its placeholders written ``$1``, ``$2``, ...
    as PostgreSQL's ``PREPARE`` takes them, and how many distinct parameters it has.

    A named placeholder used twice gets one number. ``escaped_percent``: the text is in a
    ``format``/``pyformat`` driver's spelling, where ``%%`` stands for ``%``. Literals, quoted
    names and comments are left alone.
    """
    numbers: dict[str, int] = {}
    out: list[str] = []
    for match in _TOKEN.finditer(sql):
        token = match.group()
        if match.lastgroup != "placeholder":
            out.append(token)
            continue
        key = token if token.startswith(("%(", "$", ":")) else f"#{len(numbers)}"
        if key not in numbers:
            numbers[key] = int(token[1:]) if token.startswith("$") else len(numbers) + 1
        out.append(f"${numbers[key]}")
    text = "".join(out)
    if escaped_percent:
        text = text.replace("%%", "%")
    return text, max(numbers.values(), default=0)
