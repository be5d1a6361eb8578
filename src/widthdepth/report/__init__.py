"""The report: one self-contained HTML file with interactive figures (Vega-Lite), from the store alone."""

from widthdepth.report.html import write_report

__all__ = ["write_report"]
