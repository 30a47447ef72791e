"""``greenkfp audit``: the baseline audit of all ML pipelines, from the command line.

Only wiring: the audit's core is :mod:`greenkfp.components.governance.audit` (and
:mod:`~greenkfp.components.governance.cloud_footprint` for the cloud exports). The KFP API is
asked here, with ``kfp.Client`` (bounded and quiet, as ``greenkfp submit`` asks it); its token
comes from ``KF_PIPELINES_TOKEN`` when set. Exit codes: 0 written; 2 bad input (an option, a
file, a row), with one line on stderr naming it; 1 a KFP API that cannot be reached. Nothing is
written unless everything was read.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any

#: Runs asked of the KFP API per page.
KFP_PAGE_SIZE = 200
#: Most pages of runs read (a million runs); a KFP API that pages on is refused.
KFP_MAX_PAGES = 5000
#: Largest page of runs read, bytes.
KFP_MAX_PAGE_BYTES = 64 * 1024 * 1024


def _number(option: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        if "_" in text:  # float() reads 1_000; an option value is a plain decimal
            raise ValueError(text)
        return float(text)
    except ValueError:
        from greenkfp.components.governance.audit import AuditError

        raise AuditError(f"{option} must be a number, got {text!r}") from None


def _kfp_runs(host: str, namespace: str | None) -> list[dict[str, Any]]:
    """Every run the KFP API at ``host`` lists, as v2beta1 JSON. Its answers are checked: each
    page must be a JSON object of runs (not a login page, not cut short), a page token must not
    come back (the paging would loop) and at most :data:`KFP_MAX_PAGES` pages are read."""
    from greenkfp.components.governance.audit import AuditError
    from greenkfp.pipelines.submit import SubmitError, _client, _kfp_call, check_host, preflight_kfp, safe_url

    try:
        host = check_host(host)
    except SubmitError as exc:  # a malformed URL is bad input (exit 2), not an outage
        raise AuditError(str(exc).replace("--host", "--kfp-host")) from None
    where = f"--kfp-host {safe_url(host)}"
    try:
        preflight_kfp(host)
        client = _kfp_call("connecting", host, lambda: _client(host, namespace))
        runs, token, seen = [], "", set()
        for number in range(1, KFP_MAX_PAGES + 1):
            body = _kfp_call("listing runs", host, lambda: _list_page(client, token, namespace))
            page_runs, token = _page(where, number, body)
            runs += page_runs
            if not token:
                return runs
            if token in seen:
                raise AuditError(f"{where} answered page {number} of the runs with a page token it gave before: "
                                 "its paging loops; stopped")
            seen.add(token)
        raise AuditError(f"{where} listed more than {KFP_MAX_PAGES:,} pages of {KFP_PAGE_SIZE} runs without an end; "
                         "stopped (narrow the audit with --kfp-namespace)")
    except SubmitError as exc:
        raise _Unreachable(str(exc).replace("--host", "--kfp-host")) from None


def _list_page(client: Any, token: str, namespace: str | None) -> bytes:
    """The raw answer to one ``GET /apis/v2beta1/runs`` of ``client`` (a kfp.Client), read up to
    :data:`KFP_MAX_PAGE_BYTES` + 1 bytes: kfp's own decoding takes an HTML page or cut JSON
    for a page without runs, so the audit reads the JSON itself."""
    extra = {"namespace": namespace} if namespace is not None else {}
    response = client._run_api.run_service_list_runs(page_token=token, page_size=KFP_PAGE_SIZE,
                                                     sort_by="created_at desc", _preload_content=False, **extra)
    try:
        return response.read(KFP_MAX_PAGE_BYTES + 1, decode_content=True) or b""
    finally:
        response.release_conn()


def _page(where: str, number: int, body: bytes) -> tuple[list[Any], str]:
    """(runs, next page token) of a page of ``GET /runs``; an answer that is no such page is an
    error naming the host and the page."""
    import json

    from greenkfp.components.governance.audit import AuditError

    if len(body) > KFP_MAX_PAGE_BYTES:
        raise AuditError(f"{where} answered page {number} of the runs with more than "
                         f"{KFP_MAX_PAGE_BYTES // (1024 * 1024)} MiB")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        what = "an HTML page" if body.lstrip()[:1] == b"<" else "cut or malformed JSON" \
            if body.lstrip()[:1] in (b"{", b"[") else "text that is not JSON"
        raise AuditError(f"{where} answered page {number} of the runs with {what}, not a KFP v2beta1 run list: is "
                         "it the KFP API (not a login page or a proxy)?") from None
    runs = data.get("runs") if isinstance(data, dict) else None
    token = data.get("next_page_token") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(runs if runs is not None else [], list) \
            or not isinstance(token if token is not None else "", str):
        raise AuditError(f"{where} answered page {number} of the runs with JSON that is not a KFP v2beta1 run list "
                         "(an object with a list of runs and a text next_page_token)")
    return runs or [], token or ""


class _Unreachable(Exception):
    """The KFP API could not be asked (exit 1)."""


def cmd_audit(args: argparse.Namespace) -> int:
    from greenkfp.components._files import OutputError, check_output_folder, os_reason
    from greenkfp.components._messages import redact_urls
    from greenkfp.components.governance import BudgetError, Ledger
    from greenkfp.components.governance.audit import (
        AuditError,
        AuditSettings,
        ProjectMap,
        kfp_runs_from_api,
        run_audit,
        write_audit,
    )
    from greenkfp.components.governance.cloud_footprint import CloudExportError, read_exports
    from greenkfp.components.records import RecordError

    from datetime import datetime, timezone

    now = datetime.now(timezone.utc)
    try:
        check_output_folder("--output", args.output)  # before the audit's work: a bad folder is said at once
        for option, value in (("--from", args.first), ("--to", args.last)):  # no settled runs lie in the future
            if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}", value) and value > f"{now:%Y-%m}":
                raise AuditError(f"{option} must not be after the current month ({now:%Y-%m}): runs are settled "
                                 f"after they ran, got {value!r}")
        settings = AuditSettings(
            first=args.first, last=args.last, reduction_percent=_number("--reduction-percent", args.reduction_percent),
            target_by=args.target_by, intensive_share=_number("--intensive-share", args.intensive_share),
            intensive_kwh_per_month=_number("--intensive-kwh-per-month", args.intensive_kwh_per_month),
            high_inference_volume=_number("--high-inference-volume", args.high_inference_volume),
            critical_priorities=tuple(p.strip() for p in args.critical_priorities.split(",") if p.strip()))
        project_map = ProjectMap.from_file(args.project_map) if args.project_map else None
        cloud_rows, sources = read_exports([("gcp", path) for path in args.gcp_export]
                                           + [("aws", path) for path in args.aws_export])
        kfp = kfp_runs_from_api(_kfp_runs(args.kfp_host, args.kfp_namespace)) if args.kfp_host else []
        with Ledger(args.ledger, read_only=True) as ledger:  # an audit reads: a missing ledger is not created
            from greenkfp.pipelines.submit import safe_url

            result = run_audit(ledger, settings, kfp_runs=kfp, kfp_host=redact_urls(safe_url(args.kfp_host)) if args.kfp_host
                               else None, cloud_rows=cloud_rows, cloud_sources=sources, project_map=project_map)
            ahead = _runs_after(ledger, now)
        written = write_audit(result, args.output)
    except _Unreachable as exc:
        print(f"error: {' '.join(redact_urls(str(exc)).split())}", file=sys.stderr)
        return 1
    except (AuditError, CloudExportError, RecordError) as exc:
        message = str(exc)
    except BudgetError as exc:
        message = str(exc.renamed("--ledger") if exc.field == "ledger" else exc)
    except OutputError as exc:  # the output folder (named, with what the OS said)
        message = str(exc)
    except OSError as exc:  # another file: its path and what the OS said
        message = os_reason(exc)
    else:
        baseline = result.baseline
        print(f"audited {sum(t.runs for t in baseline.teams.values()):,} settled runs of {len(result.inventory)} "
              f"pipeline(s) in {baseline.months[0]} to {baseline.months[-1]}: baseline "
              f"{baseline.mean_monthly_g / 1000:,.1f} kg CO2e a month; target -{baseline.target.reduction_percent:g} % "
              f"by {baseline.target.by}")
        if ahead:
            count, latest = ahead
            print(f"note: the ledger holds {count:,} settled run{'s' if count != 1 else ''} dated after now (the latest "
                  f"{latest:%Y-%m-%d %H:%M} UTC): a clock ahead, or demo data seeded for a quarter not yet over; "
                  "they are audited as they are")
        for path in written:
            print(f"wrote {path}")
        return 0
    print(f"error: {' '.join(redact_urls(message).split())}", file=sys.stderr)
    return 2


def _runs_after(ledger, now) -> tuple[int, object] | None:
    """How many of the ledger's settled runs are dated after ``now`` and the latest one's time
    (None when none is): only the runs of the previous month on are read (a run settles after
    its month at the latest a little while after it)."""
    from datetime import timezone

    count, latest = 0, None
    previous = now.year * 12 + now.month - 2
    for run in ledger.settled_runs(since=f"{previous // 12:04d}-{previous % 12 + 1:02d}"):
        at = run.settled_at if run.settled_at.tzinfo else run.settled_at.replace(tzinfo=timezone.utc)
        if at > now:
            count += 1
            latest = at if latest is None or at > latest else latest
    return (count, latest) if count else None


def add_audit_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``greenkfp audit`` on the ``greenkfp`` command's subparsers."""
    from greenkfp.components.governance import DEFAULT_LEDGER_URL

    p = sub.add_parser(
        "audit", help="the baseline audit: inventory, cloud reconciliation, quadrants, the baseline",
        description="Inventory every pipeline and its runs from the budget ledger (and a KFP API), reconcile "
                    "them with GCP Carbon Footprint / AWS CCFT exports per cloud project and month, put each "
                    "pipeline in its quadrant (business criticality x resource intensity) and write the baseline "
                    "the reduction target is measured against. Writes baseline.json, inventory.json, "
                    "inventory.csv, reconciliation.csv and audit.md into --output.")
    p.add_argument("--ledger", default=os.environ.get("GREENKFP_LEDGER") or DEFAULT_LEDGER_URL, metavar="URL",
                   help=f"the budget ledger (default: $GREENKFP_LEDGER, else {DEFAULT_LEDGER_URL})")
    p.add_argument("--output", required=True, metavar="DIR", help="the folder to write into (created when missing)")
    p.add_argument("--from", dest="first", default=None, metavar="YYYY-MM",
                   help="first audited month (default: the first with settled runs)")
    p.add_argument("--to", dest="last", default=None, metavar="YYYY-MM",
                   help="last audited month (default: the last with settled runs)")
    p.add_argument("--kfp-host", default=None, metavar="URL",
                   help="a KFP API to inventory runs from (token: $KF_PIPELINES_TOKEN)")
    p.add_argument("--kfp-namespace", default=None, help="the KFP namespace (multi-user deployments)")
    p.add_argument("--gcp-export", action="append", default=[], metavar="PATH",
                   help="a GCP Carbon Footprint BigQuery export: newline-delimited JSON or CSV (repeatable)")
    p.add_argument("--aws-export", action="append", default=[], metavar="PATH",
                   help="an AWS Customer Carbon Footprint Tool export (Data Exports carbon emissions CSV; repeatable)")
    p.add_argument("--project-map", default=None, metavar="PATH",
                   help='JSON {"teams": {TEAM: PROJECT}, "pipelines": {"TEAM/PIPELINE" or PIPELINE: PROJECT}}: '
                        "the cloud project (GCP project.id, AWS account) of runs without the "
                        "greenkfp.io/cloud-project label")
    p.add_argument("--reduction-percent", default="30", help="the reduction target, %% below the baseline (default 30)")
    p.add_argument("--target-by", default=None, metavar="YYYY-MM",
                   help="when the target is due (default: 12 months after the last audited month)")
    p.add_argument("--intensive-share", default="80",
                   help="intensive: the pipelines that, largest first, make this %% of the audited energy (default 80)")
    p.add_argument("--intensive-kwh-per-month", default=None,
                   help="intensive instead: at least this many kWh a month (energy per run x runs per month)")
    p.add_argument("--high-inference-volume", default="1e8",
                   help="intensive too: a model serving at least this many inferences (default 1e8)")
    p.add_argument("--critical-priorities", default="production-critical",
                   help="values of the greenkfp.io/priority label that mean business-critical, comma-separated "
                        "(default production-critical; without the label: a soft budget is critical)")
    p.set_defaults(func=cmd_audit)
