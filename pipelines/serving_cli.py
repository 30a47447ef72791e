"""``greenkfp serving deploy-manifests``: the serving manifests of a selection on disk, the same
files the pipeline's ``deploy_model`` step writes; ``greenkfp serving simulate``: the autoscaling
policies over a day or a week of traffic.

Only wiring: :mod:`greenkfp.components.serving.manifests` builds and validates the manifests,
:mod:`greenkfp.components.serving.simulate` simulates. Exit codes: 0 written; 2 bad input (one
line naming the option and the value; nothing written); 3 the selection blocked promotion
(nothing to deploy; nothing written).
"""

from __future__ import annotations

import argparse
import re
import sys

#: manifests.deploy_options' argument -> the option that sets it, for error messages.
_OPTIONS = ("name", "namespace", "storage_uri", "image", "hardware_profile", "cpu", "memory_mib", "region",
            "max_batch_size", "max_batch_delay_ms", "min_replicas", "max_replicas", "service_account")


def add_serving_commands(sub) -> None:
    serving = sub.add_parser("serving", help="serving: Kubernetes manifests for the selected model",
                             description="Kubernetes manifests that serve a selected model with greenkfp serve.")
    commands = serving.add_subparsers(dest="serving_command", required=True)
    p = commands.add_parser(
        "deploy-manifests", help="write the KServe InferenceService and a plain Deployment + Service",
        description="From a selection record (select_pareto_model's selection_record), write "
                    "inferenceservice.yaml (KServe) and deployment.yaml + service.yaml (plain Kubernetes) into "
                    "--output, validated against the Kubernetes schemas. Nothing is applied: run "
                    "kubectl apply -f on them. Exit 3 when the selection blocked promotion.")
    p.add_argument("--selection", required=True, metavar="PATH", help="the selection record (JSON)")
    p.add_argument("--output", required=True, metavar="DIR", help="folder to write the manifests into (made if missing)")
    p.add_argument("--storage-uri", default="",
                   help="where the cluster fetches the ONNX model (gs://, s3://, pvc://CLAIM/PATH, https://...; "
                        "default: the record's chosen_model_uri); a prefix ending in '/' (gs://B/DIR/) or hf://ORG/"
                        "MODEL is a folder: the server gets /mnt/models, which must hold one .onnx file or one "
                        "selection record")
    p.add_argument("--name", default="greenkfp-model", help="object and model name (DNS-1035 label, <= 53 characters)")
    p.add_argument("--namespace", default="default")
    p.add_argument("--image", default=None, help="server image (default: the library's, ghcr.io/greenkfp/greenkfp:VERSION)")
    p.add_argument("--hardware-profile", default="n2-standard-4", help="hardware profile of the serving machine")
    p.add_argument("--cpu", type=int, default=1, help="whole vCPUs per replica, also the server's threads (default 1)")
    p.add_argument("--memory-mib", type=int, default=0, help="memory per replica, MiB (default: the profile's share)")
    p.add_argument("--region", default="GB",
                   help="grid region for the server's carbon metrics, checked as greenkfp serve checks it: a zone "
                        "of the embedded data such as GB, DE-LU, US-CAL-CISO (default GB)")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-batch-delay-ms", type=float, default=5.0)
    p.add_argument("--min-replicas", type=int, default=1)
    p.add_argument("--max-replicas", type=int, default=3)
    p.add_argument("--service-account", default="",
                   help="service account of the pods, whose secret holds the storage credentials")
    p.set_defaults(func=cmd_deploy_manifests)
    _add_simulate(commands)
    _add_manifests_command(commands)


