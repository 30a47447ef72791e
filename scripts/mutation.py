"""Mutation testing of greenkfp's core modules (`make mutation`; not part of `make test`).

    python scripts/mutation.py [--modules windows pareto] [--jobs 2]

The modules and their tests are in tests/mutation/modules.toml; the mutants set aside as
equivalent (they cannot change behaviour), each with its reason, in tests/mutation/equivalent.toml.

The tool is mutmut 3: it writes every mutant of a file into one copy of it (a trampoline picks the
mutant to run from an environment variable), runs the selected tests once to record which tests
call which function, then for each mutant forks a worker that runs only those tests (-x). It
imports the code under mutation by its file path (components/carbon/windows.py would be
`components.carbon.windows`), while our import name is `greenkfp.components...` (the package-dir
mapping in pyproject.toml). So each module runs in a staging folder, build/mutation/work/<name>/,
holding `greenkfp/components` (a link to components/), `tests` and `scripts`; mutmut copies them to
its mutants/ folder there and never writes to the sources, so an interrupted run leaves the work
tree as it was (the script checks the sources' hashes before and after all the same).

Modules run one after the other. Per module: mutants total, killed, timed out, survived (including
those no selected test reaches), set aside as equivalent, and the score = (killed + timed out) /
(total - equivalent); goal 85 %. The report goes to build/mutation/report.md and report.json,
survivors with file:line, the change and the mutated line. Exit status 1 when a module is under
the goal or did not run every mutant, an equivalent entry matches no surviving mutant, or a run
failed; 2 for a mistake in the configuration or the command line (refused before anything runs);
130 when interrupted (the interrupted module's part-run is discarded).
"""

from __future__ import annotations

import argparse
import ast
import ctypes
import difflib
import fcntl
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "tests" / "mutation" / "modules.toml"
EQUIVALENT = ROOT / "tests" / "mutation" / "equivalent.toml"
WORK = ROOT / "build" / "mutation" / "work"
REPORT_DIR = ROOT / "build" / "mutation"
GOAL = 0.85
SEP = "\u01c1"  # mutmut's separator of class and method in a mutant's name: xǁClassǁmethod

# mutmut's exit codes of a mutant's test run (mutmut.stats.status_by_exit_code)
KILLED_CODES = {1, 3}
SURVIVED_CODES = {0}
NO_TESTS_CODES = {5, 33}
TIMEOUT_CODES = {36, 24, -24, 152, 255}


@dataclass
class Mutant:
    key: str  # mutmut's name of the mutant (changes when the function changes: not a stable key)
    module: str
    function: str  # "function" or "Class.method"
    file: str
    line: int
    original: str  # the original line(s) the mutation changes, stripped
    mutated: str  # the same line(s) in the mutant, stripped
    change: str  # the tokens changed, e.g. "`<=` -> `<`"
    status: str  # killed / timeout / survived / no tests / suspicious / not checked
    occurrence: int = 1
    equivalent: str | None = None  # the reason, when set aside

    def stable_key(self) -> tuple:
        return (self.module, self.function, self.original, self.mutated, self.occurrence)


@dataclass
class ModuleResult:
    name: str
    sources: list[str]
    seconds: float = 0.0
    mutants: list[Mutant] = field(default_factory=list)
    error: str | None = None

    def count(self, *statuses: str, equivalent: bool | None = False) -> int:
        return sum(1 for m in self.mutants if m.status in statuses
                   and (equivalent is None or (m.equivalent is not None) == equivalent))

    @property
    def total(self) -> int:
        return len(self.mutants)

    @property
    def n_equivalent(self) -> int:
        return sum(1 for m in self.mutants if m.equivalent is not None)

    @property
    def detected(self) -> int:
        return self.count("killed", "timeout")

    @property
    def score(self) -> float | None:
        considered = self.total - self.n_equivalent
        return self.detected / considered if considered else None

    def survivors(self) -> list[Mutant]:
        return [m for m in self.mutants if m.equivalent is None and m.status not in ("killed", "timeout")]


# --------------------------------------------------------------------------- configuration

MODULE_KEYS = {"sources", "tests", "pytest_args", "functions", "timeout_multiplier", "max_minutes"}
ENTRY_KEYS = {"module", "function", "line", "mutant", "occurrence", "why"}


class ConfigError(Exception):
    """A mistake in modules.toml, equivalent.toml or the command line: one line for the user."""


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.relative_to(ROOT)}: not valid TOML: {exc}") from None


