"""The reproduction report: figures and tables read from stored results only.

:func:`build_report` turns the output directory of ``anisoada reproduce`` into a self-contained
HTML page and a Markdown summary (``anisoada report RESULTS_DIR`` on the command line). Nothing
here trains or measures.
"""

from anisoada.report.builder import ReportPaths, build_report
from anisoada.report.sections import SECTIONS

__all__ = ["SECTIONS", "ReportPaths", "build_report"]
