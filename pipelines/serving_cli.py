"""``greenkfp serving deploy-manifests``: the serving manifests of a selection on disk, the same
files the pipeline's ``deploy_model`` step writes.

Only wiring: :mod:`greenkfp.components.serving.manifests` builds and validates them. Exit codes:
0 written; 2 bad input (one line naming the option and the value; nothing written); 3 the
selection blocked promotion (nothing to deploy; nothing written).
"""

from __future__ import annotations

import argparse
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
