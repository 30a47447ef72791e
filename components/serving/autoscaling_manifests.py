"""Kubernetes autoscaling manifests for ``greenkfp serve``: HPA, prometheus-adapter, KEDA, placement.

``greenkfp serving manifests`` writes, for one model served by ``greenkfp serve``:

* ``deployment.yaml`` + ``service.yaml``: the Deployment and Service of ``deploy-manifests``
  (:mod:`.manifests`), with the CPU request of the replica a load test measured
  (:attr:`~.autoscaling.ReplicaProfile.cpu_request_m`; its limit when it was measured under one),
  so HPA utilisation is measured against what a replica uses at its SLA capacity (no
  ``spec.replicas``: the autoscaler owns the count); with ``cloud``
  set, a preferred node affinity for (and tolerations of) the cloud's spot node pools
  (:data:`SPOT_PLACEMENT`);
* ``hpa.yaml``: an ``autoscaling/v2`` HorizontalPodAutoscaler from
  :func:`~.autoscaling.greenkfp_policy` (CPU and memory utilisation, the per-pod power metric
  :data:`~.autoscaling.POWER_METRIC`, and its ``behavior``);
* ``prometheus-adapter.yaml``: a ConfigMap holding prometheus-adapter rules that expose
  :data:`~.autoscaling.POWER_METRIC` per pod, in watts: the rate of Kepler's
  ``kepler_container_joules_total``, dynamic mode only (``power_source="kepler"``; Kepler 0.7's
  labels) or of the server's own
  ``greenkfp_inference_energy_joules_total`` (``"server"``, the default: Kepler may be absent);
* ``keda-scaledobject.yaml``: the KEDA alternative (apply it *instead of* ``hpa.yaml``: KEDA makes
  its own HPA), a Prometheus trigger on the request rate (:mod:`.promql`) whose threshold is the
  per-pod rate at the policy's CPU target, the same replica bounds and ``behavior``;
* ``cluster-autoscaler-priority-expander.yaml``: the priority expander's ConfigMap, preferring
  spot node groups, then on-demand; with several regions, greenest forecast region first
  (:func:`rank_regions`, from the carbon service). One per cluster (it replaces the cluster's
  priorities), read by a cluster-autoscaler run with ``--expander=priority`` among the node groups
  of its one cluster; GKE's managed autoscaler does not read it;
* ``autoscaling.json``: what the files were made from (the replica, the policy, the region
  intensities with their source).

Validation (:func:`validate_autoscaling`): the Deployment, Service, HPA and both ConfigMaps against
the Kubernetes :data:`~.manifests.KUBERNETES_VERSION` schemas (kubernetes-validate, strict); the
ScaledObject against :data:`SCALED_OBJECT_SCHEMA`, written from KEDA's ScaledObject specification
(KEDA's CRD itself is not bundled), its ``behavior`` against Kubernetes' HorizontalPodAutoscalerBehavior
and its ``metadata`` against ObjectMeta, all strict (unknown fields refused, as ``kubectl apply
--validate=strict`` does); plus what neither schema says:
DNS-1123 names, HPA ``minReplicas <= maxReplicas``, the HPA's and KEDA's target is the Deployment,
the adapter rules' structure and templates, the expander's integer priorities and regexes.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Mapping, Sequence

from .._checks import shown
from .autoscaling import POWER_METRIC, AutoscalingPolicy, ReplicaProfile
from .manifests import (_DNS1123_LABEL, DeployOptions, ManifestError, _labels, _schema_check, deployment,
                        service, validate_kubernetes)

__all__ = ["POWER_SOURCES", "CLOUDS", "SPOT_PLACEMENT", "SCALED_OBJECT_SCHEMA", "FILES", "DEFAULT_REGION_PATTERN", "RegionIntensity", "AutoscalingOptions",
           "adapter_rule", "adapter_config", "render_metrics_query", "hpa", "scaled_object", "priority_expander",
           "placed_deployment", "rank_regions", "region_intensities", "build_autoscaling", "validate_autoscaling",
           "validate_scaled_object", "render_autoscaling"]

POWER_SOURCES = ("server", "kepler")
CLOUDS = ("none", "gke", "eks", "aks")

#: Each cloud's spot node label and the taint its spot pools carry (None: none by default).
#: GKE: Spot VMs node pools are labelled cloud.google.com/gke-spot=true; the NoSchedule taint is the
#: one GKE's documentation recommends adding to them (Autopilot adds it itself)
#: (https://cloud.google.com/kubernetes-engine/docs/how-to/spot-vms).
#: EKS: managed node groups carry eks.amazonaws.com/capacityType=SPOT, untainted
#: (https://docs.aws.amazon.com/eks/latest/userguide/managed-node-groups.html).
#: AKS: spot node pools carry kubernetes.azure.com/scalesetpriority=spot and the same key as a
#: NoSchedule taint, added by AKS (https://learn.microsoft.com/azure/aks/spot-node-pool).
SPOT_PLACEMENT: dict[str, dict[str, Any]] = {
    "gke": {"label": ("cloud.google.com/gke-spot", "true"), "taint": ("cloud.google.com/gke-spot", "true", "NoSchedule")},
    "eks": {"label": ("eks.amazonaws.com/capacityType", "SPOT"), "taint": None},
    "aks": {"label": ("kubernetes.azure.com/scalesetpriority", "spot"),
            "taint": ("kubernetes.azure.com/scalesetpriority", "spot", "NoSchedule")},
}

FILES = ("deployment.yaml", "service.yaml", "hpa.yaml", "prometheus-adapter.yaml", "keda-scaledobject.yaml",
         "cluster-autoscaler-priority-expander.yaml", "autoscaling.json")

#: The series each power source exposes, with the labels that name a pod's namespace and name.
_POWER_SERIES = {
    # the server's counter, labelled by Prometheus' Kubernetes pod discovery with the usual relabeling
    # (__meta_kubernetes_namespace -> namespace, __meta_kubernetes_pod_name -> pod)
    "server": ("greenkfp_inference_energy_joules_total", "namespace", "pod"),
    # Kepler 0.7's per-container counter (https://sustainable-computing-io.github.io/kepler/design/metrics/)
    "kepler": ("kepler_container_joules_total", "container_namespace", "pod_name"),
}
#: Extra label matchers of a source's query. Kepler 0.7 splits each container's joules by ``mode``:
#: ``dynamic`` (what the container's work adds) and ``idle`` (its share of the node's idle power, which
#: does not fall as pods are added: counting it could pin the HPA at its maximum). Only dynamic power.
_POWER_MATCHERS = {"server": "", "kepler": ',mode="dynamic"'}
#: Go's RE2 (cluster-autoscaler's regexp package) has no lookaround and no backreference.
_NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?P=|\\k<")
_TEMPLATE_FIELD = re.compile(r"<<\s*(\.[A-Za-z]+)\s*>>")
_ADAPTER_FIELDS = {".Series", ".LabelMatchers", ".GroupBy"}
_WINDOW = re.compile(r"^[1-9][0-9]*(s|m|h)$")
_URL = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$")
EXPANDER_NAME = "cluster-autoscaler-priority-expander"
#: The node-group pattern with regions: the region bounded by delimiters, so europe-west1's
#: pattern does not take in europe-west10's node groups.
DEFAULT_REGION_PATTERN = ".*[-_]{region}[-_].*{capacity}.*"
HEADER = ("# Generated by greenkfp serving manifests ({what}).\n"
          "# Apply with: kubectl apply -f {file}\n")


@dataclass(frozen=True)
class RegionIntensity:
    """A region's forecast grid intensity over the horizon, and where the number came from."""

    region: str
    node_group_name: str
    gco2_per_kwh: float
    provider: str
    data_kind: str
    basis: str
    note: str = ""
    signal: str = ""

    def to_dict(self) -> dict:
        return {"region": self.region, "node_group_name": self.node_group_name, "gco2_per_kwh": self.gco2_per_kwh,
                "units": "gCO2eq/kWh", "provider": self.provider, "data_kind": self.data_kind, "signal": self.signal,
                "basis": self.basis, "note": self.note}


