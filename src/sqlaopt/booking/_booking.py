"""``book_appointment``: check-and-insert that stays correct when two clients book at once.

A conflict check followed by an INSERT is racy: two transactions can both find the slot free
and both insert (the project's verified notes: two threads, no lock, two rows). Every dialect
closes the race the same way: a lock that queues the bookings of one barber, taken inside the
booking transaction, then the overlap check, then the INSERT, all in that transaction. Nothing
is remembered between calls, so the guarantee does not depend on where the table lives
(schema, ``search_path``, ``schema_translate_map``) or on a constraint that may be dropped.

* PostgreSQL: ``pg_advisory_xact_lock(ADVISORY_LOCK_NAMESPACE, barber_id)``. Under READ
  COMMITTED (the default) the check after it reads a fresh snapshot, which holds every booking
  committed by the previous lock holder. Under REPEATABLE READ the snapshot may predate the
  lock, so the ``no_double_booking`` exclusion constraint must back the check: it is looked up
  in the transaction, on the table the INSERT will reach. Under SERIALIZABLE PostgreSQL itself
  refuses the second of two such bookings (a serialization failure, to retry). When the
  constraint exists, its violation (another writer) also becomes :class:`BookingConflict`.
* MySQL/MariaDB: ``SELECT ... FOR UPDATE`` on the barber's ``users`` row; the check is then a
  locking read, which sees the latest committed rows even under REPEATABLE READ.
* SQLite: a no-op ``UPDATE`` of the barber's row takes the database's write (RESERVED) lock
  before the check, as ``BEGIN IMMEDIATE`` would, but from inside a transaction pysqlite has
  already begun; other writers wait (``timeout``) until this transaction ends.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Row, Table, func, inspect, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .._errors import SqlaoptError
from ._common import ACTIVE_STATUSES
from ._views import check_booking_interval
from .models import Appointment, Base, Client, Service, User
from .optimized import conflict_predicate

__all__ = [
    "ADVISORY_LOCK_NAMESPACE",
    "BARBER_ROLE",
    "DURATION_MINUTES",
    "EXCLUSION_CONSTRAINT",
    "BookingConflict",
    "BookingError",
    "BookingInputError",
    "BookingNotFoundError",
    "BookingSetupError",
    "NotABarberError",
    "book_appointment",
]

_Row = TypeVar("_Row", bound=Base)

EXCLUSION_CONSTRAINT = "no_double_booking"
"""Name of the PostgreSQL exclusion constraint that backs :func:`book_appointment` under
REPEATABLE READ (and refuses overlaps from writers that do not use it)."""

ADVISORY_LOCK_NAMESPACE = 0x73716C61  # "sqla": first key of pg_advisory_xact_lock(ns, barber)
"""First key of the PostgreSQL advisory lock :func:`book_appointment` takes per barber."""

BARBER_ROLE = "barber"
"""The ``users.unified_role`` of a user who can be booked."""

DURATION_MINUTES = range(1, 24 * 60 + 1)
"""The service durations :func:`book_appointment` accepts: 1 minute to 24 hours."""

_EXCLUSION_VIOLATION = "23P01"  # SQLSTATE exclusion_violation


class BookingError(SqlaoptError):
    """Base class of every error :func:`book_appointment` raises."""


class BookingInputError(BookingError, ValueError):
    """An argument has the wrong type or value: the message names it and what is accepted."""


class NotABarberError(BookingError, ValueError):
    """``barber_id`` is a user, but not a barber (e.g. a client)."""


class BookingNotFoundError(BookingError, LookupError):
    """The barber, service or client does not exist."""


class BookingConflict(BookingError):
    """The barber already has a confirmed or pending appointment overlapping the slot."""

    def __init__(self, barber_id: int, start: dt.datetime, end: dt.datetime) -> None:
        self.barber_id, self.start, self.end = barber_id, start, end
        super().__init__(
            f"barber {barber_id} already has a confirmed or pending appointment "
            f"overlapping [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})"
        )


class BookingSetupError(BookingError):
    """The database cannot make booking safe as configured (SQLite in autocommit mode,
    PostgreSQL REPEATABLE READ without the exclusion constraint, an unsupported dialect)."""


def book_appointment(
    session: Session,
    *,
    barber_id: int,
    service_id: int,
    start: dt.datetime,
    client_id: int | None = None,
    status: str = "confirmed",
) -> Appointment:
    """Book ``service_id`` with ``barber_id`` at ``start`` (naive, as appointments are stored).

    The appointment lasts the service's ``duration_minutes`` (which must be in
    :data:`DURATION_MINUTES`) and costs its ``base_price``; ``client_id`` (optional) also sets
    ``user_id`` to the client's user. ``status`` must be ``"confirmed"`` or ``"pending"``.
    Returns the flushed :class:`Appointment` (it has an id).

    Raises :class:`BookingConflict` when an active appointment of the barber overlaps the slot
    (back-to-back is fine); :class:`BookingInputError` for an argument of the wrong type or
    value (ids are ints, ``start`` a naive ``datetime``); :class:`BookingNotFoundError` for an
    unknown barber, service or client; :class:`NotABarberError` when the barber's role is not
    :data:`BARBER_ROLE`; :class:`BookingSetupError` when the database cannot make the booking
    safe (see the module docstring). All are :class:`BookingError`. Nothing is written when it
    raises.

    Does not commit: the caller's transaction holds the booking and the lock until the caller
    commits or rolls back, so commit promptly. After a :class:`BookingConflict` the session is
    still usable.
    """
    _check_arguments(barber_id, service_id, start, client_id, status)
    service = _get(session, Service, service_id)
    client = _get(session, Client, client_id) if client_id is not None else None
    end = _end(start, service)
    appointment = Appointment(
        barber_id=barber_id,
        user_id=client.user_id if client else None,
        client_id=client_id,
        service_id=service.id,
        organization_id=service.organization_id,
        service_name=service.name,
        start_time=start,
        end_time=end,
        duration_minutes=service.duration_minutes,
        status=status,
        price=service.base_price,
    )
    dialect = session.get_bind(mapper=inspect(Appointment)).dialect.name
    guard = _GUARDS.get(dialect)
    if guard is None:
        raise BookingSetupError(f"book_appointment does not support the {dialect!r} dialect")
    guard(session, appointment)
    return appointment


# --- arguments --------------------------------------------------------------------------


def _check_arguments(
    barber_id: object, service_id: object, start: object, client_id: object, status: object
) -> None:
    for name, value in (("barber_id", barber_id), ("service_id", service_id)):
        _require_id(name, value)
    if client_id is not None:
        _require_id("client_id", client_id)
    if not isinstance(start, dt.datetime):
        raise BookingInputError(
            f"start must be a datetime.datetime (naive, shop-local time), not {start!r}"
        )
    if start.tzinfo is not None:
        # A timezone-aware value would be converted through the session's time zone on
        # PostgreSQL and stored as-is elsewhere: appointment times are naive shop-local times.
        raise BookingInputError(f"start must be a naive datetime (shop-local time), got {start!r}")
    if status not in ACTIVE_STATUSES:
        raise BookingInputError(
            f"a booking's status is 'confirmed' or 'pending', not {status!r}"
        )


def _require_id(name: str, value: object) -> None:
    # bool is an int subclass; "1" would reach the database as a type error (or be cast).
    if isinstance(value, bool) or not isinstance(value, int):
        raise BookingInputError(f"{name} must be an int, not {type(value).__name__} {value!r}")


def _end(start: dt.datetime, service: Service) -> dt.datetime:
    minutes = service.duration_minutes
    if minutes not in DURATION_MINUTES:
        raise BookingInputError(
            f"service {service.id} lasts {minutes} minutes; a booking lasts "
            f"{DURATION_MINUTES.start} to {DURATION_MINUTES.stop - 1} minutes"
        )
    try:
        end = start + dt.timedelta(minutes=minutes)
    except OverflowError:
        raise BookingInputError(
            f"a booking at {start} for {minutes} minutes would end after year 9999"
        ) from None
    check_booking_interval(start, end)
    return end


def _get(session: Session, model: type[_Row], key: int) -> _Row:
    found = session.get(model, key)
    if found is None:
        raise BookingNotFoundError(f"no {model.__tablename__} row with id {key}")
    return found


def _require_barber(found: Row[Any] | tuple[Any, ...] | None, barber_id: int) -> None:
    """``found`` is the barber's ``(unified_role, ...)`` row, None when there is no such user."""
    if found is None:
        raise BookingNotFoundError(f"no users row with id {barber_id}")
    if found[0] != BARBER_ROLE:
        raise NotABarberError(
            f"user {barber_id} is a {found[0]!r}, not a {BARBER_ROLE!r}: only barbers can be "
            "booked"
        )


