"""Presets on models that name things differently: ``rename=`` wherever a preset is bound,
the start-up re-targeting of the built-in presets, and the detector's suggestion."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Column, Engine, ForeignKey, Integer, String, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Session, relationship

import sqlaopt
import sqlaopt.presets
from sqlaopt import PresetError, assert_loaded
from sqlaopt.indexes import apply
from sqlaopt.loading import Preset, covering_preset
from sqlaopt.loading._rename import reset_retarget
from sqlaopt.presets import (
    APPOINTMENT_DETAILS,
    DAILY_SCHEDULE,
    USER_APPOINTMENTS_WITH_CLIENTS,
    retarget,
)

# These tests load eagerly to inspect what was loaded, without reading it: not waste.
pytestmark = pytest.mark.nplusone(unused_eager=False)


class AppBase(DeclarativeBase):
    pass


class Member(AppBase):  # the presets' User
    __tablename__ = "members"
    id = Column(Integer, primary_key=True)
    bookings = relationship("Booking", back_populates="member")


class Customer(AppBase):  # Client
    __tablename__ = "customers"
    id = Column(Integer, primary_key=True)
    name = Column(String(40))


class Booking(AppBase):  # Appointment
    __tablename__ = "bookings"
    id = Column(Integer, primary_key=True)
    member_id = Column(ForeignKey("members.id"))
    customer_id = Column(ForeignKey("customers.id"))
    member = relationship(Member, back_populates="bookings")
    customer = relationship(Customer)
    receipt = relationship("Receipt", uselist=False, back_populates="booking")


class Receipt(AppBase):  # Payment
    __tablename__ = "receipts"
    id = Column(Integer, primary_key=True)
    booking_id = Column(ForeignKey("bookings.id"))
    booking = relationship(Booking, back_populates="receipt")


NAMES = {
    "User": "Member",
    "User.appointments": "bookings",
    "Appointment": "Booking",
    "Appointment.client": "customer",
    "Appointment.payment": "receipt",
    "Client": "Customer",
}


@pytest.fixture
def engine() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    AppBase.metadata.create_all(engine)
    with Session(engine) as session:
        member = Member(id=1)
        session.add_all([
            Booking(id=i, member=member, customer=Customer(id=i, name=f"C{i}"),
                    receipt=Receipt(id=i) if i % 2 else None)
            for i in range(1, 6)
        ])
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def no_retargeting() -> Iterator[None]:
    reset_retarget()
    yield
    reset_retarget()


def test_without_a_mapping_the_presets_do_not_bind_and_say_how_to_map() -> None:
    with pytest.raises(PresetError) as raised:
        DAILY_SCHEDULE.options(AppBase)
    assert str(raised.value) == (
        "preset DAILY_SCHEDULE: no mapped class named 'Appointment' in the registry of AppBase;"
        " mapped classes: Booking, Customer, Member, Receipt. If yours is named differently,"
        " map it: rename={'Appointment': '...'}"
    )


def test_rename_binds_a_preset_to_other_names(engine: Engine) -> None:
    options = DAILY_SCHEDULE.options(AppBase, rename=NAMES)
    with Session(engine) as session, sqlaopt.count_queries() as queries:
        bookings = session.scalars(select(Booking).options(*options)).all()
        assert_loaded(bookings, "customer", "receipt")
    assert queries.count == 1 and len(bookings) == 5


def test_a_relationship_rename_applies_to_the_class_a_deeper_hop_lands_on(engine: Engine) -> None:
    options = USER_APPOINTMENTS_WITH_CLIENTS.options(AppBase, rename=NAMES)
    with Session(engine) as session, sqlaopt.count_queries() as queries:
        members = session.scalars(select(Member).options(*options)).all()
        assert_loaded(members, "bookings.customer")
    assert queries.count == 2
    assert USER_APPOINTMENTS_WITH_CLIENTS.explain(AppBase, rename=NAMES) == (
        "USER_APPOINTMENTS_WITH_CLIENTS on Member: 2 statements\n"
        "  bookings           selectinload  (collection)\n"
        "  bookings.customer  joinedload    (scalar)"
    )


def test_one_mapping_serves_every_preset() -> None:
    """Keys another preset uses are accepted when they name something in the models (here
    User → Member and User.appointments → bookings for DAILY_SCHEDULE)."""
    assert DAILY_SCHEDULE.options(AppBase, rename=NAMES)
    assert USER_APPOINTMENTS_WITH_CLIENTS.options(Member, rename=NAMES)


def test_the_keyword_is_the_index_specs() -> None:
    for bound in (Preset.options, Preset.explain, apply, covering_preset):
        parameter = inspect.signature(bound).parameters["rename"]
        assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default is None


@pytest.mark.parametrize(
    ("rename", "message"),
    [
        ({**NAMES, "Appointment.clinet": "custmer"},
         "preset DAILY_SCHEDULE: rename key 'Appointment.clinet' is not a class or relationship"
         " this preset uses (did you mean 'Appointment.client'?); it uses: Appointment,"
         " Appointment.client, Appointment.payment, Client, Receipt"),
        ({**NAMES, "Service": "Treatment"},
         "rename key 'Service' is not a class or relationship this preset uses;"),
        ({**NAMES, "User.appointments": "visits"},
         "rename key 'User.appointments' is not a class or relationship this preset uses;"),
        ({**NAMES, "Appointment.client": "custmer"},
         "preset DAILY_SCHEDULE: Booking has no relationship 'custmer' (did you mean 'customer'?);"
         " relationships of Booking: customer, member, receipt ('client' renamed by"
         " rename={'Appointment.client': 'custmer'})"),
        ({"Appointment.client.name": "x"},
         "rename key 'Appointment.client.name' must be 'Class' or 'Class.relationship'"),
        ({"Appointment": ""}, "rename['Appointment'] must be the one name it has in your models"),
        ({"Appointment": "app.Booking"}, "must be the one name it has in your models"),
        ([("Appointment", "Booking")], "rename must be a mapping"),
    ],
)
def test_bad_mappings_fail_when_binding_with_what_is_wrong(rename: Any, message: str) -> None:
    with pytest.raises(PresetError) as raised:
        DAILY_SCHEDULE.options(AppBase, rename=rename)
    assert message in str(raised.value)


def test_retarget_once_at_start_up(engine: Engine) -> None:
    failures = retarget(AppBase, rename=NAMES)
    # Presets needing what these models lack say so now, not when a page first loads.
    assert set(failures) == {"APPOINTMENT_DETAILS", "PAYMENT_DETAILS", "USER_ORGANIZATIONS"}
    assert failures["APPOINTMENT_DETAILS"].startswith(
        "preset APPOINTMENT_DETAILS: Booking has no relationship 'service'"
    )
    with Session(engine) as session, sqlaopt.count_queries() as queries:
        bookings = session.scalars(select(Booking).options(*DAILY_SCHEDULE.options(AppBase)))
        assert_loaded(bookings.all(), "customer", "receipt")
    assert queries.count == 1
    assert retarget(AppBase, rename=dict(NAMES)) == failures  # the same mapping: a no-op
    with pytest.raises(PresetError, match="re-targeted already"):
        retarget(AppBase, rename={**NAMES, "Appointment.client": "client"})
    # A preset of your own is written in your names: the re-targeting leaves it alone.
    assert Preset("Booking", "customer").options(AppBase)
    with pytest.raises(PresetError):
        APPOINTMENT_DETAILS.options(AppBase)


def test_a_retarget_with_an_unused_key_changes_nothing() -> None:
    with pytest.raises(PresetError, match=r"rename key 'Apointment' is not a class or "
                       r"relationship any built-in preset uses \(did you mean 'Appointment'\?\)"):
        retarget(AppBase, rename={**NAMES, "Apointment": "Booking"})
    with pytest.raises(PresetError, match="no mapped class named 'Appointment'"):
        DAILY_SCHEDULE.options(AppBase)
    assert retarget(AppBase, rename=NAMES)  # not re-targeted before: allowed now


def test_the_detector_suggests_a_re_targeted_preset(engine: Engine) -> None:
    def suggestion() -> str:
        with Session(engine) as session, sqlaopt.detect("record") as report:
            for booking in session.scalars(select(Booking)):
                booking.customer  # noqa: B018 (the lazy load is the point)
        return report.detections[0].suggestion

    assert suggestion() == "joinedload(Booking.customer)"
    retarget(AppBase, rename=NAMES)
    assert suggestion() == "joinedload(Booking.customer) or use sqlaopt.presets.DAILY_SCHEDULE"


def test_covering_preset_takes_the_mapping() -> None:
    assert covering_preset("Member", ("bookings", "customer"), target=Member) is None
    found = covering_preset("Member", ("bookings", "customer"), target=Member, rename=NAMES)
    assert found == "sqlaopt.presets.USER_APPOINTMENTS_WITH_CLIENTS"
    # Without models only the root class and its own relationships can be translated.
    assert covering_preset("Booking", ("customer",), rename=NAMES) == (
        "sqlaopt.presets.DAILY_SCHEDULE"
    )
    assert covering_preset("Booking", ("customer",), rename={"Apointment": "x"}) is None
