"""`tinyllm update`: learn the accepted corrections in a gated update of the active model.

Exit status: 0 accepted (or nothing to learn), 1 rejected by the gate, 2 error.
The defaults in the help text are training.continual.UpdateConfig's (a test keeps them equal).
"""
from .common import print_json, setup_torch

HYPERPARAMETERS = ("steps", "lr", "anchor", "replay", "seed", "delta", "epsilon")


def register(subparsers) -> None:
    p = subparsers.add_parser("update", help="learn accepted corrections (kept only if nothing is forgotten)")
    p.add_argument("--delta", type=float, help="the corrections' exact match must rise by at least this (0.01)")
    p.add_argument("--epsilon", type=float, help="the base eval set's exact match may fall by at most this (0.02)")
    p.add_argument("--dry-run", action="store_true", help="train and gate, then change and record nothing")
    p.add_argument("--json", action="store_true",
                   help='print {"decision", "new_delta", "base_delta", "version", "corrections"}')
    p.add_argument("--steps", type=int, help="fine-tuning steps (60)")
    p.add_argument("--lr", type=float, help="peak learning rate (0.001)")
    p.add_argument("--anchor", type=float, help="L2-SP pull toward the starting weights; 0 = off (0.03)")
    p.add_argument("--replay", type=int, help="old pairs replayed per correction (16)")
    p.add_argument("--seed", type=int, help="seed for sampling and training (0)")
    p.set_defaults(func=run)


def run(args) -> int:
    from training.continual import UpdateConfig, run_update

    setup_torch()
    chosen = {name: getattr(args, name) for name in HYPERPARAMETERS if getattr(args, name) is not None}
    result = run_update(UpdateConfig(**chosen), dry_run=args.dry_run)
    if args.json:
        print_json({"decision": result.decision, "new_delta": result.new_delta, "base_delta": result.base_delta,
                    "version": result.new_version, "corrections": result.correction_ids})
    else:
        _describe(result, args.dry_run)
    return 1 if result.decision == "rejected" else 0


def _describe(result, dry_run: bool) -> None:
    if result.decision == "nothing-to-learn":
        print("nothing to learn: no accepted corrections (see: tinyllm feedback list)")
        return
    ids = " ".join(f"#{i}" for i in result.correction_ids)
    if dry_run:
        print(f"dry run: would be {result.decision} (corrections {ids}); nothing changed")
    elif result.decision == "accepted":
        print(f"accepted: v{result.new_version} is now active; learned corrections {ids}")
    else:
        print(f"rejected: the model is unchanged; corrections {ids} stay accepted")
    print(f"  {result.message}")
    if result.decision == "accepted" and not dry_run:
        print(f"  roll back: tinyllm models activate {result.parent_version}")
