"""Run the App locally against the fake GitHub of the tests: nothing leaves loopback.

    python scripts/app_against_fake_github.py           # review the incident PR, print it
    python scripts/app_against_fake_github.py --keep    # then leave both running
    python scripts/app_against_fake_github.py --repo ~/src/gitops --base main --head my-change

It builds the incident of examples/incident as a repository with a pull request (or, with
`--repo`, a pull request from `--head` into `--base` of a repository of yours, read
through a clone that shares its objects and never writes to it), starts the fake GitHub
(tests/fakegithub) serving it, starts `python -m bot serve` pointed at the fake with a
fresh App key and webhook secret, delivers `pull_request.opened`, waits for the
`flux-review` check run to complete and prints it (conclusion, summary, annotations and
the documentation of each rule that fired) with the review comments. Every request the
App makes is checked against GitHub's REST description; violations are printed.
Ctrl-C or SIGTERM stops the App it started before it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
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


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        err = proc.stderr.strip().splitlines()
        raise SystemExit(f"git {args[0]} in {repo}: {err[-1] if err else 'failed'}")
    return proc.stdout.strip()


def your_pull_request(source: Path, base: str, head: str, path: Path) -> tuple[GitRepo, str, str]:
    """A clone of `source` that shares its objects (`--shared`: nothing is copied, and
    nothing is written to `source`), with a branch for each side of the pull request: the
    same name as in `source` when it names a branch there. Returns the clone and the base
    and head branch names."""
    shas = []
    for rev in (base, head):
        if rev.startswith("-"):
            raise SystemExit(f"{rev!r} is not a revision")
        try:
            shas.append(
                _git(source, "rev-parse", "--verify", "--end-of-options", f"{rev}^{{commit}}")
            )
        except SystemExit:
            raise SystemExit(f"{source} has no commit {rev!r}") from None
    _git(path.parent, "clone", "--quiet", "--shared", "--no-checkout", str(source), str(path))
    names = []
    for rev, sha, fallback in ((base, shas[0], "base"), (head, shas[1], "head")):
        is_branch = (
            subprocess.run(
                ["git", "-C", str(source), "show-ref", "--verify", "--quiet", f"refs/heads/{rev}"],
                check=False,
            ).returncode
            == 0
        )
        name = rev if is_branch and rev not in names else fallback
        _git(path, "update-ref", f"refs/heads/{name}", sha)
        names.append(name)
    return GitRepo(path, default_branch=names[0], init=False), names[0], names[1]


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


async def run(args: argparse.Namespace) -> int:
    keep, timeout = args.keep, args.timeout
    private_key, public_key = app_key()
    with tempfile.TemporaryDirectory(prefix="flux-review-fake-") as tmp:
        if args.repo:
            repo, base, head = your_pull_request(
                Path(args.repo).resolve(), args.base, args.head, Path(tmp) / "gitops"
            )
            title = f"{args.head} into {args.base}"
        else:
            repo, base, head = incident(Path(tmp) / "gitops"), "main", "feature"
            title = "Use the global image registry"
        fake = FakeGitHub(repo, app_public_key=public_key, default_branch=base)
        await fake.start()
        pr = fake.add_pull(head, base, title=title)
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
            print(
                f"fake GitHub {fake.url} serving {fake.full_name} "
                f"(pull request #{pr.number}: {head} into {base}); "
                f"the App (pid {app.pid}) at {app_url}",
                flush=True,
            )
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
                if check.text:
                    # The summary's "each rule's documentation follows the list": GitHub
                    # shows output.text below the summary.
                    print(f"\n{check.text.rstrip()}\n")
            for comment in fake.comments_on(pr.number):
                first = comment.body.strip().splitlines()[0] if comment.body.strip() else ""
                print(f"  review comment {comment.path}:{comment.line}: {first[:100]}")
            for problem in fake.openapi_errors + fake.response_errors + fake.internal_errors:
                print(f"fake GitHub: {problem}", file=sys.stderr)
            done = [r for r in fake.check_runs_named("flux-review") if r.status == "completed"]
            status = 0 if done and not fake.openapi_errors else 1
            if keep:
                print(
                    f"\nrunning until Ctrl-C or SIGTERM: GITHUB_API_URL={fake.url} "
                    f"WEBHOOK_SECRET={SECRET}; the App at {app_url}",
                    flush=True,
                )
                await asyncio.Event().wait()
        finally:
            # Also when cancelled by a signal: the App must not outlive this script.
            if app.returncode is None:
                app.terminate()
                try:
                    await asyncio.wait_for(app.wait(), 30)
                except TimeoutError:
                    app.kill()
                    await app.wait()
            await fake.close()
    return status


async def until_signalled(args: argparse.Namespace) -> int:
    """`run`, cancelled by SIGTERM or SIGINT so that its cleanup stops the App: Python's
    default SIGTERM ends the process at once, and the App would keep running."""
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    stopped: list[int] = []

    def stop(sig: int) -> None:
        stopped.append(sig)
        task.cancel()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)
    try:
        return await run(args)
    except asyncio.CancelledError:
        if not stopped:
            raise
        print(f"stopped by {signal.Signals(stopped[0]).name}; the App is stopped too")
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="leave the fake and the App running")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument(
        "--repo", help="review a pull request of this git repository instead of the incident"
    )
    parser.add_argument("--base", help="with --repo: the branch or commit the PR goes into")
    parser.add_argument("--head", help="with --repo: the branch or commit the PR brings")
    args = parser.parse_args()
    if args.repo and not (args.base and args.head):
        parser.error("--repo needs --base and --head")
    if not args.repo and (args.base or args.head):
        parser.error("--base and --head name the pull request of --repo")
    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(until_signalled(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
