"""Which instructions of a function run inside one of its loops (read from the bytecode).

A loop compiles to a backward jump: every instruction between the jump's target and the jump
runs once per iteration. ``JUMP_BACKWARD_NO_INTERRUPT`` is left out: CPython 3.11+ uses it for
the retry loop inside every ``await`` and ``yield from``, which is not the program's loop.
"""

from __future__ import annotations

import dis
from functools import lru_cache
from types import CodeType
from typing import Final, NamedTuple

__all__ = ["loop_line", "loop_variable", "returns_call"]

_NOT_A_LOOP = frozenset({"JUMP_BACKWARD_NO_INTERRUPT"})
# Between a call and the return of its value: dropping a ``for`` loop's iterator first.
_STACK_CLEANUP = frozenset({"SWAP", "POP_TOP", "NOP"})
_STORES = frozenset({"STORE_FAST", "STORE_NAME", "STORE_DEREF", "STORE_GLOBAL"})
_UNPACKS = frozenset({"UNPACK_SEQUENCE", "UNPACK_EX"})


class _Bytecode(NamedTuple):
    """What the functions below need from one code object's bytecode, read in one pass:
    ``dis.get_instructions`` is most of the cost of reading it (once per code object)."""

    loop_ranges: tuple[tuple[int, int], ...]
    loop_variables: dict[int, str]
    returning_calls: frozenset[int]


_NO_LOOPS: Final = _Bytecode((), {}, frozenset())


@lru_cache(maxsize=1024)
def _read(code: CodeType) -> _Bytecode:
    instructions = list(dis.get_instructions(code))
    ranges = _loop_ranges(instructions)
    if not ranges:  # the rest is asked only of an instruction inside a loop
        return _NO_LOOPS
    return _Bytecode(ranges, _loop_variables(instructions), _returning_calls(instructions))


def _loop_ranges(instructions: list[dis.Instruction]) -> tuple[tuple[int, int], ...]:
    ranges = []
    for instruction in instructions:
        target = instruction.argval
        jumps = instruction.opcode in dis.hasjrel or instruction.opcode in dis.hasjabs
        if jumps and isinstance(target, int) and target < instruction.offset \
                and instruction.opname not in _NOT_A_LOOP:
            ranges.append((target, instruction.offset))
    return tuple(ranges)


def _loop_variables(instructions: list[dis.Instruction]) -> dict[int, str]:
    """A ``for`` loop's start (its ``FOR_ITER``) -> a variable each item is stored in (for
    ``for i, item in ...``, the first name unpacked)."""
    found: dict[int, str] = {}
    for index, instruction in enumerate(instructions):
        if instruction.opname != "FOR_ITER":
            continue
        following = instructions[index + 1:index + 3]
        if following and following[0].opname in _UNPACKS:
            following = following[1:]
        if following and following[0].opname in _STORES:
            found[instruction.offset] = str(following[0].argval)
    return found


def loop_variable(code: CodeType, lasti: int) -> str | None:
    """The variable the innermost ``for`` loop around ``lasti`` stores its items in (None in
    a ``while`` loop, outside every loop, or for an unpacked or attribute target)."""
    inside = [(start, end) for start, end in _read(code).loop_ranges if start <= lasti <= end]
    if not inside:
        return None
    return _read(code).loop_variables.get(max(inside)[0])


def loop_line(code: CodeType, lasti: int) -> int | None:
    """The first line of the innermost loop of ``code`` that the instruction at ``lasti`` is
    in (a ``for`` loop's own line), or None outside every loop."""
    inside = [(start, end) for start, end in _read(code).loop_ranges if start <= lasti <= end]
    if not inside:
        return None
    start = max(inside)[0]  # the innermost loop starts last
    return _line_at(code, start)


def _returning_calls(instructions: list[dis.Instruction]) -> frozenset[int]:
    """The offsets of the calls whose value the function returns at once (``return f(...)``).

    A calling frame reports an offset inside its call instruction's inline caches (CPython
    3.11: the last cache of ``CALL``, or of ``PRECALL`` once specialised), so every offset from
    the call's ``PRECALL`` to the next instruction counts.
    """
    offsets: set[int] = set()
    calls: list[int] = []
    for instruction, following in zip(instructions, [*instructions[1:], None], strict=True):
        if instruction.opname in ("PRECALL", "CALL"):
            end = following.offset if following is not None else instruction.offset + 2
            calls.extend(range(instruction.offset, end))
        elif instruction.opname == "RETURN_VALUE":
            offsets.update(calls)
            calls = []
        elif instruction.opname not in _STACK_CLEANUP:
            calls = []
    return frozenset(offsets)


def returns_call(code: CodeType, lasti: int) -> bool:
    """Whether the instruction at ``lasti`` calls a function whose value ``code`` returns at
    once: a loop around it cannot run it again once the call has returned. (Asked only of an
    instruction inside a loop: False in a function without loops.)"""
    return lasti in _read(code).returning_calls


def _line_at(code: CodeType, offset: int) -> int:
    for start, end, line in code.co_lines():
        if start <= offset < end and line is not None:
            return line
    return code.co_firstlineno