def cmd_deploy_manifests(args: argparse.Namespace) -> int:
    from pathlib import Path

    from greenkfp.components._files import write_atomic
    from greenkfp.components.records import SelectionRecord, read_record
    from greenkfp.components.serving.manifests import ManifestError, from_selection, render_manifests

    selection = Path(args.selection)
    if selection.is_dir():
        raise ValueError(f"--selection {args.selection}: a folder, not a selection record (JSON)")
    if not selection.exists():
        raise ValueError(f"--selection {args.selection}: no such file")
    record = read_record(SelectionRecord, args.selection)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--output {args.output!r} is a file, not a folder")
    try:
        from greenkfp.components.serving.region import check_server_region

        check_server_region(args.region)
        options = from_selection(record, storage_uri=args.storage_uri, **{k: getattr(args, k) for k in _OPTIONS
                                                                        if k != "storage_uri"})
        if options is None:
            print(f"not deployed: the selection blocked promotion ({record.reason}); no manifests written",
                  file=sys.stderr)
            return 3
        texts = render_manifests(options)  # validated before anything is written
    except ManifestError as exc:
        message = str(exc)
        for key in sorted(_OPTIONS, key=len, reverse=True):
            if message.startswith(key + " ") or message.startswith(key + "'"):
                message = "--" + key.replace("_", "-") + message[len(key):]
                break
        raise ValueError(message) from None
    for name, text in texts.items():
        print(f"wrote {write_atomic(out / name, text)}")
    print(f"apply with: kubectl apply -f {out / 'inferenceservice.yaml'}   (KServe)\n"
          f"        or: kubectl apply -f {out / 'deployment.yaml'} -f {out / 'service.yaml'}")
    return 0


# --------------------------------------------------------------------------- simulate

def _add_simulate(commands) -> None:
    p = commands.add_parser(
        "simulate", help="simulate the autoscaling policies over a day or a week of traffic",
        description="Simulate (a) the aggressive default HPA, (b) greenkfp's policy (both through a model of the "
                    "Kubernetes HPA controller) and (c) the oracle over a traffic trace, with the replica a load test "
                    "measured; write simulation.json, simulation.csv (per minute) and simulation.html into --output. "
                    "Every figure is modeled.")
    p.add_argument("--output", required=True, metavar="DIR", help="folder to write the three files into (made if missing)")
    p.add_argument("--trace", default=None, metavar="CSV",
                   help="requests per minute: header 'minute,requests', minutes 0, 1, 2, ... (default: the built-in "
                        "day shape with spikes)")
    p.add_argument("--days", default=None, metavar="1|7", help="days of the built-in shape: 1 or 7 (default 1)")
    p.add_argument("--peak-rps", default=None, metavar="RPS",
                   help="peak of the built-in shape, requests per second (default: 5 x the replica's SLA capacity)")
    p.add_argument("--loadtest", default=None, metavar="JSON",
                   help="a load test's JSON (scripts/loadtest_serving.py --json; default: the built-in measurement)")
    p.add_argument("--startup-s", default=None, metavar="S", help="seconds from a pod's creation to Ready (default 30)")
    p.add_argument("--headroom", default="0.8", help="policy (b)'s CPU target, share of the SLA capacity (default 0.8)")
    p.add_argument("--min-replicas", default="1")
    p.add_argument("--max-replicas", default="20")
    p.add_argument("--region", default="GB", help="grid zone of the embedded carbon data (default GB)")
    p.add_argument("--start", default=None, metavar="YYYY-MM-DD",
                   help="the first simulated day, for the carbon intensity and weekends (default 2024-03-04, a Monday)")
    p.add_argument("--spot-available", default="4", metavar="N",
                   help="replicas that spot capacity can hold at a time, for policy (b) and the oracle (default 4)")
    p.set_defaults(func=cmd_simulate)


def _number(option: str, text: str, low: float, high: float, *, whole: bool = False) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or not low <= value <= high or (whole and not value.is_integer()):
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"{option} must be {kind} in [{low:g}, {high:g}], got {text!r}")
    return int(value) if whole else value


#: a core error's leading field -> the option that sets it
_SIMULATE_OPTIONS = {"peak_rps": "--peak-rps", "days": "--days", "trace": "--trace", "region": "--region",
                     "spot_available": "--spot-available", "headroom": "--headroom", "min_replicas": "--min-replicas",
                     "max_replicas": "--max-replicas", "startup_s": "--startup-s", "start": "--start"}