@dataclass(frozen=True)
class AutoscalingOptions:
    """Everything the autoscaling manifests need besides the Deployment's options."""

    profile: ReplicaProfile
    policy: AutoscalingPolicy
    power_source: str = "server"
    cloud: str = "none"
    rate_window: str = "2m"
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    adapter_namespace: str = "monitoring"
    autoscaler_namespace: str = "kube-system"
    node_group_pattern: str = ".*{capacity}.*"  # with regions: DEFAULT_REGION_PATTERN
    capacity_names: tuple[str, str] = ("spot", "on-demand")
    regions: tuple[RegionIntensity, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.power_source not in POWER_SOURCES:
            raise ManifestError(f"power_source must be one of {', '.join(POWER_SOURCES)}, got {shown(self.power_source)}")
        if self.cloud not in CLOUDS:
            raise ManifestError(f"cloud must be one of {', '.join(CLOUDS)}, got {shown(self.cloud)}")
        if not isinstance(self.rate_window, str) or not _WINDOW.match(self.rate_window):
            raise ManifestError(f"rate_window must be a Prometheus duration such as 1m or 2m, got {shown(self.rate_window)}")
        if not isinstance(self.prometheus_url, str) or not _URL.match(self.prometheus_url):
            raise ManifestError(f"prometheus_url must be an http(s) URL without credentials or query, such as "
                                f"http://prometheus.monitoring.svc:9090, got {shown(self.prometheus_url)}")
        for option in ("adapter_namespace", "autoscaler_namespace"):
            value = getattr(self, option)
            if not isinstance(value, str) or len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
                raise ManifestError(f"{option} must be a DNS-1123 label of at most 63 characters (lower-case letters, "
                                    f"digits and '-'), got {shown(value)}")
        spot, on_demand = self.capacity_names
        for word in (spot, on_demand):
            if not isinstance(word, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", word):
                raise ManifestError(f"capacity_names must be two node-group name parts (letters, digits, '_', '.', '-'), "
                                    f"got {shown(word)}")
        if spot == on_demand:
            raise ManifestError(f"capacity_names must differ, got {spot!r} twice")
        pattern = self.node_group_pattern
        if not isinstance(pattern, str) or "{capacity}" not in pattern:
            raise ManifestError(f"node_group_pattern must contain {{capacity}}, got {shown(pattern)}")
        if self.regions and "{region}" not in pattern:
            raise ManifestError(f"node_group_pattern must contain {{region}} when regions are given, got {shown(pattern)}")
        if not self.regions and "{region}" in pattern:
            raise ManifestError(f"node_group_pattern has {{region}} but no regions are given, got {shown(pattern)}")
        leftover = re.sub(r"\{\d+(,\d*)?\}", "", re.sub(r"\{(capacity|region)\}", "", pattern))  # less quantifiers
        if "{" in leftover or "}" in leftover:
            raise ManifestError(f"node_group_pattern's only placeholders are {{region}} and {{capacity}}, got "
                                f"{shown(pattern)}")
        if _NOT_RE2.search(pattern):
            raise ManifestError(f"node_group_pattern must be Go RE2 syntax (cluster-autoscaler's): no lookaround "
                                f"(?=, (?!, (?<=, (?<! and no backreference, got {shown(pattern)}")
        for group in self.node_group_patterns():
            try:
                re.compile(group)
            except re.error as exc:
                raise ManifestError(f"node_group_pattern gives {group!r}, not a regular expression: {exc}") from None
        self._check_regions_apart()

    def _check_regions_apart(self) -> None:
        """No region's pattern matches a node-group name made for another region: else the
        expander's top priority would take in the other (maybe dirtier) region's node groups
        (``.*europe-west1.*`` matches ``gke-c-europe-west10-spot-pool``). The names are built as
        node groups are commonly named: ``gke-c-REGION-CAPACITY-pool``, and ``REGION-CAPACITY``."""
        for region in self.regions:
            for other in self.regions:
                if other is region:
                    continue
                for capacity in self.capacity_names:
                    group = self.node_group_pattern.replace("{region}", _literal(region.node_group_name)) \
                        .replace("{capacity}", _literal(capacity))
                    for sample in (f"gke-c-{other.node_group_name}-{capacity}-pool-1",
                                   f"{other.node_group_name}-{capacity}", f"aks-{other.node_group_name}-{capacity}-1",
                                   f"eks-{other.node_group_name}-{capacity}-ng"):
                        if re.fullmatch(group, sample):
                            raise ManifestError(
                                f"node_group_pattern gives {group!r} for {region.region} "
                                f"({region.node_group_name!r}), which also matches {sample!r}, a node group of "
                                f"{other.region} ({other.node_group_name!r}) in --regions: bound {{region}} by delimiters "
                                f"(the default '.*[-_]{{region}}[-_].*{{capacity}}.*') or rename the regions")

    def node_group_patterns(self) -> list[str]:
        """The expander's regexes, most preferred first: per region (greenest first), spot then on-demand."""
        regions = [r.node_group_name for r in self.regions] or [None]
        return [self.node_group_pattern.replace("{region}", _literal(region) if region else "")
                .replace("{capacity}", _literal(capacity))
                for region in regions for capacity in self.capacity_names]


def _literal(name: str) -> str:
    """``name`` (letters, digits, '_', '.', '-') as a regex matching itself, in Go's syntax too."""
    return name.replace(".", "\\.")


def _yaml(document: Any) -> str:
    """YAML with multi-line strings (the ConfigMaps' files) as literal blocks, readable as written."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper, value):
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    Dumper.add_representer(str, text)
    return yaml.dump(document, Dumper=Dumper, sort_keys=False, default_flow_style=False, width=1000)


# --------------------------------------------------------------------------- regions


def region_intensities(regions: Sequence[tuple[str, str]], *, start: datetime, horizon_h: float,
                       provider: str = "embedded", provider_options: Mapping | None = None) -> list[RegionIntensity]:
    """Each ``(zone, node-group name)``'s average intensity over ``[start, start + horizon_h)``, from
    the carbon service (:func:`~greenkfp.components.carbon.intensity.intensity_over`)."""
    from ..carbon.intensity import intensity_over

    end = start + timedelta(hours=horizon_h)
    found = []
    for zone, name in regions:
        estimate = intensity_over(zone, start, end, provider=provider, provider_options=provider_options)
        found.append(RegionIntensity(zone, name, float(estimate.gco2_per_kwh), estimate.provider, estimate.data_kind,
                                     estimate.basis, estimate.note, estimate.signal))
    return found


def rank_regions(intensities: Sequence[RegionIntensity]) -> tuple[RegionIntensity, ...]:
    """Greenest first (lowest intensity); equal intensities by zone name, so the order given never matters."""
    return tuple(sorted(intensities, key=lambda r: (r.gco2_per_kwh, r.region.upper(), r.region)))


# --------------------------------------------------------------------------- documents


def placed_deployment(o: DeployOptions, cloud: str) -> dict:
    """:func:`.manifests.deployment`, preferring the cloud's spot pools (and tolerating their taint).

    Preferred, not required: when no spot node is free the pods still run on demand. No
    ``spec.replicas``: the autoscaler owns the count, and a re-applied manifest would reset it
    (the HPA documentation's advice)."""
    document = deployment(o)
    del document["spec"]["replicas"]
    if cloud == "none":
        return document
    placement = SPOT_PLACEMENT[cloud]
    key, value = placement["label"]
    pod = document["spec"]["template"]["spec"]
    pod["affinity"] = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "preference": {"matchExpressions": [{"key": key, "operator": "In", "values": [value]}]}}]}}
    if placement["taint"] is not None:
        taint_key, taint_value, effect = placement["taint"]
        pod["tolerations"] = [{"key": taint_key, "operator": "Equal", "value": taint_value, "effect": effect}]
    return document


