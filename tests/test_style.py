"""The code stays formatted and linted as pyproject.toml configures ruff (line length 120): one style, applied by
the tool rather than by hand-kept formatter-suppression comments."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def ruff(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ruff_format_and_lint_are_clean():
    fmt = ruff("format", "--check", ".")
    assert fmt.returncode == 0, "run `ruff format .`:\n" + fmt.stdout + fmt.stderr
    lint = ruff("check", ".")
    assert lint.returncode == 0, "run `ruff check --fix .`:\n" + lint.stdout + lint.stderr


def test_no_formatter_suppressions_left():
    marker = "fmt" + ": skip"  # spelled apart so this file does not match itself
    files = []
    for d, dirs, names in os.walk(ROOT):
        dirs[:] = [x for x in dirs if not x.startswith(".") and x not in ("runs", "artifacts", "node_modules")]
        files += [Path(d) / n for n in names if n.endswith(".py")]
    marked = [str(f.relative_to(ROOT)) for f in files if marker in f.read_text(encoding="utf-8")]
    assert len(files) > 50 and not marked, marked
