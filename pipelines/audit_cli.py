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
import sys
from typing import Any

#: Runs asked of the KFP API per page.
KFP_PAGE_SIZE = 200


def _number(option: str, text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        from greenkfp.components.governance.audit import AuditError

        raise AuditError(f"{option} must be a number, got {text!r}") from None


def _kfp_runs(host: str, namespace: str | None) -> list[dict[str, Any]]:
    """Every run the KFP API at ``host`` lists, as v2beta1 JSON."""
    from greenkfp.components.governance.audit import AuditError
    from greenkfp.pipelines.submit import SubmitError, _client, _kfp_call, check_host, preflight_kfp

    try:
        host = check_host(host)
    except SubmitError as exc:  # a malformed URL is bad input (exit 2), not an outage
        raise AuditError(str(exc).replace("--host", "--kfp-host")) from None
    try:
        preflight_kfp(host)
        client = _kfp_call("connecting", host, lambda: _client(host, namespace))
        runs, token = [], ""
        while True:
            page = _kfp_call("listing runs", host, lambda: client.list_runs(
                page_token=token, page_size=KFP_PAGE_SIZE, namespace=namespace, sort_by="created_at desc"))
            runs += [run.to_dict() for run in page.runs or ()]
            token = page.next_page_token or ""
            if not token:
                return runs
    except SubmitError as exc:
        raise _Unreachable(str(exc).replace("--host", "--kfp-host")) from None


class _Unreachable(Exception):
    """The KFP API could not be asked (exit 1)."""


def cmd_audit(args: argparse.Namespace) -> int:
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
    from greenkfp.components.governance.cloud_footprint import CloudExportError, read_export
    from greenkfp.components.records import RecordError

    try:
        settings = AuditSettings(
            first=args.first, last=args.last, reduction_percent=_number("--reduction-percent", args.reduction_percent),
            target_by=args.target_by, intensive_share=_number("--intensive-share", args.intensive_share),
            intensive_kwh_per_month=_number("--intensive-kwh-per-month", args.intensive_kwh_per_month),
            high_inference_volume=_number("--high-inference-volume", args.high_inference_volume),
            critical_priorities=tuple(p.strip() for p in args.critical_priorities.split(",") if p.strip()))
        project_map = ProjectMap.from_file(args.project_map) if args.project_map else None
        cloud_rows, sources = [], []
        for kind, paths in (("gcp", args.gcp_export), ("aws", args.aws_export)):
            for path in paths:
                rows = read_export(kind, path)
                cloud_rows += rows
                sources.append((kind, path, len(rows)))
        kfp = kfp_runs_from_api(_kfp_runs(args.kfp_host, args.kfp_namespace)) if args.kfp_host else []
        with Ledger(args.ledger, create=False) as ledger:  # an audit reads: a missing ledger is not created
            from greenkfp.pipelines.submit import safe_url

            result = run_audit(ledger, settings, kfp_runs=kfp, kfp_host=redact_urls(safe_url(args.kfp_host)) if args.kfp_host
                               else None, cloud_rows=cloud_rows, cloud_sources=sources, project_map=project_map)
        written = write_audit(result, args.output)
    except _Unreachable as exc:
        print(f"error: {' '.join(redact_urls(str(exc)).split())}", file=sys.stderr)
        return 1
    except (AuditError, CloudExportError, RecordError) as exc:
        message = str(exc)
    except BudgetError as exc:
        message = str(exc.renamed("--ledger") if exc.field == "ledger" else exc)
    except OSError as exc:
        message = f"--output {args.output}: {exc.strerror or exc}"
    else:
        baseline = result.baseline
        print(f"audited {sum(t.runs for t in baseline.teams.values()):,} settled runs of {len(result.inventory)} "
              f"pipeline(s) in {baseline.months[0]} to {baseline.months[-1]}: baseline "
              f"{baseline.mean_monthly_g / 1000:,.1f} kg CO2e a month; target -{baseline.target.reduction_percent:g} % "
              f"by {baseline.target.by}")
        for path in written:
            print(f"wrote {path}")
        return 0
    print(f"error: {' '.join(redact_urls(message).split())}", file=sys.stderr)
    return 2


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