def _option_message(message: str) -> str:
    for key in sorted(_SIMULATE_OPTIONS, key=len, reverse=True):
        if message.startswith(key + " ") or message.startswith(key + "'") or message.startswith(key + "("):
            return _SIMULATE_OPTIONS[key] + message[len(key):]
    return message


def cmd_simulate(args: argparse.Namespace) -> int:
    from datetime import date

    from greenkfp.components._files import OutputError, check_output_folder
    from greenkfp.components.serving import simulate as sim
    from greenkfp.components.serving.autoscaling import AutoscalingError

    try:
        check_output_folder("--output", args.output)
    except OutputError as exc:
        raise ValueError(str(exc)) from None
    if args.trace is not None and (args.days is not None or args.peak_rps is not None):
        given = "--days" if args.days is not None else "--peak-rps"
        raise ValueError(f"{given} shapes the built-in trace; it does not go with --trace {args.trace!r}")
    days = 1 if args.days is None else _number("--days", args.days, 1, 7, whole=True)
    if days not in (1, 7):
        raise ValueError(f"--days must be 1 or 7, got {args.days!r}")
    try:
        start = sim.DEFAULT_START if args.start is None else date.fromisoformat(args.start)
    except ValueError:
        raise ValueError(f"--start must be a date YYYY-MM-DD, got {args.start!r}") from None
    headroom = _number("--headroom", args.headroom, 0.1, 1.0)
    low = _number("--min-replicas", args.min_replicas, 1, 1000, whole=True)
    high = _number("--max-replicas", args.max_replicas, 1, 1000, whole=True)
    if low > high:
        raise ValueError(f"--min-replicas {low} must be <= --max-replicas {high}")
    spot = _number("--spot-available", args.spot_available, 0, 1000, whole=True)
    overrides = {} if args.startup_s is None else {"startup_s": _number("--startup-s", args.startup_s, 0.001, 3600)}
    try:
        profile = _replica_profile(args.loadtest, overrides)
        peak = sim.DEFAULT_PEAK_CAPACITIES * profile.capacity_rps if args.peak_rps is None else \
            _number("--peak-rps", args.peak_rps, 0.001, sim.MAX_RPS)
        trace = sim.builtin_trace(peak, days, start) if args.trace is None else sim.read_trace(args.trace)
        result = sim.simulate(trace, profile, headroom=headroom, min_replicas=low, max_replicas=high,
                              region=args.region, start=start, spot_available=spot)
    except (sim.SimulationError, AutoscalingError) as exc:
        raise ValueError(_option_message(str(exc))) from None
    except ValueError as exc:  # a profile setting (startup_s) or an option message already
        raise ValueError(_option_message(str(exc))) from None
    try:
        written = sim.write_simulation(result, args.output)
    except OutputError as exc:
        raise ValueError(str(exc)) from None
    _print_summary(result, sim)
    for path in written:
        print(f"wrote {path}")
    return 0


def _print_summary(result: dict, sim) -> None:
    from rich.table import Table

    from greenkfp.pipelines.cli import console

    table = Table(title=f"Autoscaling simulation (modeled): {result['trace']['source']}", title_justify="left")
    for i, header in enumerate(sim.SUMMARY_HEADERS):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in sim.summary_rows(result):
        table.add_row(*row)
    console.print(table)
    carbon = result["carbon_intensity"]
    if carbon.get("data_kind") != "historical":  # dates outside the embedded data: say what was used
        console.print(f"Carbon intensity ({carbon.get('region')}): {carbon.get('data_kind')}, {carbon.get('note')}",
                      soft_wrap=True, highlight=False)
    goals = result["comparison"]["goals"]
    for name, goal in goals.items():
        low, high = goal["range"]
        console.print(f"{sim.GOAL_LABELS[name]}: {goal['value']:.2f} % (range {low:.2f} to {high:.2f} %): "
                      f"{goal['verdict']}",
                      soft_wrap=True, highlight=False)
# --------------------------------------------------------------------------- greenkfp serving manifests

