"""sqlaopt: keep SQLAlchemy 2.x applications fast."""

__version__ = "0.1.0"
