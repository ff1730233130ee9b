"""The five built-in presets on the reference schema: fixed statement counts for any N, and the
detector's N+1 gone once the preset is applied."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

import sqlaopt
import sqlaopt.presets
from sqlaopt import Preset, assert_loaded
from sqlaopt.booking import models
from sqlaopt.booking.models import Base, User
from sqlaopt.loading import covering_preset

from .backend_models import BackendModels
from .conftest import touch

# These tests load eagerly to inspect what was loaded, without reading it: not waste.
pytestmark = pytest.mark.nplusone(unused_eager=False)

BUILT_IN = {
    name: value
    for name in sqlaopt.presets.__all__
    if isinstance(value := getattr(sqlaopt.presets, name), Preset)
}
# What the issue promises: 1 for all-scalar presets, 1 + collection hops otherwise.
PROMISED_STATEMENTS = {
    "USER_ORGANIZATIONS": 2,
    "APPOINTMENT_DETAILS": 1,
    "USER_APPOINTMENTS_WITH_CLIENTS": 2,
    "DAILY_SCHEDULE": 1,
    "PAYMENT_DETAILS": 1,
}


def root_class(preset: Preset) -> Any:
    return getattr(models, preset.root)


def collection_hops(preset: Preset) -> int:
    """Distinct hops of the preset that are collections, read from the mappers."""
    hops: set[tuple[str, ...]] = set()
    collections = 0
    for path in preset.paths:
        mapper = inspect(root_class(preset))
        keys = tuple(path.split("."))
        for depth, key in enumerate(keys):
            prop = mapper.relationships[key]
            if keys[: depth + 1] not in hops:
                hops.add(keys[: depth + 1])
                collections += bool(prop.uselist)
            mapper = prop.mapper
    return collections


def test_the_module_holds_exactly_the_report_bundles() -> None:
    assert set(sqlaopt.presets.__all__) - set(BUILT_IN) == {"retarget"}
    assert list(BUILT_IN) == [
        "APPOINTMENT_DETAILS", "DAILY_SCHEDULE", "PAYMENT_DETAILS",
        "USER_APPOINTMENTS_WITH_CLIENTS", "USER_ORGANIZATIONS",
    ]
    for name, preset in BUILT_IN.items():
        assert isinstance(preset, Preset)
        assert preset.name == name and preset.doc


@pytest.mark.parametrize("name", sorted(PROMISED_STATEMENTS))
def test_promised_counts_follow_the_rule(name: str) -> None:
    preset = BUILT_IN[name]
    assert PROMISED_STATEMENTS[name] == 1 + collection_hops(preset)
    assert preset.explain(Base).splitlines()[0].endswith(
        f": {PROMISED_STATEMENTS[name]} statement" + ("s" if PROMISED_STATEMENTS[name] > 1 else "")
    )


@pytest.mark.parametrize("n", [1, 10, 500])
@pytest.mark.parametrize("name", sorted(PROMISED_STATEMENTS))
def test_n_rows_load_in_a_fixed_number_of_statements(
    large_engine: Engine, name: str, n: int
) -> None:
    preset = BUILT_IN[name]
    root = root_class(preset)
    stmt = select(root).order_by(*inspect(root).primary_key).limit(n)
    with Session(large_engine) as session, sqlaopt.count_queries() as queries:
        rows = session.scalars(stmt.options(*preset.options(Base))).all()
        assert len(rows) == n
        with sqlaopt.count_queries() as checking:
            assert_loaded(rows, *preset.paths)
        reached = [touch(rows, path) for path in preset.paths]
    assert checking.count == 0
    assert queries.count == PROMISED_STATEMENTS[name], queries.statements
    if n > 1:  # the first root may have nothing below it; ten always do
        assert all(reached)


@pytest.mark.parametrize("name", sorted(PROMISED_STATEMENTS))
def test_the_detector_finds_the_n_plus_one_before_and_nothing_after(
    booking_engine: Engine, name: str
) -> None:
    preset = BUILT_IN[name]
    stmt = select(root_class(preset)).order_by(*inspect(root_class(preset)).primary_key)
    with Session(booking_engine) as session, sqlaopt.detect(mode="record") as before:
        rows = session.scalars(stmt).all()
        for path in preset.paths:
            touch(rows, path)
    assert before.detections, "the loop without the preset should be an N+1"
    assert {d.kind for d in before.detections} == {"lazy_load"}
    assert any("sqlaopt.presets." in d.suggestion for d in before.detections)

    with Session(booking_engine) as session, sqlaopt.detect(mode="raise") as after:
        rows = session.scalars(stmt.options(*preset.options(Base))).all()
        for path in preset.paths:
            touch(rows, path)
    assert after.detections == []


def test_get_role_in_organization_loop_is_fixed_by_user_organizations(
    booking_engine: Engine,
) -> None:
    """The backend's own N+1: a model method walking ``self.user_organizations``."""
    with Session(booking_engine) as session, sqlaopt.detect(mode="record") as before:
        for user in session.scalars(select(User)).all():
            user.get_role_in_organization(1)
    assert [(d.model, d.relationship) for d in before.detections] == [
        ("User", "user_organizations")
    ]
    assert "sqlaopt.presets.USER_ORGANIZATIONS" in before.detections[0].suggestion

    options = sqlaopt.presets.USER_ORGANIZATIONS.options(Base)
    with Session(booking_engine) as session, sqlaopt.detect(mode="record") as after:
        for user in session.scalars(select(User).options(*options)).all():
            user.get_role_in_organization(1)
    # No N+1 left; the preset also loads each membership's organization, which this method
    # never reads (issue 13's unused eager load).
    assert [(d.kind, d.target) for d in after.detections] == [
        ("unused_eager_load", "UserOrganization.organization")]


