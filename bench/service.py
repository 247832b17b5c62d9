"""The App as a service, measured in one run against the fake GitHub on loopback, with a
redis-server of its own (or REDIS_URL):

- webhook acknowledgement p50/p99 under a burst of 500 deliveries (sent from a process of
  their own), beside a do-nothing aiohttp receiver's on the same machine, and the web
  process's own histogram of it;
- reviews per second with 1 and with 4 worker processes;
- GitHub API calls per review;
- time from delivery to completed check for 3-file PRs on the 10,000-manifest home-ops
  repository (bench/homeops.py): the worker's first review (cold), its next one (warm:
  what it parsed and built for the first is kept), a 100-file PR, each as deployed (one
  GitHub write a second) and, for the 3-file PRs, without that pacing, to say its share;
- resident memory of the web and the worker process.

    python bench/service.py [--burst 500] [--reviews 60] [--apps 2000] [--skip-small]

The fake GitHub runs in this process and answers from git subprocesses, so the review
figures (reviews per second above all) include its own time; machines are shared, so
compare figures of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
import redis.asyncio as aioredis  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from bench import homeops  # noqa: E402
from tests.fakegithub import FakeGitHub, GitRepo  # noqa: E402
from tests.redis_server import own_redis_server  # noqa: E402
from tests.test_app_e2e import SYNC, TEMPLATED, deployment, flux_kustomization  # noqa: E402

SECRET = "bench-secret"

NOTHING = """
import sys
from aiohttp import web
async def hook(request):
    await request.read()
    return web.json_response({"message": "queued"}, status=202)
app = web.Application()
app.router.add_post("/api/github/webhooks", hook)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), backlog=1024, print=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory now (`VmHWM`: its peak so far), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return 0.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def server_side_p99(metrics: str) -> str:
    """The web process's own view (request handled to answer written), from its ack
    histogram: what the load generator and the kernel add is the rest."""
    buckets: list[tuple[float, float]] = []
    for line in metrics.splitlines():
        if line.startswith("flux_review_webhook_ack_seconds_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float(le), float(line.rsplit(" ", 1)[1])))
    total = buckets[-1][1] if buckets else 0.0
    bound = next((le for le, count in buckets if count >= 0.99 * total), float("inf"))
    return (
        f"in the web process's own histogram ({total:.0f} deliveries): p99 <= {bound * 1000:g} ms"
    )


class Procs:
    def __init__(self, env: dict[str, str], logdir: Path) -> None:
        self.env = env
        self.logdir = logdir
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.logdir / f"proc-{len(self.procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, *args],
            env={**self.env, **env},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc)


async def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up")
            await asyncio.sleep(0.05)


def signed(payload: dict[str, Any], event: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload, separators=(",", ":")).encode()
    return body, {
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/bench",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": "sha256="
        + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest(),
    }


