"""Which tables a statement reads and writes."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    text,
    union_all,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.orm import aliased, joinedload, selectinload

import sqlaopt.cache as cache
from sqlaopt.booking import optimized
from sqlaopt.booking.models import Appointment, Client, Payment, User
from sqlaopt.cache._tables import (
    ALL,
    _compiled_writes,
    declared,
    qualify,
    reads,
    text_reads,
    text_writes,
)


def read_names(statement: Any) -> frozenset[str] | None:
    found = reads(statement.compile(dialect=postgresql.dialect()))
    if not found.complete:
        return None
    return frozenset(name for _, name in found.tables)


@pytest.mark.parametrize(("statement", "tables"), [
    (select(Payment.id), {"payments"}),
    (select(func.count()).select_from(Appointment), {"appointments"}),
    (select(func.count(Client.id)), {"clients"}),
    (select(Appointment).options(joinedload(Appointment.client)), {"appointments", "clients"}),
    (select(User).options(selectinload(User.payments)), {"users"}),  # payments: its own query
    (select(Appointment.id).where(Appointment.id.in_(select(Payment.appointment_id))),
     {"appointments", "payments"}),
    (select(Appointment.id).where(exists().where(Client.id == Appointment.client_id)),
     {"appointments", "clients"}),
    (select(select(Payment.id).cte("paid").c.id), {"payments"}),
    (union_all(select(User.id), select(Client.id)), {"users", "clients"}),
    (select(aliased(User).id), {"users"}),
    (select(Payment.id).where(text("amount > 10")), {"payments"}),
    (select(Payment.id).where(text("id IN (SELECT payment_id FROM refunds)")), None),
    (select(literal_column("(SELECT max(id) FROM users)")), None),
])
def test_reads(statement: Any, tables: set[str] | None) -> None:
    assert read_names(statement) == (frozenset(tables) if tables is not None else None)


def test_reads_of_a_report_flow_with_two_ctes() -> None:
    day = dt.date(2025, 7, 1)
    appointments = optimized._appointment_metrics(1, day, day)
    clients = optimized._client_metrics(1, day)
    assert read_names(select(appointments, clients)) == {"appointments", "clients"}


def test_locking_reads() -> None:
    compiled = select(Payment.id).with_for_update().compile(dialect=postgresql.dialect())
    assert reads(compiled).locking


metadata = MetaData()
parents = Table("parents", metadata, Column("id", Integer, primary_key=True))
children = Table("children", metadata, Column("id", Integer, primary_key=True),
                 Column("parent_id", ForeignKey("parents.id", ondelete="CASCADE",
                                                onupdate="SET NULL")))
grandchildren = Table("grandchildren", metadata, Column("id", Integer, primary_key=True),
                      Column("child_id", ForeignKey("children.id", ondelete="CASCADE")))
notes = Table("notes", metadata, Column("id", Integer, primary_key=True),
              Column("parent_id", ForeignKey("parents.id")))


def written(statement: Any, dialect: Any = None) -> set[str]:
    dialect = dialect or sqlite.dialect()
    return {name for _, name in _compiled_writes(statement.compile(dialect=dialect),
                                                 dialect.name)}


def test_writes_of_compiled_statements() -> None:
    assert written(insert(Payment)) == {"payments"}
    assert written(insert(Client).from_select(["name"], select(User.name))) == {"clients"}
    assert written(update(User).where(User.id == Appointment.barber_id)
                   .values(name="x")) == {"users"}
    assert written(update(User).where(User.id == Appointment.barber_id).values(name="x"),
                   mysql.dialect()) == {"users", "appointments"}
    assert written(delete(Payment)) == {"payments"}


def test_writes_follow_the_metadata_s_foreign_key_actions() -> None:
    assert written(delete(parents)) == {"parents", "children", "grandchildren"}
    assert written(update(parents).values(id=2)) == {"parents", "children"}
    assert written(insert(parents)) == {"parents"}


@pytest.mark.parametrize(("sql", "tables"), [
    ("INSERT INTO payments (amount) VALUES (1)", {(None, "payments")}),
    ("insert into public.payments values (1)", {("public", "payments")}),
    ('INSERT INTO "Odd ""Name""" VALUES (1)', {(None, 'Odd "Name"')}),
    ("INSERT OR REPLACE INTO payments VALUES (1)", {(None, "payments")}),
    ("INSERT IGNORE INTO `shop`.`payments` VALUES (1)", {("shop", "payments")}),
    ("REPLACE INTO payments VALUES (1)", {(None, "payments")}),
    ("UPDATE payments SET amount = 1", {(None, "payments")}),
    ("UPDATE payments AS p SET amount = 1 FROM users u WHERE u.id = p.user_id",
     {(None, "payments")}),
    ("update only payments p set amount = 1", {(None, "payments")}),
    ("UPDATE a JOIN b ON a.id = b.id SET a.x = 1", {(None, ALL)}),
    ("UPDATE a, b SET a.x = 1", {(None, ALL)}),
    ("DELETE FROM payments WHERE id = 1", {(None, "payments")}),
    ("DELETE FROM payments", {(None, "payments")}),
    ("DELETE FROM payments p USING users u WHERE u.id = p.user_id", {(None, "payments")}),
    ("DELETE FROM a, b USING a JOIN b", {(None, ALL)}),
    ("DELETE a FROM a JOIN b ON a.id = b.id", {(None, ALL)}),
    ("TRUNCATE payments, ONLY appointments", {(None, "payments"), (None, "appointments")}),
    ("TRUNCATE TABLE payments CASCADE", {(None, ALL)}),
    ("MERGE INTO payments USING x ON true WHEN MATCHED THEN DELETE", {(None, "payments")}),
    ("WITH gone AS (DELETE FROM payments RETURNING id) SELECT count(*) FROM gone",
     {(None, ALL)}),
    ("SELECT 1; DELETE FROM payments", {(None, ALL)}),
    ("EXPLAIN ANALYZE DELETE FROM payments", {(None, ALL)}),
    ("CREATE TABLE x (id int)", {(None, ALL)}),
    ("CALL refresh_totals()", {(None, ALL)}),
    ("DO $$ BEGIN DELETE FROM payments; END $$", {(None, ALL)}),
    ("COPY payments FROM STDIN", {(None, ALL)}),
    ("SELECT * FROM payments", None),
    ("  /* why */ -- and how\n (SELECT 1)", None),
    ("SELECT 'DELETE FROM payments; DROP TABLE x'", None),
    ("WITH x AS (SELECT 1) SELECT * FROM x", None),
    ("WITH x AS (SELECT id FROM payments FOR UPDATE) SELECT 1", None),
    ("EXPLAIN SELECT 1", None),
    ("SAVEPOINT sa_savepoint_1", None),
    ("RELEASE SAVEPOINT sa_savepoint_1", None),
    ("SET search_path TO tenant", None),
    ("PRAGMA foreign_keys = ON", None),
    ("SHOW transaction isolation level", None),
])
def test_text_writes(sql: str, tables: set[tuple[str | None, str]] | None) -> None:
    assert text_writes(sql, "postgresql") == (frozenset(tables) if tables is not None else None)


