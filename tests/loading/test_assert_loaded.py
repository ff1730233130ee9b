"""assert_loaded(): true when paths are loaded, precise when not, and never any SQL."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, raiseload

import sqlaopt
from sqlaopt import PresetError, assert_loaded, eager
from sqlaopt.booking.models import Appointment, User

# These tests load eagerly to inspect what was loaded, without reading it: not waste.
pytestmark = pytest.mark.nplusone(unused_eager=False)


def test_passes_on_loaded_paths_without_sql(db: Session) -> None:
    users = db.scalars(select(User).options(*eager(User, "appointments.client", "payments"))).all()
    with sqlaopt.count_queries() as queries:
        assert_loaded(users, "appointments.client", "payments", "appointments")
    assert queries.count == 0


def test_fails_on_the_first_hop_without_sql(db: Session) -> None:
    users = db.scalars(select(User).order_by(User.id)).all()
    with sqlaopt.count_queries() as queries, pytest.raises(AssertionError) as excinfo:
        assert_loaded(users, "appointments")
    assert queries.count == 0
    assert str(excinfo.value) == (
        "User(id=1).appointments is not loaded (path 'appointments');"
        " reading it would emit SQL or raise"
    )


def test_fails_deep_naming_how_the_instance_was_reached(db: Session) -> None:
    users = db.scalars(
        select(User).where(User.unified_role == "client").order_by(User.id)
        .options(*eager(User, "appointments"))
    ).all()
    first = next(u for u in users if u.appointments)
    appointment = first.appointments[0]
    with sqlaopt.count_queries() as queries, pytest.raises(AssertionError) as excinfo:
        assert_loaded(users, "appointments.client")
    assert queries.count == 0
    assert str(excinfo.value).startswith(
        f"User(id={first.id}).appointments -> Appointment(id={appointment.id}).client"
        " is not loaded (path 'appointments.client')"
    )


def test_one_instance(db: Session) -> None:
    appointment = db.scalars(select(Appointment).options(*eager(Appointment, "client"))).first()
    assert_loaded(appointment, "client")
    with pytest.raises(AssertionError, match=r"Appointment\(id=\d+\)\.payment is not loaded"):
        assert_loaded(appointment, "payment")


def test_a_scalar_loaded_as_none_ends_the_path(db: Session) -> None:
    unpaid = db.scalars(
        select(Appointment).where(~Appointment.payment.has())
        .options(*eager(Appointment, "payment"))
    ).all()
    assert unpaid and all(a.payment is None for a in unpaid)
    assert_loaded(unpaid, "payment.user.appointments")  # nothing below None to load


def test_expired_instances_are_not_loaded_and_reporting_them_emits_no_sql(db: Session) -> None:
    users = db.scalars(select(User).options(*eager(User, "appointments"))).all()
    db.expire_all()  # User.__repr__ reads self.id: calling it now would refresh the row
    with sqlaopt.count_queries() as queries, pytest.raises(AssertionError, match="not loaded"):
        assert_loaded(users, "appointments")
    assert queries.count == 0


def test_raiseload_counts_as_not_loaded(db: Session) -> None:
    users = db.scalars(select(User).options(raiseload(User.appointments))).all()
    with pytest.raises(AssertionError, match="appointments is not loaded"):
        assert_loaded(users, "appointments")


def test_suffixes_are_accepted_and_ignored(db: Session) -> None:
    paths = ("appointments:subquery.client:selectin",)
    users = db.scalars(select(User).options(*eager(User, *paths))).all()
    assert_loaded(users, *paths)


def test_empty_instances_pass() -> None:
    assert_loaded([], "anything.at.all")


def test_pending_instance_is_labelled_without_identity() -> None:
    with pytest.raises(AssertionError, match=r"^User\(pending, id 0x[0-9a-f]+\)\.appointments"):
        assert_loaded(User(name="new"), "appointments")


def test_unknown_hop_is_a_preset_error(db: Session) -> None:
    users = db.scalars(select(User)).all()
    with pytest.raises(PresetError, match=re.escape("(did you mean 'appointments'?)")):
        assert_loaded(users, "apointments")


@pytest.mark.parametrize("instances", [5, ["not a model"], [None]])
def test_non_instances_are_a_type_error(instances: object) -> None:
    with pytest.raises(TypeError, match="expects mapped instances"):
        assert_loaded(instances, "appointments")
