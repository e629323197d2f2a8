"""`tinyllm models list|add|activate|rollback|remove`."""
from .common import print_json


def register(subparsers) -> None:
    p = subparsers.add_parser("models", help="model versions: list, add, activate, roll back, remove")
    sub = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    ls = sub.add_parser("list", help="list versions (the active one is marked *)")
    ls.add_argument("--json", action="store_true")
    add = sub.add_parser("add", help="add a checkpoint file as a new version")
    add.add_argument("path")
    add.add_argument("--activate", action="store_true")
    add.add_argument("--reviewer", metavar="PATH",
                     help="store this model as the version's reviewer, which ranks its candidates "
                          "(trained by training/recipes/reviewer2.toml, sharing the model's tokenizer)")
    act = sub.add_parser("activate", help="make a version the active model")
    act.add_argument("version", type=int)
    sub.add_parser("rollback", help="activate the version before the active one")
    rm = sub.add_parser("remove", help="delete a version (not the active one)")
    rm.add_argument("version", type=int)
    p.set_defaults(func=run)


def run(args) -> int:
    from engine.errors import EngineError
    from engine.store import BUNDLED_MODEL, ModelStore

    store = ModelStore()
    if args.action == "list":
        versions = store.list()
        if args.json:
            print_json([{"version": v.version, "active": v.active, "path": str(v.path), "meta": v.meta}
                        for v in versions])
            return 0
        for v in versions:
            scores = v.meta.get("eval", {})
            summary = " ".join(f"{k}={val:.3f}" for k, val in scores.items() if isinstance(val, float))
            print(f"{'*' if v.active else ' '} v{v.version:<4} {v.meta.get('name', '')} {summary}".rstrip())
        if store.active_version() is None:
            print(f"* bundled default model ({BUNDLED_MODEL.name})" if BUNDLED_MODEL.is_file() else "no models yet")
    elif args.action == "add":
        version = store.add(args.path, activate=args.activate, reviewer=args.reviewer)
        print(version)
    elif args.action == "activate":
        store.activate(args.version)
        print(f"active: v{args.version}")
    elif args.action == "rollback":
        previous = store.previous_version()
        if previous is None:
            raise EngineError("no earlier version to roll back to")
        store.activate(previous)
        print(f"active: v{previous}")
    elif args.action == "remove":
        store.remove(args.version)
    return 0
