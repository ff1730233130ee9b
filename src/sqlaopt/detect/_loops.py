"""Which instructions of a function run inside one of its loops (read from the bytecode).

A loop compiles to a backward jump: every instruction between the jump's target and the jump
runs once per iteration. ``JUMP_BACKWARD_NO_INTERRUPT`` is left out: CPython 3.11+ uses it for
the retry loop inside every ``await`` and ``yield from``, which is not the program's loop.
"""

from __future__ import annotations

import dis
from functools import lru_cache
from types import CodeType

__all__ = ["in_loop"]

_NOT_A_LOOP = frozenset({"JUMP_BACKWARD_NO_INTERRUPT"})


@lru_cache(maxsize=1024)
def _loop_ranges(code: CodeType) -> tuple[tuple[int, int], ...]:
    ranges = []
    for instruction in dis.get_instructions(code):
        target = instruction.argval
        jumps = instruction.opcode in dis.hasjrel or instruction.opcode in dis.hasjabs
        if jumps and isinstance(target, int) and target < instruction.offset \
                and instruction.opname not in _NOT_A_LOOP:
            ranges.append((target, instruction.offset))
    return tuple(ranges)


def in_loop(code: CodeType, lasti: int) -> bool:
    """Whether the instruction at ``lasti`` of ``code`` is inside a loop of ``code``."""
    return any(start <= lasti <= end for start, end in _loop_ranges(code))
