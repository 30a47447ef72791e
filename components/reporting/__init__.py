"""The sustainability report: what a run saved against doing none of it (plain Python)."""

from .sustainability import SCHEMA, build_sustainability_report, sustainability_html

__all__ = ["SCHEMA", "build_sustainability_report", "sustainability_html"]
