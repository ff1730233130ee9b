"""Models with every relationship kind batching must handle, and a bulk data builder.

Every parent row ``i`` (1..n) gets a deterministic set of related rows, so the same data can be
built on SQLite and PostgreSQL and compared with batching on and off.
"""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import (
    Column,
    Connection,
    ForeignKey,
    ForeignKeyConstraint,
    Integer,
    String,
    Table,
    Text,
    and_,
    insert,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import (
    DeclarativeBase,
    DynamicMapped,
    Mapped,
    WriteOnlyMapped,
    deferred,
    foreign,
    mapped_column,
    relationship,
    remote,
)


class Base(AsyncAttrs, DeclarativeBase):
    pass


parent_tags = Table(
    "b_parent_tags", Base.metadata,
    Column("parent_id", ForeignKey("b_parents.id"), primary_key=True),
    Column("tag_id", ForeignKey("b_tags.id"), primary_key=True),
)
parent_labels = Table(  # many-to-many whose secondary table has a column of its own
    "b_parent_labels", Base.metadata,
    Column("parent_id", ForeignKey("b_parents.id"), primary_key=True),
    Column("label_id", ForeignKey("b_labels.id"), primary_key=True),
    Column("weight", Integer, nullable=False),
)


class Owner(Base):
    __tablename__ = "b_owners"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    threshold: Mapped[int] = mapped_column(Integer)
    parents: Mapped[list[Parent]] = relationship(back_populates="owner", order_by="Parent.id")
    # Not expressible per key: compares a child column with an owner column.
    big_children: Mapped[list[Child]] = relationship(
        primaryjoin="and_(Owner.id == foreign(Child.owner_id), Child.size > Owner.threshold)",
        order_by="Child.id", viewonly=True,
    )


class Parent(Base):
    __tablename__ = "b_parents"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("b_owners.id"))
    bio: Mapped[str | None] = deferred(mapped_column(Text))

    owner: Mapped[Owner | None] = relationship(back_populates="parents")
    children: Mapped[list[Child]] = relationship(
        back_populates="parent", order_by="Child.position", foreign_keys="Child.parent_id"
    )
    active_children: Mapped[list[Child]] = relationship(
        primaryjoin="and_(Parent.id == Child.parent_id, Child.active == 1)",
        order_by="Child.id", viewonly=True,
    )
    profile: Mapped[Profile | None] = relationship(back_populates="parent", uselist=False)
    tags: Mapped[list[Tag]] = relationship(secondary=parent_tags, order_by="Tag.id")
    labels: Mapped[list[Label]] = relationship(secondary=parent_labels,
                                               order_by=parent_labels.c.weight)
    first_child: Mapped[Child | None] = relationship(  # several rows for a scalar: a warning
        foreign_keys="Child.parent_id", uselist=False, order_by="Child.id", viewonly=True
    )
    shadow_children: Mapped[list[Child]] = relationship(
        foreign_keys="Child.parent_id", viewonly=True, info={"sqlaopt_batch": False}
    )
    dynamic_children: DynamicMapped[Child] = relationship(
        foreign_keys="Child.parent_id", viewonly=True
    )
    write_only_children: WriteOnlyMapped[Child] = relationship(
        foreign_keys="Child.parent_id", viewonly=True
    )


class Child(Base):
    __tablename__ = "b_children"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("b_parents.id"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("b_owners.id"))
    position: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    active: Mapped[int] = mapped_column(Integer)
    parent: Mapped[Parent | None] = relationship(back_populates="children",
                                                 foreign_keys=[parent_id])
    toys: Mapped[list[Toy]] = relationship(back_populates="child", order_by="Toy.id")


class Toy(Base):
    __tablename__ = "b_toys"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("b_children.id"))
    name: Mapped[str] = mapped_column(String(40))
    child: Mapped[Child] = relationship(back_populates="toys")


class Profile(Base):
    __tablename__ = "b_profiles"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int] = mapped_column(ForeignKey("b_parents.id"), unique=True)
    text: Mapped[str] = mapped_column(String(40))
    parent: Mapped[Parent] = relationship(back_populates="profile")


class Tag(Base):
    __tablename__ = "b_tags"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


class Label(Base):
    __tablename__ = "b_labels"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


class Node(Base):
    """Self-referential tree."""

    __tablename__ = "b_nodes"
    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("b_nodes.id"))
    name: Mapped[str] = mapped_column(String(40))
    parent: Mapped[Node | None] = relationship(back_populates="children", remote_side=[id])
    children: Mapped[list[Node]] = relationship(back_populates="parent", order_by="Node.id")


class Account(Base):
    """Composite primary key."""

    __tablename__ = "b_accounts"
    region: Mapped[str] = mapped_column(String(10), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    invoices: Mapped[list[Invoice]] = relationship(back_populates="account", order_by="Invoice.id")


class Invoice(Base):
    __tablename__ = "b_invoices"
    __table_args__ = (ForeignKeyConstraint(["region", "number"],
                                           ["b_accounts.region", "b_accounts.number"]),)
    id: Mapped[int] = mapped_column(primary_key=True)
    region: Mapped[str] = mapped_column(String(10))
    number: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    account: Mapped[Account] = relationship(back_populates="invoices")


class Desk(Base):
    __tablename__ = "b_desks"
    id: Mapped[int] = mapped_column(primary_key=True)
    floor: Mapped[int] = mapped_column(Integer)


class Employee(Base):
    """Joined-table inheritance: relationships on the base and on the subclass."""

    __tablename__ = "b_employees"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(40))
    desk_id: Mapped[int | None] = mapped_column(ForeignKey("b_desks.id"))
    desk: Mapped[Desk | None] = relationship()
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_on": "kind",
                                                 "polymorphic_identity": "employee"}


