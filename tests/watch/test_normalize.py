"""normalize() and numbered_placeholders(): one spelling per statement shape."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sqlaopt.watch import normalize
from sqlaopt.watch._normalize import numbered_placeholders

TEMPLATE = ("SELECT a.id FROM appointments AS a WHERE a.barber_id = {0} AND a.status IN ({1}) "
            "AND a.note = {2}")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE id = 7", "SELECT * FROM t WHERE id = ?"),
        ("SELECT * FROM t WHERE id = $1", "SELECT * FROM t WHERE id = ?"),
        ("SELECT * FROM t WHERE id = %(id_1)s::INTEGER", "SELECT * FROM t WHERE id = ?::INTEGER"),
        ("SELECT * FROM t WHERE id = %s", "SELECT * FROM t WHERE id = ?"),
        ("SELECT * FROM t WHERE id = :id", "SELECT * FROM t WHERE id = ?"),
        ("SELECT x::text FROM t", "SELECT x::text FROM t"),
        ("SELECT 'it''s', E'\\n' FROM t", "SELECT ?, ? FROM t"),
        ("SELECT *  FROM t -- comment\n WHERE /* why */ id = 1", "SELECT * FROM t WHERE id = ?"),
        ("SELECT * FROM t WHERE s IN ('a', 'b', 'c')", "SELECT * FROM t WHERE s IN (...)"),
        ("SELECT * FROM t WHERE s in ($1)", "SELECT * FROM t WHERE s in (...)"),
        ("SELECT ARRAY[1, 2]", "SELECT ARRAY[...]"),
        ('SELECT "id", "Weird" FROM "t"', 'SELECT id, "Weird" FROM t'),
        # MariaDB digests: backticks, a space around every token, ? and (...)
        ("SELECT `a` . `B` FROM `t` WHERE `x` IN (...) AND f ( ? , ? )",
         "SELECT a.B FROM t WHERE x IN (...) AND f (?, ?)"),
        ("SELECT * FROM t WHERE a = -1 AND b IN (-2, 3) AND c - 1 > 0",
         "SELECT * FROM t WHERE a = ? AND b IN (...) AND c - ? > ?"),
        ("SELECT t1.c2, col3 FROM t1", "SELECT t1.c2, col3 FROM t1"),
        ("SELECT 1.5e3, .5 FROM t", "SELECT ?, ? FROM t"),
    ],
)
def test_normalize(sql: str, expected: str) -> None:
    assert normalize(sql) == expected


values = st.one_of(
    st.integers(-(10**12), 10**12).map(str),
    st.text(st.characters(exclude_characters="\x00"), max_size=20).map(
        lambda s: "'" + s.replace("'", "''") + "'"),
    st.sampled_from(["%(p)s", "%s", "$1", "?", ":name"]),
)


@given(values, st.lists(values, min_size=1, max_size=5), values, values,
       st.lists(values, min_size=1, max_size=5), values)
def test_statements_that_differ_only_in_values_normalise_alike(
    a: str, b: list[str], c: str, x: str, y: list[str], z: str
) -> None:
    first = normalize(TEMPLATE.format(a, ", ".join(b), c))
    second = normalize(TEMPLATE.format(x, ", ".join(y), z))
    assert first == second == (
        "SELECT a.id FROM appointments AS a WHERE a.barber_id = ? AND a.status IN (...) "
        "AND a.note = ?")


@given(st.text(alphabet=st.sampled_from(list("SELECT abc,.()'\"`$?%:=-/*\n 0123456789")),
               max_size=80))
def test_normalize_is_idempotent(sql: str) -> None:
    once = normalize(sql)
    assert normalize(once) == once


@given(st.sampled_from(["SELECT a FROM t WHERE b = 1", "SELECT a FROM t WHERE b IN (1, 2)"]),
       st.lists(st.sampled_from([" ", "\n", "\t", "  "]), min_size=1, max_size=3))
def test_whitespace_does_not_matter(sql: str, spaces: list[str]) -> None:
    assert normalize(sql.replace(" ", "".join(spaces))) == normalize(sql)


def test_numbered_placeholders_per_paramstyle() -> None:
    assert numbered_placeholders("SELECT %(a)s, %(b)s, %(a)s") == ("SELECT $1, $2, $1", 2)
    assert numbered_placeholders("SELECT %s, %s") == ("SELECT $1, $2", 2)
    assert numbered_placeholders("SELECT ?, ?") == ("SELECT $1, $2", 2)
    assert numbered_placeholders("SELECT :x, :y, :x, z::int") == ("SELECT $1, $2, $1, z::int", 2)
    assert numbered_placeholders("SELECT $2, $1") == ("SELECT $2, $1", 2)
    # quoted text and comments are left alone; %% is the pyformat escape of %
    sql = "SELECT '%(no)s ?', x FROM t /* :no */ WHERE y LIKE 'a%%' AND z = %(z)s"
    assert numbered_placeholders(sql, escaped_percent=True) == (
        "SELECT '%(no)s ?', x FROM t /* :no */ WHERE y LIKE 'a%' AND z = $1", 1)
    assert numbered_placeholders("SELECT 'a%%'")[0] == "SELECT 'a%%'"