def _strings(where: str, key: str, value, *, required: bool) -> list[str]:
    if value is None and not required:
        return []
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where}: {key} must be a non-empty list of strings, got {value!r}")
    return value


def _positive(where: str, key: str, value) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0):
        raise ConfigError(f"{where}: {key} must be a number > 0, got {value!r}")


def load_modules() -> dict[str, dict]:
    """modules.toml, every key checked before anything runs (a mistake found after an hour's run
    would waste it)."""
    modules = _read_toml(CONFIG)
    where_file = CONFIG.relative_to(ROOT)
    if not modules:
        raise ConfigError(f"{where_file}: no modules")
    for name, spec in modules.items():
        where = f"{where_file}: [{name}]"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where_file}: {name} = {spec!r} is not a table: each module is a [name] table")
        unknown = sorted(set(spec) - MODULE_KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(MODULE_KEYS))})")
        sources = _strings(where, "sources", spec.get("sources"), required=True)
        tests = _strings(where, "tests", spec.get("tests"), required=True)
        for key in ("pytest_args", "functions"):
            _strings(where, key, spec.get(key), required=False)
        for key in ("timeout_multiplier", "max_minutes"):
            _positive(where, key, spec.get(key))
        for path in sources + tests:
            if not (ROOT / path).exists():
                raise ConfigError(f"{where}: no file {path}")
        for source in sources:
            if not (source.startswith("components/") and source.endswith(".py")):
                raise ConfigError(f"{where}: sources: {source!r} is not a .py file under components/")
        defined = [f"{Path(s).stem}.{function}" for s in sources
                   for function in parsed_definitions(where, s)] if spec.get("functions") else []
        for pattern in spec.get("functions", []):
            if not fnmatch.filter(defined, pattern):
                raise ConfigError(f"{where}: functions: {pattern!r} names no function of sources that mutmut "
                                  f"mutates (not those with decorators other than @staticmethod/@classmethod; "
                                  f"patterns are "
                                  f"<file stem>.<function> or <file stem>.<Class>.<method>, e.g. "
                                  f"{defined[0] if defined else 'windows.best_window'!r})")
    return modules


def parsed_definitions(where: str, source: str) -> dict[str, int]:
    try:
        return definitions((ROOT / source).read_text())
    except (SyntaxError, ValueError) as exc:
        raise ConfigError(f"{where}: {source} cannot be parsed: {exc}") from None


def load_equivalents(modules: dict[str, dict]) -> list[dict]:
    """The entries of equivalent.toml, each checked: module, function, line, mutant and why."""
    if not EQUIVALENT.exists():
        return []
    where_file = EQUIVALENT.relative_to(ROOT)
    document = _read_toml(EQUIVALENT)
    if set(document) - {"mutant"}:
        raise ConfigError(f"{where_file}: unknown key(s) {', '.join(sorted(set(document) - {'mutant'}))}: "
                          "each entry is a [[mutant]] table")
    entries = document.get("mutant", [])
    problems, seen = [], {}
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where_file}: mutant = {entry!r} is not a table: use [[mutant]]")
        before = len(problems)
        unknown = sorted(set(entry) - ENTRY_KEYS)
        if unknown:
            problems.append(f"entry {i}: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(ENTRY_KEYS))})")
        missing = [k for k in ("module", "function", "line", "mutant") if not str(entry.get(k, "")).strip()]
        if missing:
            problems.append(f"entry {i}: missing {', '.join(missing)}")
        wrong = [f"{k} = {entry[k]!r}" for k in ("module", "function", "line", "mutant", "why")
                 if k in entry and not isinstance(entry[k], str)]
        if wrong:
            problems.append(f"entry {i}: not a string: {', '.join(wrong)}")
        occurrence = entry.get("occurrence", 1)
        if isinstance(occurrence, bool) or not isinstance(occurrence, int) or occurrence < 1:
            problems.append(f"entry {i}: occurrence must be a whole number >= 1, got {occurrence!r}")
        if not str(entry.get("why", "")).strip():
            problems.append(f"entry {i} ({entry.get('module')} {entry.get('function')}: {entry.get('line')!r}): "
                            "no reason (`why`): say why the mutant cannot change behaviour")
        elif isinstance(entry.get("module"), str) and entry["module"] not in modules:
            problems.append(f"entry {i}: unknown module {entry['module']!r} (known: {', '.join(modules)})")
        if len(problems) == before:
            key = entry_key(entry)
            if key in seen:
                problems.append(f"entry {i}: the same mutant as entry {seen[key]}")
            seen.setdefault(key, i)
    if problems:
        raise ConfigError(f"{where_file}: " + "; ".join(problems))
    return entries


