"""The one place that touches the regorus binding (in-process Rego evaluation).

The Python bindings of regorus (microsoft/regorus, a Rego interpreter in Rust) on the package
index are forks; this project pins ``gordon-to-regorus==0.13.0`` (see pyproject.toml). Nothing
else imports ``regorus``: to change the binding, change this module.

Two things of the binding shape this wrapper:

* an ``Engine`` is "unsendable" (pyo3): used, or even dropped, on a thread other than the one
  that made it, it panics. :class:`RegoModule` keeps the policy text and compiles one engine per
  thread (about 1 ms) in that thread's own storage, which is dropped by the thread when it ends,
  so a threaded server can share one module;
* its errors are ``RuntimeError`` whose text ends with a Rust stack backtrace when
  ``RUST_BACKTRACE`` is set; :class:`RegoError` carries the message without it.
"""

from __future__ import annotations

import itertools
import threading
from importlib import metadata
from typing import Any

__all__ = ["BINDING", "RegoError", "RegoModule", "binding_version"]

#: The distribution that provides the ``regorus`` module.
BINDING = "gordon-to-regorus"


class RegoError(Exception):
    """Rego source that does not compile, or an evaluation that failed; the engine's message,
    without a stack backtrace."""


def _message(exc: BaseException) -> str:
    text = str(exc).split("Stack backtrace:", 1)[0].strip()
    return text or type(exc).__name__


#: Per thread: {module serial: (engine, package)}. Module-level, not per module: a module
#: dropped on one thread must not drop the engines other threads made (pyo3 refuses).
_ENGINES = threading.local()
_SERIALS = itertools.count()


def binding_version() -> str:
    """The version of the installed regorus binding (``unknown`` if its metadata is missing)."""
    try:
        return metadata.version(BINDING)
    except metadata.PackageNotFoundError:
        return "unknown"


class RegoModule:
    """One Rego module, compiled once per thread that evaluates it.

    Args:
        source: The Rego text (Rego v1: ``if`` and ``contains`` keywords).
        name: The file name the engine's messages use (``budget.rego``).

    Raises:
        RegoError: the source does not parse or compile; the message has the file, line and
            column (``--> budget.rego:12:3 ... error: ...``).
    """

    def __init__(self, source: str, name: str):
        if not isinstance(source, str):
            raise TypeError(f"source must be the Rego text as a str, got {type(source).__name__}")
        self.source = source
        self.name = name
        self._serial = next(_SERIALS)
        self.package = self._engine_and_package()[1]  # compile now: a bad file fails here

    def _engine_and_package(self) -> tuple[Any, str]:
        engines = _ENGINES.__dict__.setdefault("engines", {})
        if self._serial not in engines:
            import regorus

            engine = regorus.Engine()
            try:
                package = engine.add_policy(self.name, self.source)
            except BaseException as exc:  # noqa: BLE001 - pyo3 raises RuntimeError or PanicException
                if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                    raise
                raise RegoError(_message(exc)) from None
            engines[self._serial] = engine, package
        return engines[self._serial]

    def __del__(self) -> None:
        # this thread's engine only; another thread's goes when that thread ends
        getattr(_ENGINES, "engines", {}).pop(getattr(self, "_serial", None), None)

    def evaluate(self, rule: str, input_json: str) -> Any:
        """The value of ``rule`` (``data.greenkfp.budget.decision``) for the JSON ``input_json``;
        None when the rule is undefined for that input.

        Raises:
            RegoError: the input is not JSON the engine reads, or a builtin failed.
        """
        engine, _ = self._engine_and_package()
        try:
            engine.set_input_json(input_json)
            return engine.eval_rule(rule)
        except BaseException as exc:  # noqa: BLE001
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise RegoError(_message(exc)) from None