def hpa(o: DeployOptions, policy: AutoscalingPolicy) -> dict:
    """The ``autoscaling/v2`` HorizontalPodAutoscaler of ``policy`` on the Deployment."""
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": o.name, "namespace": o.namespace, "labels": _labels(o)},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": o.name},
                     **policy.hpa_spec()}}


def adapter_rule(power_source: str, window: str = "2m") -> dict:
    """The prometheus-adapter rule exposing :data:`POWER_METRIC` per pod (watts = joules/second)."""
    series, namespace_label, pod_label = _POWER_SERIES[power_source]
    return {
        "seriesQuery": f'{series}{{{namespace_label}!="",{pod_label}!=""}}',
        "resources": {"overrides": {namespace_label: {"resource": "namespace"}, pod_label: {"resource": "pod"}}},
        "name": {"matches": f"^{series}$", "as": POWER_METRIC},
        # summed over a pod's series: Kepler's containers (dynamic mode only), the server's methods
        "metricsQuery": f"sum(rate(<<.Series>>{{<<.LabelMatchers>>{_POWER_MATCHERS[power_source]}}}[{window}])) "
                        "by (<<.GroupBy>>)",
    }


def adapter_config(o: DeployOptions, a: AutoscalingOptions) -> dict:
    """A ConfigMap holding prometheus-adapter's ``config.yaml`` with :func:`adapter_rule`."""
    config = {"rules": [adapter_rule(a.power_source, a.rate_window)]}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "greenkfp-prometheus-adapter", "namespace": a.adapter_namespace,
                         "labels": {"app.kubernetes.io/part-of": "greenkfp", "app.kubernetes.io/name": o.name}},
            "data": {"config.yaml": _yaml(config)}}


