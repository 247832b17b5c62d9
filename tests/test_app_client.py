"""The GitHub client against the fake GitHub: auth, token cache, retries, rate limits."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import aiohttp
import gidgethub
import jwt
import pytest

from bot.github import (
    AppAuth,
    GitApiLimits,
    GitHubClient,
    GitHubUnavailable,
    RepoRef,
    RetryPolicy,
    SnapshotTooLarge,
    TarballLimits,
    TreeStore,
    WriteThrottle,
    no_blind_retry,
)
from bot.github.client import rate_limit_delay
from tests.fakegithub import FakeGitHub, GitRepo

APP_ID = 4242
INSTALLATION = 99
REPO = RepoRef("octo-org", "gitops")
PR_URL = "/repos/{owner}/{repo}/pulls/{pull_number}"


class Sleeps:
    """Records requested waits; really sleeps only a thousandth of them."""

    def __init__(self, on_sleep: Callable[[float], None] | None = None) -> None:
        self.waits: list[float] = []
        self.on_sleep = on_sleep

    async def __call__(self, seconds: float) -> None:
        import asyncio

        self.waits.append(seconds)
        if self.on_sleep is not None:
            self.on_sleep(seconds)
        await asyncio.sleep(min(seconds / 1000, 0.05))


class Harness:
    def __init__(self, fake: FakeGitHub, session: aiohttp.ClientSession, key: str) -> None:
        self.fake = fake
        self.session = session
        self.sleeps = Sleeps()
        self.calls: list[tuple[str, str]] = []
        self.auth = AppAuth(APP_ID, key)
        self.policy = RetryPolicy(attempts=4, base_delay=1.0, jitter=0.0)

    def client(
        self,
        *,
        base_url: str | None = None,
        installation: int | None = INSTALLATION,
        throttle: WriteThrottle | None = None,
    ) -> GitHubClient:
        return GitHubClient(
            self.session,
            base_url=base_url or self.fake.url,
            auth=self.auth,
            installation_id=installation,
            policy=self.policy,
            sleep=self.sleeps,
            on_response=lambda m, s: self.calls.append((m, s)),
            throttle=throttle,
        )

    def token_requests(self) -> int:
        return len(self.fake.requests_to("POST", r"/access_tokens$"))


@pytest.fixture
def repo_with_pr(git_repo: GitRepo) -> GitRepo:
    git_repo.commit("base", {"README.md": "hello\n"})
    git_repo.branch("feature")
    git_repo.commit("change", {"README.md": "hello\nworld\n"})
    return git_repo


@pytest.fixture
async def h(
    fake_github: FakeGitHub, repo_with_pr: GitRepo, github_app_key: str
) -> AsyncIterator[Harness]:
    fake_github.add_pull("feature")
    async with aiohttp.ClientSession() as session:
        yield Harness(fake_github, session, github_app_key)


def test_app_jwt_claims(github_app_key: str, github_app_public_key: str) -> None:
    token = AppAuth(APP_ID, github_app_key).app_jwt()
    assert jwt.get_unverified_header(token)["alg"] == "RS256"
    claims = jwt.decode(token, github_app_public_key, algorithms=["RS256"])
    now = time.time()
    assert claims["iss"] == str(APP_ID)
    assert now - 62 <= claims["iat"] <= now - 58  # backdated for clock drift
    assert claims["exp"] <= now + 600  # GitHub's 10-minute ceiling
    assert claims["exp"] - claims["iat"] <= 600


async def test_installation_token_is_cached(h: Harness) -> None:
    gh = h.client()
    for _ in range(3):
        pr = await gh.getitem(PR_URL, REPO.vars(pull_number=1))
        assert pr["number"] == 1
    assert h.token_requests() == 1
    api_calls = h.fake.requests_to("GET", r"/pulls/1$")
    assert all(r.headers["Authorization"].startswith("token ghs_") for r in api_calls)
    # Another client for the same installation reuses the token too.
    await h.client().getitem(PR_URL, REPO.vars(pull_number=1))
    assert h.token_requests() == 1


async def test_token_is_refreshed_before_it_expires(
    fake_github: FakeGitHub, repo_with_pr: GitRepo, github_app_key: str
) -> None:
    fake_github.add_pull("feature")
    fake_github.token_ttl = timedelta(minutes=5, seconds=20)
    offset = [0.0]
    auth = AppAuth(APP_ID, github_app_key, clock=lambda: time.time() + offset[0])
    async with aiohttp.ClientSession() as session:
        gh = GitHubClient(
            session, base_url=fake_github.url, auth=auth, installation_id=INSTALLATION
        )
        await gh.getitem(PR_URL, REPO.vars(pull_number=1))
        assert auth.cached(INSTALLATION)
        offset[0] = 30.0  # now within 5 minutes of expires_at
        assert not auth.cached(INSTALLATION)
        await gh.getitem(PR_URL, REPO.vars(pull_number=1))
    assert len(fake_github.requests_to("POST", r"/access_tokens$")) == 2


async def test_401_drops_the_token_and_retries_once(h: Harness) -> None:
    gh = h.client()
    await gh.getitem(PR_URL, REPO.vars(pull_number=1))
    h.fake.expire_tokens()  # e.g. revoked, or permissions changed
    pr = await gh.getitem(PR_URL, REPO.vars(pull_number=1))
    assert pr["number"] == 1
    assert h.token_requests() == 2
    assert [s for m, s in h.calls if m == "GET"] == ["200", "401", "200"]


async def test_persistent_401_is_not_retried_forever(h: Harness) -> None:
    h.fake.fail_forever("GET", r"/pulls/1$", 401)
    with pytest.raises(gidgethub.BadRequest) as info:
        await h.client().getitem(PR_URL, REPO.vars(pull_number=1))
    assert int(info.value.status_code) == 401
    assert len(h.fake.requests_to("GET", r"/pulls/1$")) == 2


async def test_5xx_is_retried_with_exponential_backoff(h: Harness) -> None:
    h.fake.fail("GET", r"/pulls/1$", 502, times=2)
    pr = await h.client().getitem(PR_URL, REPO.vars(pull_number=1))
    assert pr["number"] == 1
    assert h.sleeps.waits == [1.0, 2.0]
    assert [s for m, s in h.calls if m == "GET"] == ["502", "502", "200"]


async def test_5xx_gives_up_after_bounded_attempts(h: Harness) -> None:
    h.fake.fail_forever("GET", r"/pulls/1$", 503)
    with pytest.raises(gidgethub.GitHubBroken):
        await h.client().getitem(PR_URL, REPO.vars(pull_number=1))
    assert len(h.fake.requests_to("GET", r"/pulls/1$")) == h.policy.attempts


async def test_permission_403_is_not_retried(h: Harness) -> None:
    h.fake.fail(
        "GET",
        r"/pulls/1$",
        403,
        body={"message": "Resource not accessible by integration", "status": "403"},
    )
    with pytest.raises(gidgethub.BadRequest):
        await h.client().getitem(PR_URL, REPO.vars(pull_number=1))
    assert h.sleeps.waits == []


async def test_secondary_rate_limit_waits_at_least_a_minute(h: Harness) -> None:
    h.fake.fail_secondary_rate_limit("GET", r"/pulls/1$", retry_after=None)
    await h.client().getitem(PR_URL, REPO.vars(pull_number=1))
    assert len(h.sleeps.waits) == 1 and h.sleeps.waits[0] >= 60


async def test_retry_after_is_honoured(h: Harness) -> None:
    h.fake.fail_secondary_rate_limit("GET", r"/pulls/1$", retry_after=7, status=429)
    await h.client().getitem(PR_URL, REPO.vars(pull_number=1))
    assert h.sleeps.waits == [7.0]


async def test_primary_rate_limit_waits_until_reset(h: Harness) -> None:
    gh = h.client()
    await gh.getitem(PR_URL, REPO.vars(pull_number=1))
    h.fake.set_rate_limit(0, reset_in=20)
    # The fake's clock does not move with the scaled sleep: lift the limit when we wait.
    h.sleeps.on_sleep = lambda _s: h.fake.set_rate_limit(5000)
    await gh.getitem(PR_URL, REPO.vars(pull_number=1))
    assert len(h.sleeps.waits) == 1 and 18 <= h.sleeps.waits[0] <= 22


async def test_rate_limit_reset_too_far_away_fails_at_once(h: Harness) -> None:
    gh = h.client()
    await gh.getitem(PR_URL, REPO.vars(pull_number=1))
    h.fake.set_rate_limit(0, reset_in=3000)
    with pytest.raises(gidgethub.RateLimitExceeded):
        await gh.getitem(PR_URL, REPO.vars(pull_number=1))
    assert h.sleeps.waits == []


def test_rate_limit_delay_rules() -> None:
    policy = RetryPolicy()
    now = 1000.0
    assert rate_limit_delay(policy, 403, {"retry-after": "30"}, "", 1, now) == 30
    assert rate_limit_delay(policy, 429, {}, "", 1, now) == 60
    assert (
        rate_limit_delay(policy, 403, {}, "You have exceeded a secondary rate limit", 2, now) == 120
    )
    assert (
        rate_limit_delay(
            policy, 403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1010"}, "", 1, now
        )
        == 11
    )
    assert rate_limit_delay(policy, 403, {}, "Resource not accessible", 1, now) is None
    assert rate_limit_delay(policy, 500, {"retry-after": "1"}, "", 1, now) is None


async def test_connection_errors_are_retried_then_reported(h: Harness) -> None:
    gh = h.client(base_url="http://127.0.0.1:9", installation=None)  # nothing listens there
    with pytest.raises(GitHubUnavailable):
        await gh.getitem("/rate_limit")
    assert len(h.sleeps.waits) == h.policy.attempts - 1
    assert h.calls == [("GET", "error")] * h.policy.attempts


async def test_a_write_that_may_have_landed_is_not_repeated_blindly(h: Harness) -> None:
    h.fake.fail("POST", r"/check-runs$", 502)
    gh = h.client()
    body = {"name": "flux-review", "head_sha": h.fake.head_sha(1)}
    with no_blind_retry(), pytest.raises(gidgethub.GitHubBroken):
        await gh.post("/repos/{owner}/{repo}/check-runs", REPO.vars(), data=body)
    assert len(h.fake.requests_to("POST", r"/check-runs$")) == 1
    # Outside the block, the same write is retried.
    h.fake.fail("POST", r"/check-runs$", 502)
    await gh.post("/repos/{owner}/{repo}/check-runs", REPO.vars(), data=body)
    assert len(h.fake.requests_to("POST", r"/check-runs$")) == 3


async def test_writes_are_spaced_per_installation(h: Harness) -> None:
    now = [100.0]
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    throttle = WriteThrottle(1.0, sleep=sleep, clock=lambda: now[0])
    gh = h.client(throttle=throttle)
    run = await gh.post(
        "/repos/{owner}/{repo}/check-runs",
        REPO.vars(),
        data={"name": "flux-review", "head_sha": h.fake.head_sha(1)},
    )
    now[0] += 0.25
    await gh.patch(
        "/repos/{owner}/{repo}/check-runs/{id}",
        REPO.vars(id=run["id"]),
        data={"status": "in_progress"},
    )
    # Reads are not spaced; a write to another installation is not held up.
    await gh.getitem(PR_URL, REPO.vars(pull_number=1))
    await throttle.wait(12345)
    assert waits == [pytest.approx(0.75)]


async def test_tarball_redirect_does_not_carry_the_token_to_another_host(h: Harness) -> None:
    # The App talks to the API as "localhost"; the fake redirects to 127.0.0.1, a different
    # origin, as GitHub redirects from api.github.com to codeload.github.com.
    port = h.fake.url.rsplit(":", 1)[1]
    gh = h.client(base_url=f"http://localhost:{port}")
    store = TreeStore(TarballLimits(), cache_bytes=10 * 1024 * 1024)
    sha = h.fake.head_sha(1)
    tree = await store.tree(gh, REPO, sha)
    assert tree.read("README.md") == b"hello\nworld\n"
    (api,) = h.fake.requests_to("GET", r"/tarball/")
    (codeload,) = h.fake.requests_to("GET", r"^/_codeload/")
    assert api.headers["Authorization"].startswith("token ")
    assert "Authorization" not in codeload.headers
    # Cached by commit: the second read costs no request.
    await store.tree(gh, REPO, sha)
    assert len(h.fake.requests_to("GET", r"/tarball/")) == 1


async def test_cached_commits_hold_each_distinct_content_once(h: Harness) -> None:
    git = h.fake.git
    shared = "".join(f"key{n}: {'x' * 60}\n" for n in range(2000))  # ~130 kB
    git.commit("big", {"apps/big.yaml": shared, "apps/copy.yaml": shared})
    base = git.head()
    head = git.commit("small change", {"apps/small.yaml": "kind: ConfigMap\n"})
    store = TreeStore(TarballLimits(), cache_bytes=10 * 1024 * 1024)
    base_tree = await store.tree(h.client(), REPO, base)
    head_tree = await store.tree(h.client(), REPO, head)
    # One object for a content, whichever commit or path holds it.
    assert head_tree.read("apps/big.yaml") is base_tree.read("apps/big.yaml")
    assert head_tree.read("apps/copy.yaml") is base_tree.read("apps/big.yaml")
    assert head_tree.blob_id("apps/big.yaml") == git.git("rev-parse", f"{head}:apps/big.yaml")
    # Both commits cost one copy of the large content, not four.
    assert len(shared) < store.cached_bytes < 2 * len(shared)
    # Room for one copy of it: both commits fit. A commit with other content pushes the
    # least recently used ones out, and their content goes with the last one holding it.
    small = TreeStore(TarballLimits(), cache_bytes=len(shared) + 64 * 1024)
    await small.tree(h.client(), REPO, base)
    await small.tree(h.client(), REPO, head)
    await small.tree(h.client(), REPO, base)  # used again: the head is now the oldest
    assert small.cached(REPO, base) and small.cached(REPO, head)
    other = git.commit(
        "rewrite", {"apps/big.yaml": shared.replace("x", "y"), "apps/copy.yaml": None}
    )
    await small.tree(h.client(), REPO, other)
    assert small.cached(REPO, other) and not small.cached(REPO, head)
    assert not small.cached(REPO, base)  # both large contents do not fit together
    assert len(shared) < small.cached_bytes < len(shared) + 64 * 1024


async def test_tarball_over_the_limit_is_refused(h: Harness) -> None:
    h.fake.git.commit("a manifest", {"app.yaml": "kind: ConfigMap\n"})
    sha = h.fake.git.head()
    h.fake.set_tarball(sha, b"\x1f\x8b" + b"\0" * 5000)
    # The download stops at the limit; the Git database API is the way around it, but here
    # it may not fetch a single blob either.
    store = TreeStore(
        TarballLimits(max_compressed=4096), cache_bytes=1024, git_api=GitApiLimits(max_blobs=0)
    )
    with pytest.raises(SnapshotTooLarge, match=r"GIT_API_MAX_BLOBS.*MAX_TARBALL_BYTES"):
        await store.tree(h.client(), REPO, sha)
    assert h.fake.requests_to("GET", r"/git/blobs/") == []


async def test_tarball_over_the_limit_falls_back_to_the_git_database(h: Harness) -> None:
    sha = h.fake.head_sha(1)
    h.fake.set_tarball(sha, b"\x1f\x8b" + b"\0" * 5000)
    store = TreeStore(TarballLimits(max_compressed=4096), cache_bytes=1024 * 1024)
    fetched = await store.fetch(h.client(), REPO, sha)
    # README.md is listed (it exists) but not downloaded: the analysis never reads it.
    assert list(fetched.tree.paths()) == ["README.md"]
    assert fetched.tree.read("README.md") is None
    assert fetched.tree.blob_id("README.md") is not None
    assert "MAX_TARBALL_BYTES" in fetched.notes[0] and "Git database" in fetched.notes[0]
    assert h.fake.requests_to("GET", r"/git/blobs/") == []


async def test_tarball_5xx_is_retried(h: Harness) -> None:
    h.fake.fail("GET", r"/tarball/", 502)
    store = TreeStore(TarballLimits(), cache_bytes=1024 * 1024)
    tree = await store.tree(h.client(), REPO, h.fake.head_sha(1))
    assert tree.read("README.md") is not None
    assert h.sleeps.waits == [1.0]


async def test_pr_files_are_paginated_with_statuses_and_renames(
    fake_github: FakeGitHub, git_repo: GitRepo, github_app_key: str
) -> None:
    from bot.analysis import ChangeStatus
    from bot.github import list_pull_request_files

    git_repo.commit("base", {"old/name.yaml": "a: 1\nb: 2\nc: 3\n", "gone.yaml": "x: 1\n"})
    git_repo.branch("many")
    git_repo.rename("old/name.yaml", "new/name.yaml")
    files: dict[str, str | None] = {f"apps/f{n:03}.yaml": f"n: {n}\n" for n in range(150)}
    files["gone.yaml"] = None
    git_repo.commit("many", files)
    pr = fake_github.add_pull("many")
    async with aiohttp.ClientSession() as session:
        gh = GitHubClient(
            session,
            base_url=fake_github.url,
            auth=AppAuth(APP_ID, github_app_key),
            installation_id=INSTALLATION,
        )
        listed = await list_pull_request_files(gh, REPO, pr.number)
    pages = fake_github.requests_to("GET", r"/pulls/\d+/files$")
    assert len(pages) == 2 and pages[0].query["per_page"] == "100"
    assert listed.complete
    changed = {c.path: c for c in listed.changed() or []}
    assert len(changed) == 152
    assert changed["new/name.yaml"].status is ChangeStatus.RENAMED
    assert changed["new/name.yaml"].previous_path == "old/name.yaml"
    assert changed["gone.yaml"].status is ChangeStatus.REMOVED
    assert changed["apps/f007.yaml"].status is ChangeStatus.ADDED
    assert listed.patches()["apps/f007.yaml"] == "@@ -0,0 +1 @@\n+n: 7"
