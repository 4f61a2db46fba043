"""Mutation testing, module by module: would the tests notice a wrong line?

    .venv/bin/python tools/mutate.py --ci              # the modules CI gates (`make mutate`)
    .venv/bin/python tools/mutate.py --all             # every listed module (`make mutate-nightly`)
    .venv/bin/python tools/mutate.py money parser      # a few, by their names in mutate.toml
    .venv/bin/python tools/mutate.py --list            # the modules, their tests and floors

`mutate.toml` lists the modules: for each, the file mutmut mutates, the tests that
judge its mutants (its own fast tests first, only the integration tests it needs) and
its floor; and the mutants judged equivalent (no test could tell them from the code),
each with its reason and the change it makes.

Each module runs in a workspace of its own, `mutants/<name>/` (git ignores `mutants/`):
links to the packages and the tests, and a copy of pyproject.toml with a `[tool.mutmut]`
table written for that module, because mutmut reads its settings from the
pyproject.toml of the directory it runs in. mutmut copies everything under
`mutants/<name>/mutants/`, mutates the one file and runs, for each mutant, the selected
tests that reach the mutated function. The workspace is made afresh on each run (a new
test must judge the old survivors too; mutmut's own cache would keep their verdicts);
`--keep` reuses it, and `mutmut show <mutant>` run inside it shows a mutant's diff.

The tests run on SQLite and embedded Redis whatever DATABASE_URL and REDIS_URL say.

Score: mutants the tests detect (killed, timed out, crashed) over all mutants less the
listed equivalents. The run fails (exit 1) when a module falls below its floor, or when
an equivalent listed for a module no longer matches a surviving mutant (the code moved
or a test now kills it: judge it again). Exit 2 when mutmut itself could not run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "mutate.toml"
WORK = ROOT / "mutants"
# Everything the tests import is copied under mutants/, so that no test imports the
# unmutated package through the editable install; only `path` is mutated.
PACKAGES = ("core", "runtime", "ussd", "sms", "mpesa", "workers", "web", "cli", "console",
            "migrations")
ALSO_LINKED = ("tests", "alembic.ini", "config.example.toml")

DETECTED = {"killed", "timeout", "segfault", "caught by type check"}
MISSED = {"survived", "no tests", "suspicious"}
_RESULT_LINE = re.compile(r"^\s*(?P<name>\S+): (?P<status>.+?)\s*$")
_NUMBERED = re.compile(r"__mutmut_\d+$")


@dataclass(frozen=True)
class Module:
    name: str
    path: str
    tests: tuple[str, ...]
    floor: float
    ci: bool


@dataclass(frozen=True)
class Equivalent:
    mutant: str
    change: tuple[str, ...]
    reason: str

    @property
    def function(self) -> str:
        return _NUMBERED.sub("", self.mutant)


@dataclass
class Outcome:
    module: Module
    seconds: float
    statuses: dict[str, str]
    diffs: dict[str, str] = field(default_factory=dict)
    equivalent: dict[str, Equivalent] = field(default_factory=dict)
    stale: list[Equivalent] = field(default_factory=list)

    @property
    def counted(self) -> int:
        return len(self.statuses) - len(self.equivalent)

    @property
    def detected(self) -> int:
        return sum(1 for status in self.statuses.values() if status in DETECTED)

    @property
    def missed(self) -> list[str]:
        return sorted(name for name, status in self.statuses.items()
                      if status in MISSED and name not in self.equivalent)

    @property
    def score(self) -> float:
        return 100.0 * self.detected / self.counted if self.counted else 100.0

    @property
    def passed(self) -> bool:
        return self.score >= self.module.floor and not self.stale


def load_config(path: Path = CONFIG) -> tuple[dict[str, Module], list[Equivalent]]:
    data = tomllib.loads(path.read_text("utf-8"))
    modules = {
        name: Module(name=name, path=entry["path"], tests=tuple(entry["tests"]),
                     floor=float(entry["floor"]), ci=bool(entry.get("ci", False)))
        for name, entry in data["modules"].items()
    }
    equivalents = [Equivalent(mutant=entry["mutant"], change=tuple(entry["change"]),
                              reason=entry["reason"])
                   for entry in data.get("equivalent", [])]
    for equivalent in equivalents:
        if not equivalent.reason.strip():
            raise SystemExit(f"mutate.toml: equivalent {equivalent.mutant} gives no reason")
    return modules, equivalents


def dotted(path: str) -> str:
    """`core/money.py` -> `core.money`, the prefix of its mutants' names."""
    return path.removesuffix(".py").replace("/", ".")