@pytest.mark.parametrize(("sql", "known"), [
    ("SELECT 1", True), ("select current_schema()", True), ("SELECT 'from x'", True),
    ("SHOW TABLES", True), ("SELECT count(*) FROM payments", False),
    ("select a from b join c on true", False),
])
def test_text_reads(sql: str, known: bool) -> None:
    assert (text_reads(sql) == frozenset()) is known


def context(default_schema: str | None, translate: dict[Any, Any] | None = None) -> Any:
    return SimpleNamespace(dialect=SimpleNamespace(default_schema_name=default_schema),
                           execution_options={"schema_translate_map": translate})


def test_names_agree_between_tables_classes_and_text() -> None:
    public = context("public")
    assert qualify(declared(Payment, "t"), public) == {"payments"}
    assert qualify(declared(Payment.__table__, "t"), public) == {"payments"}
    assert qualify(text_writes("UPDATE Public.Payments SET x = 1", "postgresql") or (),
                   public) == {"payments"}
    assert qualify({("tenant", "payments")}, public) == {"tenant.payments"}
    assert qualify({(None, "payments")}, context("public", {None: "t1"})) == {"t1.payments"}
    assert qualify(declared(["a", "s.b", "*"], "t"), context(None)) == {"a", "s.b", ALL}


def test_declared_tables_must_be_tables() -> None:
    with pytest.raises(cache.CacheError, match="sqlaopt_tables: 42 is not a table"):
        declared([42], "sqlaopt_tables")
