"""Run the App locally against the fake GitHub of the tests: nothing leaves loopback.

    python scripts/app_against_fake_github.py           # review the incident PR, print it
    python scripts/app_against_fake_github.py --keep    # then leave both running

It builds the incident of examples/incident as a repository with a pull request, starts
the fake GitHub (tests/fakegithub) serving it, starts `python -m bot serve` pointed at the
fake with a fresh App key and webhook secret, delivers `pull_request.opened`, waits for the
`flux-review` check run to complete and prints it with the review comments. Every request
the App makes is checked against GitHub's REST description; violations are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fakegithub import FakeGitHub, GitRepo  # noqa: E402

SECRET = "local-webhook-secret"


def app_key() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def incident(path: Path) -> GitRepo:
    """main: examples/incident/base; branch `feature`: the incident on top of it."""
    repo = GitRepo(path)
    files = ROOT / "examples" / "incident"
    shutil.copytree(files / "base", path, dirs_exist_ok=True)
    repo.commit("Platform chart 1.1.12")
    repo.branch("feature")
    repo.write(
        {
            str(p.relative_to(files / "head")): p.read_bytes()
            for p in (files / "head").rglob("*")
            if p.is_file()
        }
    )
    repo.commit("Use the global image registry; bump platform to 1.1.13")
    repo.checkout("main")
    return repo


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_healthy(url: str, app: asyncio.subprocess.Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if app.returncode is not None:
                raise SystemExit(f"the App exited with status {app.returncode}")
            try:
                async with http.get(f"{url}/healthz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"the App did not answer {url}/healthz within {timeout:.0f} s")


async def run(keep: bool, timeout: float) -> int:
    private_key, public_key = app_key()
    with tempfile.TemporaryDirectory(prefix="flux-review-fake-") as tmp:
        repo = incident(Path(tmp) / "gitops")
        fake = FakeGitHub(repo, app_public_key=public_key)
        await fake.start()
        pr = fake.add_pull("feature", title="Use the global image registry")
        port = free_port()
        app_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "APP_ID": str(fake.app_id),
            "PRIVATE_KEY": private_key,
            "WEBHOOK_SECRET": SECRET,
            "GITHUB_API_URL": fake.url,
            "PORT": str(port),
            "LOG_LEVEL": os.environ.get("LOG_LEVEL", "INFO"),
        }
        env.pop("REDIS_URL", None)
        app = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "serve", "--host", "127.0.0.1", cwd=ROOT, env=env
        )
        status = 1
        try:
            await wait_healthy(app_url, app, timeout)
            print(f"fake GitHub {fake.url} serving {fake.full_name}; the App at {app_url}")
            answer = await fake.deliver(app_url, "pull_request.opened", SECRET, pr=pr)
            print(f"pull_request.opened -> {answer.status}")
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                runs = fake.check_runs_named("flux-review")
                if runs and all(r.status == "completed" for r in runs) and fake.reviews:
                    break
                await asyncio.sleep(0.2)
            for check in fake.check_runs_named("flux-review"):
                print(
                    f"\ncheck run {check.id}: {check.status} / {check.conclusion}: "
                    f"{check.title}\n\n{check.summary}\n"
                )
                for a in check.annotations:
                    print(
                        f"  annotation {a['path']}:{a['start_line']} "
                        f"{a['annotation_level']} {a['title']}"
                    )
            for comment in fake.comments_on(pr.number):
                first = comment.body.strip().splitlines()[0] if comment.body.strip() else ""
                print(f"  review comment {comment.path}:{comment.line}: {first[:100]}")
            for problem in fake.openapi_errors + fake.response_errors + fake.internal_errors:
                print(f"fake GitHub: {problem}", file=sys.stderr)
            done = [r for r in fake.check_runs_named("flux-review") if r.status == "completed"]
            status = 0 if done and not fake.openapi_errors else 1
            if keep:
                print(
                    f"\nrunning until Ctrl-C: GITHUB_API_URL={fake.url} "
                    f"WEBHOOK_SECRET={SECRET}; the App at {app_url}"
                )
                await asyncio.Event().wait()
        finally:
            if app.returncode is None:
                app.terminate()
                await app.wait()
            await fake.close()
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the fake and the App running")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    try:
        return asyncio.run(run(args.keep, args.timeout))
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
