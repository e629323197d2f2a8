"""Stands in for `tinyllm train` until the real trainer lands: same arguments, same run-dir files.

usage: fake_trainer.py PHASE [--data SPEC ...] --preset P --steps N --run-dir DIR [--resume]
Env FAKE_STEP_S sets the time per step (default 0.02). SIGTERM ends it with status "stopped".
"""
import json
import os
import signal
import sys
import time
from pathlib import Path


def main(argv):
    phase, args = argv[0], argv[1:]
    run_dir = Path(args[args.index("--run-dir") + 1])
    steps = int(args[args.index("--steps") + 1])
    metrics = run_dir / "metrics.jsonl"
    done = 0
    if "--resume" in args and metrics.exists():
        for line in metrics.read_text().splitlines():
            event = json.loads(line)
            if event["event"] == "step":
                done = event["step"]
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    delay = float(os.environ.get("FAKE_STEP_S", "0.02"))

    def emit(**event):
        with open(metrics, "a") as f:
            f.write(json.dumps(event) + "\n")

    emit(event="start", time=time.time(), phase=phase, total_steps=steps, params=1234, preset="nano")
    print(f"fake {phase} from step {done}", flush=True)
    start = time.time()
    for step in range(done + 1, steps + 1):
        if stopping:
            emit(event="checkpoint", step=step - 1, path=str(run_dir / "checkpoint.tlm"))
            emit(event="end", step=step - 1, status="stopped", message="stopped by signal")
            print("stopped", flush=True)
            return 0
        time.sleep(delay)
        elapsed = time.time() - start
        emit(event="step", step=step, total_steps=steps, loss=4.0 / step, lr=1e-3, tok_s=1000.0,
             elapsed=elapsed, eta=(steps - step) * delay, peak_mem_mb=12.5, tokens=step * 64)
        if step % 5 == 0:
            emit(event="eval", step=step, val_loss=4.5 / step, exact_match=min(1.0, step / steps), n=10)
        print(f"step {step} loss {4.0 / step:.3f}", flush=True)
    emit(event="end", step=steps, status="finished", message="done")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
