"""PresetError: raised by eager() and Preset.options() themselves, with a message that names the
model, the bad name, what exists and the closest match."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import ForeignKey
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry, relationship

from sqlaopt import Preset, PresetError, SqlaoptError, eager
from sqlaopt.booking.models import Appointment, Base, User

USER_RELATIONSHIPS = (
    "ai_insights, appointments, availability_schedule, payments, services_offered,"
    " user_organizations"
)


def message(excinfo: pytest.ExceptionInfo[PresetError]) -> str:
    return str(excinfo.value)


def test_preset_error_is_a_sqlaopt_error() -> None:
    assert issubclass(PresetError, SqlaoptError)


@pytest.mark.parametrize(
    ("root", "path", "expected"),
    [
        # The real backend's broken bundle, name by name.
        (User, "client_profile", "User has no relationship 'client_profile';"),
        (User, "services",
         "User has no relationship 'services' (did you mean 'services_offered'?);"),
        (Appointment, "payments",
         "Appointment has no relationship 'payments' (did you mean 'payment'?);"),
    ],
)
def test_unknown_relationship(root: type, path: str, expected: str) -> None:
    with pytest.raises(PresetError) as excinfo:
        eager(root, path)
    assert message(excinfo).startswith(expected)
    assert message(excinfo).endswith(f"relationships of {root.__name__}: " + (
        USER_RELATIONSHIPS if root is User
        else "barber, client, organization, payment, service, user"
    ))


def test_deep_hop_names_its_own_model_and_the_path() -> None:
    with pytest.raises(PresetError) as excinfo:
        eager(User, "appointments.client.apointments")
    assert message(excinfo) == (
        "Client has no relationship 'apointments' in path 'appointments.client.apointments'"
        " (did you mean 'appointments'?); relationships of Client: appointments,"
        " preferred_barber"
    )


def test_column_instead_of_relationship() -> None:
    with pytest.raises(PresetError) as excinfo:
        eager(Appointment, "client_id")
    assert message(excinfo) == (
        "'client_id' is a column of Appointment, not a relationship (did you mean 'client'?);"
        " relationships of Appointment: barber, client, organization, payment, service, user"
    )


def test_method_is_not_a_relationship() -> None:
    with pytest.raises(PresetError, match="User has no relationship 'get_role_in_organization'"):
        eager(User, "get_role_in_organization")


@pytest.mark.parametrize("suffix", ["joind", "lazy", "", "selectin:joined"])
def test_unknown_suffix_lists_the_allowed_ones(suffix: str) -> None:
    with pytest.raises(PresetError) as excinfo:
        eager(User, f"appointments:{suffix}")
    assert "unknown strategy suffix" in message(excinfo)
    assert message(excinfo).endswith(
        "allowed suffixes: joined, selectin, subquery, immediate, raise, noload"
    )


def test_unknown_suffix_suggests_the_closest() -> None:
    with pytest.raises(PresetError, match=re.escape("(did you mean 'joined'?)")):
        eager(User, "appointments:joind")


def test_bad_suffix_fails_when_the_preset_is_declared() -> None:
    with pytest.raises(PresetError, match="unknown strategy suffix ':selectn'"):
        Preset("User", "appointments:selectn")


@pytest.mark.parametrize("path", ["", "appointments..client", ".client", "appointments."])
def test_empty_hops(path: str) -> None:
    with pytest.raises(PresetError, match="empty"):
        eager(User, path)


def test_an_attribute_instead_of_a_string_gets_a_hint() -> None:
    with pytest.raises(PresetError, match=re.escape("(write 'appointments')")):
        eager(User, User.appointments)  # type: ignore[arg-type]


def test_nothing_can_follow_raise_or_noload() -> None:
    with pytest.raises(PresetError, match="'appointments' is forced to 'raise'"):
        eager(User, "appointments:raise.client")
    with pytest.raises(PresetError, match="'appointments' is forced to 'noload'"):
        eager(User, "appointments:noload", "appointments.client")


def test_conflicting_suffixes_for_one_hop() -> None:
    with pytest.raises(PresetError, match="conflicting strategies for 'appointments'"):
        eager(User, "appointments:subquery", "appointments:joined.client")


def test_root_must_be_mapped() -> None:
    with pytest.raises(PresetError, match="expected a mapped class"):
        eager("User", "appointments")
    with pytest.raises(PresetError, match="expected a mapped class"):
        eager(Base, "appointments")


def test_root_missing_from_the_registry() -> None:
    with pytest.raises(PresetError) as excinfo:
        Preset("Appointmnt", "client").options(Base)
    assert message(excinfo).startswith(
        "Preset('Appointmnt', 'client'): no mapped class named 'Appointmnt' in the registry of"
        " Base (did you mean 'Appointment'?); mapped classes: AIInsightCache, Appointment,"
    )


def test_named_preset_errors_name_the_preset() -> None:
    preset = Preset("Appointment", "payments", name="BROKEN")
    with pytest.raises(PresetError) as excinfo:
        preset.options(Base)
    assert message(excinfo).startswith(
        "preset BROKEN: Appointment has no relationship 'payments' (did you mean 'payment'?)"
    )


def test_target_without_a_registry() -> None:
    with pytest.raises(PresetError, match="binds to a mapped class, a declarative base"):
        Preset("User", "appointments").options(object())


def test_two_classes_of_one_name_in_a_registry_need_the_class_itself() -> None:
    shared = registry()

    def declare(module: str) -> type:
        class Base2(DeclarativeBase):
            registry = shared

        class User(Base2):
            __tablename__ = f"{module}_users"
            id: Mapped[int] = mapped_column(primary_key=True)
            manager_id = mapped_column(ForeignKey(f"{module}_users.id"))
            # Class references, not the name: the name "User" is ambiguous in this registry.
            manager = relationship(lambda: User, remote_side=lambda: User.id)

        User.__module__, User.__qualname__ = module, "User"
        return User

    first, _second = declare("app_a"), declare("app_b")
    expected = "'User' names 2 mapped classes in the given registry: app_a.User, app_b.User"
    with pytest.raises(PresetError, match=re.escape(expected)):
        Preset("User", "manager").options(shared)
    assert len(Preset("User", "manager").options(first)) == 1


def test_query_only_relationships_are_refused_early() -> None:
    class Base3(DeclarativeBase):
        pass

    class Parent(Base3):
        __tablename__ = "parents"
        id: Mapped[int] = mapped_column(primary_key=True)
        children = relationship("Child", lazy="dynamic")

    class Child(Base3):
        __tablename__ = "children"
        id: Mapped[int] = mapped_column(primary_key=True)
        parent_id = mapped_column(ForeignKey("parents.id"))

    with pytest.raises(PresetError, match=r"lazy='dynamic' relationship .* cannot be eager loaded"):
        eager(Parent, "children")


def test_preset_root_must_be_a_name_and_paths_are_required() -> None:
    with pytest.raises(PresetError, match="root is a class name"):
        Preset(User, "appointments")  # type: ignore[arg-type]
    with pytest.raises(PresetError, match="has no paths"):
        Preset("User")