class Engineer(Employee):
    __tablename__ = "b_engineers"
    id: Mapped[int] = mapped_column(ForeignKey("b_employees.id"), primary_key=True)
    language: Mapped[str] = mapped_column(String(20))
    machines: Mapped[list[Machine]] = relationship(order_by="Machine.id")
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "engineer"}


class Machine(Base):
    __tablename__ = "b_machines"
    id: Mapped[int] = mapped_column(primary_key=True)
    engineer_id: Mapped[int] = mapped_column(ForeignKey("b_engineers.id"))
    name: Mapped[str] = mapped_column(String(40))


class Vehicle(Base):
    """Single-table inheritance with a relationship on the subclass."""

    __tablename__ = "b_vehicles"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    plate: Mapped[str] = mapped_column(String(20))
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_on": "kind",
                                                 "polymorphic_identity": "vehicle"}


class Truck(Vehicle):
    loads: Mapped[list[Cargo]] = relationship(order_by="Cargo.id")
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "truck"}


class Cargo(Base):
    __tablename__ = "b_cargo"
    id: Mapped[int] = mapped_column(primary_key=True)
    vehicle_id: Mapped[int] = mapped_column(ForeignKey("b_vehicles.id"))
    weight: Mapped[int] = mapped_column(Integer)


_ = (and_, foreign, remote)  # used by the string join conditions above


def build(conn: Connection, n: int) -> None:
    """Rows for parents 1..n and every other model, deterministic in ``n``."""
    owners = max(1, n // 4)
    rows: dict[Any, list[dict[str, Any]]] = {
        Owner.__table__: [{"id": i, "name": f"o{i}", "threshold": i % 3}
                          for i in range(1, owners + 1)],
        Tag.__table__: [{"id": i, "name": f"t{i}"} for i in range(1, 6)],
        Label.__table__: [{"id": i, "name": f"l{i}"} for i in range(1, 6)],
        Parent.__table__: [{"id": i, "name": f"p{i}", "bio": f"bio {i}",
                            "owner_id": (i % owners) + 1 if i % 5 else None}
                           for i in range(1, n + 1)],
        Desk.__table__: [{"id": i, "floor": i % 7} for i in range(1, owners + 1)],
        Account.__table__: [{"region": "eu" if i % 2 else "us", "number": i, "name": f"a{i}"}
                            for i in range(1, n + 1)],
        Vehicle.__table__: [{"id": i, "kind": "truck" if i % 3 else "vehicle", "plate": f"v{i}"}
                            for i in range(1, n + 1)],
    }
    rows[Child.__table__] = [
        {"id": 2 * i - k, "parent_id": i, "owner_id": (i % owners) + 1, "position": k,
         "size": (i + k) % 4, "active": k % 2}
        for i in range(1, n + 1) for k in (0, 1) if not (i % 7 == 0 and k == 0)
    ]
    rows[Toy.__table__] = [{"id": c["id"], "child_id": c["id"], "name": f"toy{c['id']}"}
                           for c in rows[Child.__table__] if c["id"] % 3]
    rows[Profile.__table__] = [{"id": i, "parent_id": i, "text": f"pr{i}"}
                               for i in range(1, n + 1) if i % 4]
    rows[parent_tags] = [{"parent_id": i, "tag_id": t} for i in range(1, n + 1)
                         for t in range(1, 6) if (i + t) % 3 == 0]
    rows[parent_labels] = [{"parent_id": i, "label_id": t, "weight": (i + 3 * t) % 17}
                           for i in range(1, n + 1) for t in range(1, 6) if (i + t) % 2 == 0]
    rows[Node.__table__] = [{"id": i, "parent_id": None if i <= max(1, n // 10) else i // 2,
                             "name": f"n{i}"} for i in range(1, n + 1)]
    rows[Invoice.__table__] = [{"id": i, "region": "eu" if (i // 2) % 2 else "us",
                                "number": max(1, i // 2), "total": i} for i in range(2, 2 * n + 1)]
    rows[Employee.__table__] = [{"id": i, "kind": "engineer" if i % 2 else "employee",
                                 "name": f"e{i}", "desk_id": (i % owners) + 1 if i % 3 else None}
                                for i in range(1, n + 1)]
    rows[Engineer.__table__] = [{"id": i, "language": "py"} for i in range(1, n + 1) if i % 2]
    rows[Machine.__table__] = [{"id": i, "engineer_id": i if i % 2 else i - 1, "name": f"m{i}"}
                               for i in range(1, n + 1)]
    rows[Cargo.__table__] = [{"id": i, "vehicle_id": i, "weight": i % 9}
                             for i in range(1, n + 1) if i % 3]
    for table in Base.metadata.sorted_tables:
        if rows.get(table):
            conn.execute(insert(table), rows[table])
