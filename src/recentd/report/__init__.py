"""Replay reports: one self-contained HTML file with plots, for ``recentd replay --report``
and ``recentd logs replay --report``.

Rules of this package:

1. A replay fills one small typed value, :class:`~recentd.report.model.ReportData`
   (:class:`~recentd.report.model.TimelineBuilder` gathers it event by event); pure, no
   plotting library imported.
2. :func:`~recentd.report.html.write_report` turns it into the file: plots drawn by
   matplotlib as inline SVG (no script, no network access needed to open the page;
   tens of kilobytes, where plotly would inline ~4.5 MB of JavaScript per report), tables
   as HTML, every text escaped.
"""

from recentd.report.model import BanRow, ReportData, RuleCounter, Timeline, TimelineBuilder

__all__ = ["BanRow", "ReportData", "RuleCounter", "Timeline", "TimelineBuilder"]
