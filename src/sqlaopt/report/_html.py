"""The HTML report: one self-contained page, one table row per finding place, sortable.

Every value is escaped, and the page's Content-Security-Policy allows only its own inline
script and style (by their hashes): SQL or a test id that smuggles markup into the report stays
text, and nothing it names is ever fetched.
"""

from __future__ import annotations

import base64
import hashlib
from collections import Counter
from html import escape
from typing import Any, Final

from ._findings import OUTCOMES, Collected, Group, group

__all__ = ["render"]

_MAX_TESTS: Final = 200
"""Test ids listed per row; the count column says how many there were."""

_STYLE: Final = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: .4em .5em; text-align: left;
         vertical-align: top; }
th button { font: inherit; font-weight: bold; border: 0; background: none; cursor: pointer;
            padding: 0; }
th[aria-sort=ascending] button::after { content: " \\25B2"; }
th[aria-sort=descending] button::after { content: " \\25BC"; }
td.count { text-align: right; }
pre { white-space: pre-wrap; max-height: 12em; overflow: auto; margin: .2em 0;
      background: #f6f6f6; padding: .3em; }
.failed { color: #b00020; font-weight: bold; } .accepted { color: #666; }
code { background: #f6f6f6; }
"""

# Sorts the rows by the clicked column's data-sort values; again reverses.
_SCRIPT: Final = """
(function () {
  var table = document.getElementById("findings");
  if (!table) { return; }
  table.setAttribute("data-sortable", "");
  var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
  headers.forEach(function (header, column) {
    var button = header.querySelector("button");
    if (!button) { return; }
    button.addEventListener("click", function () {
      var ascending = header.getAttribute("aria-sort") !== "ascending";
      var numeric = header.getAttribute("data-type") === "number";
      headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
      header.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute("data-sort");
        var y = b.cells[column].getAttribute("data-sort");
        var order = numeric ? Number(x) - Number(y) : (x < y ? -1 : x > y ? 1 : 0);
        return ascending ? order : -order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
})();
"""

# (header, data type): the sortable columns in order; the last column is not sortable.
_COLUMNS: Final = (("Location", "text"), ("Kind", "text"), ("Target", "text"),
                   ("Count", "number"), ("Tests", "number"), ("Outcome", "number"),
                   ("Fix", "text"))


def render(collected: Collected, version: str) -> str:
    places = group(collected.records, _place)
    csp = (f"default-src 'none'; script-src '{_digest(_SCRIPT)}'; "
           f"style-src '{_digest(_STYLE)}'")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">',
        "<title>sqlaopt report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>sqlaopt report</h1>",
        _summary(collected, places, version),
        _table(places) if places else '<p id="empty">No findings.</p>',
        f"<script>{_SCRIPT}</script>",
        "</body></html>",
        "",
    ])


def _place(item: dict[str, Any]) -> tuple[Any, ...]:
    return (item["location"], item.get("loop"), item["kind"], item["target"],
            item["suggestion"], item["statement"])


def _digest(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def _summary(collected: Collected, places: list[Group], version: str) -> str:
    tests = {r["test"] for r in collected.records if r.get("test")}
    kinds = Counter(r["kind"] for r in collected.records)
    by_kind = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
    dropped = (f" {collected.dropped} more were not recorded (the per-scope cap)."
               if collected.dropped else "")
    statements = ("" if collected.statements is None
                  else f" {collected.statements} SQL statements ran.")
    text = (f"{len(collected.records)} finding(s) at {len(places)} place(s) in "
            f"{len(tests)} test(s){': ' + by_kind if by_kind else ''}.{statements}{dropped}")
    return (f'<p id="summary">{escape(text)}</p>'
            f"<p><small>Written by sqlaopt {escape(version)}. Click a column header to sort."
            "</small></p>")


def _table(places: list[Group]) -> str:
    headers = "".join(f'<th data-type="{kind}"><button type="button">{name}</button></th>'
                      for name, kind in _COLUMNS)
    rows = "\n".join(_row(place) for place in places)
    return (f'<table id="findings"><thead><tr>{headers}<th>Statement and tests</th></tr>'
            f"</thead><tbody>\n{rows}\n</tbody></table>")


def _row(place: Group) -> str:
    first, tests = place.first, place.tests
    line = first.get("line") or 0
    cells = [
        _cell(f"{first.get('file', '')}:{line:09d}", f"<code>{escape(first['location'])}</code>"
              + (f"<br>loop at <code>{escape(first['loop'])}</code>" if first.get("loop")
                 else "")),
        _cell(first["kind"], escape(first["kind"])),
        _cell(first["target"], escape(first["target"])),
        _cell(str(place.count), str(place.count), "count"),
        _cell(str(len(tests)), str(len(tests)), "count"),
        _cell(str(OUTCOMES.index(place.outcome)), escape(place.outcome), place.outcome),
        _cell(first["suggestion"], f"<code>{escape(first['suggestion'])}</code>"),
    ]
    listed = "".join(f"<li>{escape(t)}</li>" for t in tests[:_MAX_TESTS])
    more = f"<li>and {len(tests) - _MAX_TESTS} more</li>" if len(tests) > _MAX_TESTS else ""
    details = (f"<details><summary>{len(tests)} test(s)</summary><ul>{listed}{more}</ul>"
               "</details>" if tests else "")
    cells.append(f"<td><pre>{escape(first['statement'])}</pre>{details}</td>")
    return f"<tr>{''.join(cells)}</tr>"


def _cell(sort: str, content: str, css: str = "") -> str:
    style = f' class="{css}"' if css else ""
    return f'<td data-sort="{escape(sort)}"{style}>{content}</td>'
