"""What every report page shares: its style sheet, and its figures — Vega-Lite specs drawn in the page
from shared datasets (lazily, as they scroll into view), or PNG images (`static`).
"""

from __future__ import annotations

import html
import json

from widthdepth.jsonsafe import json_safe

CSS = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 1.5em auto; padding: 0 1em; color: #222; }
h1 { margin: 0 0 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 1.6em; }
figure { margin: 0.8em 0; } figure img { max-width: 100%; }
figcaption { font-size: 0.88em; color: #555; max-width: 900px; }
.chart { min-height: 220px; } .chart.drawn { min-height: 0; }
.vega-bindings { font-size: 0.88em; margin: 0.2em 0 0.4em; } .vega-bind { display: inline-block; margin-right: 1em; }
table { border-collapse: collapse; font-size: 0.85em; } td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f4f4f4; } .verdict li { margin: 0.3em 0; } .meta { color: #555; } code { background: #f4f4f4; }
.significant { font-weight: 600; } ul.answer { font-size: 1.05em; line-height: 1.45; } ul.answer li { margin: 0.35em 0; }
.warning { background: #fff4d6; border-left: 4px solid #e0a800; padding: 0.4em 0.8em; }
details { margin: 0.5em 0; } details > summary { cursor: pointer; padding: 0.25em 0; }
details.experiment { border: 1px solid #ddd; border-radius: 4px; padding: 0.2em 0.8em; }
details.experiment > summary { font-size: 1.02em; }
"""

PAGE_SCRIPT = """
(function () {
  var store = JSON.parse(document.getElementById("wd-figures").textContent), unpacked = {};
  function rows(columns) {  // datasets travel as columns; the 95% interval's text is made here
    var keys = Object.keys(columns), n = keys.length ? columns[keys[0]].length : 0, out = [];
    for (var i = 0; i < n; i++) {
      var row = {};
      keys.forEach(function (k) { row[k] = columns[k][i]; });
      if ("lo" in row && "hi" in row) {
        row.ci = row.lo == null || row.hi == null ? "\u2014" : row.lo.toFixed(2) + "\u2013" + row.hi.toFixed(2);
      }
      out.push(row);
    }
    return out;
  }
  function datasets(key) {
    if (!unpacked[key]) {
      unpacked[key] = {};
      Object.keys(store.data[key]).forEach(function (name) { unpacked[key][name] = rows(store.data[key][name]); });
    }
    return unpacked[key];
  }
  function draw(el) {
    var spec = Object.assign({}, store.specs[el.dataset.spec], {datasets: datasets(el.dataset.data)});
    vegaEmbed(el, spec, {renderer: "svg", actions: {export: true, source: false, compiled: false, editor: false}})
      .then(function () { el.classList.add("drawn"); })
      .catch(function (err) { el.textContent = "This figure could not be drawn: " + err; console.error(err); });
  }
  var COLUMNS = [["w", "w"], ["d", "d"], ["agg", "aggregator"], ["acc", "accuracy"], ["ci", "95% CI"],
                 ["tok", "gen tokens"], ["serial", "serial tokens"], ["flops", "FLOPs"]];
  function fmt(v, k) {
    if (v == null) return "\u2014";
    if (typeof v !== "number" || k === "w" || k === "d") return String(v);
    return k === "acc" ? v.toFixed(3) : k === "flops" ? v.toPrecision(3) : Math.round(v).toLocaleString("en");
  }
  document.querySelectorAll("details.cells").forEach(function (box) {
    box.addEventListener("toggle", function () {
      if (!box.open || box.querySelector("table")) return;
      var table = document.createElement("table"), head = table.insertRow();
      COLUMNS.forEach(function (c) { var th = document.createElement("th"); th.textContent = c[1]; head.appendChild(th); });
      datasets(box.dataset.data).cells.forEach(function (row) {
        var tr = table.insertRow();
        COLUMNS.forEach(function (c) { tr.insertCell().textContent = fmt(row[c[0]], c[0]); });
      });
      box.appendChild(table);
    });
  });
  var watch = new IntersectionObserver(function (entries) {
    entries.forEach(function (e) { if (e.isIntersecting) { watch.unobserve(e.target); draw(e.target); } });
  }, {rootMargin: "300px"});
  document.querySelectorAll("div.chart").forEach(function (el) { watch.observe(el); });
})();
"""


class Figures:
    """The page's figures: Vega-Lite specs drawn in the page from shared datasets, or PNG (`static`)."""

    def __init__(self, static: bool = False) -> None:
        self.static = static
        self.specs: dict[str, dict] = {}
        self.data: dict[str, dict[str, list[dict]]] = {}

    def figure(self, spec: dict, data: str, alt: str, caption: str) -> str:
        caption = f"<figcaption>{html.escape(caption)}</figcaption>"
        if self.static:
            from widthdepth.report.vega import to_png
            import base64

            png = base64.b64encode(to_png(spec, self.data[data])).decode("ascii")
            return f'<figure><img src="data:image/png;base64,{png}" alt="{html.escape(alt)}">{caption}</figure>'
        key = f"f{len(self.specs)}"
        self.specs[key] = spec
        return (f'<figure><div class="chart" data-spec="{key}" data-data="{html.escape(data)}" role="img" '
                f'aria-label="{html.escape(alt)}"></div>{caption}</figure>')

    def scripts(self) -> str:
        if self.static or not self.specs:
            return ""
        from widthdepth.report.vega import javascript

        data = {key: {name: columns(rows) for name, rows in sets.items()} for key, sets in self.data.items()}
        payload = json.dumps(json_safe({"specs": self.specs, "data": data}), separators=(",", ":"),
                             allow_nan=False, sort_keys=True).replace("</", "<\\/")
        return (f'<script type="application/json" id="wd-figures">{payload}</script>'
                f"<script>{javascript()}</script><script>{PAGE_SCRIPT}</script>")


def columns(rows: list[dict]) -> dict[str, list]:
    """A dataset as columns (half the bytes of rows); the interval's text ("ci") is remade in the page."""
    keys = list(dict.fromkeys(k for row in rows for k in row if k != "ci"))
    return {k: [row.get(k) for row in rows] for k in keys}