def entry_key(entry: dict) -> tuple:
    return (entry["module"], entry["function"], entry["line"].strip(), entry["mutant"].strip(),
            int(entry.get("occurrence", 1)))


# --------------------------------------------------------------------------- running mutmut

def import_path(source: str) -> str:
    """components/carbon/windows.py -> greenkfp/components/carbon/windows.py (in the staging folder)."""
    return "greenkfp/" + source


def module_name(source: str) -> str:
    return import_path(source)[: -len(".py")].replace("/", ".")


def mutant_patterns(spec: dict) -> list[str]:
    """mutmut's name patterns of the functions selected in the module's `functions` (each
    selected function by its exact name: a pattern's wildcards are resolved here, over the
    functions the sources define)."""
    if not spec.get("functions"):
        return [f"{module_name(source)}.*" for source in spec["sources"]]
    patterns = []
    for source in spec["sources"]:
        for function in definitions((ROOT / source).read_text()):
            if selected(spec, source, function):
                cls, _, method = function.rpartition(".")
                patterns.append(f"{module_name(source)}.x{SEP}{cls}{SEP}{method}__mutmut_*" if cls
                                else f"{module_name(source)}.x_{method}__mutmut_*")
    return patterns


def source_of(spec: dict, key: str) -> str:
    return next(s for s in spec["sources"] if key.startswith(module_name(s) + "."))


def selected(spec: dict, source: str, function: str) -> bool:
    stem = Path(source).stem
    return any(fnmatch.fnmatch(f"{stem}.{function}", p) for p in (spec.get("functions") or ["*.*"]))


def stage(name: str, spec: dict) -> Path:
    """A fresh staging folder for the module: links to the sources, tests and scripts, and a
    pyproject.toml with the project's pytest settings and the module's [tool.mutmut]."""
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    (work / "greenkfp").mkdir(parents=True)
    (work / "greenkfp" / "components").symlink_to(ROOT / "components")
    # what the tests read from the repository besides the sources (mutmut copies these to mutants/)
    for entry in ("tests", "scripts", "README.md"):
        (work / entry).symlink_to(ROOT / entry)
    pyproject = ROOT.joinpath("pyproject.toml").read_text()
    pytest_section = pyproject.split("[tool.pytest.ini_options]", 1)[1] if "[tool.pytest.ini_options]" in pyproject else ""
    pytest_section = pytest_section.split("\n[", 1)[0]
    mutmut = {
        "source_paths": ["greenkfp/components"],
        "only_mutate": [import_path(s) for s in spec["sources"]],
        "also_copy": ["scripts", "README.md"],
        "pytest_add_cli_args_test_selection": list(spec["tests"]) + list(spec.get("pytest_args", [])),
        "pytest_add_cli_args": ["-p", "no:cacheprovider"],
        "timeout_multiplier": float(spec.get("timeout_multiplier", 10)),
        "timeout_constant": 1.0,
        "use_git_change_detection": False,
        "type_check_command": [],
    }
    lines = ["[tool.pytest.ini_options]" + pytest_section.rstrip(), "", "[tool.mutmut]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in mutmut.items()]
    (work / "pyproject.toml").write_text("\n".join(lines) + "\n")
    return work


def mutmut_command() -> Path:
    """mutmut of the Python running this script (the project's venv): a forked mutant imports the
    project from there."""
    mutmut = Path(sys.executable).parent / "mutmut"
    if not mutmut.exists():
        raise ConfigError(f"mutmut is not installed for {sys.executable}: run `make mutation` "
                          "(or `.venv/bin/python scripts/mutation.py`)")
    return mutmut


def _stop_with_parent() -> None:
    """In mutmut's process, before it starts: a SIGINT when this script dies, even by SIGKILL
    (Linux's PR_SET_PDEATHSIG), so that no orphaned mutmut runs on without its time limit."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGINT)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop(process: subprocess.Popen) -> None:
    """Stops mutmut and its workers: SIGINT first (mutmut then saves its results whole; a SIGTERM
    can cut its JSON file short), then SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGTERM, 10), (signal.SIGKILL, None)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_mutmut(name: str, spec: dict, work: Path, jobs: int, names: list[str] | None = None) -> str | None:
    """Runs mutmut in the staging folder (the module's selected functions, or only ``names``);
    its output goes to run.log there. Returns an error."""
    command = [str(mutmut_command()), "run", "--max-children", str(jobs), *(names or mutant_patterns(spec))]
    limit = float(spec.get("max_minutes", 20)) * 60
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MUTANT_UNDER_TEST")}
    with open(work / "run.log", "w") as log:
        process = subprocess.Popen(command, cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True, preexec_fn=_stop_with_parent)
        try:
            code = process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            _stop(process)
            return (f"stopped after {limit / 60:g} min (max_minutes): the mutants not run count as not run; "
                    f"`SURVIVORS=1` runs them")
        except BaseException:
            _stop(process)
            raise
    if code != 0:
        tail = (work / "run.log").read_text(errors="replace").replace("\r", "\n").strip().splitlines()[-15:]
        return f"mutmut exited with {code}:\n    " + "\n    ".join(tail)
    return None