def _users() -> Table:
    users = User.__table__
    assert isinstance(users, Table)
    return users


# --- PostgreSQL -------------------------------------------------------------------------


def _guard_postgresql(session: Session, appointment: Appointment) -> None:
    users = _users()
    barber_id = appointment.barber_id
    # One round trip: the barber's role, the lock (only taken when the row exists), and the
    # isolation level, which decides whether the check after the lock can see every booking.
    found = session.execute(
        select(
            users.c.unified_role,
            func.current_setting("transaction_isolation"),
            func.pg_advisory_xact_lock(ADVISORY_LOCK_NAMESPACE, users.c.id),
        ).where(users.c.id == barber_id)
    ).first()
    _require_barber(found, barber_id)
    assert found is not None
    # The check first: it takes ACCESS SHARE on the table, so the constraint cannot be
    # dropped between the lookup below and the INSERT.
    _raise_if_overlapping(session, appointment, locking_read=False)
    if found[1] == "repeatable read":
        _require_constraint(session)
    _insert_in_savepoint(session, appointment)


def _insert_in_savepoint(session: Session, appointment: Appointment) -> None:
    """Insert; a violation of an exclusion constraint (a writer that did not take the lock)
    is a conflict, and the SAVEPOINT keeps the caller's transaction usable after it."""
    try:
        with session.begin_nested():
            session.add(appointment)
    except IntegrityError as error:
        if _sqlstate(error) == _EXCLUSION_VIOLATION:
            raise BookingConflict(
                appointment.barber_id, appointment.start_time, appointment.end_time
            ) from error
        raise


