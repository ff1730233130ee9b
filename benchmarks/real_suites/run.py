"""Run a real application's test suite with and without sqlaopt, and report the difference.

For one app of ``apps.toml`` (or ``all``): check it out at its pinned commit into a cache
directory, create a virtualenv with the dependencies its own lock file pins plus sqlaopt built
from ``--sqlaopt`` (default: the repository this script lives in), then run its suite in each
of ``--modes`` (interleaved, ``--repeat`` rounds):

- ``without``: ``-p no:sqlaopt``, the reference;
- ``record``: ``--sqlaopt-nplusone record --sqlaopt-write-baseline FILE`` plus the details
  plugin (``sqlaopt_real_suites_details.py``: line, count, fix, SQL and stack per detection);
- ``default``: the plugin with no option, i.e. its default mode;
- any other name (``raise``, ``warn``, ``fail``...): ``--sqlaopt-nplusone NAME``.

It prints, per mode, tests passed/failed/errors/skipped and the suite's wall time (median of
the rounds, and its ratio to ``without``); every test that fails in a mode but passes without
sqlaopt, with the first line of its failure; and the record run's detections grouped by
(kind, target, location), with shape hints for triage. ``summary.md``/``summary.json`` and
the raw files go to ``--out``.

    python benchmarks/real_suites/run.py ihatemoney
    python benchmarks/real_suites/run.py all --modes without,record,default,fail --repeat 3
    SQLAOPT_REAL_SUITES_MIRRORS=/path/to/mirrors python benchmarks/real_suites/run.py mealie

Sources: ``--git-dir DIR`` (a git directory holding the commit), else
``$SQLAOPT_REAL_SUITES_MIRRORS/<owner>+<repo>/repo`` if it exists, else a blobless clone of
the app's repository. Files missing from a partial mirror (e.g. large blobs) are left out and
listed. Needs ``git`` and ``uv``; each suite runs in a fresh network namespace (``unshare
--net``, loopback only) when the machine allows it, so no test reaches the internet.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import datetime
import functools
import hashlib
import json
import linecache
import os
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomllib

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parents[1]
MANIFEST = HERE / "apps.toml"
DETAILS_PLUGIN = "sqlaopt_real_suites_details"
PASSING = ("passed",)
FAILING = ("failed", "error")


@dataclass
class App:
    name: str
    repository: str
    commit: str
    python: str
    requirements: str
    tests: list[str]
    pytest_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    system: list[str] = field(default_factory=list)
    description: str = ""

    @property
    def slug(self) -> str:
        return f"{self.name}-{self.commit[:12]}"

    @property
    def mirror_name(self) -> str:
        owner, repo = self.repository.rstrip("/").removesuffix(".git").split("/")[-2:]
        return f"{owner}+{repo}"


def load_apps(path: Path = MANIFEST) -> dict[str, App]:
    with path.open("rb") as manifest:
        data = tomllib.load(manifest)
    return {name: App(name=name, **fields) for name, fields in data.items()}


# ------------------------------------------------------------------------- shell helpers


def run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    print("+", shlex.join(cmd), flush=True)
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def git(git_dir: Path, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "--git-dir", str(git_dir), *args], check=True,
                          capture_output=True, text=True, **kwargs)


# ------------------------------------------------------------------------- checkout


def source_git_dir(app: App, cache: Path, explicit: Path | None) -> Path:
    """A git directory that holds the app's pinned commit."""
    if explicit is not None:
        return explicit
    mirrors = os.environ.get("SQLAOPT_REAL_SUITES_MIRRORS")
    if mirrors and (Path(mirrors) / app.mirror_name / "repo").is_dir():
        return Path(mirrors) / app.mirror_name / "repo"
    clone = cache / f"{app.name}.git"
    if not clone.exists():
        run(["git", "clone", "--bare", "--filter=blob:none", app.repository, str(clone)])
    if subprocess.run(["git", "--git-dir", str(clone), "cat-file", "-e", app.commit],
                      capture_output=True).returncode != 0:
        run(["git", "--git-dir", str(clone), "fetch", "origin", app.commit])
    return clone


