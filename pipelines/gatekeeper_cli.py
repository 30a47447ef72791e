"""``greenkfp gatekeeper serve``: the carbon-budget gatekeeper (FastAPI on uvicorn).

Only wiring: the service is :func:`greenkfp.components.governance.gatekeeper.create_app`.
Tokens come from the environment (see :mod:`greenkfp.components.governance.tokens`), never from
the command line. Every option is checked before anything is opened: a bad one is one line on
stderr naming the option and the value, exit 2. The log (stderr, ``--log-level``) has uvicorn's
lines and the gatekeeper's own (``greenkfp.*`` loggers), one line per admission among them
(team, run, pipeline, estimate, decision; never a token), in every worker process.
"""

from __future__ import annotations

import argparse
import copy
import logging
import math
import os
import re

from rich.console import Console
from rich.text import Text

console = Console(stderr=True)

LEDGER_ENV = "GREENKFP_LEDGER"
#: The settings' names as the options that set them (an error of the settings names the option).
_OPTION_OF_SETTING = {"kfp_url": "--kfp-url", "region": "--region", "provider": "--provider",
                      "hardware_profile": "--hardware-profile", "reservation_ttl_s": "--reservation-ttl",
                      "upstream_timeout_s": "--upstream-timeout", "status_cache_s": "--status-cache",
                      "history_cache_s": "--history-cache", "threads": "--threads", "ledger": "--ledger",
                      "policy_url": "--policy-url", "policy_file": "--policy-file"}
#: A log line's control characters, shown escaped: a value from a request cannot forge a line.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class OneLineFormatter(logging.Formatter):
    """A log record on one line: newlines and other control characters escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return _CONTROL.sub(lambda m: repr(m.group())[1:-1], super().format(record))


def log_config(level: str) -> dict:
    """uvicorn's logging configuration plus the gatekeeper's loggers (``greenkfp``) at ``level``,
    one line per record on stderr; uvicorn applies it in each worker process."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["greenkfp"] = {"()": f"{__name__}.OneLineFormatter",
                                        "fmt": "%(asctime)s %(levelname)s %(name)s: %(message)s"}
    config["handlers"]["greenkfp"] = {"class": "logging.StreamHandler", "formatter": "greenkfp",
                                      "stream": "ext://sys.stderr"}
    config["loggers"]["greenkfp"] = {"handlers": ["greenkfp"], "level": level.upper(), "propagate": False}
    return config


#: ``--max-body-mib``'s default (:data:`~greenkfp.components.governance.gatekeeper.MAX_BODY_BYTES`, in MiB).
MAX_BODY_MIB = 4


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
                    "GREENKFP_GATEKEEPER_BOARD_TOKENS[_FILE]; the KFP API's own bearer token: GREENKFP_KFP_TOKEN[_FILE]. "
                    "Token files are read again within 2 s of a change (a rotated secret needs no restart); tokens "
                    "in the variables themselves are fixed until a restart.")
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
    serve.add_argument("--port", default="8888", help="port (default: 8888)")
    serve.add_argument("--region", default="GB", help="where a run naming no region is priced (default: GB)")
    serve.add_argument("--provider", default="embedded",
                       help="the carbon provider pricing a run's planned window (default: embedded, offline)")
    serve.add_argument("--hardware-profile", default="n2-standard-4",
                       help="the hardware preset a run's steps are modeled on when it names none")
    serve.add_argument("--reservation-ttl", default="24h", metavar="DURATION",
                       help="how long an unsettled reservation counts (default: 24h; at most 366 days)")
    serve.add_argument("--upstream-timeout", default="30", metavar="SECONDS",
                       help="timeout of one request to the KFP API (default: 30; at most 3600)")
    serve.add_argument("--status-cache", default="1", metavar="SECONDS",
                       help="how old a team's budget status may be as the policy's input for a grant (default: 1; "
                            "0: read for every request; at most 3600); the ledger checks every grant against its "
                            "current balance and a refusal is always decided on a fresh status")
    serve.add_argument("--history-cache", default="30", metavar="SECONDS",
                       help="how old a pipeline's settled history may be for an estimate (default: 30; at most 86400)")
    serve.add_argument("--workers", default="1",
                       help="worker processes (default: 1, at most 64); each opens its own ledger connections")
    serve.add_argument("--threads", default="8",
                       help="threads per worker process for the ledger's and the policy's calls (default: 8, at most "
                            "256); 0: on the event loop, one call at a time per process (lowest latency on a small "
                            "machine; a slow database holds up that process)")
    serve.add_argument("--max-body-mib", default=str(MAX_BODY_MIB), metavar="MIB",
                       help=f"the largest request body, MiB (default: {MAX_BODY_MIB}, 30 times the largest compiled "
                            "pipeline's run request; at most 256); a larger one is answered 413 without being read. "
                            "Memory: up to about 6 x this per request being handled (threads x workers at once)")
    serve.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                       help="the log's level (stderr), for uvicorn's lines and the gatekeeper's: at info, one line "
                            "per admission (team, run, pipeline, estimate, decision; never a token) (default: info)")
    serve.add_argument("--no-access-log", dest="access_log", action="store_false",
                       help="no line per request (the admissions are still logged)")
    serve.set_defaults(func=cmd_gatekeeper_serve)


