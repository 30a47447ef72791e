"""Compile every pipeline and component into ``compiled/`` (deterministic output).

``compiled/kubeflow/``   pipelines with kfp-kubernetes platform config
``compiled/vertex/``     the same pipelines without it (Vertex AI rejects that config)
``compiled/components/`` one YAML per component, for ``kfp.components.load_component_from_file``
"""

from __future__ import annotations

import difflib
import filecmp
import tempfile
import warnings
from pathlib import Path

from kfp import compiler


def _targets(settings=None):
    from greenkfp import components
    from greenkfp.pipelines.carbon_gate import build_carbon_gate_pipeline
    from greenkfp.pipelines.platform import PLATFORMS
    from greenkfp.pipelines.training import build_training_pipeline

    for platform in PLATFORMS:
        yield f"{platform}/carbon_gate.yaml", build_carbon_gate_pipeline(platform, settings)
        yield f"{platform}/carbon_aware_training.yaml", build_training_pipeline(platform, settings)
    for name in components.__all__:
        if name != "__version__":
            yield f"components/{name}.yaml", getattr(components, name)


def compile_all(out_dir: str | Path, settings=None) -> list[Path]:
    """Compile everything into ``out_dir``; return the files written, in a stable order.

    ``settings`` (a :class:`~.platform.KubeflowSettings`) tailors the ``kubeflow`` flavour's
    labels, spot nodes and secret; the defaults are what ``compiled/`` holds."""
    out = Path(out_dir)
    written = []
    with warnings.catch_warnings():
        # Portable builds embed the package source; kfp warns about the archive's size.
        warnings.filterwarnings("ignore", message="Embedded artifact archive is large")
        for relative, item in _targets(settings):
            path = out / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            compiler.Compiler().compile(item, str(path))
            written.append(path)
    return written


def drift(compiled_dir: str | Path) -> list[str]:
    """Differences between ``compiled_dir`` and a fresh compile (empty when in sync)."""
    compiled_dir = Path(compiled_dir)
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = compile_all(tmp)
        expected = {p.relative_to(tmp).as_posix() for p in fresh}
        present = {p.relative_to(compiled_dir).as_posix() for p in compiled_dir.rglob("*.yaml")}
        for extra in sorted(present - expected):
            problems.append(f"{extra}: not produced by the compiler any more")
        for path in fresh:
            relative = path.relative_to(tmp).as_posix()
            old = compiled_dir / relative
            if not old.exists():
                problems.append(f"{relative}: missing")
            elif not filecmp.cmp(old, path, shallow=False):
                diff = difflib.unified_diff(
                    old.read_text().splitlines(), path.read_text().splitlines(), "checked-in", "fresh", lineterm="", n=1
                )
                problems.append(f"{relative}: differs\n" + "\n".join(list(diff)[:20]))
    return problems
