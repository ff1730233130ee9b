"""One naive loop per relationship kind.

Each loop returns plain values (ids, names, lists of ids) so that results with batching on and
off can be compared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, selectinload, undefer

from .models import (
    Account,
    Child,
    Employee,
    Engineer,
    Invoice,
    Node,
    Owner,
    Parent,
    Truck,
)


@dataclass(frozen=True)
class Loop:
    name: str
    roots: Callable[[int], Select[Any]]
    """The first N roots."""
    touch: Callable[[Sequence[Any]], Any]
    """The naive loop over the roots: reads relationships, returns plain values."""
    hops: int
    """Statements after the first one with batching on (N >= 2)."""
    eager: tuple[Any, ...] = ()
    """Loader options that load the same graph up front: the oracle for large N."""
    expire: bool = False
    """Expire everything after loading the roots (the loop then reloads columns)."""

    def run(self, session: Session, n: int, *, eager: bool = False) -> Any:
        statement = self.roots(n)
        if eager:
            statement = statement.options(*self.eager)
        roots = session.scalars(statement).all()
        if self.expire:
            session.expire_all()
        return self.touch(roots)


def _first(model: Any, start: int = 1) -> Callable[[int], Select[Any]]:
    key = model.id
    return lambda n: select(model).where(key >= start, key < start + n).order_by(key)


def _ids(objects: Sequence[Any]) -> list[int]:
    return [o.id for o in objects]


LOOPS: tuple[Loop, ...] = (
    Loop("many-to-one", _first(Parent),
         lambda ps: [(p.id, p.owner.name if p.owner else None) for p in ps], 1,
         (selectinload(Parent.owner),)),
    Loop("one-to-many ordered", _first(Parent),
         lambda ps: [(p.id, [(c.id, c.position) for c in p.children]) for p in ps], 1,
         (selectinload(Parent.children),)),
    Loop("one-to-many with criteria", _first(Parent),
         lambda ps: [(p.id, _ids(p.active_children)) for p in ps], 1,
         (selectinload(Parent.active_children),)),
    Loop("one-to-one", _first(Parent),
         lambda ps: [(p.id, p.profile.text if p.profile else None) for p in ps], 1,
         (selectinload(Parent.profile),)),
    Loop("many-to-many", _first(Parent),
         lambda ps: [(p.id, _ids(p.tags)) for p in ps], 1,
         (selectinload(Parent.tags),)),
    Loop("many-to-many with columns", _first(Parent),
         lambda ps: [(p.id, _ids(p.labels)) for p in ps], 1,
         (selectinload(Parent.labels),)),
    Loop("self-referential many-to-one", _first(Node, 500),
         lambda ns: [(n.id, n.parent.id if n.parent else None) for n in ns], 1,
         (selectinload(Node.parent),)),
    Loop("self-referential one-to-many", _first(Node),
         lambda ns: [(n.id, _ids(n.children)) for n in ns], 1,
         (selectinload(Node.children),)),
    Loop("composite one-to-many", lambda n: select(Account).order_by(Account.number).limit(n),
         lambda accounts: [(a.number, _ids(a.invoices)) for a in accounts], 1,
         (selectinload(Account.invoices),)),
    Loop("composite many-to-one", _first(Invoice, 2),
         lambda invoices: [(i.id, i.account.name) for i in invoices], 1,
         (selectinload(Invoice.account),)),
    Loop("joined inheritance, base relationship", _first(Employee),
         lambda es: [(e.id, type(e).__name__, e.desk.floor if e.desk else None) for e in es], 1,
         (selectinload(Employee.desk),)),
    Loop("joined inheritance, subclass relationship", _first(Employee),
         lambda es: [(e.id, _ids(e.machines)) for e in es if isinstance(e, Engineer)], 1,
         (selectinload(Engineer.machines),)),
    Loop("single-table inheritance", _first(Truck),
         lambda ts: [(t.id, [c.weight for c in t.loads]) for t in ts], 1,
         (selectinload(Truck.loads),)),
    Loop("join not expressible per key", _first(Owner),
         lambda os: [(o.id, _ids(o.big_children)) for o in os], 1,
         (selectinload(Owner.big_children),)),
    Loop("three levels", _first(Parent),
         lambda ps: [(p.id, p.owner.name if p.owner else None,
                      [(c.id, [t.name for t in c.toys]) for c in p.children]) for p in ps], 3,
         (selectinload(Parent.owner), selectinload(Parent.children).selectinload(Child.toys))),
    Loop("expired columns", _first(Parent),
         lambda ps: [(p.id, p.name, p.owner_id) for p in ps], 1, expire=True),
    Loop("deferred column", _first(Parent),
         lambda ps: [(p.id, p.bio) for p in ps], 1, (undefer(Parent.bio),)),
)
