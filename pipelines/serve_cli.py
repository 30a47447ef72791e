"""``greenkfp serve``: an ONNX model over the Open Inference Protocol v2 (FastAPI on uvicorn).

Only wiring: the server is :func:`greenkfp.components.serving.app.create_app`. Every option is
checked before anything heavy is imported or opened: a bad one is one line on stderr naming the
option and the value, exit 2. The model itself loads after the server is listening: a model that
cannot load leaves the server up and not ready (``/v2/health/ready`` 503, the reason in the log
and in ``/v2/models/{name}/ready``), as KServe expects of a runtime.
"""

from __future__ import annotations

import argparse
import math
import re

from rich.console import Console
from rich.text import Text

console = Console(stderr=True)

#: The settings' names as the options that set them (an error of the settings names the option).
_OPTION_OF_SETTING = {"model": "--model", "name": "--name", "max_batch_size": "--max-batch-size",
                      "max_batch_delay_ms": "--max-batch-delay-ms", "max_request_rows": "--max-request-rows",
                      "threads": "--threads", "hardware_profile": "--hardware-profile", "region": "--region",
                      "provider": "--provider", "intensity_refresh_s": "--intensity-refresh",
                      "max_body_bytes": "--max-body-mib", "version": "--model-version"}


def add_serve_command(sub) -> None:
    """Add ``serve`` to the ``greenkfp`` command's subparsers."""
    from greenkfp.components.parameters import GATE
    from greenkfp.pipelines.cli import _add_provider_option_arguments
    from greenkfp.pipelines.options import add_spec_options

    p = sub.add_parser(
        "serve", help="serve an ONNX model (or the selection's chosen variant) over the Open Inference Protocol v2",
        description="Serve an ONNX model with ONNX Runtime over the Open Inference Protocol v2 REST API (KServe, "
                    "Triton and MLServer's protocol), with adaptive micro-batching and Prometheus metrics of "
                    "requests, latency, batch sizes, CPU seconds, energy (joules, measured or modeled) and carbon "
                    "at /metrics.")
    p.add_argument("--model", required=True, metavar="PATH",
                   help="an .onnx file, a selection record (JSON, greenkfp.selection/v1) whose chosen variant "
                        "to serve, or a folder holding exactly one of either (/mnt/models, where KServe's storage "
                        "initializer copies a prefix URI's contents)")
    p.add_argument("--name", required=True, help="the model's name in the URLs (/v2/models/NAME/infer)")
    p.add_argument("--model-version", default="1", metavar="VERSION", help="the model's version (default: 1)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", default="8080", help="port (default: 8080)")
    p.add_argument("--max-batch-size", default="32", metavar="ROWS",
                   help="most rows run together in one session.run (default: 32; 1: no batching)")
    p.add_argument("--max-batch-delay-ms", default="5", metavar="MS",
                   help="longest a queued request waits for others to batch with, milliseconds (default: 5; a "
                        "request on an idle server never waits)")
    p.add_argument("--max-request-rows", default="1024", metavar="ROWS",
                   help="most rows in one request; more is answered 400 (default: 1024)")
    p.add_argument("--threads", default="1",
                   help="ONNX Runtime intra-op threads per session.run (default: 1)")
    add_spec_options(p, ("hardware_profile", "provider"))
    _add_provider_option_arguments(p)  # --replay-year, --provider-option: as every command that prices carbon
    p.add_argument("--region", default=GATE["regions"].default[0],
                   help="the grid region whose carbon intensity prices the inferences (default: "
                        f"{GATE['regions'].default[0]})")
    p.add_argument("--intensity-refresh", default="300", metavar="SECONDS",
                   help="how often the grid intensity is fetched again, seconds (default: 300; a failure keeps the "
                        "last value)")
    p.add_argument("--max-body-mib", default="8", metavar="MIB",
                   help="the largest request body, MiB (default: 8; at most 256); larger is answered 413")
    p.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"),
                   help="the log's level (stderr) (default: info)")
    p.add_argument("--no-access-log", dest="access_log", action="store_false", help="no line per request")
    p.set_defaults(func=cmd_serve)


def _number(args: argparse.Namespace, name: str, option: str, lowest: float, highest: float) -> float:
    text = str(getattr(args, name))
    try:
        value = float(text) if text.strip().isascii() else math.nan
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not lowest <= value <= highest:
        raise ValueError(f"{option} must be a number from {lowest:g} to {highest:g}, got {text!r}")
    return value


