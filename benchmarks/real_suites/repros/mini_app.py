"""The "application" the reproductions exercise: two models on an in-memory SQLite database,
a WSGI app (the shape of a Flask/werkzeug test client's target), a FastAPI app with a sync and
an async endpoint (the shape of Starlette's TestClient), and an ``after_flush`` listener that
selects once per flushed object (the shape of SQLAlchemy-Continuum's version bookkeeping).

It is deliberately not a test module: the detector must see these frames as application code
and the test files' frames as test code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import ForeignKey, create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship
from sqlalchemy.pool import StaticPool


class Base(DeclarativeBase):
    pass


class Parent(Base):
    __tablename__ = "parents"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    children: Mapped[list[Child]] = relationship(back_populates="parent")


class Child(Base):
    __tablename__ = "children"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("parents.id"))
    parent: Mapped[Parent | None] = relationship(back_populates="children")


class ChildAudit(Base):
    __tablename__ = "child_audit"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int]


def make_engine(parents: int = 5, children_each: int = 2) -> Engine:
    engine = create_engine("sqlite://", poolclass=StaticPool,
                           connect_args={"check_same_thread": False})
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        for p in range(1, parents + 1):
            parent = Parent(id=p, name=f"parent {p}")
            parent.children = [Child(name=f"child {p}.{c}") for c in range(children_each)]
            session.add(parent)
        session.commit()
    return engine


# ------------------------------------------------------------------ application functions


def parent_name(session: Session, parent_id: int) -> str:
    """One SELECT by primary key: what a request handler or a model helper does once."""
    parent = session.scalars(select(Parent).where(Parent.id == parent_id)).one()
    return parent.name


def children_of(session: Session, parent: Parent) -> int:
    """One lazy load of parent.children (the N+1 only if a loop calls it)."""
    return len(parent.children)


def total_children(session: Session) -> int:
    """The application's own loop: one lazy load of parent.children per parent."""
    parents = session.scalars(select(Parent)).all()
    return sum(children_of(session, parent) for parent in parents)


def describe_children(session: Session) -> list[tuple[str, str]]:
    """One loop whose body calls the same helper on two lines."""
    rows = []
    for child in session.scalars(select(Child)).all():
        rows.append((parent_name(session, child.parent_id or 0),
                     parent_name(session, child.parent_id or 0)))
    return rows


def parent_name_with_retry(session: Session, parent_id: int, attempts: int = 3) -> str:
    """``parent_name`` behind a retry loop whose body returns on its first iteration: one call
    runs the SELECT once. The shape of mealie's ``RepositoryGroup.create`` /
    ``RepositoryHousehold.create`` (``while True: try: return super().create(data) except
    IntegrityError: ...``), ``RepositoryRecipes.create`` and ``RepositoryCookbooks.create``
    (``for i in range(10): try: return super().create(...)``)."""
    for _attempt in range(attempts):
        try:
            return parent_name(session, parent_id)
        except OperationalError:
            session.rollback()
    raise RuntimeError("no attempt succeeded")


def names_with_retry(session: Session, ids: Iterable[int]) -> list[str]:
    """The application's own loop over the retrying helper (mealie's
    ``RepositoryCookbooks.create_many``: ``[self.create(entry) for entry in data]``)."""
    return [parent_name_with_retry(session, parent_id) for parent_id in ids]


# ------------------------------------------------------------------ a WSGI application

StartResponse = Callable[..., Any]


def wsgi_app(engine: Engine) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """GET /parents/<id>: one SELECT per request, like a Flask view."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        parent_id = int(environ["PATH_INFO"].rsplit("/", 1)[-1])
        with Session(engine) as session:
            body = parent_name(session, parent_id).encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    return app


def wsgi_get(app: Callable[..., Iterable[bytes]], path: str) -> bytes:
    """What werkzeug's test client does for one request, minus the HTTP parsing."""
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.input": None}
    return b"".join(app(environ, lambda status, headers, exc_info=None: None))


# ------------------------------------------------------------------ a FastAPI application


def fastapi_app(engine: Engine) -> Any:
    """GET /sync/<id> (a ``def`` endpoint: Starlette runs it on a worker thread) and
    GET /async/<id> (an ``async def`` endpoint: a task on the portal's event loop)."""
    from fastapi import FastAPI

    api = FastAPI()

    @api.get("/sync/{parent_id}")
    def read_sync(parent_id: int) -> dict[str, str]:
        with Session(engine) as session:
            return {"name": parent_name(session, parent_id)}

    @api.get("/async/{parent_id}")
    async def read_async(parent_id: int) -> dict[str, str]:
        with Session(engine) as session:
            return {"name": parent_name(session, parent_id)}

    return api


# ------------------------------------------------------------------ a flush listener


def audit_children_after_flush(session: Session, flush_context: Any) -> None:
    """Selects once per flushed Child, while the flush is in progress, the way
    SQLAlchemy-Continuum's ``update_version_validity`` selects each object's previous
    version."""
    for obj in list(session.new) + list(session.dirty):
        if isinstance(obj, Child):
            session.execute(select(ChildAudit).where(ChildAudit.child_id == obj.id)).first()


def install_audit(session: Session) -> None:
    event.listen(session, "after_flush", audit_children_after_flush)