def render_metrics_query(rule: Mapping, *, namespace: str, pods: Sequence[str]) -> str:
    """``rule``'s ``metricsQuery`` filled as prometheus-adapter fills it for a Pods metric of
    ``pods`` in ``namespace`` (its ``naming.MetricsQuery.Build``): ``.Series`` the metric's name,
    ``.LabelMatchers`` the namespace's label ``="ns"`` and the pod label ``=~"a|b"``, ``.GroupBy``
    the pod label.

    Raises:
        ManifestError: the template uses a field this does not fill (so it was not checked).
    """
    template = rule["metricsQuery"]
    unknown = set(_TEMPLATE_FIELD.findall(template)) - _ADAPTER_FIELDS
    if unknown:
        raise ManifestError(f"metricsQuery uses template field(s) {', '.join(sorted(unknown))}; only "
                            f"{', '.join(sorted(_ADAPTER_FIELDS))} are filled")
    overrides = rule["resources"]["overrides"]
    label_of = {v["resource"]: k for k, v in overrides.items()}
    series = rule["name"]["matches"].strip("^$")
    names = "|".join(pods)  # as the adapter joins them: pod names are DNS-1123, no regex metacharacters
    matchers = f'{label_of["namespace"]}="{namespace}",{label_of["pod"]}=~"{names}"'
    fills = {".Series": series, ".LabelMatchers": matchers, ".GroupBy": label_of["pod"]}
    return _TEMPLATE_FIELD.sub(lambda m: fills[m.group(1)], template)


