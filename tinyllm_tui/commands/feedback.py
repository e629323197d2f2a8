"""`tinyllm feedback ...`: review the corrections users made before a gated update learns them."""
import argparse
import sys
import time
from dataclasses import asdict

from engine.feedback import SOURCES, STATUSES, Correction, FeedbackStore

from .common import print_json


def register(subparsers) -> None:
    parser = subparsers.add_parser("feedback", help="review, edit and export corrections")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    p = actions.add_parser("list", help="show corrections")
    p.add_argument("--status", choices=STATUSES, help="only corrections with this status")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=run_list)

    p = actions.add_parser("add", help="add a correction by hand; prints its id")
    p.add_argument("--request", required=True, help="what was asked, in English")
    p.add_argument("--suggested", required=True, help="the command the model suggested")
    p.add_argument("--corrected", required=True, help="the right command")
    p.add_argument("--source", choices=SOURCES, default="cli")
    p.set_defaults(func=run_add)

    for name, verb in (("accept", "accept"), ("reject", "reject")):
        p = actions.add_parser(name, help=f"{verb} corrections (the next update learns accepted ones)")
        p.add_argument("ids", metavar="ID", type=int, nargs="+")
        p.set_defaults(func=run_set_status, status_action=name)

    p = actions.add_parser("edit", help="change a correction's command or request")
    p.add_argument("id", metavar="ID", type=int)
    p.add_argument("--corrected", help="the new corrected command")
    p.add_argument("--request", help="the new request")
    p.set_defaults(func=run_edit)

    p = actions.add_parser("export", help="write corrections as JSON lines")
    p.add_argument("--status", choices=STATUSES, help="only corrections with this status")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")
    p.set_defaults(func=run_export)


def _describe(correction: Correction) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(correction.created))
    learned = f" v{correction.learned_version}" if correction.learned_version is not None else ""
    return (
        f"#{correction.id} {correction.status}{learned} ({correction.source}, {when})  {correction.request}\n"
        f"    suggested: {correction.suggested or '(nothing)'}\n"
        f"    corrected: {correction.corrected}"
    )


def run_list(args: argparse.Namespace) -> int:
    corrections = FeedbackStore().corrections(args.status)
    if args.json:
        print_json([asdict(c) for c in corrections])
    elif not corrections:
        print(f"no {args.status + ' ' if args.status else ''}corrections")
    else:
        print("\n".join(_describe(c) for c in corrections))
    return 0


def run_add(args: argparse.Namespace) -> int:
    print(FeedbackStore().add_correction(args.request, args.suggested, args.corrected, args.source))
    return 0


def run_set_status(args: argparse.Namespace) -> int:
    store = FeedbackStore()
    for id in args.ids:  # check every id first so a typo changes nothing
        store.get(id)
    for id in args.ids:
        getattr(store, args.status_action)(id)
    print(f"{args.status_action}ed {' '.join(map(str, args.ids))}")
    return 0


def run_edit(args: argparse.Namespace) -> int:
    print(_describe(FeedbackStore().edit(args.id, corrected=args.corrected, request=args.request)))
    return 0


def run_export(args: argparse.Namespace) -> int:
    store = FeedbackStore()
    if args.output is None:
        store.export_jsonl(sys.stdout, args.status)
    else:
        count = store.export_jsonl(args.output, args.status)
        print(f"wrote {count} corrections to {args.output}", file=sys.stderr)
    return 0
