"""The HTML report rendered by headless Chromium: the findings show, sorting works, and hostile
SQL or test ids stay text."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import sqlaopt.report
from sqlaopt.report._findings import record

from .helpers import HOSTILE_SQL, detection, rendered_dom

pytestmark = pytest.mark.nplusone(mode="off")

# Clicks a header's button and notes the Target column's order in a data attribute of <body>.
CLICKS = """
function targets() {
  return Array.prototype.map.call(document.querySelectorAll("#findings tbody tr"),
    function (row) { return row.cells[2].textContent; }).join("|");
}
function click(name) {
  Array.prototype.forEach.call(document.querySelectorAll("#findings th button"),
    function (button) { if (button.textContent === name) { button.click(); } });
}
document.body.setAttribute("data-initial", targets());
click("Count"); document.body.setAttribute("data-count-up", targets());
click("Count"); document.body.setAttribute("data-count-down", targets());
click("Target"); document.body.setAttribute("data-target-up", targets());
click("Outcome"); document.body.setAttribute("data-outcome-up", targets());
"""


class Page(HTMLParser):
    """The rendered page's elements, body attributes and visible text."""

    def __init__(self, dom: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.body: dict[str, str | None] = {}
        self.text: list[str] = []
        self.title = ""
        self._in_title = False
        self.feed(dom)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_title = tag == "title"
        if tag == "body":
            self.body = dict(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._in_title:
            self.title += data
            self._in_title = False


def _findings() -> list[dict[str, object]]:
    return [
        record(detection("Appointment.client", 5), test="t.py::test_a", outcome="reported"),
        record(detection("Appointment.client", 7), test="t.py::test_b", outcome="reported"),
        record(detection("Client.user", 3, "app/users.py:8 in names"), test="t.py::test_c",
               outcome="failed"),
        record(detection("Barber.shop", 40, "app/shops.py:2 in shops"), test="t.py::test_d",
               outcome="accepted"),
    ]


def test_the_page_shows_the_findings_and_sorts_by_each_column(tmp_path: Path) -> None:
    page = sqlaopt.report.write(_findings(), tmp_path / "report.html")
    # The test's own script joins the page's; the policy must let it run, as it lets the
    # page's own (by its hash).
    html = page.read_text()
    digest = base64.b64encode(hashlib.sha256(CLICKS.encode()).digest()).decode()
    html = html.replace("script-src '", f"script-src 'sha256-{digest}' '")
    html = html.replace("</body>", f"<script>{CLICKS}</script></body>")
    clicked = tmp_path / "clicked.html"
    clicked.write_text(html)
    rendered = Page(rendered_dom(clicked))
    text = " ".join(rendered.text)
    for shown in ("4 finding(s) at 3 place(s) in 4 test(s): 4 lazy_load.",
                  "app/schedule.py:31 in schedule_entry", "joinedload(Client.user)",
                  "SELECT * FROM barber WHERE id = ?", "t.py::test_b"):
        assert shown in text
    orders = {name: rendered.body[f"data-{name}"] for name in
              ("initial", "count-up", "count-down", "target-up", "outcome-up")}
    assert orders == {
        # Grouped by place: the two tests at app/schedule.py:31 are one row of count 12.
        "initial": "Appointment.client|Barber.shop|Client.user",  # by file and line
        "count-up": "Client.user|Appointment.client|Barber.shop",
        "count-down": "Barber.shop|Appointment.client|Client.user",
        "target-up": "Appointment.client|Barber.shop|Client.user",
        "outcome-up": "Client.user|Appointment.client|Barber.shop",  # failed first
    }


def test_the_unchanged_page_runs_its_own_script_only(tmp_path: Path) -> None:
    hostile = detection(statement=HOSTILE_SQL, suggestion='<img src=y onerror="alert(1)">')
    finding = record(hostile, test='t.py::test[<script>document.title="pwned"</script>]')
    page = sqlaopt.report.write([finding], tmp_path / "report.html")
    dom = rendered_dom(page)
    rendered = Page(dom)
    assert rendered.title == "sqlaopt report"
    assert "img" not in rendered.tags
    assert rendered.tags.count("script") == 1
    text = "".join(rendered.text)
    assert HOSTILE_SQL in text
    assert 't.py::test[<script>document.title="pwned"</script>]' in text
    # The policy lets the page's own script run (it marks the table as it adds its listeners).
    assert re.search(r'<table id="findings" data-sortable="">', dom)