@pytest.mark.parametrize(
    ("model", "path", "expected"),
    [
        # DAILY_SCHEDULE (2 paths) is the smallest preset covering client and payment.
        ("Appointment", ("client",), "sqlaopt.presets.DAILY_SCHEDULE"),
        ("Appointment", ("payment",), "sqlaopt.presets.DAILY_SCHEDULE"),
        ("Appointment", ("service",), "sqlaopt.presets.APPOINTMENT_DETAILS"),
        ("User", ("appointments",), "sqlaopt.presets.USER_APPOINTMENTS_WITH_CLIENTS"),
        ("User", ("appointments", "client"), "sqlaopt.presets.USER_APPOINTMENTS_WITH_CLIENTS"),
        ("User", ("user_organizations", "organization"), "sqlaopt.presets.USER_ORGANIZATIONS"),
        ("Payment", ("appointment", "client"), "sqlaopt.presets.PAYMENT_DETAILS"),
        ("Payment", ("user",), "sqlaopt.presets.PAYMENT_DETAILS"),
        ("User", "appointments.client", "sqlaopt.presets.USER_APPOINTMENTS_WITH_CLIENTS"),
        ("Appointment", ("barber",), None),
        ("User", ("appointments", "service"), None),
        ("Payment", ("appointment", "client", "appointments"), None),
        ("Client", ("appointments",), None),
        ("UserOrganization", ("organization",), None),
        ("User", (), None),
    ],
)
def test_covering_preset(model: str, path: tuple[str, ...], expected: str | None) -> None:
    assert covering_preset(model, path) == expected


@pytest.mark.parametrize(
    ("model", "path"),
    [(None, ("client",)), ("Appointment", None), ("Appointment", 5), (3, object())],
)
def test_covering_preset_never_raises(model: Any, path: Any) -> None:
    assert covering_preset(model, path) is None


def test_covering_preset_names_resolve_to_the_preset() -> None:
    dotted = covering_preset("Appointment", ("client",))
    assert dotted is not None
    module, _, attribute = dotted.rpartition(".")
    assert getattr(__import__(module, fromlist=[attribute]), attribute) is BUILT_IN[attribute]


def test_covering_preset_can_skip_presets_that_do_not_bind(
    lacking_payment: BackendModels,
) -> None:
    # Appointment.client is covered by DAILY_SCHEDULE and APPOINTMENT_DETAILS, but these
    # models have no Appointment.payment, which both presets load: neither binds.
    assert covering_preset("Appointment", ("client",), target=Base) == (
        "sqlaopt.presets.DAILY_SCHEDULE"
    )
    assert covering_preset("Appointment", ("client",), target=lacking_payment.base) is None
