"""The serving region check, apart from :mod:`.manifests`: it loads the carbon package, and the
training pipeline's first step (``check_training_options``, which checks the deploy knobs through
the manifests) must stay small enough to embed under the kernel's 128 KiB argument limit. The
command line checks ``deploy_region`` with it before a run starts; ``deploy_model`` and
``greenkfp serving deploy-manifests`` before they write.
"""

from __future__ import annotations

from .._checks import shown


def check_server_region(region: str) -> None:
    """``region`` checked exactly as ``greenkfp serve --region`` checks it (the one shared
    :func:`~greenkfp.components.carbon.providers.check_regions`, with serve's default provider,
    which the manifests' server runs with): a region the server would refuse at start-up would
    make the pod crash-loop.

    Raises:
        ManifestError: ``region 'DE' is not in the embedded data; supported zones: ...``.
    """
    from ..carbon.providers import check_regions
    from ..parameters import GATE
    from .manifests import ManifestError

    try:
        check_regions(GATE["provider"].default, [region])
    except ValueError as exc:
        message = str(exc)
        raise ManifestError(message if message.startswith("region ") else f"region {shown(region)}: {message}") \
            from None