def scaled_object(o: DeployOptions, a: AutoscalingOptions) -> dict:
    """KEDA's ScaledObject: a Prometheus trigger on the model's request rate, threshold the per-pod
    rate at the policy's CPU target; the policy's bounds and ``behavior``."""
    from .promql import REQUEST_RATE, query

    if a.policy.target("cpu") is None:
        raise ManifestError(f"the policy {a.policy.name!r} has no CPU target to set KEDA's threshold from")
    # the utilisation the HPA is given (rounded down), so KEDA and the HPA scale at one rate
    cpu_target = next(m["resource"]["target"]["averageUtilization"] for m in a.policy.hpa_spec()["metrics"]
                      if m["type"] == "Resource" and m["resource"]["name"] == "cpu")
    per_pod = a.profile.rps_at_utilisation(cpu_target)
    threshold = f"{math.floor(per_pod * 100) / 100:g}"  # rounded down: never above the target
    spec = a.policy.hpa_spec()
    return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
            "metadata": {"name": o.name, "namespace": o.namespace, "labels": _labels(o)},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": o.name},
                "pollingInterval": 15, "cooldownPeriod": 300,
                "minReplicaCount": spec["minReplicas"], "maxReplicaCount": spec["maxReplicas"],
                "advanced": {"horizontalPodAutoscalerConfig": {"behavior": spec["behavior"]}},
                "triggers": [{"type": "prometheus", "metricType": "AverageValue", "metadata": {
                    "serverAddress": a.prometheus_url,
                    "query": query(REQUEST_RATE, window=a.rate_window, model=o.name,
                                   selector=f'namespace="{o.namespace}"'),
                    "threshold": threshold}}],
            }}


def priority_expander(a: AutoscalingOptions) -> dict:
    """cluster-autoscaler's priority expander ConfigMap: higher integer wins; each value lists
    node-group name regexes."""
    patterns = a.node_group_patterns()
    priorities = {10 * (len(patterns) - i): [p] for i, p in enumerate(patterns)}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": EXPANDER_NAME, "namespace": a.autoscaler_namespace,
                         "labels": {"app.kubernetes.io/part-of": "greenkfp"}},
            "data": {"priorities": _yaml(priorities)}}


def build_autoscaling(o: DeployOptions, a: AutoscalingOptions) -> dict[str, dict]:
    """File name -> document (not yet validated; :func:`render_autoscaling` validates). No
    prometheus-adapter rules when the policy has no power metric."""
    documents = {"deployment.yaml": placed_deployment(o, a.cloud), "service.yaml": service(o),
                 "hpa.yaml": hpa(o, a.policy), "prometheus-adapter.yaml": adapter_config(o, a),
                 "keda-scaledobject.yaml": scaled_object(o, a),
                 "cluster-autoscaler-priority-expander.yaml": priority_expander(a)}
    if a.policy.target("power") is None:
        del documents["prometheus-adapter.yaml"]
    return documents


# --------------------------------------------------------------------------- validation


def _object(properties: dict, required: tuple[str, ...] = ()) -> dict:
    # Unknown fields refused, as ``kubectl apply --validate=strict`` refuses them (the API server
    # would prune them silently).
    return {"type": "object", "properties": properties, "required": list(required), "additionalProperties": False}


_INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
#: KEDA's ScaledObject (``keda.sh/v1alpha1``), written from KEDA's "ScaledObject specification"
#: reference (keda.sh/docs/2.15 and later): every field it documents, with its type. KEDA's own CRD
#: is not bundled; ``behavior`` is checked against Kubernetes' HorizontalPodAutoscalerBehavior
#: schema (KEDA's CRD embeds that very type), ``metadata`` against ObjectMeta.
SCALED_OBJECT_SCHEMA = _object({
    "apiVersion": {"const": "keda.sh/v1alpha1"},
    "kind": {"const": "ScaledObject"},
    "metadata": {"type": "object"},
    "spec": _object({
        "scaleTargetRef": _object({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                   "name": {"type": "string", "minLength": 1},
                                   "envSourceContainerName": {"type": "string"}}, ("name",)),
        "pollingInterval": _INT32, "cooldownPeriod": _INT32, "initialCooldownPeriod": _INT32,
        "idleReplicaCount": _INT32, "minReplicaCount": _INT32, "maxReplicaCount": _INT32,
        "fallback": _object({"failureThreshold": _INT32, "replicas": _INT32,
                             "behavior": {"enum": ["static", "currentReplicas", "currentReplicasIfHigher",
                                                   "currentReplicasIfLower"]}},
                            ("failureThreshold", "replicas")),
        "advanced": _object({
            "restoreToOriginalReplicaCount": {"type": "boolean"},
            "horizontalPodAutoscalerConfig": _object({"name": {"type": "string"}, "behavior": {"type": "object"}}),
            "scalingModifiers": _object({"formula": {"type": "string"}, "target": {"type": "string"},
                                         "activationTarget": {"type": "string"},
                                         "metricType": {"enum": ["AverageValue", "Value"]}}),
        }),
        "triggers": {"type": "array", "minItems": 1, "items": _object({
            "type": {"type": "string", "minLength": 1},
            "name": {"type": "string"},
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "useCachedMetrics": {"type": "boolean"},
            "metricType": {"enum": ["AverageValue", "Value", "Utilization"]},
            "authenticationRef": _object({"name": {"type": "string", "minLength": 1}, "kind": {"type": "string"}},
                                         ("name",)),
        }, ("type", "metadata"))},
    }, ("scaleTargetRef", "triggers")),
}, ("apiVersion", "kind", "metadata", "spec"))


