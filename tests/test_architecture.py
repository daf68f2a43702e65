"""The package's layering, checked by import-linter against the contracts in pyproject.toml
(every import counts, also those inside functions); and proof that the check can fail."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(cwd: Path, env_path: Path | None = None) -> subprocess.CompletedProcess:
    env = None
    if env_path is not None:
        import os

        env = {**os.environ, "PYTHONPATH": str(env_path)}
    return subprocess.run([str(LINT), "--no-cache"], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)


def test_the_stages_keep_their_contracts():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout
    assert result.stdout.count(" KEPT") >= 5  # every contract in pyproject.toml was checked


@pytest.mark.parametrize("module, line, contract", [
    ("serving/inference.py", "from ser.training import loop", "Stages"),
    ("audio/vad.py", "from ser.frontends import dsp", "Stages"),
    ("frontends/encoders.py", "import torch", "Prediction imports no PyTorch"),
    ("training/pipeline.py", "from ser.training import clipcache", "corpus cache"),
    ("audio/decoders.py", "from ser.audio import stream", "No import cycles"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, contract):
    """A copy of the package with one forbidden import added (inside a function, where a
    hand-made check might miss it) fails the same configuration."""
    shutil.copytree(ROOT / "src" / "ser", tmp_path / "src" / "ser",
                    ignore=shutil.ignore_patterns("models", "assets", "examples", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "ser" / module
    target.write_text(target.read_text() + f"\n\ndef _smuggled():\n    {line}\n")
    result = lint(tmp_path, env_path=tmp_path / "src")
    assert result.returncode != 0
    broken = [ln for ln in result.stdout.splitlines() if ln.rstrip().endswith("BROKEN")]
    assert any(contract in ln for ln in broken), result.stdout[-3000:]