# --------------------------------------------------------------------------- reading the results

RESULTS = REPORT_DIR / "results"  # <module>.json: its last finished run, replaced only by the next one


def source_hashes_of(spec: dict) -> dict[str, str]:
    return {s: hashlib.sha256((ROOT / s).read_bytes()).hexdigest() for s in spec["sources"]}


def last_run(name: str) -> dict | None:
    """The module's last finished run, whole (a report can be made from it alone): every mutant
    with its outcome, every exit code, the sources' hashes, its time and error. None when no run
    of the module finished; an interrupted run, or one whose results mutmut left unreadable,
    keeps the one before."""
    path = RESULTS / f"{name}.json"
    try:
        run = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        print(f"[mutation] {name}: {shown_path(path)} is unreadable ({exc}): taken as no finished run", file=sys.stderr)
        return None
    if not well_formed(run):
        print(f"[mutation] {name}: {shown_path(path)} is damaged: taken as no finished run", file=sys.stderr)
        return None
    return run


def well_formed(run) -> bool:
    """A results file as save_run writes it (a hand-edited or damaged one is no finished run)."""
    text = {"key", "module", "function", "file", "original", "mutated", "change", "status"}
    number = {"line", "occurrence"}
    try:
        return (isinstance(run, dict)
                and isinstance(run["sources"], dict) and all(isinstance(v, str) for v in run["sources"].values())
                and isinstance(run["codes"], dict)
                and all(c is None or (isinstance(c, int) and not isinstance(c, bool)) for c in run["codes"].values())
                and isinstance(run["functions"], list)
                and isinstance(run["seconds"], (int, float)) and not isinstance(run["seconds"], bool)
                and (run["error"] is None or isinstance(run["error"], str))
                and isinstance(run["mutants"], list)
                and all(isinstance(m, dict) and set(m) == text | number
                        and all(isinstance(m[k], str) for k in text)
                        and all(isinstance(m[k], int) and not isinstance(m[k], bool) for k in number)
                        and m["status"] in STATUSES for m in run["mutants"]))
    except KeyError:
        return False


def save_run(name: str, run: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_atomic(RESULTS / f"{name}.json", json.dumps(run))


def write_atomic(path: Path, text: str) -> None:
    """A reader (or an interrupt) never sees half a file: the text goes to a temporary file first."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def previous_results(name: str, spec: dict, hashes: dict[str, str]) -> dict[str, int | None] | None:
    """The exit codes of the module's last finished run, if its sources (``hashes`` now) are
    unchanged since (else None)."""
    run = last_run(name)
    if run is None or run["sources"] != hashes:
        return None
    prefixes = tuple(module_name(s) + "." for s in spec["sources"])
    return {k: c for k, c in run["codes"].items() if k.startswith(prefixes)}


STATUSES = ("killed", "timeout", "survived", "no tests", "suspicious", "not checked")


def status_of(code: int | None) -> str:
    if code is None:
        return "not checked"
    if code in KILLED_CODES:
        return "killed"
    if code in SURVIVED_CODES:
        return "survived"
    if code in NO_TESTS_CODES:
        return "no tests"
    if code in TIMEOUT_CODES:
        return "timeout"
    return "suspicious"


def function_of(key: str) -> str:
    """greenkfp...windows.xǁWindowScoresǁbest_index__mutmut_4 -> WindowScores.best_index"""
    generated = key.rpartition(".")[2].partition("__mutmut_")[0]
    if generated.startswith("x" + SEP):
        return ".".join(generated[2:].split(SEP))
    return generated[2:]  # x_name


def definitions(source_text: str) -> dict[str, int]:
    """The line of each top-level function's and each method's `def`: the functions mutmut
    mutates (it skips those with a decorator other than @staticmethod and @classmethod)."""
    def mutated(node) -> bool:
        return all(isinstance(d, ast.Name) and d.id in ("staticmethod", "classmethod") for d in node.decorator_list)

    lines = {}
    for node in ast.parse(source_text).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and mutated(node):
            lines[node.name] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and mutated(item):
                    lines[f"{node.name}.{item.name}"] = item.lineno
    return lines


_TOKENS = re.compile(r"""[rbfu]*"(?:[^"\\]|\\.)*"|[rbfu]*'(?:[^'\\]|\\.)*'|\w+|==|!=|<=|>=|//|\*\*|<<|>>|->|\S""")


