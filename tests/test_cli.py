"""The command line: light to start, the same conventions in every command (examples, defaults, exit codes)."""

from __future__ import annotations

import re
import subprocess
import sys

from click.testing import CliRunner

from flan_mini.cli import main

from .conftest import REPO

# Issue 16: command registration must not pull in the data stack either.
HEAVY = ("torch", "transformers", "peft", "datasets", "pyarrow", "numpy", "polars")


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys\n"
        "from flan_mini.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "Commands:" in result.stdout


def test_subcommand_help_does_not_import_torch_or_datasets():
    code = (
        "import sys\n"
        "from flan_mini.cli import main\n"
        "for sub in list(main.commands):\n"
        "    try:\n        main([sub, '--help'])\n    except SystemExit:\n        pass\n"
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'datasets', 'pyarrow') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_every_command_has_an_example_and_shows_defaults_one_way():
    runner = CliRunner()
    assert len(main.commands) >= 9
    for name in main.commands:
        text = runner.invoke(main, [name, "--help"], terminal_width=400).output
        assert f"Example:\n    flan-mini {name} " in text, name
        # Only click's `[default: X]`; no "(default X)", "Default X." or "; default: X" in the prose.
        prose = re.sub(r"\[default: [^\]]*\]", "", text)
        assert not re.search(r"\bdefault\b", prose, re.I), (name, prose)
    build = runner.invoke(main, ["build", "--help"], terminal_width=400).output
    assert "[default: the machine's cores; x>=1]" in build
    assert "[default: the recipe's output.folder]" in build


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output == "flan-mini, version 0.1.0\n"


def test_exit_codes_error_usage_and_interrupt(tmp_path, monkeypatch):
    runner = CliRunner()
    usage = runner.invoke(main, ["build"])  # RECIPE missing
    assert usage.exit_code == 2 and "Missing argument 'RECIPE'" in usage.output
    assert runner.invoke(main, ["no-such-command"]).exit_code == 2
    error = runner.invoke(main, ["validate", str(tmp_path / "missing.yaml")])
    assert error.exit_code == 1 and "flan-mini: error:" in error.output

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("flan_mini.recipe.load_recipe", interrupted)
    stopped = runner.invoke(main, ["validate", str(tmp_path / "missing.yaml")])
    assert stopped.exit_code == 130 and "interrupted" in stopped.output


def test_module_entry_point_runs():
    result = subprocess.run([sys.executable, "-m", "flan_mini", "--version"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0 and "0.1.0" in result.stdout