def validate_scaled_object(document: Mapping, where: str = "keda-scaledobject") -> None:
    """The ScaledObject against KEDA's CRD schema (strict), plus its name, bounds and trigger."""
    import jsonschema

    if document.get("apiVersion") != "keda.sh/v1alpha1" or document.get("kind") != "ScaledObject":
        raise ManifestError(f"{where}: apiVersion/kind must be keda.sh/v1alpha1 ScaledObject, got "
                            f"{shown(document.get('apiVersion'))} {shown(document.get('kind'))}")
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(SCALED_OBJECT_SCHEMA).iter_errors(dict(document)))
    if error is not None:
        path = ".".join(str(p) for p in error.absolute_path)
        raise ManifestError(f"{where}{'.' + path if path else ''}: {error.message} (KEDA ScaledObject schema)")
    _schema_check(dict(document["metadata"]), "objectmeta-meta-v1.json", f"{where}.metadata")
    behavior = document["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
    if behavior is not None:
        _schema_check(behavior, "horizontalpodautoscalerbehavior-autoscaling-v2.json",
                      f"{where}.spec.advanced.horizontalPodAutoscalerConfig.behavior")
    meta = document.get("metadata") or {}
    for key in ("name", "namespace"):
        value = meta.get(key)
        if not isinstance(value, str) or len(value) > 63 or not _DNS1123_LABEL.fullmatch(value):
            raise ManifestError(f"{where}.metadata.{key} must be a DNS-1123 label, got {shown(value)}")
    spec = document["spec"]
    low, high = spec.get("minReplicaCount", 0), spec.get("maxReplicaCount", 100)
    if not 0 <= low <= high:
        raise ManifestError(f"{where}.spec: minReplicaCount ({low}) must be from 0 to maxReplicaCount ({high})")
    for i, trigger in enumerate(spec["triggers"]):
        if trigger["type"] == "prometheus":
            meta = trigger["metadata"]
            for key in ("serverAddress", "query", "threshold"):
                if not meta.get(key):
                    raise ManifestError(f"{where}.spec.triggers.{i}.metadata.{key} is required by KEDA's prometheus scaler")
            try:
                threshold = float(meta["threshold"])
            except ValueError:
                threshold = math.nan
            if not threshold > 0 or not math.isfinite(threshold):
                raise ManifestError(f"{where}.spec.triggers.{i}.metadata.threshold must be a positive number, got "
                                    f"{shown(meta['threshold'])}")


def _check_hpa(document: Mapping, target: str, where: str = "hpa") -> None:
    spec = document.get("spec") or {}
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if not isinstance(high, int) or not 1 <= low <= high:
        raise ManifestError(f"{where}.spec: minReplicas ({shown(low)}) must be from 1 to maxReplicas ({shown(high)})")
    ref = spec.get("scaleTargetRef") or {}
    if (ref.get("apiVersion"), ref.get("kind"), ref.get("name")) != ("apps/v1", "Deployment", target):
        raise ManifestError(f"{where}.spec.scaleTargetRef must be the Deployment {target!r}, got {shown(ref)}")


def _check_adapter(document: Mapping, where: str = "prometheus-adapter") -> None:
    import yaml

    try:
        config = yaml.safe_load((document.get("data") or {}).get("config.yaml", ""))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{where}.data.config.yaml is not YAML: {exc}") from None
    rules = config.get("rules") if isinstance(config, dict) else None
    if not isinstance(rules, list) or not rules:
        raise ManifestError(f"{where}.data.config.yaml must hold a non-empty rules list")
    for i, rule in enumerate(rules):
        at = f"{where}.data.config.yaml.rules.{i}"
        unknown = sorted(set(rule) - {"seriesQuery", "seriesFilters", "resources", "name", "metricsQuery"})
        if unknown:
            raise ManifestError(f"{at}: unknown field(s) {', '.join(unknown)}")
        for key in ("seriesQuery", "resources", "name", "metricsQuery"):
            if not rule.get(key):
                raise ManifestError(f"{at}.{key} is required")
        kinds = {v.get("resource") for v in (rule["resources"].get("overrides") or {}).values()}
        if not {"namespace", "pod"} <= kinds:
            raise ManifestError(f"{at}.resources.overrides must map a label to namespace and one to pod, got "
                                f"{shown(rule['resources'])}")
        try:
            re.compile(rule["name"]["matches"])
        except (re.error, KeyError, TypeError) as exc:
            raise ManifestError(f"{at}.name.matches must be a regular expression: {exc}") from None
        used = set(_TEMPLATE_FIELD.findall(rule["metricsQuery"]))
        if not {".Series", ".LabelMatchers"} <= used:
            raise ManifestError(f"{at}.metricsQuery must use <<.Series>> and <<.LabelMatchers>>")


def _check_expander(document: Mapping, where: str = EXPANDER_NAME) -> None:
    import yaml

    meta = document.get("metadata") or {}
    if meta.get("name") != EXPANDER_NAME:
        raise ManifestError(f"{where}.metadata.name must be {EXPANDER_NAME} (cluster-autoscaler reads that name), "
                            f"got {shown(meta.get('name'))}")
    try:
        priorities = yaml.safe_load((document.get("data") or {}).get("priorities", ""))
    except yaml.YAMLError as exc:
        raise ManifestError(f"{where}.data.priorities is not YAML: {exc}") from None
    if not isinstance(priorities, dict) or not priorities:
        raise ManifestError(f"{where}.data.priorities must map integer priorities to lists of regexes")
    for key, patterns in priorities.items():
        if isinstance(key, bool) or not isinstance(key, int) or key < 1:
            raise ManifestError(f"{where}.data.priorities: keys must be positive integers, got {shown(key)}")
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) for p in patterns):
            raise ManifestError(f"{where}.data.priorities.{key} must be a list of regexes, got {shown(patterns)}")
        for pattern in patterns:
            if _NOT_RE2.search(pattern):
                raise ManifestError(f"{where}.data.priorities.{key}: {pattern!r} is not Go RE2 syntax "
                                    "(no lookaround, no backreference)")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ManifestError(f"{where}.data.priorities.{key}: {pattern!r} is not a regex: {exc}") from None


def validate_autoscaling(documents: Mapping[str, Mapping]) -> None:
    """Raise :class:`ManifestError` (one line: file, field path, problem) unless every document passes."""
    target = documents["deployment.yaml"]["metadata"]["name"]
    for name, document in documents.items():
        where = name.removesuffix(".yaml")
        if document.get("kind") == "ScaledObject":
            validate_scaled_object(document, where)
            ref = document["spec"]["scaleTargetRef"]
            if ref.get("name") != target or ref.get("kind", "Deployment") != "Deployment":
                raise ManifestError(f"{where}.spec.scaleTargetRef must be the Deployment {target!r}, got {shown(ref)}")
            continue
        validate_kubernetes(document, where)
        if document.get("kind") == "HorizontalPodAutoscaler":
            _check_hpa(document, target, where)
        elif name == "prometheus-adapter.yaml":
            _check_adapter(document, where)
        elif name == "cluster-autoscaler-priority-expander.yaml":
            _check_expander(document, where)


