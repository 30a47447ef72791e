"""KFP adapter that writes the serving manifests of the selected model. Everything the body needs is imported inside it."""

# No `from __future__ import annotations`: kfp reads the real annotation objects.
from typing import NamedTuple

from kfp.dsl import Artifact, Input, Model, Output

from .._runtime import component


@component("kubernetes-validate")
def deploy_model(
    selection_record: Input[Artifact],
    selected: Input[Model],
    manifests: Output[Artifact],
    deploy_name: str = "greenkfp-model",
    deploy_namespace: str = "default",
    storage_uri: str = "",
    hardware_profile: str = "n2-standard-4",
    hardware_overrides: dict = {},
    cpu: int = 1,
    memory_mib: int = 0,
    deploy_region: str = "GB",
    max_batch_size: int = 32,
    max_batch_delay_ms: float = 5.0,
    min_replicas: int = 1,
    max_replicas: int = 3,
    deploy_service_account: str = "",
) -> NamedTuple("DeployOutputs", [("deployable", bool)]):
    """Write Kubernetes manifests that serve the selected ONNX model with `greenkfp serve` (nothing is applied).

    A KServe InferenceService (custom predictor, the model fetched by KServe's storage
    initializer) and a plain Deployment and Service for clusters without KServe, validated
    against the Kubernetes schemas; apply them with `kubectl apply -f`. When the selection
    promoted no model, no manifests are written: the folder holds NOT_DEPLOYED.md with the reason.

    Args:
        selection_record: The selection record (greenkfp.selection/v1) from select_pareto_model.
        selected: The promoted ONNX model from select_pareto_model; its URI is the storage URI.
        deploy_name: Name of the InferenceService, Deployment and Service and of the model in the protocol (DNS-1035 label, <= 53 characters).
        deploy_namespace: Kubernetes namespace (DNS-1123 label).
        storage_uri: Where the cluster fetches the model (gs://, s3://, pvc://, https://...); empty: the selected artifact's URI.
        hardware_profile: Hardware profile of the serving machine (energy model; memory is its RAM per vCPU x cpu).
        hardware_overrides: Field values replacing the profile's.
        cpu: Whole vCPUs per replica (requests = limits; also the server's threads), at most the profile's vCPUs.
        memory_mib: Memory per replica in MiB; 0 = the profile's share.
        deploy_region: Grid region whose carbon intensity the server's metrics use.
        max_batch_size: Largest micro-batch the server runs.
        max_batch_delay_ms: Longest a request waits for its batch, milliseconds.
        min_replicas: Fewest replicas (KServe autoscaler; the Deployment runs this many, at least 1).
        max_replicas: Most replicas (KServe autoscaler).
        deploy_service_account: Service account of the pods, whose secret holds the storage credentials (empty: the default).

    Returns:
        manifests: A folder with inferenceservice.yaml, deployment.yaml and service.yaml, or NOT_DEPLOYED.md when blocked.
        deployable: Whether manifests were written (False when the selection blocked promotion).
    """
    import os
    from collections import namedtuple

    from greenkfp.components._files import write_atomic
    from greenkfp.components.records import SelectionRecord, read_record
    from greenkfp.components.serving.manifests import (BLOCKED_FILE, blocked_note, check_pipeline_knobs,
                                                       from_selection, write_manifests)

    check_pipeline_knobs(hardware_profile=hardware_profile, hardware_overrides=hardware_overrides,
                         deploy_name=deploy_name, deploy_namespace=deploy_namespace, deploy_region=deploy_region,
                         deploy_service_account=deploy_service_account)  # errors name these parameters
    from greenkfp.components.carbon.errors import ProviderConfigError
    from greenkfp.components.serving.manifests import ManifestError
    from greenkfp.components.serving.region import check_server_region

    try:  # the region serve would refuse (the pod would crash-loop)
        check_server_region(deploy_region)
    except ManifestError as exc:
        raise ManifestError(f"deploy_{exc}") from None
    except ProviderConfigError:  # a portable build holds no embedded data: the command line checked it before the run
        pass
    record = read_record(SelectionRecord, selection_record.path)
    options = from_selection(record, storage_uri=storage_uri, model_uri=selected.uri, name=deploy_name,
                             namespace=deploy_namespace,
                             hardware_profile=hardware_profile, hardware_overrides=hardware_overrides, cpu=cpu,
                             memory_mib=memory_mib, region=deploy_region, max_batch_size=max_batch_size,
                             max_batch_delay_ms=max_batch_delay_ms, min_replicas=min_replicas,
                             max_replicas=max_replicas, service_account=deploy_service_account)
    os.makedirs(manifests.path, exist_ok=True)
    if options is None:
        write_atomic(os.path.join(manifests.path, BLOCKED_FILE), blocked_note(record))
        manifests.metadata.update({"deployable": False, "reason": record.reason})
        print(f"not deployed: the selection blocked promotion ({record.reason})")
    else:
        files = write_manifests(options, manifests.path)
        manifests.metadata.update({"deployable": True, "chosen": record.chosen, "storage_uri": options.storage_uri,
                                   "image": options.image, "files": [os.path.basename(f) for f in files],
                                   "apply": "kubectl apply -f <folder>/inferenceservice.yaml (KServe) or "
                                            "deployment.yaml and service.yaml"})
    return namedtuple("DeployOutputs", ["deployable"])(options is not None)
