"""The HTML report: ``build.build_report`` (page) and ``figures`` (seaborn figures)."""

from hgbench.report.build import build_report

__all__ = ["build_report"]