def _whole(args: argparse.Namespace, name: str, lowest: int, highest: int) -> int:
    """Option ``--name`` (a text) as a whole number from ``lowest`` to ``highest``, written in ASCII digits."""
    option, text = "--" + name.replace("_", "-"), str(getattr(args, name))
    if not re.fullmatch(r"[0-9]{1,12}", text.strip()) or not lowest <= int(text) <= highest:
        raise ValueError(f"{option} must be a whole number from {lowest} to {highest}, got {text!r}")
    return int(text)


def _seconds(args: argparse.Namespace, name: str, highest: float, *, zero: bool) -> float:
    """Option ``--name`` (a text) as a number of seconds, > 0 (``zero``: >= 0), at most ``highest``."""
    option, text = "--" + name.replace("_", "-"), str(getattr(args, name))
    try:
        value = float(text) if text.strip().isascii() else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero) or value > highest:
        raise ValueError(f"{option} must be a number of seconds from 0 ({'included' if zero else 'excluded'}) to "
                         f"{highest:g}, got {text!r}")
    return value


def check_options(args: argparse.Namespace) -> dict:
    """``serve``'s numeric options, checked and converted (``name -> value``).

    Raises:
        ValueError: one naming the option and the value as typed.
    """
    from greenkfp.components.governance.gatekeeper import MAX_SECONDS
    from greenkfp.pipelines.options import duration_hours

    if not str(args.host).strip():
        raise ValueError(f"--host must be an address to listen on (127.0.0.1, 0.0.0.0, ::), got {args.host!r}")
    return {"port": _whole(args, "port", 1, 65535), "workers": _whole(args, "workers", 1, 64),
            "threads": _whole(args, "threads", 0, 256), "max_body_mib": _whole(args, "max_body_mib", 1, 256),
            "upstream_timeout": _seconds(args, "upstream_timeout", MAX_SECONDS["upstream_timeout_s"], zero=False),
            "status_cache": _seconds(args, "status_cache", MAX_SECONDS["status_cache_s"], zero=True),
            "history_cache": _seconds(args, "history_cache", MAX_SECONDS["history_cache_s"], zero=True),
            "reservation_ttl_h": duration_hours(args.reservation_ttl, "--reservation-ttl")}


