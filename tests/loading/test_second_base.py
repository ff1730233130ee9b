"""Built-in presets on a second, differently named model base: they bind by name and work
unchanged; a base that lacks a relationship fails at options() time."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import DeclarativeBase, Session

import sqlaopt
import sqlaopt.presets
from sqlaopt import PresetError, assert_loaded
from sqlaopt.booking import models
from sqlaopt.booking.models import Base

from .backend_models import BackendModels
from .conftest import touch
from .test_builtin_presets import BUILT_IN, PROMISED_STATEMENTS


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_built_in_presets_work_unchanged_on_another_base(
    backend: BackendModels, backend_engine: Engine, name: str
) -> None:
    preset = BUILT_IN[name]
    root = backend[preset.root]
    assert root is not getattr(models, preset.root)
    stmt = select(root).order_by(*inspect(root).primary_key).options(*preset.options(backend.base))
    with (
        Session(backend_engine) as session,
        sqlaopt.count_queries() as queries,
        sqlaopt.detect(mode="raise"),
    ):
        rows = session.scalars(stmt).all()
        assert_loaded(rows, *preset.paths)
        reached = [touch(rows, path) for path in preset.paths]
    assert rows and all(reached)
    assert queries.count == PROMISED_STATEMENTS[name]


@pytest.mark.parametrize("name", sorted(BUILT_IN))
def test_binding_through_the_registry_or_a_class_gives_the_same_plan(
    backend: BackendModels, name: str
) -> None:
    preset = BUILT_IN[name]
    plan = preset.explain(backend.base)
    assert preset.explain(backend.base.registry) == plan
    assert preset.explain(backend["Client"]) == plan
    assert plan == preset.explain(Base)  # same names, same kinds: same strategies


@pytest.mark.parametrize("name", ["APPOINTMENT_DETAILS", "DAILY_SCHEDULE"])
def test_a_base_lacking_a_relationship_fails_at_options_time(
    lacking_payment: BackendModels, name: str
) -> None:
    with pytest.raises(PresetError) as excinfo:
        BUILT_IN[name].options(lacking_payment.base)
    assert str(excinfo.value) == (
        f"preset {name}: Appointment has no relationship 'payment'"
        " (did you mean 'payments'?); relationships of Appointment: barber, client,"
        " payments, service, user. If yours is named differently, map it:"
        " rename={'Appointment.payment': '...'}"
    )


def test_presets_not_needing_the_missing_relationship_still_bind(
    lacking_payment: BackendModels,
) -> None:
    for name in ("USER_ORGANIZATIONS", "USER_APPOINTMENTS_WITH_CLIENTS", "PAYMENT_DETAILS"):
        assert BUILT_IN[name].options(lacking_payment.base)


def test_a_base_without_the_root_class() -> None:
    class EmptyBase(DeclarativeBase):
        pass

    with pytest.raises(
        PresetError,
        match=re.escape("preset PAYMENT_DETAILS: no mapped class named 'Payment' in the"
                        " registry of EmptyBase; mapped classes: none"),
    ):
        sqlaopt.presets.PAYMENT_DETAILS.options(EmptyBase)