def check_out(app: App, git_dir: Path, dest: Path) -> list[str]:
    """Write the tree of the pinned commit to ``dest``; return the files it had to leave out
    because the git directory lacks their content."""
    done = dest / ".sqlaopt-real-suites-checkout"
    if done.exists():
        return json.loads(done.read_text())
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    listing = git(git_dir, "ls-tree", "-r", "-z", app.commit).stdout.split("\0")
    blobs = {}
    for line in filter(None, listing):
        meta, path = line.split("\t", 1)
        _mode, kind, sha = meta.split()
        if kind == "blob":
            blobs.setdefault(sha, []).append(path)
    check = git(git_dir, "cat-file", "--batch-check", input="\n".join(blobs) + "\n").stdout
    missing = sorted(p for line in check.splitlines() if line.endswith(" missing")
                     for p in blobs[line.split()[0]])
    excludes = [f":(exclude,literal){path}" for path in missing]
    archive = subprocess.Popen(["git", "--git-dir", str(git_dir), "archive", "--format=tar",
                                app.commit, "--", ".", *excludes], stdout=subprocess.PIPE)
    subprocess.run(["tar", "-x", "-C", str(dest)], stdin=archive.stdout, check=True)
    if archive.wait() != 0:
        raise SystemExit(f"git archive of {app.name} {app.commit} failed")
    done.write_text(json.dumps(missing))
    return missing


# ------------------------------------------------------------------------- virtualenv


def missing_system_packages(app: App) -> list[str]:
    if not app.system or shutil.which("dpkg-query") is None:
        return []
    absent = []
    for package in app.system:
        status = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package],
                                capture_output=True, text=True).stdout
        if "install ok installed" not in status:
            absent.append(package)
    return absent


def prepare_venv(app: App, work: Path, src: Path, sqlaopt: Path) -> Path:
    """The app's virtualenv with its locked dependencies and sqlaopt from ``sqlaopt``."""
    absent = missing_system_packages(app)
    if absent:
        raise SystemExit(f"{app.name} needs the Debian packages {absent}: "
                         f"apt-get install {' '.join(absent)}")
    venv = work / "venv"
    python = venv / "bin" / "python"
    if not python.exists():
        run(["uv", "venv", "--python", app.python, str(venv)])
    requirements = work / "requirements.txt"
    if not requirements.exists():
        command = app.requirements.format(requirements=shlex.quote(str(requirements)))
        print("+", command, flush=True)
        subprocess.run(command, shell=True, check=True, cwd=src)
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()
    stamp = work / "requirements.installed"
    if not stamp.exists() or stamp.read_text() != digest:
        run(["uv", "pip", "install", "--python", str(python), "-r", str(requirements)])
        stamp.write_text(digest)
    # Rebuilt from the given source on every call: the run must measure that code.
    run(["uv", "pip", "install", "--python", str(python), "--reinstall-package", "sqlaopt",
         "--refresh-package", "sqlaopt", str(sqlaopt)])
    return python


def describe_source(path: Path) -> str:
    try:
        head = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], check=True,
                              capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(path), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return str(path)
    return f"{path} @ {head[:12]}{' + uncommitted changes in src/' if dirty else ''}"


# ------------------------------------------------------------------------- running


def network_isolation() -> list[str]:
    """The prefix that runs a command in a fresh network namespace, or [] if not allowed."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return []
    prefix = ["unshare", "--net", "--", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    if subprocess.run([*prefix, "true"], capture_output=True).returncode != 0:
        return []
    return prefix


SPLIT = "split"  # the record mode, counting per application call (a diagnostic, see README)


def mode_arguments(mode: str, record_mode: str, out: Path, tag: str) -> list[str]:
    if mode == "without":
        return ["-p", "no:sqlaopt"]
    if mode == "default":
        return []
    arguments = ["--sqlaopt-nplusone", record_mode if mode == SPLIT else mode]
    if mode in (record_mode, SPLIT):
        arguments += ["--sqlaopt-write-baseline", str(out / f"{tag}.baseline.json"),
                      "-p", DETAILS_PLUGIN]
    return arguments


@dataclass
class Run:
    mode: str
    seconds: float
    exit_code: int
    outcomes: dict[str, str]
    messages: dict[str, str]
    cpu_seconds: float | None = None

    def count(self, *outcomes: str) -> int:
        return sum(1 for o in self.outcomes.values() if o in outcomes)


def run_suite(app: App, python: Path, src: Path, out: Path, mode: str, tag: str,
              record_mode: str, isolation: list[str], extra: list[str]) -> Run:
    junit = out / f"{tag}.junit.xml"
    command = [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider",
               f"--junitxml={junit}", *app.pytest_args,
               *mode_arguments(mode, record_mode, out, tag), *app.tests, *extra]
    env = {**os.environ, **app.env, "PYTHONDONTWRITEBYTECODE": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env["SQLAOPT_REAL_SUITES_DETAILS"] = str(out / f"{tag}.details.jsonl")
    if mode == SPLIT:
        env["SQLAOPT_REAL_SUITES_SPLIT"] = "1"
    print(f"[{app.name}] {tag}: {shlex.join(command)}", flush=True)
    with (out / f"{tag}.log").open("w") as log:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        exit_code = subprocess.run([*isolation, *command], cwd=src, env=env, stdout=log,
                                   stderr=subprocess.STDOUT).returncode
        seconds = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    outcomes, messages = read_junit(junit)
    print(f"[{app.name}] {tag}: exit {exit_code}, {seconds:.1f} s ({cpu:.1f} s CPU), "
          f"{sum(o == 'passed' for o in outcomes.values())} passed, "
          f"{sum(o in FAILING for o in outcomes.values())} failed", flush=True)
    return Run(mode, seconds, exit_code, outcomes, messages, cpu)


_RANK = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}


def read_junit(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Outcome per test (the worst of its call and teardown) and the failure's message."""
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    if not path.exists():
        return outcomes, messages
    for case in ElementTree.parse(path).iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                kind = {"failure": "failed"}.get(child.tag, child.tag)
                if _RANK[kind] > _RANK[outcome]:
                    outcome = kind
                    message = (child.get("message") or "") + "\n" + (child.text or "")
        if _RANK[outcome] >= _RANK[outcomes.get(test, "passed")]:
            outcomes[test] = outcome
            if message:
                messages[test] = message.strip()
    return outcomes, messages