def _summary(o: DeployOptions, a: AutoscalingOptions) -> dict:
    return {"schema": "greenkfp.autoscaling-manifests/v1", "model": o.name, "namespace": o.namespace,
            "replica": a.profile.to_dict(),
            # not measured by the load test: the profile's assumptions (startup_s: --startup-s)
            "replica_assumptions": {"startup_s": "seconds from a new pod to Ready: assumed, not measured",
                                    "memory_mib": "the memory request: assumed, not measured"},
            "policy": a.policy.to_dict(),
            # None: the HPA has no power metric (--no-power-metric), so no adapter rule reads a series
            "power_source": a.power_source if a.policy.target("power") is not None else None,
            "power_series": _POWER_SERIES[a.power_source][0] if a.policy.target("power") is not None else None,
            "cloud": a.cloud,
            "spot_placement": ({"label": "=".join(SPOT_PLACEMENT[a.cloud]["label"]),
                                "taint": (None if SPOT_PLACEMENT[a.cloud]["taint"] is None else
                                          "{}={}:{}".format(*SPOT_PLACEMENT[a.cloud]["taint"]))}
                               if a.cloud != "none" else None),
            "node_group_patterns": a.node_group_patterns(),
            "regions": [r.to_dict() for r in a.regions] or None,
            "units": {"gco2_per_kwh": "gCO2eq/kWh", "power": "watts", "cpu": "millicores", "memory": "MiB"}}


def _intensity_comment(a: AutoscalingOptions) -> str:
    if not a.regions:
        return "# One region: spot node groups first, then on-demand.\n"
    lines = ["# Regions, greenest first (average grid intensity over the horizon, gCO2eq/kWh, from the carbon "
             "service):"]
    for r in a.regions:
        kind = r.data_kind.replace("_", " ")
        lines.append(f"#   {r.region} (node groups '{r.node_group_name}'): {r.gco2_per_kwh:.1f} ({r.provider}, {kind})")
    lines.append("# Order: each region's spot node groups, then its on-demand ones. autoscaling.json has each "
                 "number's basis.")
    return "\n".join(lines) + "\n"


def render_autoscaling(o: DeployOptions, a: AutoscalingOptions) -> dict[str, str]:
    """File name -> text of every file of :data:`FILES`, validated (nothing when one fails)."""
    documents = build_autoscaling(o, a)
    validate_autoscaling(documents)
    what = {"deployment.yaml": "the greenkfp serve Deployment, CPU request right-sized to the load test",
            "service.yaml": "its Service",
            "hpa.yaml": f"HPA, policy {a.policy.name}; apply it or keda-scaledobject.yaml, not both",
            "prometheus-adapter.yaml": f"prometheus-adapter rules exposing {POWER_METRIC} per pod from "
                                       f"{_POWER_SERIES[a.power_source][0]}"
                                       f"{' (dynamic mode only)' if a.power_source == 'kepler' else ''}",
            "keda-scaledobject.yaml": "KEDA alternative to hpa.yaml; apply one of the two",
            "cluster-autoscaler-priority-expander.yaml": "run cluster-autoscaler with --expander=priority; one "
                                                         "per cluster: applying it replaces the cluster's priorities"}
    texts = {}
    for name, document in documents.items():
        header = HEADER.format(what=what[name], file=name)
        if name == "prometheus-adapter.yaml":  # the adapter reads one config: the rule goes into it
            header = (f"# Generated by greenkfp serving manifests ({what[name]}).\n"
                      "# Merge data.config.yaml's rules into the rules of your prometheus-adapter's config (its\n"
                      "# ConfigMap, or the Helm chart's rules.custom) and restart the adapter; kubectl apply -f\n"
                      "# prometheus-adapter.yaml alone only works where the adapter's --config reads this ConfigMap.\n")
        if name == "cluster-autoscaler-priority-expander.yaml":
            header += _intensity_comment(a)
        texts[name] = header + _yaml(document)
    texts["autoscaling.json"] = json.dumps(_summary(o, a), indent=2) + "\n"
    return texts

