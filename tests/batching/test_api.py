"""``sqlaopt.batch``: context manager, decorator (sync and async), nesting, validation, and the
process-wide switch."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Engine, event, select
from sqlalchemy.orm import Session

import sqlaopt
from sqlaopt import batching
from sqlaopt.batching._hook import on_orm_execute

from .models import Parent

pytestmark = pytest.mark.nplusone(mode="off")


def children_loop(session: Session, n: int = 10) -> int:
    """Statements a loop over n parents' children runs."""
    with sqlaopt.count_queries() as queries:
        for parent in session.scalars(select(Parent).where(Parent.id <= n)).all():
            parent.children  # noqa: B018
    return queries.count


@pytest.mark.parametrize(("arguments", "message"), [
    ({"max_batch": 0}, "max_batch must be a positive integer .*got 0"),
    ({"max_batch": True}, "max_batch must be a positive integer .*got True"),
    ({"max_batch": "500"}, "max_batch must be a positive integer .*got '500'"),
    ({"enabled": "yes"}, "enabled must be True or False; got 'yes'"),
])
def test_bad_settings_are_refused(arguments: dict[str, object], message: str) -> None:
    with pytest.raises(sqlaopt.BatchError, match=message):
        sqlaopt.batch(**arguments)  # type: ignore[arg-type]
    assert issubclass(sqlaopt.BatchError, sqlaopt.SqlaoptError)


def test_context_manager_and_nesting(kinds_session: Session) -> None:
    outer = sqlaopt.batch()
    assert repr(outer) == "sqlaopt.batch(max_batch=500, enabled=True)"
    assert children_loop(kinds_session) == 11
    with outer:
        kinds_session.expunge_all()
        assert children_loop(kinds_session) == 2
        with sqlaopt.batch(max_batch=3):
            kinds_session.expunge_all()
            assert children_loop(kinds_session) == 1 + 4
            with outer:  # the same object, re-entered
                kinds_session.expunge_all()
                assert children_loop(kinds_session) == 2
        kinds_session.expunge_all()
        assert children_loop(kinds_session) == 2
    kinds_session.expunge_all()
    assert children_loop(kinds_session) == 11


def test_the_listener_is_registered_only_while_batching_is_on() -> None:
    assert not event.contains(Session, "do_orm_execute", on_orm_execute)
    with sqlaopt.batch(enabled=False):
        assert not event.contains(Session, "do_orm_execute", on_orm_execute)
    with sqlaopt.batch():
        assert event.contains(Session, "do_orm_execute", on_orm_execute)
    assert not event.contains(Session, "do_orm_execute", on_orm_execute)


def test_sync_decorator(kinds_session: Session) -> None:
    @sqlaopt.batch(max_batch=5)
    def loop(session: Session) -> int:
        return children_loop(session)

    assert loop(kinds_session) == 1 + 2
    kinds_session.expunge_all()
    assert children_loop(kinds_session) == 11


def test_async_decorator(kinds_session: Session) -> None:
    @sqlaopt.batch()
    async def loop(session: Session) -> int:
        await asyncio.sleep(0)
        return children_loop(session)

    assert asyncio.run(loop(kinds_session)) == 2
    kinds_session.expunge_all()
    assert children_loop(kinds_session) == 11


def test_decorating_something_else_is_refused() -> None:
    with pytest.raises(TypeError, match="decorates a function"):
        sqlaopt.batch()(42)  # type: ignore[type-var]


def test_process_wide_batching(kinds_engine: Engine) -> None:
    batching.install(max_batch=4)
    try:
        with Session(kinds_engine) as session:
            assert children_loop(session) == 1 + 3
        with Session(kinds_engine) as session, sqlaopt.batch(enabled=False):
            assert children_loop(session) == 11
    finally:
        batching.uninstall()
    with Session(kinds_engine) as session:
        assert children_loop(session) == 11
    assert not event.contains(Session, "do_orm_execute", on_orm_execute)