# ------------------------------------------------------------------------- analysis


def first_line(message: str) -> str:
    for line in message.splitlines():
        if line.strip():
            return line.strip()[:300]
    return ""


def n_plus_one_lines(message: str) -> list[str]:
    return [line.strip()[:400] for line in message.splitlines()
            if line.strip().startswith("N+1 ") or "NPlusOneError" in line]


def regressions(reference: Run, run_: Run) -> list[dict[str, Any]]:
    """Tests that pass without sqlaopt and fail (or error) in ``run_``."""
    found = []
    for test, outcome in sorted(run_.outcomes.items()):
        if outcome in FAILING and reference.outcomes.get(test) in PASSING:
            message = run_.messages.get(test, "")
            found.append({"test": test, "outcome": outcome, "first_line": first_line(message),
                          "n_plus_one": n_plus_one_lines(message)})
    return found


def statements_run(out: Path, tag: str) -> int | None:
    """SQL statements the test bodies of the record run executed, in total."""
    details = out / f"{tag}.details.jsonl"
    if not details.exists():
        return None
    counts = [r.get("statements") for r in map(json.loads, details.read_text().splitlines())
              if r.get("type") == "test"]
    return sum(c for c in counts if isinstance(c, int)) if counts else None


def _identity(record: dict[str, Any]) -> tuple[str, ...]:
    """(test, kind, target, location), with anonymous labels (``%(1400... anon)s``, an id
    that changes from run to run) made comparable."""
    target = re.sub(r"%\(\d+ anon\)s", "%(anon)s", str(record["target"]))
    return (record["test"], record["kind"], target, str(record["location"]))


def load_details(out: Path, tag: str) -> list[dict[str, Any]]:
    details = out / f"{tag}.details.jsonl"
    if details.exists() and details.stat().st_size:
        lines = [json.loads(line) for line in details.read_text().splitlines() if line]
        return [r for r in lines if r.get("type", "detection") == "detection"]
    baseline = out / f"{tag}.baseline.json"
    if not baseline.exists():
        return []
    entries = json.loads(baseline.read_text()).get("detections", [])
    return [{"test": e["test"], "kind": e["kind"], "target": e["target"],
             "location": e["where"], "count": None, "stack": []} for e in entries]


# Library frames worth showing in a stack: where a request or a flush begins.
MARKERS = (
    ("/werkzeug/test.py", "werkzeug test client"),
    ("/starlette/testclient.py", "starlette TestClient"),
    ("/httpx/_transports/asgi.py", "httpx ASGITransport"),
    ("/anyio/_backends/_asyncio.py:", "anyio"),
    ("/starlette/concurrency.py", "run_in_threadpool"),
    ("/fastapi/routing.py", "fastapi endpoint"),
    ("/orm/session.py", "session"),
    ("/sqlalchemy_continuum/", "sqlalchemy_continuum"),
)


def _split_frame(frame: str) -> tuple[str, int, str]:
    place, _, function = frame.rpartition(" in ")
    filename, _, line = place.rpartition(":")
    return filename, int(line) if line.isdigit() else 0, function


