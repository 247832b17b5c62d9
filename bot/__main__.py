"""`python -m bot check ...` and `python -m bot serve ...`."""

from __future__ import annotations

import argparse
import sys

from bot import __version__
from bot.cli import add_check_parser, check_main


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
    serve = sub.add_parser("serve", help="run the GitHub App webhook server")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check":
        return check_main(args)
    from bot.server import serve

    return serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())