#: Settings' names (as their errors start) -> the options that set them.
_AUTOSCALING_OPTIONS = {"name": "--name", "namespace": "--namespace", "storage_uri": "--storage-uri",
                        "image": "--image", "region": "--region", "service_account": "--service-account",
                        "max_batch_size": "--max-batch-size", "max_batch_delay_ms": "--max-batch-delay-ms",
                        "min_replicas": "--min-replicas", "max_replicas": "--max-replicas", "headroom": "--headroom",
                        "power_source": "--power-source", "cloud": "--cloud", "rate_window": "--rate-window",
                        "prometheus_url": "--prometheus-url", "adapter_namespace": "--adapter-namespace",
                        "autoscaler_namespace": "--autoscaler-namespace",
                        "node_group_pattern": "--node-group-pattern", "capacity_names": "--capacity-names",
                        "startup_s": "--startup-s"}


def _add_manifests_command(commands) -> None:
    from greenkfp.components.serving.autoscaling_manifests import CLOUDS, POWER_SOURCES
    from greenkfp.pipelines.cli import _add_provider_option_arguments
    from greenkfp.pipelines.options import add_spec_options

    p = commands.add_parser(
        "manifests", help="write the power-aware autoscaling manifests (HPA, prometheus-adapter, KEDA, placement)",
        description="For a model served by greenkfp serve, write into --output: deployment.yaml + service.yaml "
                    "(CPU request right-sized to a load test), hpa.yaml (autoscaling/v2, greenkfp's policy: CPU, "
                    "memory and power per pod), prometheus-adapter.yaml (the power metric's rules), "
                    "keda-scaledobject.yaml (the KEDA alternative), cluster-autoscaler-priority-expander.yaml "
                    "(spot first, then on-demand; with --regions, greenest forecast region first) and "
                    "autoscaling.json (what they were made from). Everything is validated before anything is "
                    "written; nothing is applied.")
    model = p.add_argument_group("the model")
    model.add_argument("--selection", default="", metavar="PATH",
                       help="a selection record (JSON): serve its chosen model (exit 3 when it blocked promotion)")
    model.add_argument("--storage-uri", default="",
                       help="where the cluster fetches the ONNX model (gs://, s3://, pvc://CLAIM/PATH, ...); "
                            "required without --selection")
    p.add_argument("--output", required=True, metavar="DIR", help="folder to write the files into (made if missing)")
    p.add_argument("--name", default="greenkfp-model", help="object and model name (DNS-1035 label, <= 53 characters)")
    p.add_argument("--namespace", default="default")
    p.add_argument("--image", default=None, help="server image (default: the library's)")
    p.add_argument("--region", default=None,
                   help="grid region of this Deployment (its server's own carbon metrics; default: the zone of "
                        "--regions when it names one, else GB; required when it names several: a service in "
                        "several regions gets one Deployment per region, so run the command once per region)")
    p.add_argument("--service-account", default="", help="service account of the pods (storage credentials)")
    p.add_argument("--max-batch-size", type=int, default=32)
    p.add_argument("--max-batch-delay-ms", type=float, default=5.0)
    policy = p.add_argument_group("the replica and the policy")
    policy.add_argument("--loadtest", default="", metavar="JSON",
                        help="a load test's JSON (scripts/loadtest_serving.py --json, greenkfp.loadtest/v1) measuring "
                             "one replica (default: the built-in measurement)")
    policy.add_argument("--startup-s", type=float, default=None,
                        help="seconds from a new pod to Ready, an assumption (default: the profile's)")
    policy.add_argument("--headroom", type=float, default=0.8,
                        help="the policy's targets as a share of the SLA capacity, 0.1-1.0 (default 0.8)")
    policy.add_argument("--min-replicas", type=int, default=1, help="off-peak minimum (default 1)")
    policy.add_argument("--max-replicas", type=int, default=20, help="peak maximum (default 20)")
    metrics = p.add_argument_group("metrics")
    metrics.add_argument("--power-source", choices=POWER_SOURCES, default="server",
                         help="the power per pod: the server's own energy counter (server, default) or Kepler's "
                              "kepler_container_joules_total, dynamic mode only (kepler, Kepler 0.7)")
    metrics.add_argument("--no-power-metric", dest="power_metric", action="store_false",
                         help="leave the power metric out of hpa.yaml (and write no prometheus-adapter.yaml): "
                              "Kubernetes skips every scale-down while a metric cannot be fetched, so use it until "
                              "prometheus-adapter serves greenkfp_pod_power_watts")
    metrics.add_argument("--rate-window", default="2m", help="the rate() window of the queries (default 2m)")
    metrics.add_argument("--prometheus-url", default="http://prometheus-operated.monitoring.svc:9090",
                         help="the Prometheus KEDA queries (default: http://prometheus-operated.monitoring.svc:9090)")
    metrics.add_argument("--adapter-namespace", default="monitoring",
                         help="namespace of the prometheus-adapter ConfigMap (default monitoring)")
    place = p.add_argument_group("placement")
    place.add_argument("--cloud", choices=CLOUDS, default="none",
                       help="prefer (and tolerate) this cloud's spot node pools (default none)")
    place.add_argument("--regions", default="", metavar="ZONE[=NAME],...",
                       help="grid zones whose node groups ONE cluster-autoscaler sees, e.g. "
                            "GB=europe-west2,DE-LU=europe-west3 (NAME: the region as node-group names spell it; "
                            "default the zone in lower case): the expander prefers the lowest forecast intensity "
                            "first")
    place.add_argument("--node-group-pattern", default=None,
                       help="a node group's name as a Go RE2 regex with {capacity} (and {region} with --regions) "
                            "(default '.*{capacity}.*', with --regions '.*[-_]{region}[-_].*{capacity}.*': the "
                            "region between delimiters, so europe-west1 does not match europe-west10)")
    place.add_argument("--capacity-names", default="spot,on-demand", metavar="SPOT,ON_DEMAND",
                       help="{capacity} in node-group names (default spot,on-demand)")
    place.add_argument("--autoscaler-namespace", default="kube-system",
                       help="cluster-autoscaler's namespace (default kube-system)")
    place.add_argument("--horizon", type=float, default=24.0,
                       help="hours of forecast each region's intensity is averaged over (default 24)")
    place.add_argument("--start", default=None,
                       help="start of that horizon, ISO 8601 with a time zone (default: now)")
    add_spec_options(p, ("provider",))
    _add_provider_option_arguments(p)
    for action in p._actions:  # this command has no --provider-options to add to
        if action.dest == "provider_option":
            action.help = ("a carbon provider option (JSON value or text), e.g. uk.base_url=http://127.0.0.1:8080; "
                           "repeatable")
    p.set_defaults(func=cmd_manifests)


