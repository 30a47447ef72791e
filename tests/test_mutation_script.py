"""scripts/mutation.py (`make mutation`, issue 17) on a tiny project of its own: a real mutmut run,
the survivors loop, the replayed report, interrupts, and every configuration mistake refused in
one line before anything runs.

The script finds its project from its own path (scripts/..), so each test copies it into a
temporary project: components/tiny.py, its tests, tests/mutation/*.toml and a pyproject.toml.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

TINY = '''\
def below(x, limit):
    return x < limit


def double(x):
    return x * 2
'''
TEST_TINY = '''\
from greenkfp.components.tiny import below, double


def test_below():
    assert below(1, 2)
    assert not below(3, 2)


def test_double():
    assert double(3) == 6
'''
# kills the survivor of TEST_TINY: `x < limit` -> `x <= limit`
TEST_TINY_EDGE = '''\
from greenkfp.components.tiny import below


def test_below_is_strict():
    assert not below(2, 2)
'''
MODULES = '''\
[tiny]
sources = ["components/tiny.py"]
tests = ["tests/test_tiny.py"]
'''
PYPROJECT = '''\
[project]
name = "tiny"

[tool.pytest.ini_options]
addopts = "-q"
'''


@pytest.fixture
def project(tmp_path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "mutation.py", tmp_path / "scripts" / "mutation.py")
    (tmp_path / "components").mkdir()
    (tmp_path / "components" / "__init__.py").write_text("")
    (tmp_path / "components" / "tiny.py").write_text(TINY)
    (tmp_path / "tests" / "mutation").mkdir(parents=True)
    (tmp_path / "tests" / "test_tiny.py").write_text(TEST_TINY)
    (tmp_path / "tests" / "mutation" / "modules.toml").write_text(MODULES)
    (tmp_path / "tests" / "mutation" / "equivalent.toml").write_text("")
    (tmp_path / "pyproject.toml").write_text(PYPROJECT)
    (tmp_path / "README.md").write_text("tiny\n")
    return tmp_path


def mutation(project: Path, *args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(project / "scripts" / "mutation.py"), *args], cwd=project,
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, **(env or {})})


def report(project: Path) -> dict:
    return json.loads((project / "build" / "mutation" / "report.json").read_text())["modules"][0]


def processes_in(folder: Path) -> list[int]:
    """The processes whose working directory is in ``folder`` (mutmut and its workers run in the
    staging folder, in a session of their own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).is_relative_to(folder):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def one_line_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# --- a real run, the survivors loop, the replayed report ----------------------------------------------
def test_a_run_finds_the_survivor_and_the_survivors_loop_and_replays_keep_the_outcome(project):
    first = mutation(project, "--modules", "tiny", "--jobs", "1")
    assert first.returncode == 1, first.stdout + first.stderr  # under the 85 % goal
    tiny = report(project)
    assert tiny["status"] == "under goal" and tiny["total"] >= 3 and tiny["survived"] == 1
    assert tiny["killed"] + tiny["timeout"] + tiny["survived"] == tiny["total"]
    (survivor,) = [m for m in tiny["mutants"] if m["status"] == "survived"]
    assert (survivor["original"], survivor["mutated"]) == ("return x < limit", "return x <= limit")
    assert survivor["file"] == "components/tiny.py" and survivor["line"] == 2
    md = (project / "build" / "mutation" / "report.md").read_text()
    assert "| components/tiny.py:2 | below | survived | `<` -> `<=` | `return x < limit` | `return x <= limit` |" in md

    # the test that kills it, then only the survivor again
    (project / "tests" / "test_tiny.py").write_text(TEST_TINY + "\n\n" + TEST_TINY_EDGE.split("\n\n\n", 1)[1])
    again = mutation(project, "--modules", "tiny", "--survivors", "--jobs", "1")
    assert "running again the 1 mutants not detected last time" in again.stdout
    assert again.returncode == 0, again.stdout + again.stderr
    after = report(project)
    assert after["score"] == 1.0 and after["killed"] + after["timeout"] == after["total"] == tiny["total"]

    # --no-run and a survivors run with nothing left to run report the same outcome (both read 0 % once)
    for args in (["--no-run"], ["--survivors"]):
        replay = mutation(project, "--modules", "tiny", *args)
        assert replay.returncode == 0, replay.stdout + replay.stderr
        assert report(project)["score"] == 1.0 and report(project)["total"] == tiny["total"]
    assert "running again the 0 mutants" in replay.stdout
    # a finished run is reported from its own record, without mutmut's working copies
    shutil.rmtree(project / "build" / "mutation" / "work")
    assert mutation(project, "--modules", "tiny", "--no-run").returncode == 0
    assert report(project)["score"] == 1.0 and report(project)["total"] == tiny["total"]
    assert (project / "components" / "tiny.py").read_text() == TINY  # mutmut works on copies


