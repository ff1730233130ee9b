"""Model shapes the reference schema lacks: a self-referential tree, joined inheritance with a
relationship on a subclass, server defaults fetched after a flush, cascades on delete."""

from __future__ import annotations

from typing import Any, ClassVar

from sqlalchemy import FetchedValue, ForeignKey, String, func, text
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Category(Base):
    __tablename__ = "shape_categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))
    notes: Mapped[str | None] = mapped_column(String(200), deferred=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("shape_categories.id"))
    parent: Mapped[Category | None] = relationship(back_populates="children",
                                                   remote_side=[id])
    children: Mapped[list[Category]] = relationship(back_populates="parent",
                                                    order_by="Category.id")


class Team(Base):
    __tablename__ = "shape_teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    members: Mapped[list[Person]] = relationship(back_populates="team", order_by="Person.id",
                                                 cascade="all, delete-orphan")


class Person(Base):
    __tablename__ = "shape_people"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    team_id: Mapped[int] = mapped_column(ForeignKey("shape_teams.id"))
    team: Mapped[Team] = relationship(back_populates="members")
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_on": "kind",
                                                  "polymorphic_identity": "person"}


class Manager(Person):
    __tablename__ = "shape_managers"

    id: Mapped[int] = mapped_column(ForeignKey("shape_people.id"), primary_key=True)
    reports: Mapped[list[Report]] = relationship(order_by="Report.id",
                                                 cascade="all, delete-orphan")
    __mapper_args__: ClassVar[dict[str, Any]] = {"polymorphic_identity": "manager"}


class Report(Base):
    __tablename__ = "shape_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    manager_id: Mapped[int] = mapped_column(ForeignKey("shape_managers.id"))
    title: Mapped[str] = mapped_column(String(40))


class Stamped(Base):
    """A row whose server-side defaults SQLAlchemy fetches back as part of the flush."""

    __tablename__ = "shape_stamped"
    __table_args__: ClassVar[dict[str, Any]] = {"implicit_returning": False}  # no RETURNING
    __mapper_args__: ClassVar[dict[str, Any]] = {"eager_defaults": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(server_default=text("1"),
                                         server_onupdate=FetchedValue())
    created: Mapped[str] = mapped_column(String(40), server_default=func.lower("X"))


class Shelf(Base):
    """Two collections on one parent, one under another (issue 13: eager loads)."""

    __tablename__ = "shape_shelves"

    id: Mapped[int] = mapped_column(primary_key=True)
    books: Mapped[list[Book]] = relationship(back_populates="shelf", order_by="Book.id")
    tags: Mapped[list[Tag]] = relationship(order_by="Tag.id")


class Book(Base):
    __tablename__ = "shape_books"

    id: Mapped[int] = mapped_column(primary_key=True)
    shelf_id: Mapped[int] = mapped_column(ForeignKey("shape_shelves.id"))
    shelf: Mapped[Shelf] = relationship(back_populates="books")
    notes: Mapped[list[Note]] = relationship(order_by="Note.id")


class Note(Base):
    __tablename__ = "shape_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    book_id: Mapped[int] = mapped_column(ForeignKey("shape_books.id"))


class Tag(Base):
    __tablename__ = "shape_tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    shelf_id: Mapped[int] = mapped_column(ForeignKey("shape_shelves.id"))
    label: Mapped[str] = mapped_column(String(20), default="")


class Drawer(Base):
    """A relationship eager by mapping (``lazy="selectin"``)."""

    __tablename__ = "shape_drawers"

    id: Mapped[int] = mapped_column(primary_key=True)
    things: Mapped[list[Thing]] = relationship(lazy="selectin", order_by="Thing.id")


class Thing(Base):
    __tablename__ = "shape_things"

    id: Mapped[int] = mapped_column(primary_key=True)
    drawer_id: Mapped[int] = mapped_column(ForeignKey("shape_drawers.id"))


SHELVES, BOOKS_PER_SHELF, NOTES_PER_BOOK, TAGS_PER_SHELF = 20, 10, 5, 10


def populate(session: Session) -> None:
    """A 4-level category tree (1 root, 2 children each), two teams with managers and people;
    20 shelves of 10 books (5 notes each) and 10 tags; 3 drawers of 2 things."""
    session.add_all(
        Shelf(books=[Book(notes=[Note() for _ in range(NOTES_PER_BOOK)])
                     for _ in range(BOOKS_PER_SHELF)],
              tags=[Tag(label=f"t{i}") for i in range(TAGS_PER_SHELF)])
        for _ in range(SHELVES))
    session.add_all(Drawer(things=[Thing(), Thing()]) for _ in range(3))
    root = Category(name="root")
    level = [root]
    for _ in range(3):
        following = []
        for node in level:
            for i in range(2):
                child = Category(name=f"{node.name}.{i}")
                node.children.append(child)
                following.append(child)
        level = following
    session.add(root)
    for t in range(2):
        team = Team(members=[Manager(reports=[Report(title=f"r{t}{i}") for i in range(2)])
                             for _ in range(2)] + [Person() for _ in range(2)])
        session.add(team)
    session.commit()
