"""`python -m bot check|serve|worker|register ...`."""

from __future__ import annotations

import argparse
import sys

from bot import __version__
from bot.cli import add_check_parser, add_diff_parser, check_main, diff_main


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's default already exits 2; keep it to one line on stderr
        self.exit(2, f"flux-review: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="flux-review",
        description="Review Flux/Helm/Kustomize GitOps "
        "changes for what would break on the cluster.",
    )
    parser.add_argument("--version", action="version", version=f"flux-review {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_check_parser(sub)
    add_diff_parser(sub)
    serve = sub.add_parser("serve", help="run the GitHub App webhook server")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument(
        "--no-worker",
        action="store_true",
        help="with REDIS_URL: answer webhooks only; `worker` processes run the reviews",
    )
    worker = sub.add_parser("worker", help="run review workers on the shared queue (REDIS_URL)")
    worker.add_argument(
        "--port", type=int, default=None, help="also serve /healthz, /readyz, /metrics here"
    )
    worker.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)
    register = sub.add_parser(
        "register", help="create the GitHub App from app.yml and write its credentials to .env"
    )
    register.add_argument("--port", type=int, default=3000)
    register.add_argument("--env-file", default=".env")
    register.add_argument("--manifest", default="app.yml")
    register.add_argument("--org", default=None, help="create the App in this organization")
    register.add_argument("--webhook-url", default=None, help="where GitHub sends webhooks")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check":
        return check_main(args)
    if args.command == "diff":
        return diff_main(args)
    if args.command == "register":
        from bot.server.register import register_main

        return register_main(args)
    from bot.server import serve, work

    if args.command == "worker":
        return work(args.port, exit_with_parent=args.exit_with_parent)
    return serve(args.host, args.port, worker=not args.no_worker)


if __name__ == "__main__":
    sys.exit(main())
