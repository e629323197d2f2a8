"""engine/ imports nothing of ours: every module of it, not a chosen few."""
import pkgutil
import subprocess
import sys

import engine

# Imported one after another in one fresh interpreter; the first module that drags in a forbidden package
# is named (the union over all modules is empty exactly when each one's is).
CHECK = """
import importlib, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
    bad = sorted(m for m in sys.modules if m.split('.')[0] in ('textual', 'training', 'tinyllm_tui'))
    if bad:
        sys.exit(f'{name} imported {bad}')
"""


def test_every_engine_module_imports_nothing_of_the_app_or_training():
    modules = [f"engine.{m.name}" for m in pkgutil.iter_modules(engine.__path__)]
    assert {"engine.generate", "engine.server", "engine.feedback", "engine.examples"} <= set(modules)
    result = subprocess.run([sys.executable, "-c", CHECK, *modules], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
