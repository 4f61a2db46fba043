"""The import rules of docs/architecture.md are live: `lint-imports` passes on the tree
as it is, and fails when a forbidden import is added to a copy of it."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "runtime", "ussd", "sms", "workers", "web", "cli", "mpesa")
LINT = Path(sys.executable).with_name("lint-imports")


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT), "--config", str(tree / "pyproject.toml"), "--no-cache"],
                          cwd=tree, env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the packages and their contracts, to break on purpose."""
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def add_import(tree: Path, module: str, statement: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n{statement}  # added by the test\n")


def test_the_tree_keeps_every_contract(tree: Path) -> None:
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "broken" in result.stdout and " 0 broken" in result.stdout


@pytest.mark.parametrize(("module", "statement", "contract"), [
    ("sms.http", "import workers.jobs", "Layers"),  # a channel enqueuing by itself
    ("ussd.machine", "import sms.parser", "Layers"),  # channels stay independent
    ("core.loans", "import runtime.services", "Layers"),  # core is lowest
    ("workers.duties", "import web.app", "Layers"),  # only entry points import the app
    ("core.ledger", "import redis", "Core talks to neither"),
    ("mpesa.daraja", "import runtime.services", "Layers"),  # the adapter sits below runtime
    ("core.repayments", "import mpesa.callbacks", "Layers"),  # and above core
    ("mpesa.statement", "import runtime.services", "Layers"),  # the statement parser too
    ("core.reconciliation", "import mpesa.statement", "Layers"),
    ("mpesa.fake", "import core.money", "standalone"),  # the fake runs on its own
])
def test_a_forbidden_import_breaks_a_contract(tree: Path, module: str, statement: str,
                                              contract: str) -> None:
    add_import(tree, module, statement)
    result = lint(tree)
    assert result.returncode != 0
    assert f"{contract}" in result.stdout and "BROKEN" in result.stdout
