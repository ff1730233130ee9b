"""Recognising a booking refused by an exclusion constraint, whichever way PostgreSQL says it.

Measured (20 threads inserting overlapping slots for one barber, 30 rounds, PostgreSQL 15):
exactly one insert committed every round; of the others, about 80% failed with
``exclusion_violation`` (SQLSTATE 23P01, naming the constraint) and about 20% with
``deadlock_detected`` (40P01, "while checking exclusion constraint on tuple ... in relation
..."): two inserters that each wait for the other's uncommitted row form a deadlock, and
PostgreSQL aborts one. Both mean "the slot is taken"; code that handles only the first turns
the second into a 500.
"""

from __future__ import annotations

__all__ = ["is_exclusion_conflict"]

_EXCLUSION_VIOLATION = "23P01"
_DEADLOCK_DETECTED = "40P01"


def _sqlstate(error: BaseException) -> str | None:
    # psycopg 3 says .sqlstate, psycopg2 .pgcode; SQLAlchemy wraps either in .orig.
    for candidate in (getattr(error, "orig", None), error):
        state = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(state, str):
            return state
    return None


def _constraint_name(error: BaseException) -> str | None:
    diag = getattr(getattr(error, "orig", error), "diag", None)
    name = getattr(diag, "constraint_name", None)
    return name if isinstance(name, str) else None


def is_exclusion_conflict(error: BaseException, constraint: str | None = None) -> bool:
    """True when ``error`` (a SQLAlchemy or driver exception) is PostgreSQL refusing a row
    because an exclusion constraint found an overlapping one.

    That is SQLSTATE 23P01 (with ``constraint``, only if the driver reports that name), or a
    40P01 deadlock raised "while checking exclusion constraint", which concurrent conflicting
    inserts produce (its message names the table, not the constraint). Either way the
    transaction is rolled back and the conflicting row won.
    """
    state = _sqlstate(error)
    if state == _EXCLUSION_VIOLATION:
        name = _constraint_name(error)
        return constraint is None or name is None or name == constraint
    if state == _DEADLOCK_DETECTED:
        return "while checking exclusion constraint" in str(getattr(error, "orig", error))
    return False
