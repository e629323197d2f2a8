"""TINYLLM_NOFEEDBACK=1 stops the scripts from reporting anything (a stand-in curl records calls)."""
import os
import subprocess

import pytest

from shell import init_script


@pytest.mark.parametrize("shell", ["bash", "zsh"])
@pytest.mark.parametrize("nofeedback", [False, True])
def test_nofeedback_sends_nothing(shell, nofeedback, tmp_path):
    if subprocess.run(["sh", "-c", f"command -v {shell}"], capture_output=True).returncode:
        pytest.skip(f"{shell} is not installed")
    calls = tmp_path / "curl-calls"
    fake = tmp_path / "bin" / "curl"
    fake.parent.mkdir()
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    script = tmp_path / "init"
    script.write_text(init_script(shell, ["tinyllm"], tmp_path / "sock"))
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "TINYLLM_NOBIND": "1"}
    env.pop("TINYLLM_NOFEEDBACK", None)
    if nofeedback:
        env["TINYLLM_NOFEEDBACK"] = "1"
    flag = "-f" if shell == "zsh" else "--norc"
    subprocess.run([shell, flag, "-c", f"source {script}; _tinyllm_report 'list files' 'ls' 'ls -la'; wait; sleep 0.2"],
                   env=env, check=True, timeout=10, capture_output=True)
    assert calls.exists() != nofeedback