def _sqlstate(error: IntegrityError) -> str | None:
    # psycopg 3 names it sqlstate, psycopg2 pgcode.
    code = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return str(code) if code else None


_CONSTRAINT_ON_TABLE = text(
    "SELECT 1 FROM pg_constraint WHERE conrelid = to_regclass(:table) "
    "AND contype = 'x' AND conname = :name"
)


def _require_constraint(session: Session) -> None:
    """The exclusion constraint must exist on the very table the INSERT reaches: looked up
    by OID, from the table name as this connection renders it (schema translation and
    ``search_path`` included), inside the booking transaction."""
    connection = session.connection(bind_arguments={"mapper": inspect(Appointment)})
    table = Appointment.__table__
    assert isinstance(table, Table)
    translate = connection.get_execution_options().get("schema_translate_map") or {}
    schema = translate.get(table.schema, table.schema)
    preparer = connection.dialect.identifier_preparer
    name = preparer.quote(table.name)
    qualified = f"{preparer.quote_schema(schema)}.{name}" if schema else name
    found = connection.execute(
        _CONSTRAINT_ON_TABLE, {"table": qualified, "name": EXCLUSION_CONSTRAINT}
    ).first()
    if found is None:
        raise BookingSetupError(
            f"under REPEATABLE READ the overlap check reads a snapshot that may predate the "
            f"lock, and PostgreSQL table {qualified} has no {EXCLUSION_CONSTRAINT!r} exclusion "
            "constraint to back it; book under READ COMMITTED (the default) or SERIALIZABLE, "
            "or create the constraint (with the btree_gist extension): EXCLUDE USING gist "
            "(barber_id WITH =, tsrange(start_time, end_time, '[)') WITH &&) WHERE (status IN "
            "('confirmed', 'pending'))"
        )


# --- SQLite and MySQL/MariaDB -------------------------------------------------------------


def _guard_sqlite(session: Session, appointment: Appointment) -> None:
    """A no-op UPDATE of the barber's row takes SQLite's write lock; then the role, the check
    and the INSERT."""
    users = _users()
    barber_id = appointment.barber_id
    connection = session.connection()
    connection.execute(
        update(users).where(users.c.id == barber_id).values(is_active=users.c.is_active)
    )
    if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        raise BookingSetupError(
            "the SQLite connection is in autocommit mode, so the write lock ended with its "
            "statement; book_appointment needs a transaction"
        )
    found = session.execute(select(users.c.unified_role).where(users.c.id == barber_id)).first()
    _require_barber(found, barber_id)
    _raise_if_overlapping(session, appointment, locking_read=False)
    _flush(session, appointment)


def _guard_mysql(session: Session, appointment: Appointment) -> None:
    """``SELECT ... FOR UPDATE`` on the barber's row: bookings of one barber queue here."""
    users = _users()
    barber_id = appointment.barber_id
    found = session.execute(
        select(users.c.unified_role).where(users.c.id == barber_id).with_for_update()
    ).first()
    _require_barber(found, barber_id)
    _raise_if_overlapping(session, appointment, locking_read=True)
    _flush(session, appointment)


def _raise_if_overlapping(
    session: Session, appointment: Appointment, *, locking_read: bool
) -> None:
    """With the lock held: raise :class:`BookingConflict` if an active appointment overlaps.

    ``locking_read`` is for InnoDB, whose plain SELECT reads the transaction's snapshot, which
    may predate the other booking's commit; a locking read sees the latest committed rows.
    """
    overlapping = conflict_predicate(
        appointment.barber_id, appointment.start_time, appointment.end_time
    )
    check = select(Appointment.id).where(overlapping).limit(1)
    if locking_read:
        check = check.with_for_update(read=True)
    if session.execute(check).first() is not None:
        raise BookingConflict(appointment.barber_id, appointment.start_time, appointment.end_time)


def _flush(session: Session, appointment: Appointment) -> None:
    session.add(appointment)
    session.flush()


_GUARDS: dict[str, Callable[[Session, Appointment], None]] = {
    "postgresql": _guard_postgresql,
    "sqlite": _guard_sqlite,
    "mysql": _guard_mysql,
    "mariadb": _guard_mysql,
}