def settings_from_args(args: argparse.Namespace, environ=None):
    """The gatekeeper's settings from ``serve``'s options and the environment's tokens.

    Raises:
        ValueError: a bad option (named), or no team token at all.
    """
    from greenkfp.components.governance.gatekeeper import GatekeeperSettings
    from greenkfp.components.governance.ledger import DEFAULT_LEDGER_URL
    from greenkfp.components.governance.tokens import ENV_TEAMS, Tokens

    environ = os.environ if environ is None else environ
    values = check_options(args)
    if values["reservation_ttl_h"] <= 0:
        raise ValueError(f"--reservation-ttl must be longer than 0, got {args.reservation_ttl!r}")
    tokens = Tokens.from_env(environ)
    if not tokens.teams:
        raise ValueError(f"no team tokens: set {ENV_TEAMS} (team=token,...) or {ENV_TEAMS}_FILE")
    return GatekeeperSettings(
        ledger_url=args.ledger or environ.get(LEDGER_ENV) or DEFAULT_LEDGER_URL, kfp_url=args.kfp_url, tokens=tokens,
        policy_url=args.policy_url, policy_file=args.policy_file, region=args.region, provider=args.provider,
        hardware_profile=args.hardware_profile, reservation_ttl_s=values["reservation_ttl_h"] * 3600.0,
        upstream_timeout_s=values["upstream_timeout"], status_cache_s=values["status_cache"],
        history_cache_s=values["history_cache"], threads=values["threads"],
        max_body_bytes=values["max_body_mib"] * 1024 * 1024,
        create_ledger=False)  # the platform lead creates it (greenkfp budget set-limit): a typo is not a ledger


def _named(message: str) -> str:
    """``message`` with a setting's name at its start replaced by its option's (``region: ...`` -> ``--region: ...``)."""
    first, rest = re.match(r"([a-z_]*)(.*)", message, re.DOTALL).groups()
    return _OPTION_OF_SETTING.get(first, first) + rest


def _check_listen(host: str, port: int) -> None:
    """That ``host:port`` can be listened on (uvicorn would say so only after opening everything)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:
        raise ValueError(f"--host {host!r} is not an address to listen on: {exc}") from None
    family, kind, proto, _, address = infos[0]
    try:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
    except OSError as exc:
        raise ValueError(f"--host/--port: cannot listen on {host}:{port}: {exc.strerror or exc}") from None


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
        port, workers = int(args.port), int(args.workers)  # checked
        _check_listen(args.host, port)
        app = create_app(settings)  # also when workers start their own: a bad ledger or policy fails here, once
    except (PolicyError, ValueError) as exc:  # ValueError: TokenError, BudgetError, LedgerUnavailableError too
        message = _named(str(exc))
        if isinstance(exc, PolicyError) and not message.startswith("--"):  # the policy's option, named
            option = "--policy-url" if args.policy_url else "--policy-file" if args.policy_file else "policy"
            message = f"{option}: {message.removeprefix('policy URL: ')}"
        console.print("[red]error:[/red]", Text(redact_urls(" ".join(message.split()))), soft_wrap=True)
        return 2
    core = app.state.gatekeeper
    console.print(Text(redact_urls(
        f"greenkfp gatekeeper on http://{args.host}:{port} -> KFP API {settings.kfp_url}; ledger {core.ledger.url}; "
        f"policy {core.policy.policy}; teams {', '.join(settings.tokens.team_names)}; request bodies up to "
        f"{settings.max_body_bytes // 1048576} MiB; log level {args.log_level}"
        + (f"; {workers} workers" if workers > 1 else ""))), soft_wrap=True)
    options = dict(host=args.host, port=port, log_level=args.log_level, access_log=args.access_log,
                   log_config=log_config(args.log_level))
    if workers == 1:
        uvicorn.run(app, **options)
        return 0
    core.close()
    os.environ[_ARGS_ENV] = json.dumps({k: v for k, v in vars(args).items() if k != "func"})
    uvicorn.run("greenkfp.pipelines.gatekeeper_cli:app_from_environment", factory=True, workers=workers,
                **options)
    return 0