@functools.cache
def loop_lines(filename: str) -> frozenset[int]:
    """Lines of ``filename`` that run repeatedly: loop bodies and comprehensions."""
    try:
        tree = ast.parse(Path(filename).read_text())
    except (OSError, SyntaxError, ValueError):
        return frozenset()
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            for statement in (*node.body, *node.orelse):
                lines.update(range(statement.lineno, (statement.end_lineno or 0) + 1))
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            lines.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    return frozenset(lines)


def is_test_file(relative: str) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return "tests/" in relative or name.startswith("test_") or name.endswith("_test.py") \
        or name == "conftest.py"


@dataclass
class Frame:
    text: str  # "relative/path.py:LINE in function", or "[marker]" for a library frame
    source: str = ""
    in_loop: bool = False
    test: bool = False
    app: bool = False


def app_frames(stack: list[str], src: Path) -> list[Frame]:
    """The frames of the stack in the app's checkout (its code and its tests), with the
    library frames where a request or a flush begins, outermost first."""
    root = str(src) + os.sep
    frames: list[Frame] = []
    for frame in stack:
        filename, line, function = _split_frame(frame)
        if frame.startswith(root):
            relative = filename.removeprefix(root)
            source = linecache.getline(filename, line).strip()
            frames.append(Frame(f"{relative}:{line} in {function}", source,
                                line in loop_lines(filename), is_test_file(relative), True))
            continue
        for needle, marker in MARKERS:
            if needle in frame:
                label = f"[{marker} {function}]"
                if not frames or frames[-1].text != label:
                    frames.append(Frame(label))
                break
    return frames


def shape_hints(record: dict[str, Any], src: Path) -> list[str]:
    """Mechanical hints for triage: the human decides."""
    stack = record.get("stack") or []
    frames = app_frames(stack, src)
    statement = " ".join(str(record.get("statement") or "").split()).upper()
    hints = []
    joined = "\n".join(stack)
    if re.search(r"/orm/session\.py:\d+ in _?flush$", joined, re.MULTILINE):
        hints.append("during-flush")
    if any(marker in joined for marker, _ in MARKERS[:3]):
        hints.append("through-test-client")
    thread = re.sub(r"[-_ ]?\d+(_\d+)?$", "", record.get("thread") or "")
    if thread and thread != "MainThread":
        hints.append(f"thread:{thread}")
    app_loop = any(f.in_loop and f.app and not f.test for f in frames)
    test_loop = any(f.in_loop and f.test for f in frames)
    if app_loop:
        hints.append("loop-in-app-code")
    if test_loop:
        hints.append("loop-in-test-code")
    if not app_loop and not test_loop:
        hints.append("no-loop-on-stack")
    if re.search(r"\bIN \((\?|%\(\w+\)S|:\w+), ", statement) or "POSTCOMPILE" in statement:
        hints.append("in-list")
    if " OFFSET " in statement or " LIMIT " in statement:
        hints.append("limit/offset")
    if str(record.get("location", "")).startswith("<"):
        hints.append("generated-code-location")
    if "within_one_call" in record:
        hints.append("within-one-call" if record["within_one_call"] else "across-calls")
    return hints


def load_triage(app: App) -> list[dict[str, Any]]:
    """The app's triage rules (``triage/<app>.toml``), if any."""
    path = HERE / "triage" / f"{app.name}.toml"
    if not path.exists():
        return []
    with path.open("rb") as rules:
        return list(tomllib.load(rules).get("rule", []))


def triage(record: dict[str, Any], rules: list[dict[str, Any]]) -> dict[str, Any]:
    """The first rule matching the detection, or an "untriaged" verdict."""
    location = str(record["location"])
    stack = record.get("stack") or []
    for rule in rules:
        if rule.get("kind", record["kind"]) != record["kind"] \
                or rule.get("target", str(record["target"])) != str(record["target"]):
            continue
        wanted = rule.get("location", "")
        if not (location.startswith(wanted) if rule.get("match") == "prefix" or not wanted
                else location == wanted):
            continue
        if "loop" in rule and not (
                str(record.get("loop") or "").startswith(rule["loop"])
                if rule.get("loop_match") == "prefix" else record.get("loop") == rule["loop"]):
            continue
        if "via" in rule and not any(rule["via"] in frame for frame in stack):
            continue
        hints = set(record.get("hints", ()))
        if not set(rule.get("hints_all", ())) <= hints \
                or hints & set(rule.get("hints_none", ())) \
                or ("hints_any" in rule and not hints & set(rule["hints_any"])):
            continue
        return rule
    return {"verdict": "untriaged", "shape": "?", "note": ""}


