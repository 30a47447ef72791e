"""The cloud providers' own carbon accounting, read from their exports: what the audit reconciles
the pipelines' figures with.

* **GCP Carbon Footprint**, exported to BigQuery (schema: https://cloud.google.com/carbon-footprint/docs/data-schema).
  Rows as newline-delimited JSON (BigQuery's JSON export: records nested, ``{"project": {"id": ...},
  "carbon_footprint_kgCO2e": {"scope2": {"location_based": ...}}}``; INT64 values such as
  ``carbon_model_version`` come as strings) or CSV (query results saved as CSV, the records
  flattened into dotted column names such as ``project.id`` and
  ``carbon_footprint_kgCO2e.scope2.location_based``; BigQuery refuses to export the nested table
  itself as CSV). Columns read: ``usage_month`` (a DATE, ``2026-10-01``), ``billing_account_id``,
  ``project.id`` (NULL when the usage has no project), ``project.number``,
  ``service.description``, ``location.location``, ``location.region``, ``carbon_model_version``,
  ``carbon_footprint_kgCO2e.scope1``, ``.scope2.location_based``, ``.scope2.market_based``,
  ``.scope3``, ``carbon_footprint_total_kgCO2e.location_based`` and ``.market_based``; kg CO2e.
  Required: ``usage_month``, ``project.id`` and ``carbon_footprint_kgCO2e.scope2.location_based``.
* **AWS Customer Carbon Footprint Tool** data, as the Data Exports "Carbon emissions" table
  delivers it in CSV (https://docs.aws.amazon.com/cur/latest/userguide/carbon-emissions-columns.html):
  ``usage_account_id``, ``payer_account_id``, ``usage_period_start``, ``usage_period_end``,
  ``product_code``, ``region_code``, ``location``, ``model_version``,
  ``total_lbm_emissions_value`` / ``_unit`` and ``total_mbm_emissions_value`` / ``_unit`` in
  metric tons (``MTCO2e``). Required: ``usage_account_id``, ``usage_period_start``,
  ``total_lbm_emissions_value`` and ``total_lbm_emissions_unit``. AWS gives no scope split: its
  location-based total (scopes 1 and 2) stands for the location-based figure.

What is reconciled with the pipelines (energy x location-based grid intensity) is the
location-based figure: GCP's scope 2 location-based, AWS's location-based total. The
project of a row is GCP's ``project.id`` or AWS's ``usage_account_id``.

A row that cannot be read is an error of one line naming the file, the line and the field
(:class:`CloudExportError`); nothing is guessed. Numbers are plain decimals (``12.5``,
``1.2e3``; not ``1_000``, ``nan`` or ``inf``) from 0 to :data:`MAX_ROW_KG` kg CO2e a row (more
than any organisation emits: a larger value is a broken export, not a figure; 1e9 metric tons for
AWS, the bound stated in the field's own unit). A file must be a
regular file of at most :data:`MAX_EXPORT_BYTES` (devices and pipes are refused before they are
opened), CSV without repeated column names, and hold at least one data row (an empty export,
JSON or CSV alike, is an error). :func:`read_exports` reads several and refuses the same export
given twice (the same file, or files of identical content): it would be counted twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable

__all__ = ["AWS_REQUIRED", "CloudExportError", "CloudFootprintRow", "GCP_REQUIRED", "NO_PROJECT", "read_aws_export",
           "read_export", "read_exports", "read_gcp_export"]

#: The project of GCP usage that belongs to no project (``project.id`` NULL).
NO_PROJECT = "(no project)"
GCP_REQUIRED = ("usage_month", "project.id", "carbon_footprint_kgCO2e.scope2.location_based")
AWS_REQUIRED = ("usage_account_id", "usage_period_start", "total_lbm_emissions_value", "total_lbm_emissions_unit")
_GCP_NUMBERS = ("carbon_footprint_kgCO2e.scope1", "carbon_footprint_kgCO2e.scope2.location_based",
                "carbon_footprint_kgCO2e.scope2.market_based", "carbon_footprint_kgCO2e.scope3",
                "carbon_footprint_total_kgCO2e.location_based", "carbon_footprint_total_kgCO2e.market_based")
_MONTH = re.compile(r"([0-9]{4})-([0-9]{2})")
_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
#: Largest export file read, bytes.
MAX_EXPORT_BYTES = 512 * 1024 * 1024
#: Largest figure of one row, kg CO2e (a billion tonnes: more than any organisation emits a month).
MAX_ROW_KG = 1e12
#: A plain decimal number as the exports write them (no ``_`` separators, no nan/inf).
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class CloudExportError(ValueError):
    """A cloud export that cannot be read: ``path: line N: field F problem, got V`` (one line)."""

    def __init__(self, path: str, line: int | None, field: str | None, problem: str, value: Any = None,
                 show_value: bool = True):
        self.path, self.line, self.field = path, line, field
        where = f"{path}: line {line}" if line else path
        subject = f"field {field} " if field else ""
        shown = "" if not show_value else f", got {_shorten(value)}"
        super().__init__(" ".join(f"{where}: {subject}{problem}{shown}".split()))


def _shorten(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class CloudFootprintRow:
    """One row of a cloud carbon export, in kg CO2e (None where the export has no figure).

    ``location_based_kg`` is what the audit reconciles: GCP's scope 2 location-based, AWS's
    location-based total.
    """

    provider: str
    project: str
    month: str
    service: str
    region: str
    location_based_kg: float
    scope1_kg: float | None = None
    scope2_market_kg: float | None = None
    scope3_kg: float | None = None
    total_location_kg: float | None = None
    total_market_kg: float | None = None
    model_version: str = ""
    account: str = ""
    source: str = ""
    line: int = 0


def _month_of(text: Any, path: str, line: int, field: str, formats: str) -> str:
    """``YYYY-MM`` of a month given as ``YYYY-MM``, a date or a timestamp; an error naming the field."""
    value = text.strip() if isinstance(text, str) else text
    if value is None or value == "":
        raise CloudExportError(path, line, field, f"is empty (a month is required: {formats})", text)
    if isinstance(value, str):
        match = _DATE.match(value)
        if match and (len(value) == 10 or value[10] in "T "):
            try:
                moment = datetime.fromisoformat(value.replace(" ", "T").replace("Z", "+00:00")) if len(value) > 10 \
                    else datetime(int(match[1]), int(match[2]), int(match[3]))
            except ValueError:
                moment = None
            if moment is not None:
                return f"{moment.year:04d}-{moment.month:02d}"
        match = _MONTH.fullmatch(value)
        if match and 1 <= int(match[2]) <= 12:
            return value
    raise CloudExportError(path, line, field, f"has an unknown month format (expected {formats})", text)


def _number(value: Any, path: str, line: int, field: str, *, required: bool, unit: str = "kg CO2e",
            scale: float = 1.0) -> float | None:
    """A figure of ``unit`` (``scale`` kg each) >= 0 and at most :data:`MAX_ROW_KG` kg (the bound
    is stated in ``unit``: 1e+09 metric tons CO2e for AWS's tons)."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "NULL", "null")):
        if required:
            raise CloudExportError(path, line, field, f"is empty (a number of {unit} is required)", value)
        return None
    number = None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str) and _DECIMAL.fullmatch(value.strip()):
            number = float(value.strip())
    except (ValueError, OverflowError):
        number = None
    if number is None or not math.isfinite(number) or number < 0:
        raise CloudExportError(path, line, field, f"must be a number of {unit} >= 0", value)
    limit = MAX_ROW_KG / scale  # in the field's own unit; the product checked too, so no row exceeds MAX_ROW_KG kg
    if number > limit or number * scale > MAX_ROW_KG:
        raise CloudExportError(path, line, field, f"is beyond {limit:.0e} {unit} for one row (not a real figure: is "
                                                  f"the export broken?)", value)
    return number


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _read_bytes(path: str | os.PathLike) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_EXPORT_BYTES`
    (:func:`~greenkfp.components._files.read_bounded`: a FIFO or a device is refused, not waited on)."""
    from .._files import FileReadError, read_bounded

    try:
        return read_bounded(path, MAX_EXPORT_BYTES)
    except FileReadError as exc:
        reason = exc.reason + ("; split the export" if exc.reason.startswith("is larger") else "")
        raise CloudExportError(os.fspath(path), None, None, reason, show_value=False) from None


def _decode(shown: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CloudExportError(shown, None, None, "is not UTF-8 text", show_value=False) from None


def _open_text(path: str | os.PathLike) -> tuple[str, str]:
    shown = os.fspath(path)
    return shown, _decode(shown, _read_bytes(path))


def _no_rows(path: str, what: str) -> CloudExportError:
    return CloudExportError(path, None, None, f"has no data rows (an empty {what}: nothing to reconcile)",
                            show_value=False)


def _csv_rows(path: str, text: str, required: tuple[str, ...], what: str):
    """(line number, row as a dict of the header's columns) of a CSV export, its header checked.

    No cell of these exports holds a line break, so a record spanning lines is a quote left
    open (to the end of the file, or to a later quote): it is reported on the line it opens."""
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)

    def unclosed(start: int, detail: str) -> CloudExportError:
        return CloudExportError(path, start, None, f"unclosed quote (a quoted cell runs on to {detail})",
                                show_value=False)

    def not_csv(start: int, exc: csv.Error) -> CloudExportError:
        if "unexpected end of data" in str(exc):
            return unclosed(start, f"the end of the file, line {reader.line_num}")
        if reader.line_num > start:
            return unclosed(start, f"line {reader.line_num}, where it fails: {exc}")
        return CloudExportError(path, start, None, f"is not CSV ({exc})", show_value=False)

    try:
        header = next(reader)
    except StopIteration:
        raise CloudExportError(path, None, None, f"is empty (expected a {what} CSV with a header)",
                               show_value=False) from None
    except csv.Error as exc:
        raise not_csv(1, exc) from None
    if reader.line_num > 1:
        raise unclosed(1, f"line {reader.line_num}; no cell of the export holds a line break")
    header = [h.strip() for h in header]
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise CloudExportError(path, 1, None, f"the header repeats the column(s) {', '.join(repeated)} (which one "
                                              "counts is ambiguous)", show_value=False)
    missing = [name for name in required if name not in header]
    if missing:
        raise CloudExportError(path, 1, None, f"the header lacks the {what} column(s) {', '.join(missing)}",
                               ", ".join(header[:8]))
    while True:
        start = reader.line_num + 1  # the line the next record starts on (a quoted cell may span lines)
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise not_csv(start, exc) from None
        if reader.line_num > start:  # no cell of these exports holds a line break: a quote left open
            raise unclosed(start, f"line {reader.line_num}; no cell of the export holds a line break")
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise CloudExportError(path, start, None, f"has {len(cells)} cells for the header's "
                                                      f"{len(header)} columns", show_value=False)
        yield start, dict(zip(header, cells))


def _flatten(record: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def _json_rows(path: str, text: str, required: tuple[str, ...]):
    """(line number, row flattened to dotted names) of newline-delimited JSON."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise CloudExportError(path, number, None, f"is not a JSON object ({str(exc)[:80]})",
                                   show_value=False) from None
        if not isinstance(record, dict):
            raise CloudExportError(path, number, None, "is not a JSON object", type(record).__name__)
        row = _flatten(record)
        for name in required:
            if name not in row:
                raise CloudExportError(path, number, name, "is missing (a GCP Carbon Footprint export's column)",
                                       show_value=False)
        yield number, row


def _gcp_row(path: str, line: int, row: dict) -> CloudFootprintRow:
    numbers = {name: _number(row.get(name), path, line, name, required=name in GCP_REQUIRED) for name in _GCP_NUMBERS}
    project = _text(row.get("project.id")) or NO_PROJECT
    if project.upper() == "NULL":
        project = NO_PROJECT
    return CloudFootprintRow(
        provider="gcp", project=project,
        month=_month_of(row.get("usage_month"), path, line, "usage_month", "a DATE such as 2026-10-01, or 2026-10"),
        service=_text(row.get("service.description")), region=_text(row.get("location.region"))
        or _text(row.get("location.location")),
        location_based_kg=numbers["carbon_footprint_kgCO2e.scope2.location_based"],
        scope1_kg=numbers["carbon_footprint_kgCO2e.scope1"],
        scope2_market_kg=numbers["carbon_footprint_kgCO2e.scope2.market_based"],
        scope3_kg=numbers["carbon_footprint_kgCO2e.scope3"],
        total_location_kg=numbers["carbon_footprint_total_kgCO2e.location_based"],
        total_market_kg=numbers["carbon_footprint_total_kgCO2e.market_based"],
        model_version=_text(row.get("carbon_model_version")), account=_text(row.get("billing_account_id")),
        source=path, line=line)


def read_gcp_export(path: str | os.PathLike) -> list[CloudFootprintRow]:
    """The rows of a GCP Carbon Footprint export: newline-delimited JSON (``.json``, ``.jsonl``,
    ``.ndjson``, or any file whose first character is ``{``) or CSV.

    Raises:
        CloudExportError: the file cannot be read, or a row is malformed (one line naming the
            file, the line and the field).
    """
    return _gcp_rows(*_open_text(path))


def _gcp_rows(shown: str, text: str) -> list[CloudFootprintRow]:
    suffix = Path(shown).suffix.lower()
    as_json = suffix in (".json", ".jsonl", ".ndjson") or (suffix != ".csv" and text.lstrip().startswith("{"))
    # BigQuery's JSON export may leave a NULL record out: no project.id key is no project
    rows = _json_rows(shown, text, ("usage_month", "carbon_footprint_kgCO2e.scope2.location_based")) if as_json else \
        _csv_rows(shown, text, GCP_REQUIRED, "GCP Carbon Footprint export")
    out = [_gcp_row(shown, line, row) for line, row in rows]
    if not out:
        raise _no_rows(shown, "GCP Carbon Footprint export")
    return out


def _tons(value: Any, unit: Any, path: str, line: int, field: str, *, required: bool) -> float | None:
    tons = _number(value, path, line, f"{field}_value", required=required, unit="metric tons CO2e", scale=1000.0)
    if tons is None:
        return None
    if _text(unit).upper() not in ("MTCO2E", "MTCO2-E", "METRIC TONS CO2E"):
        raise CloudExportError(path, line, f"{field}_unit", "must be MTCO2e (metric tons of CO2 equivalent), the unit "
                                                            "the export uses", unit)
    return tons * 1000.0


def read_aws_export(path: str | os.PathLike) -> list[CloudFootprintRow]:
    """The rows of an AWS Customer Carbon Footprint Tool export (Data Exports' carbon emissions
    table, CSV); tons become kg.

    Raises:
        CloudExportError: the file cannot be read, or a row is malformed (one line naming the
            file, the line and the field).
    """
    return _aws_rows(*_open_text(path))


def _aws_rows(shown: str, text: str) -> list[CloudFootprintRow]:
    rows = []
    for line, row in _csv_rows(shown, text, AWS_REQUIRED, "AWS carbon emissions export"):
        account = _text(row.get("usage_account_id"))
        if not account:
            raise CloudExportError(shown, line, "usage_account_id", "is empty (the account the emissions are of)", "")
        rows.append(CloudFootprintRow(
            provider="aws", project=account,
            month=_month_of(row.get("usage_period_start"), shown, line, "usage_period_start",
                            "a date such as 2026-10-01 or 2026-10-01 00:00:00Z"),
            service=_text(row.get("product_code")), region=_text(row.get("region_code")) or _text(row.get("location")),
            location_based_kg=_tons(row.get("total_lbm_emissions_value"), row.get("total_lbm_emissions_unit"), shown,
                                    line, "total_lbm_emissions", required=True),
            total_location_kg=None,
            total_market_kg=_tons(row.get("total_mbm_emissions_value"), row.get("total_mbm_emissions_unit"), shown,
                                  line, "total_mbm_emissions", required=False),
            model_version=_text(row.get("model_version")), account=_text(row.get("payer_account_id")),
            source=shown, line=line))
    if not rows:
        raise _no_rows(shown, "AWS carbon emissions export")
    return rows


def read_export(kind: str, path: str | os.PathLike) -> list[CloudFootprintRow]:
    """The rows of an export of ``kind`` (``gcp`` or ``aws``)."""
    readers: dict[str, Callable[[Any], list[CloudFootprintRow]]] = {"gcp": read_gcp_export, "aws": read_aws_export}
    if kind not in readers:
        raise ValueError(f"kind must be gcp or aws, got {kind!r}")
    return readers[kind](path)


def read_exports(exports: Iterable[tuple[str, str | os.PathLike]]) -> tuple[list[CloudFootprintRow],
                                                                            list[tuple[str, str, int]]]:
    """The rows of several exports ``(kind, path)`` and ``(kind, path, rows)`` of each; the same
    export given twice (the same file by its resolved path, or a file of identical content) is
    refused: its rows would be counted twice.

    Raises:
        CloudExportError: as :func:`read_export`, or a repeated export (naming both options).
    """
    parsers = {"gcp": _gcp_rows, "aws": _aws_rows}
    seen_paths: dict[str, str] = {}
    seen_content: dict[str, str] = {}
    rows: list[CloudFootprintRow] = []
    sources: list[tuple[str, str, int]] = []
    for kind, path in exports:
        if kind not in parsers:
            raise ValueError(f"kind must be gcp or aws, got {kind!r}")
        shown = os.fspath(path)
        option = f"--{kind}-export"
        resolved = os.path.realpath(shown)
        if resolved in seen_paths:
            raise _twice(option, shown, "the same file as", seen_paths[resolved])
        data = _read_bytes(path)
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen_content:
            raise _twice(option, shown, "the same content as", seen_content[digest])
        seen_paths[resolved] = seen_content[digest] = f"{option} {shown}"
        read = parsers[kind](shown, _decode(shown, data))
        rows += read
        sources.append((kind, shown, len(read)))
    return rows, sources


def _twice(option: str, shown: str, how: str, first: str) -> CloudExportError:
    return CloudExportError(f"{option} {shown}", None, None, f"is {how} {first}: an export given twice would be "
                                                             "counted twice", show_value=False)
