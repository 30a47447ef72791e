"""Platform config per compile target. Only the ``kubeflow`` flavour carries kfp-kubernetes
settings; ``vertex`` must stay free of them (kubeflow/pipelines#11241): on Vertex AI, labels
are set when the job is submitted (``greenkfp submit vertex --labels``)."""

import re
from dataclasses import dataclass, field

from kfp import kubernetes

PLATFORMS = ("kubeflow", "vertex")

#: Environment variables read from the credentials secret (each key optional in the secret).
CARBON_CREDENTIAL_ENV = ("ELECTRICITYMAPS_API_KEY", "WATTTIME_USERNAME", "WATTTIME_PASSWORD")
#: The environment variable the budget steps read the team's gatekeeper token from, and its key in the secret.
GATEKEEPER_TOKEN_ENV = "GREENKFP_GATEKEEPER_TOKEN"
GATEKEEPER_TOKEN_KEY = "token"
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _check_label_value(name: str, value: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise ValueError(
            f"{name} must be a Kubernetes label value (at most 63 letters, digits, '-', '_' or '.', "
            f"starting and ending with a letter or digit), got {value!r}"
        )


_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _check_label_key(name: str, key: str) -> None:
    """A Kubernetes label key: an optional DNS-subdomain prefix (at most 253) and a name (at most 63)."""
    prefix, _, label = key.rpartition("/")
    if not _LABEL_NAME.match(label) or (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))) \
            or key.count("/") > 1:
        raise ValueError(f"{name} must be a Kubernetes label key such as cloud.google.com/gke-spot, got {key!r}")


@dataclass(frozen=True)
class KubeflowSettings:
    """What the ``kubeflow`` flavour adds to pods. Defaults suit GKE spot nodes; change them
    with ``greenkfp compile --team ... --spot-node-selector ...`` for your cluster.

    Attributes:
        team, cost_center, carbon_tier: Pod labels ``team``, ``cost-center``, ``carbon-tier``
            (with ``pipeline``, the pipeline's name) for cost and carbon attribution.
        spot: Send training and benchmark pods to spot/preemptible nodes.
        spot_node_selector: ``(label, value)`` of spot nodes.
        spot_toleration: ``(taint key, value, effect)`` of spot nodes.
        credentials_secret: Kubernetes secret whose keys become the provider credentials' env.
        gatekeeper_secret: Kubernetes secret whose key ``token`` holds the team's carbon-budget
            gatekeeper token (the budget steps read it as ``GREENKFP_GATEKEEPER_TOKEN``).
    """

    team: str = "ml-platform"
    cost_center: str = "unassigned"
    carbon_tier: str = "flexible"
    spot: bool = True
    spot_node_selector: tuple[str, str] = ("cloud.google.com/gke-spot", "true")
    spot_toleration: tuple[str, str, str] = ("cloud.google.com/gke-spot", "true", "NoSchedule")
    credentials_secret: str = "greenkfp-carbon-credentials"
    gatekeeper_secret: str = "greenkfp-gatekeeper-token"
    extra_labels: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("team", "cost_center", "carbon_tier"):
            _check_label_value(name, getattr(self, name))
        for key, value in self.extra_labels.items():
            _check_label_value(f"extra_labels[{key!r}]", value)
        if len(self.spot_node_selector) != 2 or not all(self.spot_node_selector):
            raise ValueError(f"spot_node_selector must be (label, value), got {self.spot_node_selector!r}")
        _check_label_key("spot_node_selector's label", self.spot_node_selector[0])
        _check_label_value("spot_node_selector's value", self.spot_node_selector[1])
        if len(self.spot_toleration) == 3:
            _check_label_key("spot_toleration's key", self.spot_toleration[0])
        for key in self.extra_labels:
            _check_label_key(f"extra_labels key {key!r}", key)
        for name in ("credentials_secret", "gatekeeper_secret"):
            value = getattr(self, name)
            if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
                raise ValueError(f"{name} must be a Kubernetes secret name (lower-case letters, digits, "
                                 f"'-' and '.'), got {value!r}")
        if len(self.spot_toleration) != 3 or self.spot_toleration[2] not in _TAINT_EFFECTS:
            raise ValueError(
                f"spot_toleration must be (key, value, effect) with effect one of {', '.join(_TAINT_EFFECTS)}, "
                f"got {self.spot_toleration!r}"
            )

    def labels(self, pipeline: str, role: str) -> dict[str, str]:
        return {
            "team": self.team,
            "cost-center": self.cost_center,
            "pipeline": pipeline,
            "carbon-tier": self.carbon_tier,
            "greenkfp.io/component": role,
            **self.extra_labels,
        }


