"""``book_appointment``: check-and-insert that stays correct when two clients book at once.

A conflict check followed by an INSERT is racy: two transactions can both find the slot free
and both insert (the project's verified notes: two threads, no lock, two rows). Each dialect
closes the race its own way:

* PostgreSQL: the ``no_double_booking`` exclusion constraint rejects the second row inside
  the database, whatever path the row takes; the violation becomes :class:`BookingConflict`.
  A transaction-scoped advisory lock per barber queues concurrent bookings first: without
  it, overlapping rows inserted at the same moment wait for each other's transaction while
  checking the constraint and deadlock.
* MySQL/MariaDB: ``SELECT ... FOR UPDATE`` on the barber's ``users`` row serialises bookings
  per barber; the check is then a locking read, which sees the latest committed rows even
  under REPEATABLE READ.
* SQLite: a no-op ``UPDATE`` of the barber's row takes the database's write (RESERVED) lock
  before the check, as ``BEGIN IMMEDIATE`` would, but from inside a transaction pysqlite has
  already begun; other writers wait (``timeout``) until this transaction ends.
"""

from __future__ import annotations

import datetime as dt
import weakref
from typing import TypeVar

from sqlalchemy import Engine, Table, func, inspect, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .._errors import SqlaoptError
from ._common import ACTIVE_STATUSES
from ._views import check_booking_interval
from .models import Appointment, Base, Client, Service, User
from .optimized import conflict_predicate

__all__ = [
    "ADVISORY_LOCK_NAMESPACE",
    "EXCLUSION_CONSTRAINT",
    "BookingConflict",
    "BookingSetupError",
    "book_appointment",
]

_Row = TypeVar("_Row", bound=Base)

EXCLUSION_CONSTRAINT = "no_double_booking"
"""Name of the PostgreSQL exclusion constraint :func:`book_appointment` relies on."""

ADVISORY_LOCK_NAMESPACE = 0x73716C61  # "sqla": first key of pg_advisory_xact_lock(ns, barber)
"""First key of the PostgreSQL advisory lock :func:`book_appointment` takes per barber."""

_EXCLUSION_VIOLATION = "23P01"  # SQLSTATE exclusion_violation

# Engines on which the constraint was seen; only positive answers are cached, so creating
# the constraint later takes effect without a restart.
_constraint_seen: weakref.WeakSet[Engine] = weakref.WeakSet()


class BookingConflict(SqlaoptError):
    """The barber already has a confirmed or pending appointment overlapping the slot."""

    def __init__(self, barber_id: int, start: dt.datetime, end: dt.datetime) -> None:
        self.barber_id, self.start, self.end = barber_id, start, end
        super().__init__(
            f"barber {barber_id} already has a confirmed or pending appointment "
            f"overlapping [{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M})"
        )


