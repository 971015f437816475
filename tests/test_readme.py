"""The README's examples run as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from riaktq_py.cli import main

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.DOTALL | re.MULTILINE)


@pytest.mark.parametrize("number", range(2))
def test_the_python_examples_run(
    number: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each python block runs as is (its asserts check the results it describes)."""
    examples = _blocks("python")
    assert len(examples) == 2
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme_example"}
    exec(compile(examples[number], "README.md", "exec"), namespace)
    if number == 0:
        assert (tmp_path / "example.db").exists()  # a real file store, as it says


def test_the_cli_examples_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every ``$ riaktq`` open/get/list line of the README exits 0 (serve/demo elsewhere)."""
    monkeypatch.chdir(tmp_path)
    commands = [
        shlex.split(line[2:])[1:]
        for block in _blocks("console")
        for line in block.splitlines()
        if line.startswith("$ riaktq ")
    ]
    run = [argv for argv in commands if {"open", "get", "list"} & set(argv)]
    assert len(run) >= 5
    for argv in run:
        assert main(argv) == 0, argv
    assert "resize-1" in capsys.readouterr().out
    documented = {argv[2] if argv[0] == "--store" else argv[0] for argv in commands}
    assert {"open", "get", "list", "serve", "demo"} <= documented


def test_the_two_setup_commands_are_make_targets() -> None:
    assert "$ make demo" in README and "$ make test" in README
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    for target in ("demo", "test", "lint", ".venv"):
        assert re.search(rf"^{re.escape(target)}:", makefile, flags=re.MULTILINE), target
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci and "make lint" in ci