def _named_option(message: str) -> str:
    """A setting's name at the start of ``message`` replaced by its option's, and the settings with
    an underscore (unambiguous) wherever they appear (``min_replicas (5) must be <= max_replicas (2)``)."""
    for key in sorted(_AUTOSCALING_OPTIONS, key=len, reverse=True):
        if message.startswith(key + " ") or message.startswith(key + "'") or message.startswith(key + ":"):
            message = _AUTOSCALING_OPTIONS[key] + message[len(key):]
            break
    for key, option in _AUTOSCALING_OPTIONS.items():
        if "_" in key:
            message = re.sub(rf"(?<![\w-]){key}\b", option, message)
    return message


def _regions(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in [p.strip() for p in text.split(",")] if text.strip() else []:
        zone, _, name = part.partition("=")
        zone, name = zone.strip(), (name.strip() or zone.strip().lower())  # node-group names are lower-case
        if not zone or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}", zone) \
                or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", name):
            raise ValueError(f"--regions must be ZONE[=NAME],... (letters, digits, '_', '.', '-'), got {text!r}")
        pairs.append((zone, name))
    # zones as the carbon service reads them, case-insensitively (GB and gb are one zone)
    if len({z.upper() for z, _ in pairs}) != len(pairs) or len({n.lower() for _, n in pairs}) != len(pairs):
        raise ValueError(f"--regions names each zone and node-group name once, got {text!r}")
    return pairs