def group_detections(records: list[dict[str, Any]], src: Path,
                     rules: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Detections grouped by (kind, target, location); within a group, one variant per
    triage verdict and set of shape hints, with its tests and an example stack."""
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}
    for record in records:
        key = (record["kind"], str(record["target"]), str(record["location"]))
        group = groups.setdefault(key, {
            "kind": key[0], "target": key[1], "location": key[2], "tests": [], "counts": [],
            "suggestion": record.get("suggestion"), "statement": record.get("statement"),
            "variants": {},
        })
        group["tests"].append(record["test"])
        if record.get("count") is not None:
            group["counts"].append(record["count"])
        hints = tuple(shape_hints(record, src))
        rule = triage({**record, "hints": hints}, rules)
        record["verdict"], record["shape"] = rule["verdict"], rule["shape"]
        verdict = (rule["verdict"], rule["shape"], *rule.get("also", ()))
        variant = group["variants"].setdefault((verdict, hints), {
            "verdict": rule["verdict"], "shape": rule["shape"], "also": rule.get("also", []),
            "note": rule.get("note", ""), "hints": list(hints), "tests": [],
            "stack": app_frames(record.get("stack") or [], src),
        })
        variant["tests"].append(record["test"])
    result = sorted(groups.values(), key=lambda g: (-len(g["tests"]), g["kind"], g["target"]))
    for group in result:
        group["variants"] = sorted(group["variants"].values(), key=lambda v: -len(v["tests"]))
    return result


# ------------------------------------------------------------------------- reporting


# Kinds that never fail a test in the default mode (findings that are not N+1s, issue 13).
NOT_N_PLUS_ONE = frozenset({"unused_eager_load", "row_explosion", "row_by_row_write",
                            "slow_statement"})


def test_verdicts(groups: list[dict[str, Any]]) -> dict[str, dict[str, set[str]]]:
    """Per test (as junit names it), the verdicts and shapes of its N+1 detections."""
    verdicts: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for group in groups:
        if group["kind"] in NOT_N_PLUS_ONE:
            continue
        for variant in group["variants"]:
            for test in variant["tests"]:
                verdicts[junit_name(test)][variant["verdict"]].add(variant["shape"])
    return verdicts


def junit_name(nodeid: str) -> str:
    """``pkg/tests/test_x.py::Class::test`` as junit's ``pkg.tests.test_x.Class::test``."""
    path, _, rest = nodeid.partition("::")
    module = path.removesuffix(".py").replace("/", ".")
    head, _, name = rest.rpartition("::")
    return f"{module}.{head}::{name}" if head else f"{module}::{name}"


_FAILURE_LINE = re.compile(
    r"sqlaopt: N\+1 (?P<target>\S+) .*? at (?P<location>\S+:\d+ in \S+)"
    r"(?: \(loop at (?P<loop>\S+:\d+ in \S+)\))?; fix: ")


def failing_detections(message: str) -> list[dict[str, str | None]]:
    """(target, location, loop) of each N+1 a failure message lists (``failure_text``)."""
    found: dict[tuple[str, str, str | None], None] = {}
    for match in _FAILURE_LINE.finditer(message):
        found[(match["target"], match["location"], match["loop"])] = None
    return [{"target": t, "location": loc, "loop": loop} for t, loc, loop in found]


def classify_failures(mode: dict[str, Any], records: list[dict[str, Any]],
                      rules: list[dict[str, Any]], messages: dict[str, str]) -> None:
    """Mark each test failing only with sqlaopt by the detections that failed it (the lines
    of its failure message), each triaged through the record run's detection of the same
    test, target and location (its stack and hints), else by the rules on the line alone:
    *justified* if one is real, *FALSE FAILURE* if all are false alarms, else *untriaged*."""
    index: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if "verdict" in record:
            index[(junit_name(record["test"]), str(record["target"]),
                   str(record["location"]))].append(record)
    for failure in mode["regressions"]:
        lines = failing_detections(messages.get(failure["test"], ""))
        verdicts: list[tuple[str, str]] = []
        for line in lines:
            matched = index.get((failure["test"], str(line["target"]), str(line["location"])))
            if matched:
                rule = {"verdict": matched[0]["verdict"], "shape": matched[0]["shape"]}
                line["via"] = "record run"
            else:
                kind = next((r["kind"] for key, found in index.items() for r in found
                             if key[1:] == (line["target"], line["location"])), "")
                rule = triage({"kind": kind, "target": line["target"],
                               "location": line["location"], "loop": line["loop"],
                               "stack": [], "hints": ()}, rules)
                line["via"] = "rules on the failure line"
            line["verdict"], line["shape"] = rule["verdict"], rule["shape"]
            verdicts.append((rule["verdict"], rule["shape"]))
        failure["failing"] = lines
        real = sorted({shape for verdict, shape in verdicts if verdict == "real"})
        if real:
            failure["triage"] = "justified: " + ", ".join(real)
        elif verdicts and all(v == "false-alarm" for v, _ in verdicts):
            failure["triage"] = "FALSE FAILURE: " + ", ".join(sorted({s for _, s in verdicts}))
        elif verdicts:
            failure["triage"] = "untriaged: " + ", ".join(
                sorted({f"{v} {s}" for v, s in verdicts if v != "false-alarm"}))
        else:
            failure["triage"] = "no N+1 in the failure message"


def failure_counts(mode: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for failure in mode["regressions"]:
        counts[failure["triage"].split(":")[0]] += 1
    return dict(counts)


def duplicate_reports(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """(test, kind, target, location) reported more than once in one test: one place, two
    detections (e.g. two lines of one loop calling the same helper)."""
    seen: dict[tuple[str, str, str, str], int] = defaultdict(int)
    for record in records:
        seen[(record["test"], record["kind"], str(record["target"]),
              str(record["location"]))] += 1
    return [{"test": k[0], "kind": k[1], "target": k[2], "location": k[3], "reports": n}
            for k, n in sorted(seen.items()) if n > 1]


def triage_table(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    table: dict[tuple[str, str], dict[str, Any]] = {}
    for group in groups:
        for variant in group["variants"]:
            for shape in (variant["shape"], *variant["also"]):
                row = table.setdefault((variant["verdict"], shape), {
                    "verdict": variant["verdict"], "shape": shape, "groups": set(),
                    "tests": set()})
                row["groups"].add((group["kind"], group["target"], group["location"]))
                row["tests"].update(variant["tests"])
    rows = sorted(table.values(), key=lambda r: (r["verdict"], -len(r["tests"])))
    return [{**r, "groups": len(r["groups"]), "tests": len(r["tests"])} for r in rows]


def summarise(app: App, source: str, sqlaopt: str, missing: list[str], rounds: list[list[Run]],
              details: list[dict[str, Any]], src: Path, load: str) -> dict[str, Any]:
    modes = [r.mode for r in rounds[0]]
    first = {r.mode: r for r in rounds[0]}
    times = {m: [r.seconds for rnd in rounds for r in rnd if r.mode == m] for m in modes}
    cpu = {m: [r.cpu_seconds for rnd in rounds for r in rnd
               if r.mode == m and r.cpu_seconds is not None] for m in modes}
    reference = first.get("without")
    per_mode = {}
    for mode in modes:
        median = statistics.median(times[mode])
        base = statistics.median(times["without"]) if reference else None
        per_mode[mode] = {
            "passed": first[mode].count("passed"), "failed": first[mode].count("failed"),
            "errors": first[mode].count("error"), "skipped": first[mode].count("skipped"),
            "exit_code": first[mode].exit_code, "seconds": times[mode],
            "median_seconds": median, "ratio": median / base if base else None,
            "cpu_seconds": cpu[mode],
            "median_cpu_seconds": statistics.median(cpu[mode]) if cpu[mode] else None,
            "cpu_ratio": (statistics.median(cpu[mode]) / statistics.median(cpu["without"])
                          if reference and cpu[mode] and cpu["without"] else None),
            "regressions": regressions(reference, first[mode]) if reference else [],
        }
    unstable = sorted({t for rnd in rounds[1:] for r in rnd
                       if (t := _flipped(r, first[r.mode]))})
    rules = load_triage(app)
    groups = group_detections(details, src, rules)
    verdicts = test_verdicts(groups)
    for name, mode in per_mode.items():
        classify_failures(mode, details, rules, first[name].messages)
        mode["failure_counts"] = failure_counts(mode)
    should_fail = sorted(t for t, v in verdicts.items() if "real" in v)
    return {"app": app.name, "repository": app.repository, "commit": app.commit,
            "source": source, "sqlaopt": sqlaopt, "missing_files": missing,
            "tests": app.tests, "load": load, "rounds": len(rounds), "modes": per_mode,
            "unstable_tests": unstable, "detections": groups,
            "triage": triage_table(groups), "tests_with_a_real_n_plus_one": should_fail,
            "duplicate_reports": duplicate_reports(details),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def _flipped(run_: Run, first: Run) -> str:
    changed = [t for t, o in run_.outcomes.items() if first.outcomes.get(t) != o]
    return ", ".join(changed)


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else str(value)


def markdown(summary: dict[str, Any], source: bool = True) -> str:
    """The summary as Markdown; without ``source``, stacks show frames but no source lines
    (that version quotes none of the application's code, and can be kept in this repo)."""
    lines = [f"# {summary['app']} @ {summary['commit'][:12]}", "",
             f"- repository: {summary['repository']} (source: {summary['source']})",
             f"- sqlaopt: {summary['sqlaopt']}",
             f"- suite: `pytest {' '.join(summary['tests'])}`, {summary['rounds']} round(s), "
             f"load before: {summary['load']}, {summary['date']}"]
    if summary.get("statements_in_test_bodies"):
        lines.append(f"- SQL statements run in test bodies (record run): "
                     f"{summary['statements_in_test_bodies']:,}")
    if summary["missing_files"]:
        lines.append(f"- files absent from the source, left out: {summary['missing_files']}")
    lines += ["", "| mode | passed | failed | errors | skipped | wall s (median) | ratio | "
              "CPU s (median) | ratio | fail only with sqlaopt |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for mode, m in summary["modes"].items():
        ratio = f"{m['ratio']:.2f}" if m["ratio"] else "-"
        cpu = f"{m['median_cpu_seconds']:.1f}" if m["median_cpu_seconds"] else "-"
        cpu_ratio = f"{m['cpu_ratio']:.2f}" if m["cpu_ratio"] else "-"
        lines.append(f"| {mode} | {m['passed']} | {m['failed']} | {m['errors']} | "
                     f"{m['skipped']} | {m['median_seconds']:.1f} | {ratio} | {cpu} | "
                     f"{cpu_ratio} | {len(m['regressions'])} |")
    for mode, m in summary["modes"].items():
        if m["regressions"]:
            counts = ", ".join(f"{n} {k}" for k, n in sorted(m["failure_counts"].items()))
            lines += ["", f"## Failing only in `{mode}` ({len(m['regressions'])}: {counts})",
                      ""]
            for r in m["regressions"]:
                detail = "; ".join(r["n_plus_one"]) or r["first_line"]
                lines.append(f"- `{r['test']}` ({r['outcome']}, {r['triage']}): {detail}")
                if not r["triage"].startswith("justified"):
                    lines += [f"  - {f['verdict']} {f['shape']} ({f['via']}): {f['target']} at "
                              f"`{f['location']}`" + (f" (loop at `{f['loop']}`)" if f["loop"]
                                                      else "")
                              for f in r.get("failing", [])]
    if summary["unstable_tests"]:
        lines += ["", f"Outcomes that changed between rounds: {summary['unstable_tests']}"]
    if summary["triage"]:
        lines += ["", "## Triage of the record run's detections", "",
                  "| verdict | shape | (kind, target, location) groups | tests |",
                  "|---|---|---:|---:|"]
        lines += [f"| {r['verdict']} | {r['shape']} | {r['groups']} | {r['tests']} |"
                  for r in summary["triage"]]
        lines += ["", f"Tests with a real N+1 ({len(summary['tests_with_a_real_n_plus_one'])}):"
                  f" {', '.join(summary['tests_with_a_real_n_plus_one'])}"]
    if summary["duplicate_reports"]:
        lines += ["", f"## One place reported more than once in a test "
                  f"({len(summary['duplicate_reports'])})", ""]
        lines += [f"- `{d['test']}`: {d['kind']} {d['target']} at `{d['location']}` "
                  f"x{d['reports']}" for d in summary["duplicate_reports"]]
    lines += ["", f"## Detections in the record run ({len(summary['detections'])} groups)", ""]
    for i, g in enumerate(summary["detections"], 1):
        counts = f", counts {min(g['counts'])}-{max(g['counts'])}" if g["counts"] else ""
        sql = " ".join(str(g["statement"] or "").split())[:240]
        lines += [f"{i}. **{g['kind']} {g['target']}** at `{g['location']}`: "
                  f"{len(g['tests'])} test(s){counts}",
                  f"   - fix: {g['suggestion']}", f"   - SQL: `{sql}`"]
        for variant in g["variants"]:
            also = f" (also {', '.join(variant['also'])})" if variant["also"] else ""
            lines.append(f"   - **{variant['verdict']}: {variant['shape']}**{also}: "
                         f"{variant['note']}")
            lines.append(f"     {len(variant['tests'])} test(s) with hints "
                         f"{', '.join(variant['hints']) or '-'}, e.g. `{variant['tests'][0]}`; "
                         "stack (outermost first; ⟳ = line in a loop):")
            lines += [f"     - {'⟳ ' if f.in_loop else ''}`{f.text}`"
                      + (f" `{f.source[:100]}`" if f.source and source else "")
                      for f in variant["stack"]]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------- main


def run_app(app: App, args: argparse.Namespace) -> dict[str, Any]:
    cache: Path = args.cache
    work = cache / app.slug
    git_dir = source_git_dir(app, cache, args.git_dir)
    src = work / "src"
    missing = check_out(app, git_dir, src)
    if missing:
        print(f"[{app.name}] left out (absent from {git_dir}): {missing}", flush=True)
    python = prepare_venv(app, work, src, args.sqlaopt)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out = (args.out or work / "results") / f"{app.name}-{stamp}"
    out.mkdir(parents=True, exist_ok=True)
    isolation = [] if args.network else network_isolation()
    if not isolation and not args.network:
        print("warning: cannot isolate the network (unshare --net); running as is", flush=True)
    load = Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "?"
    runs = []
    for index in range(args.repeat):
        order = args.modes if index % 2 == 0 else args.modes[::-1]  # interleave the order
        for mode in order:
            tag = f"{mode}-{index + 1}"
            result = run_suite(app, python, src, out, mode, tag, args.record_mode, isolation,
                               args.pytest_args)
            runs.append({"mode": mode, "tag": tag, "round": index, "seconds": result.seconds,
                         "cpu_seconds": result.cpu_seconds, "exit_code": result.exit_code})
            (out / "runs.json").write_text(json.dumps(
                {"app": app.name, "modes": args.modes, "record_mode": args.record_mode,
                 "source": str(git_dir), "missing": missing, "load": load, "runs": runs},
                indent=2) + "\n")
    return analyse(app, out, src, describe_source(args.sqlaopt))


def analyse(app: App, out: Path, src: Path, sqlaopt: str) -> dict[str, Any]:
    """Summarise the runs recorded in ``out`` (again, after the fact if need be)."""
    meta = json.loads((out / "runs.json").read_text())
    modes, record_mode = meta["modes"], meta["record_mode"]
    rounds: list[list[Run]] = []
    for entry in meta["runs"]:
        while len(rounds) <= entry["round"]:
            rounds.append([])
        outcomes, messages = read_junit(out / f"{entry['tag']}.junit.xml")
        rounds[entry["round"]].append(Run(entry["mode"], entry["seconds"], entry["exit_code"],
                                          outcomes, messages, entry.get("cpu_seconds")))
    rounds = [sorted(rnd, key=lambda r: modes.index(r.mode)) for rnd in rounds]
    details = load_details(out, f"{record_mode}-1") if record_mode in modes else []
    split = load_details(out, f"{SPLIT}-1") if SPLIT in modes else []
    if split:
        survivors = {_identity(r) for r in split}
        for record in details:
            record["within_one_call"] = _identity(record) in survivors
    summary = summarise(app, meta["source"], sqlaopt, meta["missing"], rounds, details, src,
                        meta["load"])
    summary["statements_in_test_bodies"] = statements_run(out, f"{record_mode}-1")
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=_plain) + "\n")
    (out / "summary.md").write_text(markdown(summary))
    (out / "summary-frames-only.md").write_text(markdown(summary, source=False))
    print(markdown(summary))
    print(f"[{app.name}] results in {out}", flush=True)
    return summary


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    apps = load_apps()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("app", choices=[*apps, "all"], help="which app of apps.toml")
    parser.add_argument("--sqlaopt", type=Path, default=REPOSITORY,
                        help="sqlaopt source to install (default: this repository)")
    parser.add_argument("--modes", default="without,record,default",
                        help="comma-separated: without, default, or a plugin mode name")
    parser.add_argument("--record-mode", default="record",
                        help="the mode whose run writes the baseline and details")
    parser.add_argument("--repeat", type=int, default=1, help="rounds, modes interleaved")
    parser.add_argument("--cache", type=Path,
                        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                        / "sqlaopt-real-suites")
    parser.add_argument("--out", type=Path, default=None, help="results directory")
    parser.add_argument("--git-dir", type=Path, default=None,
                        help="a git directory holding the pinned commit")
    parser.add_argument("--network", action="store_true",
                        help="do not isolate the suite from the network")
    parser.add_argument("--analyse", type=Path, default=None, metavar="RESULTS",
                        help="only summarise a results directory of an earlier run")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    args.modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    args.apps = list(apps.values()) if args.app == "all" else [apps[args.app]]
    args.sqlaopt = args.sqlaopt.resolve()
    args.cache = args.cache.resolve()
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for app in args.apps:
        if args.analyse is not None:
            analyse(app, args.analyse.resolve(), args.cache / app.slug / "src",
                    describe_source(args.sqlaopt))
        else:
            run_app(app, args)


if __name__ == "__main__":
    sys.exit(main())