class BookingSetupError(SqlaoptError):
    """The database cannot make booking safe as configured (missing constraint, autocommit)."""


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

    The appointment lasts the service's ``duration_minutes`` and costs its ``base_price``;
    ``client_id`` (optional) also sets ``user_id`` to the client's user. ``status`` must be
    ``"confirmed"`` or ``"pending"``. Returns the flushed :class:`Appointment` (it has an id).

    Raises :class:`BookingConflict` when an active appointment of the barber overlaps the slot
    (back-to-back is fine), :class:`LookupError` for an unknown barber, service or client, and
    :class:`BookingSetupError` when PostgreSQL lacks the ``no_double_booking`` constraint or a
    SQLite connection runs in autocommit mode.

    Does not commit: the caller's transaction holds the booking, and on SQLite/MySQL the lock,
    until the caller commits or rolls back, so commit promptly. After a
    :class:`BookingConflict` the session is still usable (PostgreSQL inserts in a SAVEPOINT).
    """
    if status not in ACTIVE_STATUSES:
        raise ValueError(f"a booking's status is 'confirmed' or 'pending', not {status!r}")
    if start.tzinfo is not None:
        # A timezone-aware value would be converted through the session's time zone on
        # PostgreSQL and stored as-is elsewhere: appointment times are naive shop-local times.
        raise ValueError(f"start must be a naive datetime (shop-local time), got {start!r}")
    service = _get(session, Service, service_id)
    client = _get(session, Client, client_id) if client_id is not None else None
    end = start + dt.timedelta(minutes=service.duration_minutes)
    check_booking_interval(start, end)
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
    if dialect == "postgresql":
        _insert_guarded_by_constraint(session, appointment)
    elif dialect == "sqlite":
        _lock_database_sqlite(session, barber_id)
        _insert_unless_conflict(session, appointment, locking_read=False)
    elif dialect in ("mysql", "mariadb"):
        _lock_barber_row(session, barber_id)
        _insert_unless_conflict(session, appointment, locking_read=True)
    else:
        raise BookingSetupError(f"book_appointment does not support the {dialect!r} dialect")
    return appointment


def _get(session: Session, model: type[_Row], key: int) -> _Row:
    found = session.get(model, key)
    if found is None:
        raise LookupError(f"no {model.__tablename__} row with id {key}")
    return found


def _insert_guarded_by_constraint(session: Session, appointment: Appointment) -> None:
    _require_constraint(session)
    if session.get(User, appointment.barber_id) is None:
        raise LookupError(f"no users row with id {appointment.barber_id}")
    # Without this lock, overlapping bookings inserted at the same moment wait for each other
    # while checking the constraint and deadlock (PostgreSQL aborts one after deadlock_timeout,
    # 1 s by default); queued on the lock, each INSERT sees the previous booking committed.
    lock = func.pg_advisory_xact_lock(ADVISORY_LOCK_NAMESPACE, appointment.barber_id)
    session.execute(select(lock))
    try:
        # The SAVEPOINT keeps the caller's transaction usable when the INSERT is rejected.
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


def _require_constraint(session: Session) -> None:
    bind = session.get_bind(mapper=inspect(Appointment))
    engine = bind.engine
    if engine in _constraint_seen:
        return
    found = session.scalar(
        text(
            "SELECT 1 FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid "
            "WHERE c.conname = :name AND c.contype = 'x' AND t.relname = :table"
        ),
        {"name": EXCLUSION_CONSTRAINT, "table": Appointment.__tablename__},
    )
    if not found:
        raise BookingSetupError(
            f"PostgreSQL table {Appointment.__tablename__!r} has no {EXCLUSION_CONSTRAINT!r} "
            "exclusion constraint, so concurrent bookings could overlap; create it (with the "
            "btree_gist extension): EXCLUDE USING gist (barber_id WITH =, "
            "tsrange(start_time, end_time, '[)') WITH &&) WHERE (status IN ('confirmed', "
            "'pending'))"
        )
    _constraint_seen.add(engine)


def _users() -> Table:
    users = User.__table__
    assert isinstance(users, Table)
    return users


def _lock_database_sqlite(session: Session, barber_id: int) -> None:
    """Take SQLite's write lock with a no-op UPDATE of the barber's row (also checks it exists)."""
    users = _users()
    connection = session.connection()
    result = connection.execute(
        update(users).where(users.c.id == barber_id).values(is_active=users.c.is_active)
    )
    if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        raise BookingSetupError(
            "the SQLite connection is in autocommit mode, so the write lock ended with its "
            "statement; book_appointment needs a transaction"
        )
    if result.rowcount != 1:
        raise LookupError(f"no users row with id {barber_id}")


def _lock_barber_row(session: Session, barber_id: int) -> None:
    """``SELECT ... FOR UPDATE`` on the barber's row: bookings of one barber queue here."""
    users = _users()
    locked = session.execute(select(users.c.id).where(users.c.id == barber_id).with_for_update())
    if locked.first() is None:
        raise LookupError(f"no users row with id {barber_id}")


def _insert_unless_conflict(
    session: Session, appointment: Appointment, *, locking_read: bool
) -> None:
    """With the lock held: check for an overlapping active appointment, then insert.

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
    session.add(appointment)
    session.flush()