def describe_change(original: str, mutated: str) -> str:
    a, b = _TOKENS.findall(original), _TOKENS.findall(mutated)
    parts = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        old, new = " ".join(a[i1:i2]), " ".join(b[j1:j2])
        if op == "replace":
            parts.append(f"`{old}` -> `{new}`")
        elif op == "delete":
            parts.append(f"removed `{old}`")
        elif op == "insert":
            parts.append(f"added `{new}`")
    return "; ".join(parts) or "(no token change)"


def _def_index(lines: list[str]) -> int:
    for i, line in enumerate(lines):
        if line.lstrip().startswith(("def ", "async def ")):
            return i
    return 0


def read_results(name: str, spec: dict, work: Path,
                 previous: dict | None = None) -> tuple[list[Mutant], dict[str, int | None], int]:
    """The module's mutants and their outcome, every mutant's exit code, and how many mutants this
    run ran. With ``previous`` (a --survivors run), a mutant not run again keeps its earlier outcome."""
    mutants, ran = [], 0
    codes: dict[str, int | None] = {}  # every mutant's exit code, kept for a --survivors run
    for source in spec["sources"]:
        mutated_file = work / "mutants" / import_path(source)
        meta = json.loads(Path(str(mutated_file) + ".meta").read_text())
        spans = json.loads(Path(str(mutated_file) + ".spans").read_text())["spans"]
        mutated_lines = mutated_file.read_text().splitlines()
        defs = definitions((ROOT / source).read_text())
        seen: dict[tuple, int] = {}
        for key, code in meta["exit_code_by_key"].items():
            ran += code is not None
            if previous is not None and code is None:
                code = previous.get(key)
            codes[key] = code
            function = function_of(key)
            if not selected(spec, source, function):
                continue
            generated = key.rpartition(".")[2]
            orig_name = generated.partition("__mutmut_")[0] + "__mutmut_orig"
            (a1, a2), (b1, b2) = spans[orig_name], spans[generated]
            orig = mutated_lines[a1 - 1:a2]
            mut = mutated_lines[b1 - 1:b2]
            oi, mi = _def_index(orig), _def_index(mut)
            # the def lines differ by the generated names only
            orig_body, mut_body = orig[oi + 1:], mut[mi + 1:]
            matcher = difflib.SequenceMatcher(None, orig_body, mut_body, autojunk=False)
            changed = [op for op in matcher.get_opcodes() if op[0] != "equal"]
            if changed:
                _, i1, i2, j1, j2 = changed[0]
                i2 = max(i2, i1 + 1) if i1 < len(orig_body) else i2
                original = " ".join(line.strip() for line in orig_body[i1:max(i2, i1 + 1)])
                mutated_text = " ".join(line.strip() for line in mut_body[j1:j2])
                line_no = defs.get(function, 0) + 1 + i1
            else:  # the signature changed (a default value): the def lines, under the function's own name
                own = function.rpartition(".")[2]
                original = re.sub(r"x\S*?__mutmut_orig", own, orig[oi].strip())
                mutated_text = re.sub(r"x\S*?__mutmut_\d+", own, mut[mi].strip())
                line_no = defs.get(function, 0)
            mutant = Mutant(key=key, module=name, function=function, file=source, line=line_no,
                            original=original, mutated=mutated_text, change=describe_change(original, mutated_text),
                            status=status_of(code))
            base = (name, function, original, mutated_text)
            seen[base] = seen.get(base, 0) + 1
            mutant.occurrence = seen[base]
            mutants.append(mutant)
    return mutants, codes, ran


# --------------------------------------------------------------------------- report

def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def verdict(r: ModuleResult) -> str:
    if r.error:
        return "error"
    if r.count("not checked"):
        return "incomplete"
    return "ok" if r.score is not None and r.score >= GOAL else "under goal"


