"""indexes_used() and assert_uses_index(): index names read from each database's own plan."""

from __future__ import annotations

import pytest
from sqlalchemy import (
    JSON,
    Column,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    select,
    text,
)
from sqlalchemy.orm import Session

from sqlaopt.explain import IndexNotUsedError, assert_uses_index, explain, indexes_used

metadata = MetaData()
orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("customer", String(20)),
    Column("state", String(20)),
    Column("doc", JSON),
    Index("ix_orders_customer", "customer"),
)
lines = Table(
    "lines",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("order_id", ForeignKey("orders.id")),
    Column("sku", String(20)),
)


@pytest.fixture
def shop(sqlite_engine: Engine) -> Engine:
    metadata.create_all(sqlite_engine)
    return sqlite_engine


def test_sqlite_index_names_from_explain_query_plan(shop: Engine) -> None:
    statement = select(orders.c.id).where(orders.c.customer == "ann")
    assert indexes_used(shop, statement) == {"ix_orders_customer"}
    assert_uses_index(shop, statement, "ix_orders_customer")


def test_sqlite_primary_keys_and_automatic_indexes_are_not_named_indexes(shop: Engine) -> None:
    assert indexes_used(shop, select(orders).where(orders.c.id == 1)) == set()
    join = select(orders.c.id, lines.c.sku).join(lines, lines.c.order_id == orders.c.id)
    plan = explain(shop, join)
    assert "AUTOMATIC" in plan.text or "SCAN" in plan.text
    assert plan.indexes == frozenset()


# The same statement explained twice on purpose (a stale cached plan would repeat the first).
def test_a_dropped_index_is_not_reported_from_a_cached_plan(shop: Engine) -> None:
    statement = select(orders.c.id).where(orders.c.customer == "ann")
    with shop.connect() as conn:
        assert indexes_used(conn, statement) == {"ix_orders_customer"}
        conn.execute(text("DROP INDEX ix_orders_customer"))
        assert indexes_used(conn, statement) == set()


def test_failure_is_an_assertion_error_with_the_sql_and_the_plan(shop: Engine) -> None:
    statement = select(orders.c.id).where(orders.c.state == "open")
    with pytest.raises(AssertionError) as error:
        assert_uses_index(shop, statement, "ix_orders_customer")
    assert isinstance(error.value, IndexNotUsedError)
    message = str(error.value)
    assert "does not use index 'ix_orders_customer' (it uses: none)" in message
    assert "SQL:\n  SELECT orders.id \nFROM orders \nWHERE orders.state = 'open'" in message
    assert "plan:\nSCAN orders" in message


def test_a_misspelt_index_name_is_pointed_out(shop: Engine) -> None:
    statement = select(orders.c.id).where(orders.c.customer == "ann")
    with pytest.raises(
        IndexNotUsedError,
        match=r"no index 'ix_order_customer' exists on orders "
        r"\(did you mean 'ix_orders_customer'\?\)",
    ):
        assert_uses_index(shop, statement, "ix_order_customer")


def test_binds_statements_and_unrenderable_values(shop: Engine) -> None:
    with Session(shop) as session:
        assert indexes_used(session, "SELECT id FROM orders WHERE customer = 'ann'") == {
            "ix_orders_customer"
        }
    # A JSON value has no literal form: the statement is explained with bound parameters.
    statement = select(orders.c.id).where(orders.c.customer == "ann", orders.c.doc == {"a": 1})
    plan = explain(shop, statement)
    assert plan.indexes == {"ix_orders_customer"} and "?" in plan.sql


def test_postgresql_json_plan_is_walked_through_subplans(pg_engine: Engine) -> None:
    metadata.create_all(pg_engine)
    with pg_engine.connect() as conn:
        conn.execute(text("CREATE INDEX ix_lines_sku ON lines (sku)"))
        conn.execute(text("SET enable_seqscan = off"))  # empty tables: ask what can serve
        inner = select(lines.c.order_id).where(lines.c.sku == "x").scalar_subquery()
        statement = select(orders.c.id).where(orders.c.customer == "ann", orders.c.id == inner)
        used = indexes_used(conn, statement)
        assert {"ix_orders_customer", "ix_lines_sku"} <= used or {
            "orders_pkey",
            "ix_lines_sku",
        } <= used
        assert '"Index Name"' in explain(conn, statement).text
