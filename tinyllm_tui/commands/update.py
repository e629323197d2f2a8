"""`tinyllm update`: learn the accepted corrections in a gated update of the active model.

Exit status: 0 accepted (or nothing to learn), 1 rejected by the gate, 2 error.
"""
from training.config import UpdateConfig

from .common import add_config_flags, config_from_args, print_json, setup_torch


def register(subparsers) -> None:
    p = subparsers.add_parser("update", help="learn accepted corrections (kept only if nothing is forgotten)")
    p.add_argument("--dry-run", action="store_true", help="train and gate, then change and record nothing")
    p.add_argument("--json", action="store_true",
                   help='print {"decision", "new_delta", "base_delta", "version", "corrections"}')
    add_config_flags(p, UpdateConfig)
    p.set_defaults(func=run)


def run(args) -> int:
    from training.continual import run_update

    setup_torch()
    result = run_update(config_from_args(UpdateConfig, args), dry_run=args.dry_run)
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
