import subprocess
import sys


def test_engine_imports_nothing_of_the_app_or_training():
    code = ("import sys, engine.generate, engine.store, engine.feedback, engine.checkpoint;"
            "bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'training', 'tinyllm_tui')];"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
