"""The package as users install it: ``uv build`` gives a wheel and an sdist that ``twine
check`` accepts, and the wheel installs into a fresh virtualenv with only the runtime
dependencies (sqlalchemy, wrapt; SQLAlchemy 2.1 brings no greenlet), where ``import sqlaopt``,
every public module and the console script work. The same install from the repository path
is what README.md tells users to run. Run with ``uv run pytest -m packaging
tests/test_packaging.py`` (.ci/run does).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
# About 30 s on this machine: out of the default run; .ci/run runs them once
# (uv run pytest -m packaging tests/test_packaging.py).
pytestmark = pytest.mark.packaging

# Every module a user may import: not private (no ``_`` part), not ``__main__`` (it runs the
# command line), not the pytest plugin (pytest imports it, when pytest is installed). Modules
# of an optional extra (today only the Alembic operations) must name the extra to install.
IMPORT_EVERYTHING = """
import importlib, pkgutil, sqlaopt
names = ["sqlaopt"] + [
    m.name for m in pkgutil.walk_packages(sqlaopt.__path__, "sqlaopt.")
    if not any(part.startswith("_") for part in m.name.split("."))
    and m.name != "sqlaopt.pytest_plugin"
]
needs_extra = []
for name in names:
    try:
        importlib.import_module(name)
    except ImportError as error:
        # A module for an optional extra says which extra to install, never a bare
        # ModuleNotFoundError.
        assert "pip install 'sqlaopt[" in str(error), (name, error)
        needs_extra.append(name)
assert needs_extra == ["sqlaopt.structure.alembic"], needs_extra
import importlib.util
assert importlib.util.find_spec("greenlet") is None, "greenlet is not a runtime dependency"
print(len(names), "modules")
"""


def run(*argv: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd,
                          check=False, timeout=300)
    assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def uv() -> str:
    found = shutil.which("uv")
    if found is None:
        if IN_CI:
            pytest.fail("uv is not installed; CI requires it", pytrace=False)
        pytest.skip("uv is not installed")
    return found


def test_build_check_and_install_with_only_the_runtime_dependencies(
    uv: str, tmp_path: Path
) -> None:
    dist = tmp_path / "dist"
    run(uv, "build", "--quiet", "--out-dir", dist)
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1
    checked = run(sys.executable, "-m", "twine", "check", "--strict", *wheels, *sdists)
    assert checked.stdout.count("PASSED") == 2

    venv = tmp_path / "venv"
    run(uv, "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    run(uv, "pip", "install", "--quiet", "--python", python, wheels[0])
    installed = run(uv, "pip", "list", "--python", python, "--format", "freeze").stdout
    names = {line.split("==")[0].lower() for line in installed.split()}
    assert names - {"typing-extensions"} == {"sqlalchemy", "sqlaopt", "wrapt"}

    imported = run(python, "-c", IMPORT_EVERYTHING, cwd=tmp_path)
    assert int(imported.stdout.split()[0]) >= 15
    sql = run(venv / "bin" / "sqlaopt", "indexes", "sql", "--dialect", "sqlite", cwd=tmp_path)
    assert sql.stdout.count("CREATE INDEX IF NOT EXISTS") == 13


def test_the_readme_install_line_is_a_path_install_that_works(uv: str, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    assert "$ pip install ./sqlaopt" in readme and "pip install sqlaopt\n" not in readme
    clone = tmp_path / "sqlaopt"
    shutil.copytree(ROOT, clone, ignore=shutil.ignore_patterns(".venv", ".git", "*cache*"))
    venv = tmp_path / "venv"
    run(uv, "venv", "--quiet", "--python", sys.executable, venv)
    # pip install ./sqlaopt, as README.md says (uv's pip, which this machine has for sure).
    run(uv, "pip", "install", "--quiet", "--python", venv / "bin" / "python", "./sqlaopt",
        cwd=tmp_path)
    run(venv / "bin" / "python", "-c", "import sqlaopt.booking, sqlaopt.indexes", cwd=tmp_path)