async def burst(url: str, deliveries: list[tuple[bytes, dict[str, str]]]) -> list[float]:
    """All at once, one connection each, as GitHub sends them; seconds to each answer.

    The deliveries are sent from a process of their own: this one also runs the fake
    GitHub, and a client sharing its event loop would measure itself."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as out:
        json.dump([[body.decode(), headers] for body, headers in deliveries], out)
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--send", url, out.name, stdout=subprocess.PIPE
        )
        answer, _ = await proc.communicate()
    finally:
        os.unlink(out.name)
    if proc.returncode != 0:
        raise RuntimeError(f"the burst failed ({proc.returncode})")
    return [float(x) for x in json.loads(answer)]


async def send(url: str, deliveries: list[tuple[str, dict[str, str]]]) -> list[float]:
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(body: bytes, headers: dict[str, str]) -> None:
            start = time.perf_counter()
            async with session.post(
                url + "/api/github/webhooks", data=body, headers=headers
            ) as resp:
                await resp.read()
                if resp.status != 202:
                    raise RuntimeError(f"delivery answered {resp.status}")
            latencies.append(time.perf_counter() - start)

        await asyncio.gather(*(one(b.encode(), h) for b, h in deliveries))
    return latencies


async def completed(fake: FakeGitHub, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        done = [r for r in fake.check_runs_named("flux-review") if r.status == "completed"]
        if len(done) >= count:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{len(done)} of {count} reviews completed in {timeout}s")
        await asyncio.sleep(0.02)


def small_repo(git: GitRepo) -> None:
    """A cluster applying apps/podinfo raw; the PR changes 3 files, 2 of them into findings."""
    names = ("podinfo", "worker", "api")
    files = {f"apps/podinfo/{n}.yaml": deployment(f"ghcr.io/example/{n}:1.0", n) for n in names}
    files["apps/podinfo/kustomization.yaml"] = "resources:\n" + "".join(
        f"  - {n}.yaml\n" for n in names
    )
    files["clusters/prod/flux-system/gotk-sync.yaml"] = SYNC
    files["clusters/prod/apps.yaml"] = flux_kustomization("./apps/podinfo")
    git.commit("cluster", files)
    git.branch("feature")
    git.commit(
        "change",
        {
            "apps/podinfo/podinfo.yaml": deployment(TEMPLATED, "podinfo"),
            "apps/podinfo/worker.yaml": deployment(TEMPLATED, "worker"),
            "apps/podinfo/api.yaml": deployment("ghcr.io/example/api:2.0", "api"),
        },
    )
    git.checkout("main")


def big_repo(git: GitRepo, apps: int) -> None:
    """The home-ops-shaped repository (bench/homeops.py) on `main`, with branches `pr-0`
    to `pr-3` changing 3 files each (different apps) and `wide` changing 100."""
    files = homeops.generate(apps)
    git.commit("home-ops", files)
    data = {p: t.encode() for p, t in files.items()}
    branches = [(f"pr-{i}", homeops.pull_request(data, 3, start=1 + 2 * i)) for i in range(4)]
    branches.append(("wide", homeops.pull_request(data, 100, start=20)))
    for branch, head in branches:
        git.branch(branch, "main")
        git.commit(branch, {p: d.decode() for p, d in head.items() if data.get(p) != d})
    git.checkout("main")


def key_pem() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


async def run(args: argparse.Namespace, redis_url: str, tmp: Path) -> None:
    private, public = key_pem()
    results: dict[str, Any] = {}
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    rds = aioredis.Redis.from_url(redis_url)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("REDIS_")},
        "PRIVATE_KEY": private,
        "WEBHOOK_SECRET": SECRET,
        "REDIS_URL": redis_url,
        "REDIS_PREFIX": prefix,
        "GITHUB_WRITE_INTERVAL": "0",
        "HOST": "127.0.0.1",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        "PYTHONPATH": str(ROOT),
    }
    if not args.skip_small:
        await small_part(args, public, env, rds, results, tmp)
    else:
        results["rss_web"] = results["rss_worker_small"] = 0.0
    await big_part(args, public, env, rds, results, tmp)


async def small_part(
    args: argparse.Namespace,
    public: str,
    env: dict[str, str],
    rds: Any,
    results: dict[str, Any],
    tmp: Path,
) -> None:
    """A small repository, for the burst, the throughput and the calls."""
    prefix = env["REDIS_PREFIX"]
    git = GitRepo(tmp / "small")
    small_repo(git)
    fake = FakeGitHub(git, app_public_key=public)
    await fake.start()
    env = {**env, "APP_ID": str(fake.app_id), "GITHUB_API_URL": fake.url}
    procs = Procs(env, tmp)
    try:
        nothing_port = free_port()
        nothing = procs.start("-c", NOTHING, str(nothing_port))
        web_port = free_port()
        web = procs.start("-m", "bot", "serve", "--no-worker", "--port", str(web_port))
        web_url = f"http://127.0.0.1:{web_port}"
        await wait_http(f"http://127.0.0.1:{nothing_port}/", 30)
        await wait_http(web_url + "/healthz", 30)

        prs = [fake.add_pull("feature") for _ in range(args.burst)]
        with git.resolving_once():
            deliveries = [
                signed(fake.webhook_payload("pull_request.opened", pr=pr), "pull_request")
                for pr in prs
            ]
        # Warm both up (imports, first connections), then the burst.
        await burst(f"http://127.0.0.1:{nothing_port}", deliveries[:5])
        base_lat = await burst(f"http://127.0.0.1:{nothing_port}", deliveries)
        app_lat = await burst(web_url, deliveries)
        results["ack"] = (base_lat, app_lat)
        procs.stop(nothing)
        print(
            f"ack under a burst of {args.burst}: flux-review p50 "
            f"{percentile(app_lat, 0.5) * 1000:.1f} ms, p99 {percentile(app_lat, 0.99) * 1000:.1f}"
            f" ms; do-nothing aiohttp receiver p50 {percentile(base_lat, 0.5) * 1000:.1f} ms, "
            f"p99 {percentile(base_lat, 0.99) * 1000:.1f} ms",
            flush=True,
        )
        async with aiohttp.ClientSession() as session, session.get(web_url + "/metrics") as resp:
            print(f"  {server_side_p99(await resp.text())}", flush=True)
        queued = await rds.hlen(f"{prefix}:jobs")
        print(f"  {queued} reviews queued in Redis after the burst (one per PR)", flush=True)

        # -- reviews per second: the queued burst, worked off by 1 then 4 processes -----
        done_before = 0
        rates: dict[int, float] = {}
        for workers in (1, 4):
            target = done_before + args.reviews
            calls_before = len(fake.requests)
            start = time.perf_counter()
            started = [procs.start("-m", "bot", "worker") for _ in range(workers)]
            await completed(fake, target, 600)
            elapsed = time.perf_counter() - start
            for proc in started:
                os.killpg(proc.pid, signal.SIGSTOP)  # freeze: the count stays exact
            await asyncio.sleep(0.2)
            finished = len(
                [r for r in fake.check_runs_named("flux-review") if r.status == "completed"]
            )
            rates[workers] = (finished - done_before) / elapsed
            calls = len(fake.requests) - calls_before
            print(
                f"reviews/s with {workers} worker process{'es' if workers > 1 else ''} "
                f"(REVIEW_WORKERS=4 each, process start included): {rates[workers]:.1f} "
                f"({finished - done_before} reviews in {elapsed:.1f} s, "
                f"{calls / max(finished - done_before, 1):.1f} API calls each)",
                flush=True,
            )
            done_before = finished
            for proc in started:
                os.killpg(proc.pid, signal.SIGCONT)
                procs.stop(proc)
            done_before = len(
                [r for r in fake.check_runs_named("flux-review") if r.status == "completed"]
            )
        # API calls of one review with findings: the rest of the burst is dropped, one
        # worker is started (it mints its installation token on the way) and one PR queued.
        await rds.delete(*(f"{prefix}:{k}" for k in ("jobs", "ready", "active", "leases")))
        one = fake.add_pull("feature")
        worker = procs.start("-m", "bot", "worker")
        await asyncio.sleep(3.0)
        mark = len(fake.requests)
        body, headers = signed(fake.webhook_payload("pull_request.opened", pr=one), "pull_request")
        await send(web_url, [(body.decode(), headers)])
        await completed(fake, done_before + 1, 60)
        # The inline comments follow the completed check run.
        deadline = time.monotonic() + 60
        while not fake.reviews_on(one.number) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        review_calls = [r for r in fake.requests[mark:] if not r.path.startswith("/_")]
        named = ", ".join(f"{r.method} {r.path.split(fake.full_name)[-1]}" for r in review_calls)
        print(
            f"API calls for one review with findings (3-file PR): {len(review_calls)} ({named})",
            flush=True,
        )
        results["rss_web"] = rss_mib(web.pid)
        results["rss_worker_small"] = rss_mib(worker.pid)
        procs.stop(worker)
        procs.stop(web)
    finally:
        procs.stop_all()
        await fake.close()


async def big_part(
    args: argparse.Namespace,
    public: str,
    env: dict[str, str],
    rds: Any,
    results: dict[str, Any],
    tmp: Path,
) -> None:
    """3-file PRs on the 10,000-manifest repository, cold and warm."""
    prefix = env["REDIS_PREFIX"]
    git = GitRepo(tmp / "big")
    big_repo(git, args.apps)
    files_in_repo = len(git.git("ls-files").split())
    fake = FakeGitHub(git, app_public_key=public)
    await fake.start()
    try:
        paced: dict[str, float] = {}
        unpaced: dict[str, float] = {}
        # As deployed (one write a second per installation), then without the pacing: the
        # difference is what the pacing costs.
        for interval, into, branches in (
            ("1", paced, (("cold", "pr-0"), ("warm", "pr-1"), ("100 files, warm", "wide"))),
            ("0", unpaced, (("cold", "pr-2"), ("warm", "pr-3"))),
        ):
            big_env = {
                **env,
                "APP_ID": str(fake.app_id),
                "GITHUB_API_URL": fake.url,
                "REDIS_PREFIX": f"{prefix}-big-{interval}",
                "GITHUB_WRITE_INTERVAL": interval,
                # Each review's outcome line says where its time went.
                "LOG_LEVEL": "INFO",
            }
            procs = Procs(big_env, tmp)
            try:
                web_port = free_port()
                web = procs.start("-m", "bot", "serve", "--no-worker", "--port", str(web_port))
                worker = procs.start("-m", "bot", "worker")
                web_url = f"http://127.0.0.1:{web_port}"
                await wait_http(web_url + "/healthz", 30)
                await asyncio.sleep(2.0)  # the worker's imports
                for label, branch in branches:
                    # Pull requests a second apart at least: the pacing measured is the
                    # review's own, not the previous review's last write.
                    await asyncio.sleep(1.5)
                    done = len(
                        [r for r in fake.check_runs_named("flux-review") if r.status == "completed"]
                    )
                    pr = fake.add_pull(branch)
                    payload = fake.webhook_payload("pull_request.opened", pr=pr)
                    body, headers = signed(payload, "pull_request")
                    start = time.perf_counter()
                    await send(web_url, [(body.decode(), headers)])
                    await completed(fake, done + 1, 600)
                    into[label] = elapsed = time.perf_counter() - start
                    run = [
                        r for r in fake.check_runs_named("flux-review") if r.status == "completed"
                    ][-1]
                    pacing = "paced 1 write/s" if interval == "1" else "no pacing"
                    print(
                        f"delivery to completed check, {label} ({pacing}), on the "
                        f"{args.apps}-app home-ops repository ({files_in_repo} files): "
                        f"{elapsed:.2f} s ({run.conclusion}: {run.title}); "
                        f"worker RSS {rss_mib(worker.pid):.0f} MiB",
                        flush=True,
                    )
                    phases = review_phases(procs, run.head_sha)
                    if phases:
                        print(f"  in the worker: {phases}", flush=True)
                if interval == "1":
                    print(
                        f"RSS: web {rss_mib(web.pid):.0f} MiB (after the burst: "
                        f"{results['rss_web']:.0f} MiB); worker {rss_mib(worker.pid):.0f} MiB "
                        f"after the big reviews ({results['rss_worker_small']:.0f} MiB after "
                        "small ones)",
                        flush=True,
                    )
                    peak = rss_mib(worker.pid, "VmHWM")
                    verdict = "ok" if peak <= 400 else f"MISSED by {peak / 400 - 1:.0%}"
                    print(
                        f"worker peak RSS over the cold, warm and 100-file reviews: {peak:.0f} "
                        f"MiB (target <= 400 MiB: {verdict})",
                        flush=True,
                    )
            finally:
                procs.stop_all()
        for label in ("cold", "warm"):
            share = max(paced[label] - unpaced[label], 0.0) / paced[label]
            target = 6.0 if label == "cold" else 3.0
            verdict = (
                "ok" if paced[label] <= target else f"MISSED by {paced[label] / target - 1:.0%}"
            )
            print(
                f"3-file PR, {label}: {paced[label]:.2f} s as deployed (target <= {target:g} s: "
                f"{verdict}), {unpaced[label]:.2f} s without write pacing: "
                f"{share:.0%} of it is GitHub's one-write-a-second pacing",
                flush=True,
            )
    finally:
        await fake.close()
        keys = [k async for k in rds.scan_iter(match=f"{prefix}*")]
        if keys:
            await rds.delete(*keys)
        await rds.aclose()


def review_phases(procs: Procs, head_sha: str) -> str | None:
    """What the worker's log says a review of `head_sha` spent its time on (listing,
    trees, analysis, check run), from the line it logs with the review's outcome."""
    pattern = re.compile(rf" on {head_sha[:12]}: .* \((listing [^)]*)\)$")
    for log in sorted(procs.logdir.glob("proc-*.log")):
        for line in reversed(log.read_text(errors="replace").splitlines()):
            found = pattern.search(line)
            if found:
                return found.group(1)
    return None


