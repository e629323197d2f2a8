"""Keypress-to-inserted-buffer latency of the bash key binding (`tinyllm bench shell`).

One bash process runs the binding's own widget function, exactly as a keypress does (curl over the
socket, reading the candidates, setting READLINE_LINE), timed with $EPOCHREALTIME around each call.
Only readline's redraw is left out. The daemon should be warm: the first calls are not counted.
"""
import math
import os
import statistics
import subprocess

REQUESTS = ("list files", "show disk usage", "find python files", "show running processes", "print working directory")
WARMUP = 3

_LOOP = r'''
(( BASH_VERSINFO[0] >= 5 )) || { echo "bench shell needs bash 5 or newer (for EPOCHREALTIME)" >&2; exit 2; }
eval "$TINYLLM_INIT"
requests=("$@")
for (( i = 0; i < TINYLLM_BENCH_WARMUP + TINYLLM_BENCH_N; i++ )); do
  READLINE_LINE=${requests[i % ${#requests[@]}]}
  READLINE_POINT=${#READLINE_LINE}
  _tinyllm_inserted=  # a new request each time, never a cycle through the last candidates
  start=$EPOCHREALTIME
  _tinyllm_widget 2>/dev/null
  end=$EPOCHREALTIME
  if [[ -z $_tinyllm_inserted || $READLINE_LINE != "$_tinyllm_inserted" ]]; then
    echo "nothing was inserted for \"${requests[i % ${#requests[@]}]}\" (is the daemon answering?)" >&2
    exit 1
  fi
  (( i < TINYLLM_BENCH_WARMUP )) || echo "$start $end"
done
'''


def bench_shell(init_script: str, n: int, requests=REQUESTS) -> dict:
    """{"n", "p50_ms", "p95_ms"} over n timed keypresses. Raises RuntimeError when the widget fails."""
    env = {**os.environ, "LC_ALL": "C", "TINYLLM_INIT": init_script,
           "TINYLLM_BENCH_N": str(n), "TINYLLM_BENCH_WARMUP": str(WARMUP)}
    result = subprocess.run(["bash", "--norc", "--noprofile", "-c", _LOOP, "bench", *requests],
                            env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "bench failed")
    times = sorted((float(end) - float(start)) * 1000
                   for start, end in (line.split() for line in result.stdout.splitlines()))
    return {"n": len(times), "p50_ms": round(statistics.median(times), 1),
            "p95_ms": round(times[math.ceil(0.95 * len(times)) - 1], 1)}
