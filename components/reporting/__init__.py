"""The sustainability report: what a run saved against doing none of it (plain Python).

The report module loads on first use of its names: ``reporting.svg`` (the plot helpers the
selection report and others share) does not bring it along, so a portable build of a component
that only draws embeds only what it runs (``greenkfp.components._runtime.required_modules``).
"""

_LAZY = ("SCHEMA", "build_sustainability_report", "sustainability_html")


def __getattr__(name: str):
    if name in _LAZY:
        from . import sustainability

        return getattr(sustainability, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["SCHEMA", "build_sustainability_report", "sustainability_html"]
