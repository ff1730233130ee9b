"""The performance report's loader bundles (section 1.3) as ready-made presets.

Each preset names its root class and relationships the way the booking backend does, and
binds to any model base that has classes and relationships of those names::

    stmt = select(Appointment).options(*APPOINTMENT_DETAILS.options(Base))

Strategies follow the rule of :func:`sqlaopt.eager`: joined loading for scalar relationships,
select-IN loading for collections. ``docs/presets.md`` lists each preset's statement count.

Models that name things differently pass ``rename=`` where a preset is bound
(``DAILY_SCHEDULE.options(Base, rename={"Appointment.client": "customer"})``), or re-target
every built-in preset once, at start-up, with :func:`retarget`.
"""

from __future__ import annotations

from .loading import Preset
from .loading._rename import retarget

__all__ = [
    "APPOINTMENT_DETAILS",
    "DAILY_SCHEDULE",
    "PAYMENT_DETAILS",
    "USER_APPOINTMENTS_WITH_CLIENTS",
    "USER_ORGANIZATIONS",
    "retarget",
]

USER_ORGANIZATIONS = Preset(
    "User",
    "user_organizations.organization",
    name="USER_ORGANIZATIONS",
    doc="Users with their memberships and each membership's organization, for"
    " User.get_role_in_organization and organization pickers. 2 statements: the report"
    " joined the memberships collection, which repeats every user once per membership.",
)

APPOINTMENT_DETAILS = Preset(
    "Appointment",
    "payment",
    "client",
    "service",
    "user",
    name="APPOINTMENT_DETAILS",
    doc="Appointments with their payment, client, service and user, for appointment lists"
    " and detail pages. All scalar: 1 statement.",
)

USER_APPOINTMENTS_WITH_CLIENTS = Preset(
    "User",
    "appointments.client",
    name="USER_APPOINTMENTS_WITH_CLIENTS",
    doc="Users with their appointments and each appointment's client, for a user's"
    " booking history. 2 statements.",
)

DAILY_SCHEDULE = Preset(
    "Appointment",
    "client",
    "payment",
    name="DAILY_SCHEDULE",
    doc="A day's appointments with client and payment, for the barber's schedule view."
    " All scalar: 1 statement.",
)

PAYMENT_DETAILS = Preset(
    "Payment",
    "appointment.client",
    "user",
    name="PAYMENT_DETAILS",
    doc="Payments with their appointment, that appointment's client, and the paying user,"
    " for payment reports and receipts. All scalar: 1 statement.",
)