#: The largest --loadtest read (a load test's JSON is some kilobytes).
MAX_LOADTEST_BYTES = 16 << 20


def cmd_manifests(args: argparse.Namespace) -> int:
    import math
    from datetime import datetime, timezone
    from pathlib import Path

    from datetime import timedelta

    from greenkfp.components._files import check_output_folder, write_files
    from greenkfp.components.carbon.errors import UnknownRegionError
    from greenkfp.components.serving.autoscaling import greenkfp_policy
    from greenkfp.components.serving.autoscaling_manifests import (DEFAULT_REGION_PATTERN, FILES, AutoscalingOptions,
                                                                   RegionIntensity, rank_regions, region_intensities,
                                                                   render_autoscaling)
    from greenkfp.components.serving.manifests import deploy_options, from_selection
    from greenkfp.components.serving.region import check_server_region
    from greenkfp.pipelines.cli import _provider_options

    check_output_folder("--output", args.output)
    for name in FILES:  # a folder where a file goes: refused before the carbon provider is asked
        if (Path(args.output) / name).is_dir():
            raise ValueError(f"--output {args.output!r}: {Path(args.output) / name} is a folder, not a file")
    regions = _regions(args.regions)
    if not math.isfinite(args.horizon) or not 1 <= args.horizon <= 24 * 7:
        raise ValueError(f"--horizon must be hours from 1 to 168, got {args.horizon:g}")
    start = datetime.now(timezone.utc).replace(microsecond=0)
    if args.start is not None:
        try:
            start = datetime.fromisoformat(args.start)
        except ValueError:
            start = None
        if start is None or start.tzinfo is None:
            raise ValueError(f"--start must be ISO 8601 with a time zone, such as 2024-06-01T00:00Z, got {args.start!r}")
        try:  # the horizon in UTC must be a date Python can hold
            start.astimezone(timezone.utc) + timedelta(hours=args.horizon)
        except (OverflowError, ValueError):
            raise ValueError(f"--start {args.start!r}: the {args.horizon:g} h horizon from it runs outside the years "
                             f"1 to 9999") from None
    capacity = tuple(p.strip() for p in args.capacity_names.split(","))
    if len(capacity) != 2:
        raise ValueError(f"--capacity-names must be two names, SPOT,ON_DEMAND, got {args.capacity_names!r}")
    pattern = args.node_group_pattern or (DEFAULT_REGION_PATTERN if regions else ".*{capacity}.*")
    provider_options = _provider_options(args)
    if args.region is None and len(regions) > 1:  # the Deployment's region never depends on --regions' order
        raise ValueError("--region is required with several --regions: it is this Deployment's grid region "
                         "(a service in several regions gets one Deployment per region: run once per region)")
    server_region = args.region or (regions[0][0] if regions else "GB")

    overrides = {} if args.startup_s is None else {"startup_s": args.startup_s}
    try:
        profile = _replica_profile(args.loadtest or None, overrides)
        policy = greenkfp_policy(profile, headroom=args.headroom, min_replicas=args.min_replicas,
                                 max_replicas=args.max_replicas, power_metric=args.power_metric)
        check_server_region(server_region)
        options = dict(name=args.name, namespace=args.namespace, image=args.image,
                       hardware_profile=profile.hardware_profile, cpu=1, memory_mib=profile.memory_mib,
                       region=server_region, max_batch_size=args.max_batch_size,
                       max_batch_delay_ms=args.max_batch_delay_ms, min_replicas=policy.min_replicas,
                       max_replicas=policy.max_replicas, service_account=args.service_account,
                       cpu_request_m=profile.cpu_request_m, cpu_limit_m=profile.cpu_limit_m)
        if args.selection:
            from greenkfp.components.records import SelectionRecord, read_record

            selection = Path(args.selection)
            if selection.is_dir():
                raise ValueError(f"--selection {args.selection!r}: is a folder, not a file")
            if not selection.is_file():
                raise ValueError(f"--selection {args.selection!r}: no such file")
            record = read_record(SelectionRecord, args.selection)
            deploy = from_selection(record, storage_uri=args.storage_uri, **options)
            if deploy is None:
                print(f"not deployed: the selection blocked promotion ({record.reason}); nothing written",
                      file=sys.stderr)
                return 3
        elif args.storage_uri:
            deploy = deploy_options(storage_uri=args.storage_uri, **options)
        else:
            raise ValueError("--storage-uri or --selection is required: the model to serve")
        settings = dict(profile=profile, policy=policy, power_source=args.power_source, cloud=args.cloud,
                        rate_window=args.rate_window, prometheus_url=args.prometheus_url,
                        adapter_namespace=args.adapter_namespace, autoscaler_namespace=args.autoscaler_namespace,
                        node_group_pattern=pattern, capacity_names=capacity)
        # every option checked before the carbon provider is asked (stand-in intensities)
        AutoscalingOptions(**settings, regions=tuple(RegionIntensity(z, n, 0.0, "", "", "") for z, n in regions))
        ranked = ()
        if regions:
            try:
                ranked = rank_regions(region_intensities(regions, start=start, horizon_h=args.horizon,
                                                         provider=args.provider, provider_options=provider_options))
            except UnknownRegionError as exc:
                raise ValueError(f"--regions: {exc}") from None
        texts = render_autoscaling(deploy, AutoscalingOptions(**settings, regions=ranked))  # validated first
    except ValueError as exc:  # ManifestError, AutoscalingError, a setting's range: named as its option
        raise ValueError(_named_option(str(exc))) from None
    out = Path(args.output)
    for path in write_files(out, texts):
        print(f"wrote {path}")
    print(f"apply with: kubectl apply -f {out / 'deployment.yaml'} -f {out / 'service.yaml'} -f {out / 'hpa.yaml'}\n"
          f"   (or keda-scaledobject.yaml instead of hpa.yaml; "
          f"{'prometheus-adapter.yaml into the adapter config; ' if 'prometheus-adapter.yaml' in texts else ''}"
          f"cluster-autoscaler-priority-expander.yaml with --expander=priority)")
    if args.cloud == "gke":
        print("note: GKE's managed cluster autoscaler ignores cluster-autoscaler-priority-expander.yaml (it has its "
              "own location policy and autoscaling profiles); the file is for a self-managed cluster-autoscaler")
    return 0


