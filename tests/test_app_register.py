"""`python -m bot register`: Probot's manifest flow on localhost, against the fake GitHub."""

from __future__ import annotations

import html
import json
import re
import stat
from pathlib import Path

import aiohttp
import yaml
from aiohttp.test_utils import TestServer

from bot.server.register import Registration, manifest_of
from bot.settings import load_settings
from tests.fakegithub import FakeGitHub

ROOT = Path(__file__).resolve().parent.parent


async def test_the_manifest_flow_writes_settings_the_app_starts_with(
    fake_github: FakeGitHub, github_app_key: str, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("LOG_LEVEL=DEBUG\nAPP_ID=1\n")
    manifest = manifest_of(
        (ROOT / "app.yml").read_text(),
        redirect_url="http://localhost:3000/callback",
        webhook_url="https://reviews.example.org/api/github/webhooks",
    )
    registration = Registration(
        manifest,
        github_url="https://github.example.org",
        api_url=fake_github.url,
        env_file=env_file,
        org="octo-org",
    )
    server = TestServer(registration.routes(), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.make_url("/")) as resp:
                page = await resp.text()
            # The page posts the manifest to GitHub's "new App" form, with a state.
            action = html.unescape(_attribute(page, "action"))
            posted = json.loads(html.unescape(_attribute(page, "value")))
            assert action.startswith(
                "https://github.example.org/organizations/octo-org/settings/apps/new?state="
            )
            state = action.split("state=", 1)[1]
            hook = posted["hook_attributes"]["url"]
            assert hook == "https://reviews.example.org/api/github/webhooks"
            assert posted["redirect_url"] == "http://localhost:3000/callback"
            expected = yaml.safe_load((ROOT / "app.yml").read_text())
            assert posted["default_permissions"] == expected["default_permissions"]

            # The person confirms on GitHub, which redirects back with a one-time code.
            code = fake_github.confirm_manifest(posted, github_app_key)
            async with session.get(
                server.make_url("/callback"), params={"code": code, "state": "forged"}
            ) as resp:
                assert resp.status == 400
            async with session.get(
                server.make_url("/callback"), params={"code": code, "state": state}
            ) as resp:
                assert resp.status == 200, await resp.text()
            # The code is spent: it cannot be exchanged twice.
            async with session.get(
                server.make_url("/callback"), params={"code": code, "state": state}
            ) as resp:
                assert resp.status == 502
    finally:
        await server.close()

    assert registration.done.is_set()
    assert fake_github.manifest_conversions == [posted]
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    assert values["LOG_LEVEL"] == "DEBUG"  # other lines are kept
    env = {k: v.strip('"') for k, v in values.items()}
    settings = load_settings(env)
    assert settings.app_id == fake_github.app_id
    assert settings.private_key.strip() == github_app_key.strip()
    assert settings.webhook_secret == env["WEBHOOK_SECRET"] and len(settings.webhook_secret) >= 20


def _attribute(page: str, name: str) -> str:
    found = re.search(name + r'="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)
