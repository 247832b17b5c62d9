"""`python -m bot register`: create the GitHub App from app.yml, the way Probot does.

GitHub's manifest flow: a page on localhost POSTs the manifest to GitHub's
`/settings/apps/new`; the person confirms there; GitHub redirects the browser back to
`redirect_url` with a one-time `code`, which `POST /app-manifests/{code}/conversions`
turns into the App's id, private key and webhook secret (within an hour, once). Those
go into `.env`, the file the platform (or `docker run --env-file`) reads.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import logging
import os
import re
import secrets
import sys
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

log = logging.getLogger(__name__)

_CODE = re.compile(r"[A-Za-z0-9_-]{1,100}")


def manifest_of(text: str, *, redirect_url: str, webhook_url: str | None) -> dict[str, Any]:
    """GitHub's manifest from app.yml (its keys are GitHub's own), pointed back here."""
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or not data.get("name"):
        raise ValueError("the manifest has no name")
    manifest = dict(data)
    manifest["redirect_url"] = redirect_url
    if webhook_url:
        hook = dict(manifest.get("hook_attributes") or {})
        hook["url"] = webhook_url
        manifest["hook_attributes"] = hook
    return manifest


def env_lines(app: dict[str, Any]) -> str:
    """The .env entries for a converted App; the PEM on one line with `\\n`s, which the
    settings turn back into lines (dotenv files hold one line per value)."""
    pem = str(app["pem"]).strip().replace("\n", "\\n")
    return f'APP_ID={int(app["id"])}\nPRIVATE_KEY="{pem}"\nWEBHOOK_SECRET={app["webhook_secret"]}\n'


def write_env(path: Path, app: dict[str, Any]) -> None:
    """Replace APP_ID, PRIVATE_KEY and WEBHOOK_SECRET in `path`, keeping other lines; the
    file is readable by its owner only (it holds the private key)."""
    keep: list[str] = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            name = line.split("=", 1)[0].strip()
            if name not in ("APP_ID", "PRIVATE_KEY", "WEBHOOK_SECRET"):
                keep.append(line)
    text = "".join(line + "\n" for line in keep) + env_lines(app)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    # An existing file keeps its mode on open: narrow it before the key is written.
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


class Registration:
    """The two pages of the flow; `done` is set once the credentials are written."""

    def __init__(
        self,
        manifest: dict[str, Any],
        *,
        github_url: str,
        api_url: str,
        env_file: Path,
        org: str | None = None,
    ) -> None:
        self.manifest = manifest
        self.github_url = github_url.rstrip("/")
        self.api_url = api_url.rstrip("/")
        self.env_file = env_file
        self.org = org
        # GitHub hands `state` back on the redirect: a code not started from this page is
        # refused.
        self.state = secrets.token_urlsafe(16)
        self.done = asyncio.Event()
        self.app: dict[str, Any] | None = None

    def routes(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.start)
        app.router.add_get("/callback", self.callback)
        return app

    async def start(self, _request: web.Request) -> web.Response:
        where = f"/organizations/{self.org}" if self.org else ""
        action = f"{self.github_url}{where}/settings/apps/new?state={self.state}"
        page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Register flux-review</title></head>
<body>
<h1>Register the flux-review GitHub App</h1>
<p>GitHub will ask you to confirm the App's name, permissions and events.</p>
<form action="{html.escape(action)}" method="post">
<input type="hidden" name="manifest" value="{html.escape(json.dumps(self.manifest))}">
<button type="submit">Create the GitHub App</button>
</form>
</body></html>"""
        return web.Response(text=page, content_type="text/html")

    async def callback(self, request: web.Request) -> web.Response:
        code = request.query.get("code", "")
        if request.query.get("state") != self.state or not _CODE.fullmatch(code):
            return web.Response(status=400, text="unknown or missing code; start again at /")
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                f"{self.api_url}/app-manifests/{code}/conversions",
                headers={"Accept": "application/vnd.github+json", "User-Agent": "flux-review"},
            ) as response,
        ):
            body = await response.json(content_type=None)
            if response.status != 201 or not isinstance(body, dict):
                message = body.get("message") if isinstance(body, dict) else None
                return web.Response(
                    status=502, text=f"GitHub refused the code ({response.status}: {message})"
                )
        write_env(self.env_file, body)
        self.app = body
        self.done.set()
        url = str(body.get("html_url") or "")
        return web.Response(
            text=(
                f"The App {body.get('slug') or body.get('name')} is registered; its "
                f"credentials are in {self.env_file}. Install it: {url}/installations/new\n"
            )
        )


async def run_registration(registration: Registration, port: int) -> dict[str, Any]:
    runner = web.AppRunner(registration.routes())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    print(
        f"Open http://localhost:{port}/ in a browser to register the GitHub App.", file=sys.stderr
    )
    try:
        await registration.done.wait()
    finally:
        await runner.cleanup()
    assert registration.app is not None
    return registration.app


def register_main(args: argparse.Namespace) -> int:
    try:
        text = Path(args.manifest).read_text(encoding="utf-8")
        manifest = manifest_of(
            text,
            redirect_url=f"http://localhost:{args.port}/callback",
            webhook_url=args.webhook_url,
        )
    except (OSError, ValueError, yaml.YAMLError) as exc:
        print(f"flux-review: cannot read the manifest {args.manifest}: {exc}", file=sys.stderr)
        return 2
    registration = Registration(
        manifest,
        github_url=os.environ.get("GITHUB_URL", "https://github.com"),
        api_url=os.environ.get("GITHUB_API_URL", "https://api.github.com"),
        env_file=Path(args.env_file),
        org=args.org,
    )
    try:
        app = asyncio.run(run_registration(registration, args.port))
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"flux-review: cannot listen on port {args.port}: {exc}", file=sys.stderr)
        return 1
    print(
        f"App {app.get('id')} registered; credentials written to {args.env_file}.", file=sys.stderr
    )
    return 0
