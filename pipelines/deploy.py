"""Kubernetes manifests that deploy the carbon-budget gatekeeper, generated here and checked in
under ``deploy/gatekeeper/`` (a test fails when they differ from a fresh generation).

Regenerate with ``python -m greenkfp.pipelines.deploy [DIR]`` (default ``deploy/gatekeeper``).

The manifests carry no secret values: they name the Kubernetes secrets a cluster admin creates
(``deploy/gatekeeper/README.md`` says how), mounted as files or read as environment variables:

==========================================  ============================================
``greenkfp-gatekeeper-ledger``, key ``url``  the ledger's PostgreSQL URL (with its password)
``greenkfp-gatekeeper-team-tokens``          one key per team, its value the team's token
``greenkfp-gatekeeper-admin``, key ``token``  the admin's token
``greenkfp-gatekeeper-board-tokens``         one key per review-board member (optional)
``greenkfp-gatekeeper-kfp-token``, ``token``  the KFP API's bearer token (optional)
==========================================  ============================================
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

NAME = "greenkfp-gatekeeper"
NAMESPACE = "kubeflow"
PORT = 8888
#: The secrets the Deployment reads, by name (never their values).
SECRETS = {"ledger": f"{NAME}-ledger", "teams": f"{NAME}-team-tokens", "admin": f"{NAME}-admin",
           "board": f"{NAME}-board-tokens", "kfp": f"{NAME}-kfp-token"}
SECRET_DIR = "/var/run/secrets/greenkfp"
#: Where a team's pipelines find the gatekeeper (the flagship's gatekeeper_url).
SERVICE_URL = f"http://{NAME}.{NAMESPACE}:{PORT}"
KFP_API = f"http://ml-pipeline.{NAMESPACE}:8888"


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "greenkfp"}


def deployment() -> dict:
    from greenkfp.components._runtime import component_image

    def secret_file(volume: str, secret: str, optional: bool = False, key: str | None = None) -> dict:
        source = {"secretName": secret, "defaultMode": 0o440, "optional": optional}  # readable by fsGroup
        if key:
            source["items"] = [{"key": key, "path": key}]
        return {"name": volume, "secret": source}

    env = [
        {"name": "GREENKFP_LEDGER", "valueFrom": {"secretKeyRef": {"name": SECRETS["ledger"], "key": "url"}}},
        {"name": "GREENKFP_GATEKEEPER_TOKENS_FILE", "value": f"{SECRET_DIR}/teams"},
        {"name": "GREENKFP_GATEKEEPER_ADMIN_TOKEN_FILE", "value": f"{SECRET_DIR}/admin/token"},
        {"name": "GREENKFP_GATEKEEPER_BOARD_TOKENS_FILE", "value": f"{SECRET_DIR}/board"},
        {"name": "GREENKFP_KFP_TOKEN", "valueFrom": {"secretKeyRef": {"name": SECRETS["kfp"], "key": "token",
                                                                      "optional": True}}},
    ]
    mounts = [{"name": name, "mountPath": f"{SECRET_DIR}/{name}", "readOnly": True}
              for name in ("teams", "admin", "board")]
    container = {
        "name": "gatekeeper", "image": component_image(), "imagePullPolicy": "IfNotPresent",
        "command": ["greenkfp", "gatekeeper", "serve", "--host", "0.0.0.0", "--port", str(PORT),
                    "--kfp-url", KFP_API, "--workers", "2", "--no-access-log"],
        "env": env, "volumeMounts": mounts,
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 10,
                           "timeoutSeconds": 3},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 20,
                          "failureThreshold": 3},
        "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": _labels()},
        "spec": {
            # the ledger is PostgreSQL, shared by the replicas; it enforces every budget atomically
            "replicas": 2,
            "selector": {"matchLabels": _labels()},
            "template": {
                "metadata": {"labels": _labels()},
                "spec": {
                    "automountServiceAccountToken": False,  # it needs no Kubernetes API
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                        "fsGroup": 10001, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [secret_file("teams", SECRETS["teams"]),
                                secret_file("admin", SECRETS["admin"], key="token"),
                                secret_file("board", SECRETS["board"], optional=True)],
                },
            },
        },
    }


def service() -> dict:
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": _labels()},
        "spec": {"type": "ClusterIP", "selector": _labels(),
                 "ports": [{"name": "http", "port": PORT, "targetPort": "http", "protocol": "TCP"}]},
    }


def kustomization() -> dict:
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["deployment.yaml", "service.yaml"]}


HEADER = "# Generated by `python -m greenkfp.pipelines.deploy`: do not edit (a test compares it with a fresh one).\n"


def gatekeeper_manifests() -> dict[str, str]:
    """File name -> YAML text of the gatekeeper's manifests."""
    def text(document: dict) -> str:
        return HEADER + yaml.safe_dump(document, sort_keys=False, default_flow_style=False)

    return {"deployment.yaml": text(deployment()), "service.yaml": text(service()),
            "kustomization.yaml": text(kustomization())}


def write_gatekeeper_manifests(folder: str | Path = "deploy/gatekeeper") -> list[Path]:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in gatekeeper_manifests().items():
        (out / name).write_text(text, encoding="utf-8")
        written.append(out / name)
    return written


def main(argv: list[str] | None = None) -> int:
    """``python -m greenkfp.pipelines.deploy [DIR]``: write the manifests into DIR."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m greenkfp.pipelines.deploy",
        description="Write the gatekeeper's Kubernetes manifests (deployment.yaml, service.yaml, "
                    "kustomization.yaml) into a folder; they name the secrets they read and hold no values.")
    parser.add_argument("folder", nargs="?", default="deploy/gatekeeper", metavar="DIR",
                        help="where to write them (default: deploy/gatekeeper; made if missing)")
    args = parser.parse_args(argv)
    if not args.folder.strip():
        parser.error(f"DIR must be a folder, got {args.folder!r}")
    if Path(args.folder).exists() and not Path(args.folder).is_dir():
        print(f"error: DIR {args.folder!r} is a file, not a folder", file=sys.stderr)
        return 2
    try:
        written = write_gatekeeper_manifests(args.folder)
    except OSError as exc:
        print(f"error: DIR {args.folder!r} cannot be written: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
