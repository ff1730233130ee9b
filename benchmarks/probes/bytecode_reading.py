"""The detector's one-time work per function: reading its bytecode (``detect/_loops.py``).

Today's ``_loops`` against the one at a git revision, cold (caches cleared), on functions of
sqlaopt and SQLAlchemy, asking what the detector asks of a frame in a loop (its loop's line,
its ``for`` variable, whether it returns the call it makes); interleaved, process CPU time.

    uv run python benchmarks/probes/bytecode_reading.py --against 3801638
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from types import CodeType, ModuleType

import sqlalchemy.engine.base

from sqlaopt.detect import _callsite, _hook, _loops

# Functions with loops (a frame in a loop: every question is read) and without (one).
IN_LOOPS: list[CodeType] = [_hook._observe.__code__, _callsite.capture.__code__,
                            _callsite._went_round.__code__]
NO_LOOPS: list[CodeType] = [_callsite.describe.__code__, _hook._new_loop.__code__,
                            sqlalchemy.engine.base.Connection._execute_context.__code__]


def module_at(revision: str) -> ModuleType:
    source = subprocess.run(["git", "show", f"{revision}:src/sqlaopt/detect/_loops.py"],
                            check=True, capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[2]).stdout
    path = Path(tempfile.mkdtemp()) / "older_loops.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("older_loops", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def asked_at(code: CodeType) -> int:
    """An instruction inside the function's last loop, or its last instruction."""
    ranges = _loops._read(code).loop_ranges
    return ranges[-1][1] if ranges else len(code.co_code) - 2


def read_cold(loops: ModuleType, asked: list[tuple[CodeType, int]]) -> None:
    for value in vars(loops).values():  # every lru_cache of the module
        if hasattr(value, "cache_clear"):
            value.cache_clear()
    for code, at in asked:  # what the detector asks of a frame (describe, activations)
        if loops.loop_line(code, at) is not None:
            loops.returns_call(code, at)
        loops.loop_variable(code, at)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", required=True, metavar="REVISION")
    parser.add_argument("--reps", type=int, default=40)
    args = parser.parse_args()
    conditions = {args.against: module_at(args.against), "today": _loops}
    for label, codes in (("in loops", IN_LOOPS), ("without loops", NO_LOOPS)):
        asked = [(code, asked_at(code)) for code in codes]  # found outside the timing
        times: dict[str, list[float]] = {name: [] for name in conditions}
        for rep in range(args.reps):
            for name in list(conditions)[:: 1 if rep % 2 else -1]:
                gc.collect()
                start = time.process_time()
                read_cold(conditions[name], asked)
                times[name].append(time.process_time() - start)
        older, today = times[args.against], times["today"]
        per_code = {name: statistics.median(t) * 1e6 / len(codes) for name, t in times.items()}
        ratio = statistics.median(n / o for n, o in zip(today, older, strict=True))
        print(f"functions {label}, µs each, cold: {args.against} {per_code[args.against]:.0f}, "
              f"today {per_code['today']:.0f}; today / {args.against}: {ratio:.3f} "
              f"(median of {args.reps} interleaved ratios)")


if __name__ == "__main__":
    main()