DEFAULT_KUBEFLOW = KubeflowSettings()


#: Whole CPUs and memory of a benchmark task's container, requests equal to limits: its CPU share
#: is fixed, so the measured times are the model's, not its neighbours'. The *pod's* QoS class is
#: Guaranteed only when every container, init containers included, has equal requests and limits;
#: KFP's launcher init container and Argo's wait container get none from the pipeline (Argo's
#: come from the workflow controller's ``executor.resources``), so on most clusters the pod is
#: Burstable, and the static CPU manager's exclusive cores (which need Guaranteed) are not given.
BENCHMARK_CPU = "2"
BENCHMARK_MEMORY = "4G"


def configure_task(task, platform: str, *, pipeline: str, role: str, settings: KubeflowSettings | None = None,
                   spot: bool = False, credentials: bool = False, whole_cpus: bool = False, gatekeeper: bool = False):
    """On Kubeflow: attribution labels on every pod, provider credentials from the secret where
    the step reads a carbon provider, the team's gatekeeper token where it asks the carbon-budget
    gatekeeper, spot nodes for training and benchmark steps, and for a
    benchmark (``whole_cpus``) whole CPUs and memory with requests equal to limits on its container
    (see :data:`BENCHMARK_CPU` for what that does and does not give). On Vertex: nothing (labels go on the job at submission; Vertex sizes the machine from
    limits and has no QoS classes to ask for)."""
    if platform != "kubeflow":
        return task
    if whole_cpus:
        task.set_cpu_request(BENCHMARK_CPU).set_cpu_limit(BENCHMARK_CPU)
        task.set_memory_request(BENCHMARK_MEMORY).set_memory_limit(BENCHMARK_MEMORY)
    settings = settings or DEFAULT_KUBEFLOW
    for key, value in settings.labels(pipeline, role).items():
        kubernetes.add_pod_label(task, key, value)
    if credentials:
        kubernetes.use_secret_as_env(
            task,
            secret_name=settings.credentials_secret,
            secret_key_to_env={name: name for name in CARBON_CREDENTIAL_ENV},
            optional=True,
        )
    if gatekeeper:  # the team's gatekeeper token: a budget step without it fails with a clear message
        kubernetes.use_secret_as_env(task, secret_name=settings.gatekeeper_secret,
                                     secret_key_to_env={GATEKEEPER_TOKEN_KEY: GATEKEEPER_TOKEN_ENV}, optional=True)
    if spot and settings.spot:
        label, value = settings.spot_node_selector
        kubernetes.add_node_selector(task, label_key=label, label_value=value)
        key, value, effect = settings.spot_toleration
        kubernetes.add_toleration(task, key=key, operator="Equal", value=value, effect=effect)
    return task


@dataclass(frozen=True)
class Steps:
    """Names and configures a pipeline's tasks the same way: display name, caching, and the
    platform config of :func:`configure_task`. One per pipeline definition."""

    platform: str
    pipeline: str
    settings: KubeflowSettings | None = None

    def __call__(self, task, name: str, *, cache: bool = True, spot: bool = False, credentials: bool = False,
                 whole_cpus: bool = False, gatekeeper: bool = False):
        task.set_display_name(name)
        if not cache:  # a measurement or a decision that depends on the clock: never reuse an old one
            task.set_caching_options(False)
        return configure_task(task, self.platform, pipeline=self.pipeline, role=name, settings=self.settings,
                              spot=spot, credentials=credentials, whole_cpus=whole_cpus, gatekeeper=gatekeeper)