def _replica_profile(loadtest: str | None, overrides: dict):
    """The replica of ``--loadtest`` (a load test's JSON), or the built-in one; every error one line
    naming ``--loadtest`` (or the option an override came from)."""
    import json
    from pathlib import Path

    from greenkfp.components._files import FileReadError, read_bounded
    from greenkfp.components.serving.autoscaling import builtin_profile, profile_from_loadtest

    if loadtest is None:
        return builtin_profile(**overrides)
    try:  # a regular file of at most 16 MiB: a FIFO is not waited on, a huge file not read whole
        data = json.loads(read_bounded(Path(loadtest), MAX_LOADTEST_BYTES).decode("utf-8"))
    except FileReadError as exc:
        raise ValueError(f"--loadtest {loadtest!r}: {exc.reason}") from None
    except UnicodeDecodeError:
        raise ValueError(f"--loadtest {loadtest!r}: not a readable JSON file (not UTF-8)") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"--loadtest {loadtest!r}: not a readable JSON file ({exc.msg} at line "
                         f"{exc.lineno} column {exc.colno})") from None
    try:
        return profile_from_loadtest(data, source=Path(loadtest).name, **overrides)
    except ValueError as exc:  # AutoscalingError, or a figure of the file out of range
        message = str(exc)
        raise ValueError(_named_option(message) if message.startswith("startup_s")
                         else f"--loadtest {loadtest!r}: {message}") from None
