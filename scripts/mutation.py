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
the goal, an equivalent entry has no reason or matches no mutant, or a run failed.
"""

from __future__ import annotations

import argparse
import ast
import difflib
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

def load_modules() -> dict[str, dict]:
    modules = tomllib.loads(CONFIG.read_text())
    for name, spec in modules.items():
        for key in ("sources", "tests"):
            if not spec.get(key):
                raise SystemExit(f"{CONFIG.relative_to(ROOT)}: [{name}] needs {key}")
        for path in spec["sources"] + spec["tests"]:
            if not (ROOT / path).is_file():
                raise SystemExit(f"{CONFIG.relative_to(ROOT)}: [{name}]: no file {path}")
    return modules


def load_equivalents() -> list[dict]:
    """The entries of equivalent.toml, each checked: module, function, line, mutant and why."""
    if not EQUIVALENT.exists():
        return []
    entries = tomllib.loads(EQUIVALENT.read_text()).get("mutant", [])
    problems = []
    for i, entry in enumerate(entries, 1):
        missing = [k for k in ("module", "function", "line", "mutant") if not str(entry.get(k, "")).strip()]
        if missing:
            problems.append(f"entry {i}: missing {', '.join(missing)}")
        if not str(entry.get("why", "")).strip():
            problems.append(f"entry {i} ({entry.get('module')} {entry.get('function')}: {entry.get('line')!r}): "
                            "no reason (`why`): say why the mutant cannot change behaviour")
    if problems:
        raise SystemExit(f"{EQUIVALENT.relative_to(ROOT)}:\n  " + "\n  ".join(problems))
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
    """mutmut's name patterns of the functions selected in the module's `functions`."""
    patterns = []
    selected = spec.get("functions") or ["*"]
    for source in spec["sources"]:
        stem = Path(source).stem
        for pattern in selected:
            file_part, _, name = pattern.partition(".")
            if not fnmatch.fnmatch(stem, file_part):
                continue
            if name in ("", "*"):
                patterns.append(f"{module_name(source)}.*")
            elif "." in name:
                cls, _, method = name.partition(".")
                patterns.append(f"{module_name(source)}.x{SEP}{cls}{SEP}{method}__mutmut_*")
            else:
                patterns.append(f"{module_name(source)}.x_{name}__mutmut_*")
    return patterns


def source_of(spec: dict, key: str) -> str:
    return next(s for s in spec["sources"] if key.startswith(module_name(s) + "."))


def selected(spec: dict, source: str, function: str) -> bool:
    stem = Path(source).stem
    return any(fnmatch.fnmatch(f"{stem}.{function}", p) for p in (spec.get("functions") or ["*.*"]))


def stage(name: str, spec: dict, jobs: int) -> Path:
    """A fresh staging folder for the module: links to the sources, tests and scripts, and a
    pyproject.toml with the project's pytest settings and the module's [tool.mutmut]."""
    work = WORK / name
    if work.exists():
        shutil.rmtree(work)
    (work / "greenkfp").mkdir(parents=True)
    (work / "greenkfp" / "components").symlink_to(ROOT / "components")
    # what the tests read from the repository besides the sources (mutmut copies these to mutants/)
    for name in ("tests", "scripts", "README.md", *spec.get("also_copy", [])):
        (work / name).symlink_to(ROOT / name)
    pytest_section = ROOT.joinpath("pyproject.toml").read_text().split("[tool.pytest.ini_options]", 1)[1]
    pytest_section = pytest_section.split("\n[", 1)[0]
    mutmut = {
        "source_paths": ["greenkfp/components"],
        "only_mutate": [import_path(s) for s in spec["sources"]],
        "also_copy": ["scripts", "README.md", *spec.get("also_copy", [])],
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
    (work / "sources.json").write_text(json.dumps(
        {s: hashlib.sha256((ROOT / s).read_bytes()).hexdigest() for s in spec["sources"]}))
    return work


def run_mutmut(name: str, spec: dict, work: Path, jobs: int, names: list[str] | None = None) -> str | None:
    """Runs mutmut in the staging folder (the module's selected functions, or only ``names``);
    its output goes to run.log there. Returns an error."""
    mutmut = Path(sys.executable).parent / "mutmut"
    command = [str(mutmut), "run", "--max-children", str(jobs), *(names or mutant_patterns(spec))]
    limit = float(spec.get("max_minutes", 20)) * 60
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MUTANT_UNDER_TEST")}
    with open(work / "run.log", "w") as log:
        process = subprocess.Popen(command, cwd=work, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
        try:
            code = process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            return f"stopped after {limit / 60:.0f} min (max_minutes): the mutants not run count as not checked"
        except BaseException:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait()
            raise
    if code != 0:
        tail = (work / "run.log").read_text(errors="replace").replace("\r", "\n").strip().splitlines()[-15:]
        return f"mutmut exited with {code}:\n    " + "\n    ".join(tail)
    return None


# --------------------------------------------------------------------------- reading the results

def previous_results(name: str, spec: dict) -> dict[str, int | None] | None:
    """The exit codes of the module's last run, if its sources are unchanged since (else None)."""
    work = WORK / name
    try:
        hashes = json.loads((work / "sources.json").read_text())
        codes = json.loads((work / "codes.json").read_text())
    except (OSError, ValueError):
        return None
    if hashes != {s: hashlib.sha256((ROOT / s).read_bytes()).hexdigest() for s in spec["sources"]}:
        return None
    return codes


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
    """The line of each top-level function's and each method's `def`."""
    lines = {}
    for node in ast.parse(source_text).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            lines[node.name] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
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


def read_results(name: str, spec: dict, work: Path, previous: dict | None = None) -> list[Mutant]:
    """The module's mutants and their outcome; with ``previous`` (a --survivors run), a mutant
    not run again keeps its earlier outcome."""
    mutants = []
    codes: dict[str, int | None] = {}  # every mutant's exit code, kept for a --survivors run
    for source in spec["sources"]:
        mutated_file = work / "mutants" / import_path(source)
        meta = json.loads(Path(str(mutated_file) + ".meta").read_text())
        spans = json.loads(Path(str(mutated_file) + ".spans").read_text())["spans"]
        mutated_lines = mutated_file.read_text().splitlines()
        defs = definitions((ROOT / source).read_text())
        seen: dict[tuple, int] = {}
        for key, code in meta["exit_code_by_key"].items():
            if code is None and previous:
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
    (work / "codes.json").write_text(json.dumps(codes))
    return mutants


# --------------------------------------------------------------------------- report

def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def table(results: list[ModuleResult]) -> str:
    head = "| module | total | killed | timeout | survived | no tests | equivalent | score | time | |"
    rows = [head, "|---|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for r in results:
        ok = "error" if r.error else ("ok" if r.score is not None and r.score >= GOAL else "under goal")
        rows.append(f"| {r.name} | {r.total} | {r.count('killed')} | {r.count('timeout')} | "
                    f"{r.count('survived')} | {r.count('no tests')} | {r.n_equivalent} | {pct(r.score)} | "
                    f"{r.seconds:.0f} s | {ok} |")
    return "\n".join(rows)


def write_report(results: list[ModuleResult], stale: list[str], elapsed: float) -> str:
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    md = [f"# Mutation testing report\n",
          f"mutmut, goal {GOAL:.0%} of non-equivalent mutants detected per module "
          f"(score = (killed + timed out) / (total - equivalent)); {elapsed:.0f} s in all.\n",
          table(results), ""]
    if stale:
        md += ["## Equivalent entries that match no mutant (remove or update them)\n"]
        md += [f"- {s}" for s in stale] + [""]
    for r in results:
        if r.error:
            md += [f"## {r.name}: run failed\n", "```", r.error, "```", ""]
        survivors = r.survivors()
        if survivors:
            md += [f"## {r.name}: {len(survivors)} not detected\n",
                   "| where | function | status | change | mutated line |", "|---|---|---|---|---|"]
            for m in sorted(survivors, key=lambda m: (m.file, m.line)):
                mutated = m.mutated.replace("|", "\\|")
                change = m.change.replace("|", "\\|")
                md.append(f"| {m.file}:{m.line} | {m.function} | {m.status} | {change} | `{mutated}` |")
            md.append("")
    text = "\n".join(md)
    (REPORT_DIR / "report.md").write_text(text)
    (REPORT_DIR / "report.json").write_text(json.dumps({
        "goal": GOAL, "seconds": round(elapsed, 1), "stale_equivalents": stale,
        "modules": [{"name": r.name, "sources": r.sources, "seconds": round(r.seconds, 1), "error": r.error,
                     "total": r.total, "killed": r.count("killed"), "timeout": r.count("timeout"),
                     "survived": r.count("survived"), "no_tests": r.count("no tests"),
                     "suspicious": r.count("suspicious"), "not_checked": r.count("not checked"),
                     "equivalent": r.n_equivalent, "score": r.score,
                     "mutants": [asdict(m) for m in r.mutants]} for r in results],
    }, indent=1))
    return text


# --------------------------------------------------------------------------- main

def source_hashes(modules: dict[str, dict]) -> dict[str, str]:
    return {s: hashlib.sha256((ROOT / s).read_bytes()).hexdigest()
            for spec in modules.values() for s in spec["sources"]}


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--modules", nargs="*", default=[],
                        help="short names from tests/mutation/modules.toml (default: all)")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATION_JOBS", 2)),
                        help="mutants run at once (default 2, or $MUTATION_JOBS)")
    parser.add_argument("--list", action="store_true", help="list the modules and their tests, and stop")
    parser.add_argument("--survivors", action="store_true",
                        help="run again only the mutants the last run did not detect (when the module's sources "
                             "are unchanged since: after adding tests); the others keep their outcome")
    parser.add_argument("--no-run", action="store_true",
                        help="report the last run's results of the modules (build/mutation/work/) without running")
    args = parser.parse_args(argv)
    # a SIGTERM (or `kill`) stops the run like Ctrl-C: mutmut's process group is stopped too
    signal.signal(signal.SIGTERM, _interrupt)

    modules = load_modules()
    names = [n for arg in args.modules for n in arg.replace(",", " ").split()] or list(modules)
    unknown = [n for n in names if n not in modules]
    if unknown:
        print(f"unknown module(s): {', '.join(unknown)}; known: {', '.join(modules)}", file=sys.stderr)
        return 2
    if args.list:
        for name in names:
            print(f"{name}: {' '.join(modules[name]['sources'])} <- {' '.join(modules[name]['tests'])}")
        return 0
    equivalents = load_equivalents()
    unknown_eq = sorted({e["module"] for e in equivalents} - set(modules))
    if unknown_eq:
        print(f"{EQUIVALENT.relative_to(ROOT)}: unknown module(s) {', '.join(unknown_eq)}", file=sys.stderr)
        return 2

    before = source_hashes(modules)
    results: list[ModuleResult] = []
    start = time.monotonic()
    try:
        for name in names:
            spec = modules[name]
            print(f"[mutation] {name}: {' '.join(spec['sources'])} <- {' '.join(spec['tests'])}", flush=True)
            result = ModuleResult(name=name, sources=spec["sources"])
            t0 = time.monotonic()
            previous, rerun = None, None
            if args.survivors and not args.no_run:
                previous = previous_results(name, spec)
                if previous is None:
                    print(f"[mutation] {name}: no earlier run of these sources: running all its mutants")
                else:
                    rerun = [key for key, code in previous.items()
                             if selected(spec, source_of(spec, key), function_of(key))
                             and status_of(code) not in ("killed", "timeout")]
                    print(f"[mutation] {name}: running again the {len(rerun)} mutants not detected last time")
            if args.no_run or rerun == []:
                work, previous = WORK / name, None  # the last run's results as they are
            else:
                work = stage(name, spec, args.jobs)
                result.error = run_mutmut(name, spec, work, args.jobs, rerun)
            try:
                result.mutants = read_results(name, spec, work, previous)
            except FileNotFoundError as exc:
                result.error = (result.error or "") + f"\nno results: {exc}"
            result.seconds = time.monotonic() - t0
            results.append(result)
            print(f"[mutation] {name}: {result.total} mutants, {result.detected} detected, "
                  f"{len(result.survivors())} not, {result.seconds:.0f} s", flush=True)
    finally:
        after = source_hashes(modules)
        changed = [s for s in before if before[s] != after[s]]
        if changed:  # mutmut writes to its copies only: this would be a bug in the tool
            print(f"[mutation] SOURCES CHANGED during the run: {', '.join(changed)}; "
                  "restore them with `git checkout -- <file>`", file=sys.stderr)

    # equivalents: set aside the survivors they name; entries of the modules run that match none are stale
    by_key = {m.stable_key(): m for r in results for m in r.mutants}
    stale = []
    for entry in equivalents:
        if entry["module"] not in names:
            continue
        mutant = by_key.get(entry_key(entry))
        where = f"[{entry['module']}] {entry['function']}: {entry['line']!r} -> {entry['mutant']!r}"
        if mutant is None:
            stale.append(f"{where}: no such mutant")
        elif mutant.status == "killed":
            stale.append(f"{where}: the tests kill it: not equivalent, remove the entry")
        elif mutant.status == "timeout":  # a slow run under load, not a test failing: counted as detected
            print(f"[mutation] note: {where}: timed out this time (counted as detected)")
        else:
            mutant.equivalent = entry["why"].strip()

    text = write_report(results, stale, time.monotonic() - start)
    print()
    print(table(results))
    if stale:
        print("\nequivalent entries that match no surviving mutant:\n  " + "\n  ".join(stale))
    print(f"\nreport: {(REPORT_DIR / 'report.md').relative_to(ROOT)} (survivors with file:line), "
          f"{(REPORT_DIR / 'report.json').relative_to(ROOT)}")
    failed = [r.name for r in results if r.error or r.score is None or r.score < GOAL]
    if failed or stale or changed:
        print(f"[mutation] FAILED: {', '.join(failed) or 'see above'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