def test_an_equivalent_entry_sets_a_survivor_aside_and_a_stale_one_fails_the_run(project):
    entry = '''[[mutant]]
module = "tiny"
function = "below"
line = "return x < limit"
mutant = "return x <= limit"
why = "set aside for this test"
'''
    (project / "tests" / "mutation" / "equivalent.toml").write_text(entry)
    run = mutation(project, "--modules", "tiny", "--jobs", "1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert report(project)["equivalent"] == 1 and report(project)["score"] == 1.0
    md = (project / "build" / "mutation" / "report.md").read_text()
    assert "## tiny: 1 set aside as equivalent" in md and "set aside for this test" in md

    stale = entry.replace("x <= limit", "x == limit")
    (project / "tests" / "mutation" / "equivalent.toml").write_text(entry + "\n" + stale)
    replay = mutation(project, "--modules", "tiny", "--no-run")
    assert replay.returncode == 1
    assert "[tiny] below: 'return x < limit' -> 'return x == limit': no such mutant" in replay.stdout


def test_functions_narrow_the_run_and_entries_of_the_functions_left_out_are_not_stale(project):
    (project / "tests" / "mutation" / "modules.toml").write_text(MODULES + 'functions = ["tiny.doub*"]\n')
    (project / "tests" / "mutation" / "equivalent.toml").write_text(
        '[[mutant]]\nmodule = "tiny"\nfunction = "below"\nline = "return x < limit"\n'
        'mutant = "return x <= limit"\nwhy = "below is not mutated in this run"\n')
    run = mutation(project, "--modules", "tiny", "--jobs", "1")
    assert run.returncode == 0, run.stdout + run.stderr
    assert {m["function"] for m in report(project)["mutants"]} == {"double"}
    assert report(project)["score"] == 1.0 and report(project)["equivalent"] == 0


def test_no_run_before_any_run_says_so_and_keeps_the_last_report(project):
    result = mutation(project, "--no-run", "--modules", "tiny")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "tiny: no finished run to report: run `make mutation MODULES=tiny` first" in result.stderr
    assert not (project / "build" / "mutation" / "report.md").exists()


# --- interrupts --------------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_run_stops_cleanly_and_leaves_no_result_behind(project, sig):
    # a slow test keeps mutmut busy long enough to be interrupted mid-run
    (project / "tests" / "test_tiny.py").write_text("import time\n" + TEST_TINY.replace(
        "def test_below():\n", "def test_below():\n    time.sleep(1.5)\n"))
    process = subprocess.Popen([sys.executable, str(project / "scripts" / "mutation.py"), "--modules", "tiny",
                                "--jobs", "1"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (project / "build" / "mutation" / "work" / "tiny" / "run.log").exists():
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)
    time.sleep(2.0)
    os.killpg(process.pid, sig)
    out, err = process.communicate(timeout=90)
    assert process.returncode == 130, out + err
    assert "Traceback" not in err
    assert "interrupted" in err
    assert (project / "components" / "tiny.py").read_text() == TINY
    # nothing of the run is left running, and nothing half-done is reported as a result
    assert processes_in(project) == []
    replay = mutation(project, "--no-run", "--modules", "tiny")
    assert replay.returncode == 1 and "no finished run" in replay.stderr


def test_an_interrupted_survivors_run_keeps_the_last_finished_run(project):
    assert mutation(project, "--modules", "tiny", "--jobs", "1").returncode == 1
    finished = report(project)
    (project / "tests" / "test_tiny.py").write_text("import time\n" + TEST_TINY.replace(
        "def test_below():\n", "def test_below():\n    time.sleep(1.5)\n"))
    process = subprocess.Popen([sys.executable, str(project / "scripts" / "mutation.py"), "--modules", "tiny",
                                "--survivors", "--jobs", "1"], cwd=project, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    time.sleep(3.0)
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=90)
    assert process.returncode == 130 and "Traceback" not in err, out + err
    replay = mutation(project, "--no-run", "--modules", "tiny")
    assert replay.returncode == 1, replay.stdout + replay.stderr  # the finished run: under goal, as it was
    assert {k: report(project)[k] for k in ("total", "killed", "survived", "score")} == \
        {k: finished[k] for k in ("total", "killed", "survived", "score")}


def test_a_killed_script_takes_mutmut_down_with_it(project):
    # SIGKILL cannot be caught: the kernel sends mutmut SIGINT (PR_SET_PDEATHSIG) so no orphan runs on
    (project / "tests" / "test_tiny.py").write_text("import time\n" + TEST_TINY.replace(
        "def test_below():\n", "def test_below():\n    time.sleep(1.5)\n"))
    process = subprocess.Popen([sys.executable, str(project / "scripts" / "mutation.py"), "--modules", "tiny",
                                "--jobs", "1"], cwd=project, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not processes_in(project / "build"):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.1)
    process.kill()
    process.wait()
    deadline = time.monotonic() + 30
    while processes_in(project) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_in(project) == []


# --- mistakes: one line that names the field and the value, before anything runs ---------------------
@pytest.mark.parametrize("modules_toml, needles", [
    ("[tiny\n", ["modules.toml: not valid TOML"]),
    ("", ["modules.toml: no modules"]),
    ("foo = 1\n", ["foo = 1 is not a table"]),
    ('[tiny]\nsources = "components/tiny.py"\ntests = ["tests/test_tiny.py"]\n',
     ["[tiny]: sources must be a non-empty list of strings", "'components/tiny.py'"]),
    ('[tiny]\ntests = ["tests/test_tiny.py"]\n', ["[tiny]: sources must be a non-empty list of strings, got None"]),
    (MODULES + "max_minute = 5\n", ["[tiny]: unknown key(s) max_minute"]),
    (MODULES + 'max_minutes = "abc"\n', ["[tiny]: max_minutes must be a number > 0, got 'abc'"]),
    (MODULES + "timeout_multiplier = 0\n", ["[tiny]: timeout_multiplier must be a number > 0, got 0"]),
    (MODULES + 'functions = ["tinyy.*"]\n', ["[tiny]: functions: 'tinyy.*' names no function of sources"]),
    (MODULES + 'functions = ["tiny.below", "tiny.bellow"]\n', ["[tiny]: functions: 'tiny.bellow' names no function"]),
    (MODULES + 'functions = ["tiny"]\n', ["[tiny]: functions: 'tiny' names no function of sources"]),
    (MODULES + 'also_copy = ["pyproject.toml"]\n', ["[tiny]: unknown key(s) also_copy"]),
    (MODULES.replace("components/tiny.py", "components/nope.py"), ["[tiny]: no file components/nope.py"]),
    (MODULES.replace("components/tiny.py", "README.md"), ["[tiny]: sources: 'README.md' is not a .py file under components/"]),
])
def test_a_mistake_in_modules_toml_is_one_line_naming_it(project, modules_toml, needles):
    (project / "tests" / "mutation" / "modules.toml").write_text(modules_toml)
    one_line_error(mutation(project, "--modules", "tiny"), *needles)
    assert not (project / "build" / "mutation" / "work").exists()


ENTRY = 'module = "tiny"\nfunction = "below"\nline = "return x < limit"\nmutant = "return x <= limit"\n'


@pytest.mark.parametrize("equivalent_toml, needles", [
    ("[[mutant]\n", ["equivalent.toml: not valid TOML"]),
    ("[[mutant]]\n" + ENTRY, ["entry 1", "no reason (`why`)"]),
    ("[[mutant]]\n" + ENTRY + 'why = "  "\n', ["entry 1", "no reason (`why`)"]),
    ("[[mutant]]\n" + ENTRY.replace('"tiny"', '"tinyy"') + 'why = "w"\n', ["entry 1: unknown module 'tinyy'"]),
    ("[[mutant]]\n" + ENTRY.replace('"tiny"', '["tiny"]') + 'why = "w"\n', ["entry 1: not a string: module = ['tiny']"]),
    ("[[mutant]]\n" + ENTRY + 'why = "w"\noccurrence = "two"\n', ["entry 1: occurrence must be a whole number >= 1, got 'two'"]),
    ("[[mutant]]\n" + ENTRY + 'why = "w"\noccurence = 2\n', ["entry 1: unknown key(s) occurence"]),
    ("[[mutant]]\n" + ENTRY + 'why = "w"\n[[mutant]]\n' + ENTRY + 'why = "again"\n', ["entry 2: the same mutant as entry 1"]),
    ("[mutant]\n" + ENTRY, ["mutant = ", "is not a table: use [[mutant]]"]),
])
def test_a_mistake_in_equivalent_toml_is_one_line_naming_it(project, equivalent_toml, needles):
    (project / "tests" / "mutation" / "equivalent.toml").write_text(equivalent_toml)
    one_line_error(mutation(project, "--modules", "tiny"), *needles)
    assert not (project / "build" / "mutation" / "work").exists()


@pytest.mark.parametrize("args, env, needles", [
    (["--jobs", "0"], {}, ["--jobs: expected a whole number >= 1, got '0'"]),
    (["--jobs", "-1"], {}, ["--jobs: expected a whole number >= 1, got '-1'"]),
    (["--jobs", "abc"], {}, ["--jobs: expected a whole number >= 1, got 'abc'"]),
    ([], {"MUTATION_JOBS": "abc"}, ["MUTATION_JOBS: expected a whole number >= 1, got 'abc'"]),
    (["--modules"], {}, ["--modules (MODULES): no module named; known: tiny"]),
    (["--modules", " , "], {}, ["--modules (MODULES): no module named"]),
    (["--modules", "tiny,nope"], {}, ["unknown module(s): nope; known: tiny"]),
    (["--no-run", "--jobs", "1"], {}, ["--no-run runs nothing: it takes no --jobs or --survivors"]),
    (["--no-run", "--survivors"], {}, ["--no-run runs nothing"]),
])
def test_a_mistake_on_the_command_line_is_one_line_naming_it(project, args, env, needles):
    one_line_error(mutation(project, *args, env=env), *needles)
    assert not (project / "build" / "mutation" / "work").exists()


def test_two_runs_at_once_are_refused_rather_than_deleting_each_others_work(project):
    import fcntl
    lock_path = project / "build" / "mutation" / ".lock"
    lock_path.parent.mkdir(parents=True)
    with open(lock_path, "w") as held:
        held.write("4242")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running script holds it
        one_line_error(mutation(project, "--modules", "tiny"), "another mutation run (pid 4242)")


def test_the_list_names_each_module_its_sources_and_tests(project):
    listed = mutation(project, "--list", env={"MUTATION_JOBS": "abc"})  # --list runs nothing: no jobs needed
    assert listed.returncode == 0
    assert listed.stdout == "tiny: components/tiny.py <- tests/test_tiny.py\n"


def test_the_project_configuration_is_valid():
    """The real modules.toml and equivalent.toml pass the checks a run makes before it starts."""
    listed = subprocess.run([sys.executable, "scripts/mutation.py", "--list"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert [line.split(":")[0] for line in listed.stdout.splitlines()] == \
        ["windows", "gate", "pareto", "select", "sci", "ledger", "metrics"]
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import mutation as script
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    entries = script.load_equivalents(script.load_modules())
    assert len(entries) >= 90 and all(e["why"].strip() for e in entries)


def test_a_run_in_which_no_mutant_ran_keeps_the_last_finished_run(project):
    assert mutation(project, "--modules", "tiny", "--jobs", "1").returncode == 1
    results = project / "build" / "mutation" / "results" / "tiny.json"
    finished = results.read_bytes()
    # the tests now fail on the unmutated code: mutmut stops before any mutant
    (project / "tests" / "test_tiny.py").write_text(TEST_TINY + "\n\ndef test_broken():\n    assert False\n")
    failed = mutation(project, "--modules", "tiny", "--jobs", "1")
    assert failed.returncode == 1 and "Traceback" not in failed.stderr
    assert "no mutant ran; the last finished run is kept" in failed.stdout + failed.stderr
    assert results.read_bytes() == finished


@pytest.mark.parametrize("damage", ['{"mutants": [1]}', '[]', '{"sources": 5}', '{"truncated'])
def test_a_damaged_results_file_is_no_finished_run(project, damage):
    assert mutation(project, "--modules", "tiny", "--jobs", "1").returncode == 1
    results = project / "build" / "mutation" / "results" / "tiny.json"
    if damage != "[]":  # also a well-formed file with one field of the wrong type
        run = json.loads(results.read_text())
        run["mutants"][0]["line"] = None
        results.write_text(json.dumps(run))
        replay = mutation(project, "--no-run", "--modules", "tiny")
        assert replay.returncode == 1 and "Traceback" not in replay.stderr
        assert "tiny.json is damaged: taken as no finished run" in replay.stderr
    results.write_text(damage)
    for args in (["--no-run"], ["--survivors", "--jobs", "1"]):
        again = mutation(project, "--modules", "tiny", *args)
        assert "Traceback" not in again.stderr, again.stderr
    assert "running all its mutants" in again.stdout  # the survivors run found no base and ran all


def test_a_source_that_does_not_parse_is_one_line_naming_it(project):
    (project / "tests" / "mutation" / "modules.toml").write_text(MODULES + 'functions = ["tiny.below"]\n')
    (project / "components" / "tiny.py").write_text(TINY + "\ndef broken(:\n")
    one_line_error(mutation(project, "--list"), "[tiny]: components/tiny.py cannot be parsed")
