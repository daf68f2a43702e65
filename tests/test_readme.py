"""README's snippets run as written, so they cannot drift: the quick start's output, every
Python block, and every shell block (ports swapped for free ones, run from a scratch folder
that sees the repository's src/). Two kinds of line are not run here, each covered elsewhere:
`make …` (CI runs `make test` itself) and `ser datasets download` (the internet; its code is
tested against a loopback server in test_download.py), and the cluster how-to (`ray start`
and `--address HEAD:…`: test_batch.py's two-node test runs those commands on loopback)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```", README, flags=re.S | re.M)
NOT_RUN = ("make ", "ser datasets download ", "ray start ", "ser predict --engine ray --address HEAD")

from .conftest import free_port  # noqa: E402


def _shell_blocks() -> list[str]:
    return [body for lang, body in BLOCKS if lang == "bash"]


def test_readme_is_short_and_its_blocks_were_found():
    assert len(README.splitlines()) <= 250
    assert len(_shell_blocks()) >= 5 and any(lang == "python" for lang, _ in BLOCKS)
    for prefix in NOT_RUN:  # every exemption names a line README really has
        assert any(line.startswith(prefix) for b in _shell_blocks() for line in b.splitlines())


def test_printed_outputs_are_what_ser_prints():
    """Every plain block that shows `ser predict`'s table: the quick start's (after `make
    demo`) and the recording example's (the command is named in backticks just before it)."""
    shown = re.findall(r"(?:`(ser predict [^`]+)`[^\n]*\n\n)?^```\n(file .*?)^```", README,
                       flags=re.S | re.M)
    assert len(shown) >= 2
    for command, expected in shown:
        argv = (command or "ser predict src/ser/examples/speech_example.wav").split()[1:]
        run = subprocess.run([str(Path(sys.executable).parent / "ser"), *argv], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        assert run.stdout.split() == expected.split(), command


@pytest.mark.parametrize("index", range(sum(lang == "python" for lang, _ in BLOCKS)))
def test_python_snippet_runs(index, tmp_path, monkeypatch, capsys):
    code = [body for lang, body in BLOCKS if lang == "python"][index]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md python block {index}", "exec"), {})
    out = capsys.readouterr().out
    assert "AudioError" in out or "missing.wav" in out  # the bad file came back as an error
    assert any(e in out for e in ("angry", "happy", "sad", "neutral", "fear", "disgust", "calm",
                                  "surprise"))


@pytest.mark.slow
@pytest.mark.parametrize("index", range(len(_shell_blocks())))
def test_shell_snippet_runs(index, tmp_path):
    block = _shell_blocks()[index]
    lines = [line for line in block.splitlines() if line.strip() and not line.startswith(NOT_RUN)]
    if not lines:
        pytest.skip("only install or download lines")
    script = "\n".join(lines)
    for port in ("8000", "8501"):
        script = script.replace(port, str(free_port()))
    (tmp_path / "src").symlink_to(ROOT / "src")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(["bash", "-c", "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + script],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=240)
    assert run.returncode == 0, run.stderr[-2000:]
    if "curl" in script and "/v1/predict" in script:
        assert '"emotion"' in run.stdout and '"status":"ok"' in run.stdout.replace(" ", "")
    if "_stcore/health" in script:
        assert "ok" in run.stdout.split()  # curl printed the health answer (Streamlit logs too)
    if "--output results.csv" in script:
        rows = (tmp_path / "results.csv").read_text().splitlines()
        assert len(rows) == 3 and rows[0].startswith("path")  # header + the two examples


def test_every_install_of_torch_names_the_cpu_wheel_index():
    """From PyPI alone, pip on Linux takes a CUDA build of several GB: the Makefile and README
    install torch with PyTorch's CPU index, and the quick start's demo installs no torch."""
    makefile = (ROOT / "Makefile").read_text()
    torch_lines = [line for line in makefile.splitlines() if "install" in line and "torch==" in line]
    assert torch_lines and all("--extra-index-url $(TORCH_INDEX)" in line for line in torch_lines)
    assert "TORCH_INDEX ?= https://download.pytorch.org/whl/cpu" in makefile
    demo = makefile.split("$(VENV)/.demo-installed:")[1].split("\n\n")[0]
    assert "torch" not in demo
    readme_torch = [line for line in README.splitlines() if "torch==" in line]
    assert readme_torch and all("download.pytorch.org/whl/cpu" in line for line in readme_torch)
