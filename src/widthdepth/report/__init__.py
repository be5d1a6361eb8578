"""The report: figures (matplotlib) and one self-contained HTML file, from the store alone."""

from widthdepth.report.html import write_report

__all__ = ["write_report"]
