"""``sqlaopt demo --url`` follows the command line's rules for a database it cannot use: one
line, exit status 3, within the connect timeout (the demo's run itself is CI's smoke test)."""

from __future__ import annotations

import time

import pytest

from sqlaopt.cli import main


def test_an_unreachable_database_is_one_line_and_exit_3(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    status = main(["demo", "--url", "postgresql+psycopg://app@127.0.0.1:1/booking",
                   "--connect-timeout", "1"])
    assert time.monotonic() - started < 5
    captured = capsys.readouterr()
    assert status == 3 and captured.out == ""
    assert captured.err.startswith(
        "sqlaopt demo: cannot connect to postgresql at 127.0.0.1:1/booking: connection failed"
    )
    assert captured.err.count("\n") == 1