def settings_from_args(args: argparse.Namespace):
    """The server's settings from ``serve``'s options.

    Raises:
        ValueError: a bad option, named with the value as typed.
    """
    from greenkfp.components.serving.app import MAX_BODY_LIMIT_BYTES, ServeSettings
    from greenkfp.components.carbon.errors import ProviderOptionError
    from greenkfp.pipelines.cli import _provider_options
    from greenkfp.pipelines.gatekeeper_cli import _whole

    try:
        provider_options = _provider_options(args)
    except ProviderOptionError as exc:  # --replay-year's value is named as the option the user typed
        if exc.provider == "embedded" and exc.option == "replay_year" and args.replay_year is not None:
            raise ValueError(f"--replay-year {args.replay_year}: "
                             f"{str(exc).split(': ', 1)[-1]}") from None
        raise

    if not str(args.host).strip():
        raise ValueError(f"--host must be an address to listen on (127.0.0.1, 0.0.0.0, ::), got {args.host!r}")
    _whole(args, "port", 1, 65535)
    return ServeSettings(
        model=args.model, name=args.name, version=args.model_version,
        max_batch_size=_whole(args, "max_batch_size", 1, 65536),
        max_batch_delay_ms=_number(args, "max_batch_delay_ms", "--max-batch-delay-ms", 0, 10000),
        max_request_rows=_whole(args, "max_request_rows", 1, 1 << 20),
        threads=_whole(args, "threads", 1, 256),
        hardware_profile=args.hardware_profile, region=args.region, provider=args.provider,
        provider_options=provider_options,
        intensity_refresh_s=_number(args, "intensity_refresh", "--intensity-refresh", 1, 86400),
        max_body_bytes=_whole(args, "max_body_mib", 1, MAX_BODY_LIMIT_BYTES // 1048576) * 1048576)


def _named(message: str) -> str:
    """``message`` with a setting's name at its start replaced by its option's."""
    first, rest = re.match(r"([a-z_]*)(.*)", message, re.DOTALL).groups()
    return _OPTION_OF_SETTING.get(first, first) + rest


def cmd_serve(args: argparse.Namespace) -> int:
    from pathlib import Path

    from greenkfp.components.carbon.providers import check_regions  # the one region check (manifests' too)
    from greenkfp.components.serving.model import ModelLoadError, resolve_model_path
    from greenkfp.pipelines.gatekeeper_cli import _check_listen, log_config

    try:
        settings = settings_from_args(args)
        model = Path(settings.model)
        if model.is_dir():  # KServe's storage initializer copies a prefix's contents into a folder
            try:
                resolve_model_path(model)
            except ModelLoadError as exc:
                raise ValueError(f"--model: {exc}") from None
        elif not model.is_file():
            raise ValueError(f"--model {settings.model!r}: no such file or folder")
        try:
            check_regions(settings.provider, [settings.region])
        except ValueError as exc:
            raise ValueError(f"--region: {exc}") from None
        _check_listen(args.host, int(args.port))
        import uvicorn

        from greenkfp.components.serving.app import create_app

        app = create_app(settings)
    except ValueError as exc:  # UnknownProfileError, ProviderOptionError too
        message = _named(" ".join(str(exc).split()))
        if message.startswith("unknown hardware profile"):
            message = "--hardware-profile: " + message
        console.print("[red]error:[/red]", Text(message), soft_wrap=True)
        return 2
    server = app.state.serving
    console.print(Text(
        f"greenkfp serve on http://{args.host}:{args.port}: model {settings.name!r} from {settings.model} (loading); "
        f"batches up to {settings.max_batch_size} rows, {settings.max_batch_delay_ms:g} ms; {settings.threads} "
        f"thread(s); energy {server.energy.method} ({settings.hardware_profile}); carbon {settings.region} via "
        f"{settings.provider}"), soft_wrap=True)
    # uvloop and httptools named, not left to uvicorn's "auto" (which falls back to asyncio and h11 silently)
    uvicorn.run(app, host=args.host, port=int(args.port), log_level=args.log_level, access_log=args.access_log,
                log_config=log_config(args.log_level), loop="uvloop", http="httptools")
    return 0
