"""Platform config per compile target. Only the ``kubeflow`` flavour carries kfp-kubernetes
settings; ``vertex`` must stay free of them (kubeflow/pipelines#11241)."""

from kfp import kubernetes

PLATFORMS = ("kubeflow", "vertex")

#: Kubernetes secret holding the carbon API credentials, keyed by environment variable name.
#: Optional: a cluster using only the embedded or UK provider needs no secret.
CARBON_CREDENTIALS_SECRET = "greenkfp-carbon-credentials"
CARBON_CREDENTIAL_ENV = ("ELECTRICITYMAPS_API_KEY", "WATTTIME_USERNAME", "WATTTIME_PASSWORD")
POD_LABEL_PREFIX = "greenkfp.io"


def configure_carbon_task(task, platform: str, role: str):
    """Secrets as env and attribution labels on Kubeflow; nothing on Vertex."""
    if platform == "kubeflow":
        kubernetes.use_secret_as_env(
            task,
            secret_name=CARBON_CREDENTIALS_SECRET,
            secret_key_to_env={name: name for name in CARBON_CREDENTIAL_ENV},
            optional=True,
        )
        kubernetes.add_pod_label(task, f"{POD_LABEL_PREFIX}/component", role)
        kubernetes.add_pod_label(task, f"{POD_LABEL_PREFIX}/carbon-aware", "true")
    return task


def configure_training_task(task, platform: str):
    """Training pods: provider keys (the hourly pricing may use a live provider) and labels."""
    return configure_carbon_task(task, platform, role="train-with-emissions")
