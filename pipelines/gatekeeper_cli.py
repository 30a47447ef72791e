"""``greenkfp gatekeeper serve``: the carbon-budget gatekeeper (FastAPI on uvicorn).

Only wiring: the service is :func:`greenkfp.components.governance.gatekeeper.create_app`.
Tokens come from the environment (see :mod:`greenkfp.components.governance.tokens`), never from
the command line.
"""

from __future__ import annotations

import argparse
import os

from rich.console import Console
from rich.text import Text

console = Console(stderr=True)

LEDGER_ENV = "GREENKFP_LEDGER"


def add_gatekeeper_commands(sub) -> None:
    """Add ``gatekeeper serve`` to the ``greenkfp`` command's subparsers."""
    from greenkfp.components.governance.ledger import DEFAULT_LEDGER_URL
    parser = sub.add_parser("gatekeeper", help="the carbon-budget gatekeeper in front of the KFP API",
                            description="The carbon-budget gatekeeper: a KFP v2beta1 API subset that refuses runs "
                                        "over a team's budget, and an admission API.")
    commands = parser.add_subparsers(dest="gatekeeper_command", required=True)
    serve = commands.add_parser(
        "serve", help="serve the gatekeeper (FastAPI on uvicorn)",
        description="Serve the gatekeeper. Team tokens: GREENKFP_GATEKEEPER_TOKENS (team=token,...) or "
                    "GREENKFP_GATEKEEPER_TOKENS_FILE (a file of team=token lines, or a mounted secret folder); "
                    "admin: GREENKFP_GATEKEEPER_ADMIN_TOKEN[_FILE]; board members: "
                    "GREENKFP_GATEKEEPER_BOARD_TOKENS[_FILE]; the KFP API's own bearer token: GREENKFP_KFP_TOKEN[_FILE].")
    serve.add_argument("--ledger", default=None, metavar="URL",
                       help=f"the budget ledger's database (default: ${LEDGER_ENV}, else {DEFAULT_LEDGER_URL})")
    serve.add_argument("--kfp-url", required=True, metavar="URL",
                       help="the real KFP API that granted runs are forwarded to, e.g. http://ml-pipeline.kubeflow:8888")
    policy = serve.add_mutually_exclusive_group()
    policy.add_argument("--policy-url", default="", metavar="URL",
                        help="an OPA server deciding with the budget policy (default: in-process Rego)")
    policy.add_argument("--policy-file", default="", metavar="PATH",
                        help="a Rego file replacing the bundled budget policy (in-process)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8888, help="port (default: 8888)")
    serve.add_argument("--region", default="GB", help="where a run naming no region is priced (default: GB)")
    serve.add_argument("--provider", default="embedded",
                       help="the carbon provider pricing a run's planned window (default: embedded, offline)")
    serve.add_argument("--hardware-profile", default="n2-standard-4",
                       help="the hardware preset a run's steps are modeled on when it names none")
    serve.add_argument("--reservation-ttl", default="24h", metavar="DURATION",
                       help="how long an unsettled reservation counts (default: 24h)")
    serve.add_argument("--upstream-timeout", type=float, default=30.0, metavar="SECONDS",
                       help="timeout of one request to the KFP API (default: 30)")
    serve.add_argument("--status-cache", type=float, default=1.0, metavar="SECONDS",
                       help="how old a team's budget status may be as the policy's input for a grant (default: 1; "
                            "0: read for every request); the ledger checks every grant against its current balance "
                            "and a refusal is always decided on a fresh status")
    serve.add_argument("--history-cache", type=float, default=30.0, metavar="SECONDS",
                       help="how old a pipeline's settled history may be for an estimate (default: 30)")
    serve.add_argument("--workers", type=int, default=1,
                       help="worker processes (default: 1); each opens its own ledger connections")
    serve.add_argument("--threads", type=int, default=8,
                       help="threads per worker process for the ledger's and the policy's calls (default: 8); 0: "
                            "on the event loop, one call at a time per process (lowest latency on a small machine; "
                            "a slow database holds up that process)")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    serve.add_argument("--no-access-log", dest="access_log", action="store_false",
                       help="no line per request (the decisions are still logged)")
    serve.set_defaults(func=cmd_gatekeeper_serve)


def settings_from_args(args: argparse.Namespace, environ=None):
    """The gatekeeper's settings from ``serve``'s options and the environment's tokens.

    Raises:
        ValueError: a bad option, or no team token at all.
    """
    from greenkfp.components.governance.gatekeeper import GatekeeperSettings
    from greenkfp.components.governance.ledger import DEFAULT_LEDGER_URL
    from greenkfp.components.governance.tokens import ENV_TEAMS, Tokens
    from greenkfp.pipelines.options import duration_hours

    environ = os.environ if environ is None else environ
    tokens = Tokens.from_env(environ)
    if not tokens.teams:
        raise ValueError(f"no team tokens: set {ENV_TEAMS} (team=token,...) or {ENV_TEAMS}_FILE")
    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be from 1 to 65535, got {args.port}")
    if not 1 <= args.workers <= 64:
        raise ValueError(f"--workers must be from 1 to 64, got {args.workers}")
    return GatekeeperSettings(
        ledger_url=args.ledger or environ.get(LEDGER_ENV) or DEFAULT_LEDGER_URL, kfp_url=args.kfp_url, tokens=tokens,
        policy_url=args.policy_url, policy_file=args.policy_file, region=args.region, provider=args.provider,
        hardware_profile=args.hardware_profile,
        reservation_ttl_s=duration_hours(args.reservation_ttl, "--reservation-ttl") * 3600.0,
        upstream_timeout_s=args.upstream_timeout, status_cache_s=args.status_cache, history_cache_s=args.history_cache,
        threads=getattr(args, "threads", 8))


_ARGS_ENV = "GREENKFP_GATEKEEPER_SERVE_ARGS"


def app_from_environment():
    """The app of a worker process (``--workers`` > 1): ``serve``'s arguments come from the
    parent through :data:`_ARGS_ENV` (never tokens: each worker reads those itself)."""
    import json

    from greenkfp.components.governance.gatekeeper import create_app

    return create_app(settings_from_args(argparse.Namespace(**json.loads(os.environ[_ARGS_ENV]))))


def cmd_gatekeeper_serve(args: argparse.Namespace) -> int:
    import json

    import uvicorn

    from greenkfp.components._messages import redact_urls
    from greenkfp.components.governance.gatekeeper import create_app
    from greenkfp.components.governance.policy import PolicyError

    try:
        settings = settings_from_args(args)
        app = create_app(settings)  # also when workers start their own: a bad ledger or policy fails here, once
    except (PolicyError, ValueError) as exc:  # ValueError: TokenError, BudgetError, LedgerUnavailableError too
        console.print("[red]error:[/red]", Text(redact_urls(" ".join(str(exc).split()))))
        return 2
    core = app.state.gatekeeper
    console.print(f"greenkfp gatekeeper on http://{args.host}:{args.port} -> KFP API {redact_urls(settings.kfp_url)}; "
                  f"ledger {core.ledger.url}; policy {core.policy.policy}; teams {', '.join(settings.tokens.team_names)}"
                  + (f"; {args.workers} workers" if args.workers > 1 else ""))
    options = dict(host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log)
    if args.workers == 1:
        uvicorn.run(app, **options)
        return 0
    core.close()
    os.environ[_ARGS_ENV] = json.dumps({k: v for k, v in vars(args).items() if k != "func"})
    uvicorn.run("greenkfp.pipelines.gatekeeper_cli:app_from_environment", factory=True, workers=args.workers,
                **options)
    return 0
