"""Preset: binding by name, immutability, hashing, repr, combination and explain()."""

from __future__ import annotations

import copy
import pickle

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt import Preset, PresetError, assert_loaded
from sqlaopt.booking.models import Appointment, Base, User

# These tests load eagerly to inspect what was loaded, without reading it: not waste.
pytestmark = pytest.mark.nplusone(unused_eager=False)

HISTORY = Preset("User", "appointments.client", name="HISTORY", doc="A user's bookings.")


@pytest.mark.parametrize("target", [Base, Base.registry, User, Appointment],
                         ids=["base", "registry", "User", "Appointment"])
def test_binds_to_a_class_a_base_or_a_registry(db: Session, target: object) -> None:
    with sqlaopt.count_queries() as queries:
        users = db.scalars(select(User).options(*HISTORY.options(target))).all()
    assert queries.count == 2
    assert_loaded(users, "appointments.client")


def test_attributes() -> None:
    assert (HISTORY.root, HISTORY.paths, HISTORY.name, HISTORY.doc) == (
        "User", ("appointments.client",), "HISTORY", "A user's bookings."
    )


def test_is_immutable() -> None:
    with pytest.raises(AttributeError, match="immutable"):
        HISTORY.name = "OTHER"  # type: ignore[misc]
    with pytest.raises(AttributeError, match="immutable"):
        del HISTORY.doc
    with pytest.raises(AttributeError):
        HISTORY.extra = 1


def test_is_hashable_and_compares_by_value() -> None:
    same = Preset("User", "appointments.client", name="HISTORY", doc="A user's bookings.")
    assert same == HISTORY and hash(same) == hash(HISTORY)
    assert len({HISTORY, same, Preset("User", "appointments")}) == 2
    assert Preset("User", "appointments.client") != HISTORY  # the name is part of the value
    assert HISTORY != "HISTORY"


def test_duplicate_paths_are_dropped() -> None:
    assert Preset("User", "appointments", "appointments").paths == ("appointments",)


def test_repr_rebuilds_the_preset() -> None:
    forced = Preset("User", "appointments:subquery.client", "payments", name="FORCED")
    assert repr(forced) == (
        "Preset('User', 'appointments:subquery.client', 'payments', name='FORCED')"
    )
    assert eval(repr(forced), {"Preset": Preset}) == forced


def test_explain_shows_each_hop_strategy_and_the_statement_count() -> None:
    forced = Preset("User", "appointments:subquery.client", "payments.appointment", name="F")
    assert forced.explain(Base) == (
        "F on User: 3 statements\n"
        "  appointments          subqueryload  (collection)\n"
        "  appointments.client   joinedload    (scalar)\n"
        "  payments              selectinload  (collection)\n"
        "  payments.appointment  joinedload    (scalar)"
    )


def test_pickles_and_copies() -> None:
    assert pickle.loads(pickle.dumps(HISTORY)) == HISTORY
    assert copy.deepcopy(HISTORY) == HISTORY
    assert copy.copy(HISTORY) == HISTORY


def test_combining_presets_of_one_root(db: Session) -> None:
    combined = HISTORY + Preset("User", "appointments:selectin.payment", "payments", name="PAY")
    assert combined.paths == ("appointments.client", "appointments:selectin.payment", "payments")
    assert combined.name == "HISTORY + PAY"
    with sqlaopt.count_queries() as queries:
        users = db.scalars(select(User).options(*combined.options(Base))).all()
    assert queries.count == 3  # users, appointments (with client and payment), payments
    assert_loaded(users, *combined.paths)


def test_combining_drops_the_name_when_one_side_has_none() -> None:
    assert (HISTORY + Preset("User", "payments")).name is None


def test_combining_different_roots_fails() -> None:
    with pytest.raises(PresetError, match="cannot combine a preset of User with one of Payment"):
        HISTORY + Preset("Payment", "user")


def test_combining_conflicting_strategies_fails_at_the_plus() -> None:
    with pytest.raises(PresetError, match="conflicting strategies for 'appointments'"):
        Preset("User", "appointments:selectin") + Preset("User", "appointments:subquery")


def test_combining_with_something_else_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        HISTORY + "payments"  # type: ignore[operator]


def test_public_names_are_the_same_objects_everywhere() -> None:
    import sqlaopt.loading

    assert sqlaopt.eager is sqlaopt.loading.eager
    assert sqlaopt.Preset is sqlaopt.loading.Preset
    assert sqlaopt.assert_loaded is sqlaopt.loading.assert_loaded
    assert sqlaopt.PresetError is PresetError


def test_explain_counts_immediate_hops_per_parent_row() -> None:
    preset = Preset("Appointment", "client:immediate", "payment")
    assert preset.explain(Base).splitlines()[0] == (
        "Preset on Appointment: 1 statement + 1 per parent row (immediate)"
    )

