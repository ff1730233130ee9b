"""Every public module imports without greenlet: it is not a runtime dependency, and
SQLAlchemy 2.1 refuses to import its asyncio package without it (``from sqlaopt.booking
import ...`` failed that way). The full install check is tests/test_packaging.py."""

from __future__ import annotations

import subprocess
import sys

WITHOUT_GREENLET = """
import sys
sys.modules["greenlet"] = None  # as if it were not installed: importing it raises ImportError
import importlib, pkgutil, sqlaopt
names = [m.name for m in pkgutil.walk_packages(sqlaopt.__path__, "sqlaopt.")
         if not any(p.startswith("_") for p in m.name.split("."))
         and m.name != "sqlaopt.pytest_plugin"]
for name in names:
    importlib.import_module(name)
from sqlaopt.booking import book_appointment
from sqlaopt.booking.models import User
try:
    User().awaitable_attrs
except ImportError as error:
    print("awaitable_attrs:", error)
print(len(names))
"""


def test_every_public_module_imports_without_greenlet() -> None:
    done = subprocess.run([sys.executable, "-c", WITHOUT_GREENLET], capture_output=True,
                          text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) >= 15
