"""The wheel carries the package, its data and its attribution, and imports without the repo."""

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

import greenkfp.components
import greenkfp.pipelines

ROOT = Path(__file__).resolve().parents[1]


def test_editable_install_maps_the_two_packages_to_the_repo_folders():
    assert Path(greenkfp.components.__file__).parent == ROOT / "components"
    assert Path(greenkfp.pipelines.__file__).parent == ROOT / "pipelines"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(ROOT)],
                   check=True, capture_output=True)
    (path,) = out.glob("greenkfp-*.whl")
    return path


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "greenkfp/components/__init__.py",
        "greenkfp/components/_runtime.py",
        "greenkfp/components/carbon/component.py",
        "greenkfp/components/carbon/data/intensity_hourly.npz",
        "greenkfp/components/carbon/data/NOTICE.md",
        "greenkfp/components/carbon/providers/uk.py",
        "greenkfp/components/governance/policy/budget.rego",
        "greenkfp/components/governance/ledger.py",
        "greenkfp/components/governance/migrations/env.py",
        "greenkfp/components/governance/migrations/script.py.mako",
        "greenkfp/components/governance/migrations/versions/0001_budget_ledger.py",
        "greenkfp/pipelines/cli.py",
    ):
        assert required in names, required
    assert not any(n.startswith(("tests/", "greenkfp/tests", "scripts/")) for n in names)
    assert not any(n.startswith("greenkfp/__init__") for n in names)  # greenkfp is a namespace package
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "Requires-Dist: kfp~=2.17.0" in text and "Requires-Dist: codecarbon~=3.3.0" in text
    entry_points = zipfile.ZipFile(wheel).read(metadata.replace("METADATA", "entry_points.txt")).decode()
    assert "greenkfp = greenkfp.pipelines.cli:main" in entry_points


def test_wheel_imports_and_reads_its_data_without_the_repo(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    # -S skips site processing, so the editable install's path hook is not loaded; the
    # dependencies come from this environment's site-packages, greenkfp only from the wheel.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), sysconfig.get_paths()["purelib"]])}
    script = (
        "import greenkfp.components.carbon as c, greenkfp.pipelines.cli;"
        "print(c.__file__); print(len(c.embedded_zones()))"
    )
    result = subprocess.run([sys.executable, "-S", "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    location, zones = result.stdout.split()
    assert Path(location).is_relative_to(target) and zones == "16"


def test_the_dockerfile_copies_everything_the_build_needs(tmp_path):
    """No Docker engine here: build the wheel from exactly the files the Dockerfile copies."""
    import re
    import shutil

    context = tmp_path / "context"
    context.mkdir()
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        match = re.match(r"COPY\s+(.+)\s+(\S+)$", line.strip())
        if not match:
            continue
        for source in match.group(1).split():
            path = ROOT / source
            target = context / source
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(path, target)
    result = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path / "dist"),
                             str(context)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("greenkfp-*.whl")
    assert "greenkfp/components/carbon/data/intensity_hourly.npz" in zipfile.ZipFile(wheel).namelist()
