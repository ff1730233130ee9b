"""eager(): the strategy rule, the suffixes, prefix merging, and errors raised at call time."""

from __future__ import annotations

import warnings

import pytest
from sqlalchemy import select
from sqlalchemy.exc import InvalidRequestError, SADeprecationWarning
from sqlalchemy.orm import Session, aliased

import sqlaopt
from sqlaopt import assert_loaded, eager
from sqlaopt.booking.models import Appointment, Payment, Service, User

from .conftest import touch

# These tests load eagerly to inspect what was loaded, without reading it: not waste.
pytestmark = pytest.mark.nplusone(unused_eager=False)


def run(db: Session, stmt: object) -> tuple[list[object], list[str]]:
    with sqlaopt.count_queries() as queries:
        rows = list(db.scalars(stmt).unique())  # type: ignore[call-overload]
    return rows, queries.statements


def test_scalar_hops_are_joined_into_the_one_statement(db: Session) -> None:
    stmt = select(Appointment).options(*eager(Appointment, "client", "payment"))
    rows, statements = run(db, stmt)
    assert len(statements) == 1
    assert statements[0].count("LEFT OUTER JOIN") == 2
    assert_loaded(rows, "client", "payment")


def test_collection_hops_get_one_select_in_statement_each(db: Session) -> None:
    rows, statements = run(db, select(User).options(*eager(User, "appointments", "payments")))
    assert len(statements) == 3
    assert all("JOIN" not in s for s in statements)  # no row multiplication anywhere
    assert all(" IN (" in s for s in statements[1:])
    assert_loaded(rows, "appointments", "payments")


def test_many_to_many_is_a_collection(db: Session) -> None:
    rows, statements = run(db, select(Service).options(*eager(Service, "barbers")))
    assert len(statements) == 2
    assert_loaded(rows, "barbers")


def test_one_to_one_is_scalar(db: Session) -> None:
    # Appointment.payment is one-to-many in direction but uselist=False: one row at most.
    rows, statements = run(db, select(Appointment).options(*eager(Appointment, "payment")))
    assert len(statements) == 1
    assert_loaded(rows, "payment")


def test_scalar_under_a_collection_joins_into_the_select_in_statement(db: Session) -> None:
    rows, statements = run(db, select(User).options(*eager(User, "appointments.client")))
    assert len(statements) == 2
    assert "JOIN clients" in statements[1]
    assert_loaded(rows, "appointments.client")


def test_shared_prefixes_are_loaded_once(db: Session) -> None:
    options = eager(User, "appointments.client", "appointments.payment", "appointments")
    assert len(options) == 1  # one option for User.appointments, carrying both sub-paths
    rows, statements = run(db, select(User).options(*options))
    assert len(statements) == 2
    assert sum("FROM appointments" in s for s in statements) == 1
    assert_loaded(rows, "appointments.client", "appointments.payment")


def test_a_suffix_in_one_path_applies_to_the_shared_hop(db: Session) -> None:
    rows, statements = run(
        db, select(User).options(*eager(User, "appointments:subquery.client", "appointments"))
    )
    assert len(statements) == 2
    assert "FROM (SELECT" in statements[1]  # subqueryload re-runs the parent query inside
    assert_loaded(rows, "appointments.client")


@pytest.mark.parametrize(
    ("path", "expected_statements"),
    [
        ("client:selectin", 2),
        ("payment:subquery", 2),
        ("user:joined", 1),
        ("service:immediate", 1 + 3),  # one per distinct service not yet in the session
    ],
)
def test_forced_strategies_load(db: Session, path: str, expected_statements: int) -> None:
    rows, statements = run(db, select(Appointment).options(*eager(Appointment, path)))
    assert_loaded(rows, path)
    assert len(statements) == expected_statements


def test_raise_suffix_makes_the_access_raise(db: Session) -> None:
    rows, _ = run(db, select(Appointment).options(*eager(Appointment, "client", "payment:raise")))
    with pytest.raises(InvalidRequestError, match="payment"):
        rows[0].payment  # type: ignore[attr-defined]  # noqa: B018


def test_noload_suffix_loads_nothing(db: Session) -> None:
    # SQLAlchemy 2.1 deprecates noload() and warns; the suffix passes that warning through.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SADeprecationWarning)
        options = eager(User, "appointments:noload")
    rows, statements = run(db, select(User).options(*options))
    with sqlaopt.count_queries() as queries:
        assert all(user.appointments == [] for user in rows)  # type: ignore[attr-defined]
    assert (len(statements), queries.count) == (1, 0)


def test_forced_joined_collection_returns_each_root_once(db: Session) -> None:
    stmt = select(User).order_by(User.id).options(*eager(User, "appointments:joined.client"))
    with sqlaopt.count_queries() as queries:
        users = db.scalars(stmt).unique().all()
    assert queries.count == 1
    all_users = db.scalars(select(User).order_by(User.id)).all()
    assert [u.id for u in users] == [u.id for u in all_users]
    assert_loaded(users, "appointments.client")


def test_forced_joined_collection_needs_unique_as_sqlalchemy_requires(db: Session) -> None:
    stmt = select(User).options(*eager(User, "appointments:joined"))
    with pytest.raises(InvalidRequestError, match="unique"):
        db.scalars(stmt).all()


def test_forced_joined_collection_with_limit_counts_roots_not_rows(db: Session) -> None:
    clients = select(User).where(User.unified_role == "client").order_by(User.id)
    first_five = db.scalars(clients.limit(5)).all()
    db.expunge_all()
    stmt = clients.limit(5).options(*eager(User, "appointments:joined"))
    users = db.scalars(stmt).unique().all()
    assert [u.id for u in users] == [u.id for u in first_five]
    assert touch(users, "appointments") > 5  # more child rows than roots, yet 5 roots


def test_aliased_root(db: Session) -> None:
    appointment = aliased(Appointment)
    stmt = select(appointment).options(*eager(appointment, "client", "user.appointments"))
    rows, statements = run(db, stmt)
    assert len(statements) == 2
    assert_loaded(rows, "client", "user.appointments")


def test_no_paths_gives_no_options() -> None:
    assert eager(User) == ()


def test_options_are_sqlalchemy_options_usable_in_a_statement() -> None:
    stmt = select(Payment).options(*eager(Payment, "appointment.client", "user"))
    assert "payments" in str(stmt)