def table(results: list[ModuleResult]) -> str:
    # every mutant is in exactly one of the columns from killed to equivalent: they add up to total
    head = ("| module | total | killed | timeout | survived | no tests | not run | suspicious | equivalent "
            "| score | time | |")
    rows = [head, "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for r in results:
        rows.append(f"| {r.name} | {r.total} | {r.count('killed')} | {r.count('timeout')} | "
                    f"{r.count('survived')} | {r.count('no tests')} | {r.count('not checked')} | "
                    f"{r.count('suspicious')} | {r.n_equivalent} | {pct(r.score)} | {r.seconds:.0f} s | {verdict(r)} |")
    return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def write_report(results: list[ModuleResult], stale: list[str], elapsed: float, note: str = "") -> str:
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    md = [f"# Mutation testing report\n",
          f"mutmut, goal {GOAL:.0%} of non-equivalent mutants detected per module "
          f"(score = (killed + timed out) / (total - equivalent)); {elapsed:.0f} s in all.{note}\n",
          "Statuses: *not run* = a mutant the run did not reach (stopped at max_minutes: `SURVIVORS=1` runs "
          "them); *no tests* = no selected test calls its function; *suspicious* = its tests ended in an "
          "unexpected way (see run.log in build/mutation/work/<module>/).\n",
          table(results), ""]
    if stale:
        md += ["## Equivalent entries that match no surviving mutant (remove or update them)\n"]
        md += [f"- {s}" for s in stale] + [""]
    for r in results:
        if r.error:
            md += [f"## {r.name}: run failed\n", "```", r.error, "```", ""]
        survivors = r.survivors()
        if survivors:
            md += [f"## {r.name}: {len(survivors)} not detected\n",
                   "| where | function | status | change | original line | mutated line |", "|---|---|---|---|---|---|"]
            for m in sorted(survivors, key=lambda m: (m.file, m.line)):
                md.append(f"| {m.file}:{m.line} | {m.function} | {m.status} | {_cell(m.change)} | "
                          f"`{_cell(m.original)}` | `{_cell(m.mutated)}` |")
            md.append("")
        equivalent = [m for m in r.mutants if m.equivalent is not None]
        if equivalent:
            md += [f"## {r.name}: {len(equivalent)} set aside as equivalent (tests/mutation/equivalent.toml)\n",
                   "| where | function | change | why |", "|---|---|---|---|"]
            for m in sorted(equivalent, key=lambda m: (m.file, m.line)):
                md.append(f"| {m.file}:{m.line} | {m.function} | {_cell(m.change)} | {_cell(m.equivalent)} |")
            md.append("")
    text = "\n".join(md)
    write_atomic(REPORT_DIR / "report.md", text)
    write_atomic(REPORT_DIR / "report.json", json.dumps({
        "goal": GOAL, "seconds": round(elapsed, 1), "stale_equivalents": stale,
        "modules": [{"name": r.name, "sources": r.sources, "seconds": round(r.seconds, 1), "error": r.error,
                     "status": verdict(r),
                     "total": r.total, "killed": r.count("killed"), "timeout": r.count("timeout"),
                     "survived": r.count("survived"), "no_tests": r.count("no tests"),
                     "suspicious": r.count("suspicious"), "not_run": r.count("not checked"),
                     "equivalent": r.n_equivalent, "score": r.score,
                     "mutants": [asdict(m) for m in r.mutants]} for r in results],
    }, indent=1))
    return text


# --------------------------------------------------------------------------- main

def apply_equivalents(result: ModuleResult, spec: dict, equivalents: list[dict]) -> list[str]:
    """Sets aside the module's survivors that equivalent.toml names; returns its stale entries."""
    by_key = {m.stable_key(): m for m in result.mutants}
    stale = []
    for entry in equivalents:
        if entry["module"] != result.name or not any(selected(spec, source, entry["function"])
                                                     for source in spec["sources"]):
            continue  # (an entry of a function `functions` leaves out now is not stale)
        mutant = by_key.get(entry_key(entry))
        where = f"[{entry['module']}] {entry['function']}: {entry['line']!r} -> {entry['mutant']!r}"
        if mutant is None:
            stale.append(f"{where}: no such mutant")
        elif mutant.status == "killed":
            stale.append(f"{where}: the tests kill it: not equivalent, remove the entry")
        elif mutant.status == "timeout":  # a slow run under load, not a test failing: counted as detected
            print(f"[mutation] note: {where}: timed out this time (counted as detected)")
        elif mutant.status in ("survived", "no tests"):  # (a mutant not run, or suspicious, stays as it is)
            mutant.equivalent = entry["why"].strip()
    return stale


def shown_path(path: Path) -> str:
    """A path as the user can open it from where they are."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def parse_jobs(text: str, where: str) -> int:
    try:
        jobs = int(text)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise ConfigError(f"{where}: expected a whole number >= 1, got {text!r}")
    return jobs


def lock():
    """One run at a time: a second would delete the first's staging folder."""
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    handle = open(REPORT_DIR / ".lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        pid = handle.read().strip() or "?"
        handle.close()
        raise ConfigError(f"another mutation run (pid {pid}) is using {REPORT_DIR.relative_to(ROOT)}/: "
                          "wait for it to end or stop it") from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    try:
        return run(argv)
    except ConfigError as exc:
        print(f"mutation: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before the run started (reading the configuration, taking the lock)
        print("mutation: interrupted before any module ran", file=sys.stderr)
        return 130
    except OSError as exc:  # build/ not writable, deleted mid-run, a full disk
        print(f"mutation: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def run(argv: list[str] | None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", nargs="*", default=None,
                        help="short names from tests/mutation/modules.toml, by spaces or commas (default: all)")
    parser.add_argument("--jobs", default=None,
                        help="mutants run at once (default 2, or $MUTATION_JOBS)")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests, and stop")
    parser.add_argument("--survivors", action="store_true",
                        help="run again only the mutants the last run did not detect (when the module's sources "
                             "are unchanged since: after adding tests); the others keep their outcome")
    parser.add_argument("--no-run", action="store_true",
                        help="report the last finished run of the modules again (with equivalent.toml as it is "
                             "now), without running")
    args = parser.parse_args(argv)

    modules = load_modules()
    if args.modules is None:
        names = list(modules)
    else:
        names = list(dict.fromkeys(n for arg in args.modules for n in arg.replace(",", " ").split()))
        if not names:
            raise ConfigError(f"--modules (MODULES): no module named; known: {', '.join(modules)}")
    unknown = [n for n in names if n not in modules]
    if unknown:
        raise ConfigError(f"unknown module(s): {', '.join(unknown)}; known: {', '.join(modules)}")
    if args.list:
        for name in names:
            print(f"{name}: {' '.join(modules[name]['sources'])} <- {' '.join(modules[name]['tests'])}")
        return 0
    equivalents = load_equivalents(modules)
    if args.no_run:
        if args.jobs is not None or args.survivors:
            raise ConfigError("--no-run runs nothing: it takes no --jobs or --survivors (SURVIVORS)")
        jobs = 0
    else:
        jobs = parse_jobs(args.jobs, "--jobs") if args.jobs is not None else \
            parse_jobs(os.environ.get("MUTATION_JOBS", "2"), "MUTATION_JOBS")
        mutmut_command()
    held = lock()
    # a SIGTERM (`kill`) or SIGHUP (a closed terminal) stops the run like Ctrl-C: mutmut's process
    # group is stopped too (a SIGKILL cannot be caught: mutmut then gets SIGINT from the kernel)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # (SIGINT too: a background start ignores it)
        signal.signal(sig, _interrupt)

    changed: list[str] = []
    results: list[ModuleResult] = []
    stale: list[str] = []
    start = time.monotonic()
    interrupted = None
    try:
        for name in names:
            interrupted = name
            spec = modules[name]
            before = source_hashes_of(spec)  # the sources as this module's run starts on them
            result = run_module(name, spec, args, jobs, before)
            if not args.no_run:
                changed += [s for s, h in source_hashes_of(spec).items() if before[s] != h]
            results.append(result)
            if result.mutants:  # (a module without results has no stale entries either)
                stale += apply_equivalents(result, spec, equivalents)
                print(f"[mutation] {name}: {result.total} mutants, {result.detected} detected, "
                      f"{len(result.survivors())} not, {result.n_equivalent} set aside as equivalent, "
                      f"{result.seconds:.0f} s", flush=True)
        interrupted = None
    except KeyboardInterrupt:
        results.append(ModuleResult(name=interrupted, sources=modules[interrupted]["sources"], seconds=0.0,
                                    error="interrupted: this part-run is discarded; the last finished run "
                                          "(if any) is kept"))
    finally:
        # from here on an interrupt must not cut the clean-up or the report short
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if changed:  # mutmut writes to its copies only: an edit made during the run
            print(f"[mutation] the sources changed during the run: {', '.join(changed)}; mutmut ran on the "
                  "versions from its start, so its lines may not match the files now: run again", file=sys.stderr)
        held.close()

    if not any(r.mutants for r in results):  # nothing to report: the last report (and results) stand
        for r in results:
            print(f"[mutation] {r.name}: {r.error}", file=sys.stderr)
        return 130 if interrupted else 1
    note = " Reported again from the last finished runs (--no-run)." if args.no_run else ""
    write_report(results, stale, time.monotonic() - start if not args.no_run else sum(r.seconds for r in results),
                 note)
    print()
    print(table(results))
    if stale:
        print("\nequivalent entries that match no surviving mutant:\n  " + "\n  ".join(stale))
    for r in results:
        if r.error:
            log = WORK / r.name / "run.log"
            where = f"\n  (mutmut's output: {shown_path(log)})" if log.exists() and not args.no_run else ""
            print(f"\n[mutation] {r.name}: {r.error}{where}")
    print(f"\nreport: {shown_path(REPORT_DIR / 'report.md')} (survivors with file:line), "
          f"{shown_path(REPORT_DIR / 'report.json')}")
    if interrupted:
        print(f"[mutation] interrupted during {interrupted}; the sources are as they were", file=sys.stderr)
        return 130
    failed = [r.name for r in results if r.error or verdict(r) != "ok"]
    if failed or stale or changed:
        print(f"[mutation] FAILED: {', '.join(failed) or 'see above'}", file=sys.stderr)
        return 1
    return 0


def replay(name: str, spec: dict, run: dict) -> list[Mutant]:
    """The mutants of a finished run as it recorded them (of the functions selected now)."""
    fields = {f for f in Mutant.__dataclass_fields__ if f != "equivalent"}
    mutants = [Mutant(**{k: v for k, v in m.items() if k in fields}) for m in run["mutants"]]
    return [m for m in mutants if selected(spec, m.file, m.function)]


def run_module(name: str, spec: dict, args, jobs: int, hashes: dict[str, str]) -> ModuleResult:
    """Runs one module's mutants (or replays its last finished run) and reads the outcome;
    ``hashes``: its sources' as the run starts."""
    print(f"[mutation] {name}: {' '.join(spec['sources'])} <- {' '.join(spec['tests'])}", flush=True)
    result = ModuleResult(name=name, sources=spec["sources"])
    t0 = time.monotonic()
    if args.no_run:
        run = last_run(name)
        if run is None:
            result.error = f"no finished run to report: run `make mutation MODULES={name}` first"
        elif sorted(run["sources"]) != sorted(spec["sources"]) or run["functions"] != spec.get("functions", []):
            result.error = (f"its last run mutated other sources or functions than modules.toml names now: "
                            f"run `make mutation MODULES={name}` again")
        else:
            if run["sources"] != hashes:
                print(f"[mutation] {name}: note: the sources changed since this run; its lines may be out of date")
            result.mutants = replay(name, spec, run)
            result.seconds, result.error = run["seconds"], run["error"]
        return result
    previous, rerun = None, None
    if args.survivors:
        previous = previous_results(name, spec, hashes)
        if previous is None:
            print(f"[mutation] {name}: no finished run of these sources: running all its mutants")
        else:
            rerun = [key for key, code in previous.items()
                     if selected(spec, source_of(spec, key), function_of(key))
                     and status_of(code) not in ("killed", "timeout")]
            print(f"[mutation] {name}: running again the {len(rerun)} mutants not detected last time")
    if rerun == []:  # nothing to run again: the last run's outcome stands
        run = last_run(name)
        result.mutants, result.error = replay(name, spec, run), run["error"]
        return result
    work = stage(name, spec)
    result.error = run_mutmut(name, spec, work, jobs, rerun)
    try:
        result.mutants, codes, ran = read_results(name, spec, work, previous)
    except (OSError, ValueError, KeyError, SyntaxError) as exc:
        # e.g. a stop at max_minutes that cut mutmut's results file short: the last finished run stands
        result.error = ((result.error or "") + f"\nmutmut's results are unreadable ({type(exc).__name__}: {exc}); "
                        "the last finished run is kept").strip()
        result.mutants = []
        return result
    result.seconds = time.monotonic() - t0
    if not ran:  # e.g. the tests fail on the unmutated code: nothing was learnt, the last finished run stands
        result.error = ((result.error or "") + "\nno mutant ran; the last finished run is kept").strip()
        return result
    save_run(name, {"sources": hashes, "codes": codes,
                    "functions": spec.get("functions", []),
                    "seconds": round(result.seconds, 1), "error": result.error,
                    "mutants": [{k: v for k, v in asdict(m).items() if k != "equivalent"} for m in result.mutants]})
    return result


if __name__ == "__main__":
    sys.exit(main())
