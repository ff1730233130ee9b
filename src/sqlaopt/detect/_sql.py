"""SQL text, read the way the detector needs it: is it a read, what is its shape, is it a batch.

These run on the statement text the driver receives, so they work for ``text()``, f-string SQL
and ``exec_driver_sql`` as well as for compiled statements, on every dialect. Results that
depend only on the text are cached per string (bounded), since an application runs the same
few hundred statement strings over and over.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

__all__ = ["carries_in_list", "fingerprint", "is_read", "pages", "strip_preamble"]

# Comments (-- to end of line, /* ... */ including SQLCommenter tags), whitespace and opening
# parentheses may come before the first keyword.
_PREAMBLE: Final = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|\()*", re.DOTALL)
_READ_KEYWORDS: Final = ("SELECT", "VALUES", "TABLE")
_WORD: Final = re.compile(r"[A-Za-z_]+")


def strip_preamble(sql: str) -> str:
    """``sql`` without the comments, whitespace and parentheses before its first keyword."""
    return sql[_PREAMBLE.match(sql).end():]  # type: ignore[union-attr]  # always matches


@lru_cache(maxsize=2048)
def is_read(sql: str) -> bool:
    """Whether ``sql`` reads rows: SELECT, VALUES, TABLE, or a WITH whose main statement is
    one of those (``WITH ... INSERT`` writes)."""
    body = strip_preamble(sql)
    word = _WORD.match(body)
    keyword = word.group(0).upper() if word else ""
    if keyword != "WITH":
        return keyword in _READ_KEYWORDS
    return _main_keyword_after_ctes(body[word.end():]) in _READ_KEYWORDS  # type: ignore[union-attr]


def _main_keyword_after_ctes(rest: str) -> str:
    """The first keyword outside parentheses after ``WITH``'s common table expressions."""
    depth, index = 0, 0
    while index < len(rest):
        char = rest[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "'":  # skip a string literal
            index = rest.find("'", index + 1)
            if index < 0:
                return ""
        elif depth == 0 and char.isalpha():
            word = _WORD.match(rest, index)
            token = word.group(0).upper() if word else ""
            if token in (*_READ_KEYWORDS, "INSERT", "UPDATE", "DELETE", "MERGE"):
                return token
            index = word.end() if word else index + 1
            continue
        index += 1
    return ""


# Literals: quoted strings (with doubled quotes), then numbers that are not part of a name.
_STRING: Final = re.compile(r"'(?:[^']|'')*'")
_NUMBER: Final = re.compile(r"(?<![\w.$])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w$])")
# A parenthesised list of values or placeholders: (?, ?, ?) / (%s, %s) / (:a, :b) / ($1, $2)
_VALUE: Final = r"(?:\?|%s|%\(\w+\)s|:\w+|\$\d+)"
_VALUE_LIST: Final = re.compile(rf"\(\s*{_VALUE}(?:\s*,\s*{_VALUE})*\s*\)")
_SPACES: Final = re.compile(r"\s+")


@lru_cache(maxsize=4096)
def fingerprint(sql: str) -> str:
    """The statement's shape: literals become ``?``, lists of values ``(?+)``, runs of white
    space one space. Two statements that differ only in literal values (f-string SQL,
    ``literal_binds``) have the same fingerprint; a different structure gives a different one."""
    shape = _STRING.sub("?", sql)
    shape = _NUMBER.sub("?", shape)
    shape = _VALUE_LIST.sub("(?+)", shape)
    return _SPACES.sub(" ", shape).strip()


# "IN (" followed by a list with a comma at its own level: an IN list of more than one value.
_IN_LIST: Final = re.compile(r"\bIN\s*\(\s*(?!SELECT\b|WITH\b)[^()]*,", re.IGNORECASE)


_NAMED_PLACEHOLDER: Final = re.compile(r"%\(\w+\)s")


def carries_in_list(sql: str) -> bool:
    """Whether ``sql`` (as sent to the driver, IN lists expanded) has an IN list of more than
    one value: a batch, not a single-key fetch."""
    if " IN " not in sql.upper():
        return False
    return _IN_LIST.search(_NAMED_PLACEHOLDER.sub("?", sql)) is not None


_LIMIT: Final = re.compile(r"\bLIMIT\s+(\d+)", re.IGNORECASE)
_OFFSET: Final = re.compile(r"\bOFFSET\b", re.IGNORECASE)


def pages(sql: str, limit: int | None = None, offset: object = None) -> bool:
    """Whether the statement fetches a page: a LIMIT of more than one row, or an OFFSET.

    ``limit``/``offset`` come from the compiled SELECT when there is one (their values are
    bound parameters there); otherwise the literal text is read.
    """
    if limit is not None or offset is not None:
        return (limit is not None and limit > 1) or offset is not None
    found = _LIMIT.search(sql)
    return (found is not None and int(found.group(1)) > 1) or _OFFSET.search(sql) is not None
