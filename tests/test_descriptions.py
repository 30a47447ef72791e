"""Every input and output of every component, artifacts included, has a description in the
compiled YAML: kfp takes them from the docstring (``Args:`` for inputs, ``Returns:`` for outputs,
``Output[...]`` parameters included)."""

import pytest
import yaml
from kfp import compiler

import greenkfp.components as components


@pytest.mark.parametrize("name", [n for n in components.__all__ if n != "__version__"])
def test_every_input_and_output_has_a_description(name, tmp_path):
    path = tmp_path / f"{name}.yaml"
    compiler.Compiler().compile(getattr(components, name), str(path))
    spec = yaml.safe_load(path.read_text())
    undescribed = []
    for side in ("inputDefinitions", "outputDefinitions"):
        for kind in ("parameters", "artifacts"):
            for key, definition in spec["root"].get(side, {}).get(kind, {}).items():
                if not (definition.get("description") or "").strip():
                    undescribed.append(f"{side}.{kind}.{key}")
    assert not undescribed, f"{name}: no description for {', '.join(undescribed)}"