@contextlib.contextmanager
def redis() -> Iterator[str]:
    if os.environ.get("REDIS_URL"):
        yield os.environ["REDIS_URL"]
        return
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("bench/service.py needs redis-server on PATH, or REDIS_URL")
    with own_redis_server(binary) as url:
        yield url


def main() -> None:
    if sys.argv[1:2] == ["--send"]:
        url, path = sys.argv[2:4]
        print(json.dumps(asyncio.run(send(url, json.loads(Path(path).read_text())))))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--burst", type=int, default=500)
    parser.add_argument("--reviews", type=int, default=60)
    parser.add_argument("--apps", type=int, default=2000)
    parser.add_argument("--logs", type=Path, help="keep the processes' logs here")
    parser.add_argument(
        "--skip-small", action="store_true", help="only the 10,000-manifest repository's reviews"
    )
    args = parser.parse_args()
    with redis() as url, tempfile.TemporaryDirectory(prefix="flux-review-bench-") as tmp:
        try:
            asyncio.run(run(args, url, Path(tmp)))
        finally:
            if args.logs:
                args.logs.mkdir(parents=True, exist_ok=True)
                for log in Path(tmp).glob("proc-*.log"):
                    shutil.copy(log, args.logs / log.name)


if __name__ == "__main__":
    main()