def toml_string(value: str) -> str:
    """A TOML string: literal (no escapes, as code reads best) unless it holds a quote."""
    return f"'{value}'" if "'" not in value and "\n" not in value else json.dumps(value)


def toml_list(values: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(json.dumps(value) for value in values) + "]"


def toml_strings(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(toml_string(value) for value in values) + "]"


def prepare(module: Module, keep: bool) -> Path:
    """The module's workspace: links to the code and tests, and its mutmut settings."""
    workspace = WORK / module.name
    if workspace.exists() and not keep:
        shutil.rmtree(workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    for name in PACKAGES + ALSO_LINKED:
        link = workspace / name
        if not link.is_symlink():
            link.symlink_to(ROOT / name)
    pyproject = (ROOT / "pyproject.toml").read_text("utf-8")
    if "[tool.mutmut]" in pyproject:
        raise SystemExit("pyproject.toml has a [tool.mutmut] table: the settings live in "
                         "mutate.toml, one module at a time")
    (workspace / "pyproject.toml").write_text(
        pyproject
        + "\n# Written by tools/mutate.py for one module of mutate.toml.\n[tool.mutmut]\n"
        + f"source_paths = {toml_list(PACKAGES)}\n"
        + f"only_mutate = {toml_list([module.path])}\n"
        + f"pytest_add_cli_args_test_selection = {toml_list(module.tests)}\n"
        + 'pytest_add_cli_args = ["--hypothesis-profile=mutation"]\n'
        + f"also_copy = {toml_list(ALSO_LINKED[1:])}\n"
        + "use_git_change_detection = false\n",
        "utf-8",
    )
    return workspace


def mutmut(workspace: Path, *args: str, log: Path | None = None) -> str:
    """Run the mutmut next to this interpreter inside `workspace`: its output, or with
    `log`, its output written there (the progress lines of a run are many)."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL")}
    command = [str(Path(sys.executable).with_name("mutmut")), *args]
    if log is None:
        done = subprocess.run(command, cwd=workspace, env=env, capture_output=True,
                              text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"mutmut {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout
    with log.open("w") as out:
        code = subprocess.run(command, cwd=workspace, env=env, stdout=out,
                              stderr=subprocess.STDOUT, check=False).returncode
    if code != 0:
        tail = log.read_text("utf-8", errors="replace")[-3000:]
        raise RuntimeError(f"mutmut {' '.join(args)} failed ({code}):\n{tail}")
    return ""


def changed_lines(diff: str) -> tuple[str, ...]:
    """The removed and added lines of a mutant's diff, indentation dropped."""
    return tuple(line[0] + line[1:].strip() for line in diff.splitlines()
                 if line[:1] in "+-" and not line.startswith(("---", "+++")))


def run_module(module: Module, equivalents: list[Equivalent], *, max_children: int,
               keep: bool) -> Outcome:
    workspace = prepare(module, keep)
    started = time.monotonic()
    mutmut(workspace, "run", "--max-children", str(max_children),
           log=workspace / "mutmut-run.log")
    seconds = time.monotonic() - started
    prefix = dotted(module.path) + "."
    statuses = {}
    for line in mutmut(workspace, "results", "--all", "true").splitlines():
        match = _RESULT_LINE.match(line)
        if match and match["name"].startswith(prefix):
            statuses[match["name"]] = match["status"]
    if not statuses:
        raise RuntimeError(f"mutmut made no mutants of {module.path}")
    unfinished = sorted(name for name, status in statuses.items()
                        if status not in DETECTED | MISSED)
    if unfinished:
        raise RuntimeError(f"{len(unfinished)} mutants of {module.path} were not judged: "
                           + ", ".join(f"{n} ({statuses[n]})" for n in unfinished[:5]))
    outcome = Outcome(module=module, seconds=seconds, statuses=statuses)
    for name, status in statuses.items():
        if status in MISSED:
            outcome.diffs[name] = mutmut(workspace, "show", name)
    survivors = {name: changed_lines(diff) for name, diff in outcome.diffs.items()}
    for equivalent in equivalents:
        if not equivalent.mutant.startswith(prefix):
            continue
        matches = [name for name, change in survivors.items()
                   if _NUMBERED.sub("", name) == equivalent.function
                   and change == equivalent.change]
        if not matches:
            outcome.stale.append(equivalent)
        for name in matches:
            outcome.equivalent[name] = equivalent
    return outcome


def report(outcome: Outcome) -> None:
    module = outcome.module
    print(f"\n== {module.name} ({module.path}): {outcome.detected}/{outcome.counted} detected, "
          f"{outcome.score:.1f}% (floor {module.floor:g}%), {len(outcome.statuses)} mutants, "
          f"{len(outcome.equivalent)} equivalent, {outcome.seconds:.0f} s")
    for name in outcome.missed:
        print(f"-- {outcome.statuses[name]}: {name}")
        print("\n".join("   " + line for line in outcome.diffs[name].splitlines()[1:]))
        print(f"   (if no test could ever tell it from the code, list it in mutate.toml: "
              f"mutant = {toml_string(name)}, "
              f"change = {toml_strings(changed_lines(outcome.diffs[name]))}, reason = ...)")
    for equivalent in outcome.stale:
        print(f"!! listed as equivalent, but no surviving mutant of {equivalent.function} "
              f"makes this change any more (the code moved, or a test kills it): judge it "
              f"again and update mutate.toml: {equivalent.mutant} {list(equivalent.change)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="names from mutate.toml")
    parser.add_argument("--ci", action="store_true", help="the modules marked ci = true")
    parser.add_argument("--all", action="store_true", help="every module in mutate.toml")
    parser.add_argument("--list", action="store_true", help="list the modules and stop")
    parser.add_argument("--max-children", type=int, default=2,
                        help="mutants tested at once (default 2)")
    parser.add_argument("--keep", action="store_true",
                        help="reuse the workspaces and mutmut's cached verdicts")
    args = parser.parse_args(argv)
    modules, equivalents = load_config()
    if args.list:
        for module in modules.values():
            print(f"{module.name:12} {module.path:22} floor {module.floor:g}%"
                  f"{'  (ci)' if module.ci else ''}\n{'':12} " + " ".join(module.tests))
        return 0
    unknown = [name for name in args.modules if name not in modules]
    if unknown:
        parser.error(f"not in mutate.toml: {', '.join(unknown)} (known: {', '.join(modules)})")
    chosen = ([modules[name] for name in args.modules] if args.modules
              else [m for m in modules.values() if args.all or m.ci] if args.ci or args.all
              else None)
    if not chosen:
        parser.error("name modules, or give --ci or --all")
    started = time.monotonic()
    outcomes = []
    for module in chosen:
        print(f"mutating {module.path} against {len(module.tests)} test paths ...", flush=True)
        try:
            outcome = run_module(module, equivalents, max_children=args.max_children,
                                 keep=args.keep)
        except RuntimeError as error:
            print(f"{module.name}: {error}", file=sys.stderr)
            return 2
        report(outcome)
        outcomes.append(outcome)
    print(f"\n{'module':12} {'mutants':>7} {'equiv':>5} {'missed':>6} {'score':>7} {'floor':>6}"
          f" {'time':>6}")
    for outcome in outcomes:
        print(f"{outcome.module.name:12} {len(outcome.statuses):7} {len(outcome.equivalent):5}"
              f" {len(outcome.missed):6} {outcome.score:6.1f}% {outcome.module.floor:5g}%"
              f" {outcome.seconds:5.0f}s {'ok' if outcome.passed else 'FAIL'}")
    print(f"total {time.monotonic() - started:.0f} s")
    summary = {o.module.name: {"mutants": len(o.statuses), "equivalent": len(o.equivalent),
                               "detected": o.detected, "missed": o.missed,
                               "score": round(o.score, 2), "floor": o.module.floor,
                               "seconds": round(o.seconds, 1),
                               "stale": [e.mutant for e in o.stale]}
               for o in outcomes}
    (WORK / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", "utf-8")
    return 0 if all(outcome.passed for outcome in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
