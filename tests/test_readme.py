"""README.md is for users: short, and it names the test command CI runs."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_readme_is_short_and_names_the_ci_test_command():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 10_000, "README.md grew past 10 KB: move detail to docs/"
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command == "python -m pytest -q"
    assert ci_command in readme
