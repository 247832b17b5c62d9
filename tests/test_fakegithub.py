"""Tests of the fake GitHub itself (tests/fakegithub): if these fail, App tests mean nothing."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import importlib.util
import io
import json
import tarfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from gidgethub import apps
from gidgethub.aiohttp import GitHubAPI

from tests.fakegithub import (
    FakeGitHub,
    GitRepo,
    available_payloads,
    default_validator,
    load_payload,
)
from tests.fakegithub.fixtures import APP_ID, INSTALLATION_ID, OWNER, REPO

ROOT = Path(__file__).resolve().parent.parent
REPO_API = f"/repos/{OWNER}/{REPO}"


class Api:
    """Bare aiohttp client: exact control over headers, no retries, no redirects."""

    def __init__(self, session: aiohttp.ClientSession, fake: FakeGitHub) -> None:
        self.session = session
        self.fake = fake
        self.token = fake.create_token()

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        auth: str | None = "default",
        headers: dict[str, str] | None = None,
        allow_redirects: bool = False,
    ) -> tuple[int, Any, Any]:
        sent = {"User-Agent": "fakegithub-tests", "Accept": "application/vnd.github+json"}
        if auth == "default":
            sent["Authorization"] = f"token {self.token}"
        elif auth is not None:
            sent["Authorization"] = auth
        sent.update(headers or {})
        url = path if path.startswith("http") else self.fake.url + path
        kwargs: dict[str, Any] = {"headers": sent, "allow_redirects": allow_redirects}
        if body is not None:
            kwargs["json"] = body
        async with self.session.request(method, url, **kwargs) as resp:
            raw = await resp.read()
            data: Any = raw
            if resp.content_type == "application/json" and raw:
                data = json.loads(raw)
            return resp.status, resp.headers, data


@pytest.fixture
async def api(fake_github: FakeGitHub) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, fake_github)


def lines(n: int, prefix: str = "line") -> str:
    return "".join(f"{prefix} {i}\n" for i in range(1, n + 1))


@pytest.fixture
def pr_repo(git_repo: GitRepo) -> GitRepo:
    """main + branch `feature` with one file of each GitHub status."""
    git_repo.commit(
        "base",
        {
            "clusters/prod/app.yaml": lines(40),
            "old/name.yaml": lines(10, "kept"),
            "gone.yaml": "bye\n",
            "logo.png": b"\x89PNG\x00\x01",
        },
    )
    git_repo.branch("feature")
    text = lines(40).replace("line 5\n", "line five\n").replace("line 30\n", "line thirty\n")
    git_repo.write({"clusters/prod/app.yaml": text, "gone.yaml": None, "new.yaml": "a: 1\n"})
    git_repo.write({"logo.png": b"\x89PNG\x00\x02"})
    git_repo.rename("old/name.yaml", "new/name.yaml")
    git_repo.commit("feature work")
    git_repo.checkout("main")
    return git_repo


# -- authentication --------------------------------------------------------------------------


def _jwt(key: str, **claims: Any) -> str:
    now = int(time.time())
    payload = {"iat": now - 60, "exp": now + 540, "iss": str(APP_ID), **claims}
    return jwt.encode(payload, key, algorithm="RS256")


async def test_access_token_requires_app_jwt(
    api: Api, fake_github: FakeGitHub, github_app_key: str
) -> None:
    path = f"/app/installations/{INSTALLATION_ID}/access_tokens"
    assert (await api.call("POST", path, auth=None))[0] == 401
    # An installation token is not an App JWT.
    assert (await api.call("POST", path, auth=f"Bearer {api.token}"))[0] == 401
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_pem = other_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    status, _, body = await api.call("POST", path, auth=f"Bearer {_jwt(other_pem)}")
    assert (status, body["message"]) == (401, "A JSON web token could not be decoded")
    now = int(time.time())
    too_long = _jwt(github_app_key, iat=now - 10, exp=now + 700)
    status, _, body = await api.call("POST", path, auth=f"Bearer {too_long}")
    assert status == 401 and "too far in the future" in body["message"]
    expired = _jwt(github_app_key, iat=now - 700, exp=now - 100)
    assert (await api.call("POST", path, auth=f"Bearer {expired}"))[0] == 401
    wrong_app = _jwt(github_app_key, iss="1")
    assert (await api.call("POST", path, auth=f"Bearer {wrong_app}"))[0] == 401
    unknown = "/app/installations/12345/access_tokens"
    assert (await api.call("POST", unknown, auth=f"Bearer {_jwt(github_app_key)}"))[0] == 404

    status, _, body = await api.call("POST", path, auth=f"Bearer {_jwt(github_app_key)}")
    assert status == 201
    assert body["token"].startswith("ghs_") and len(body["token"]) == 40
    expires = time.mktime(time.strptime(body["expires_at"], "%Y-%m-%dT%H:%M:%SZ"))
    assert 3500 < expires - time.mktime(time.gmtime()) <= 3600
    assert body["token"] in fake_github.tokens
    # GitHub's newer stateless tokens are far longer than 40 characters.
    fake_github.token_format = "stateless"
    assert fake_github.create_token().startswith(f"ghs_{APP_ID}_")


async def test_gidgethub_app_flow_against_fake(
    fake_github: FakeGitHub, pr_repo: GitRepo, github_app_key: str
) -> None:
    fake_github.add_pull("feature")
    async with aiohttp.ClientSession() as session:
        gh = GitHubAPI(session, "flux-review-tests", base_url=fake_github.url)
        token = await apps.get_installation_access_token(
            gh,
            installation_id=str(INSTALLATION_ID),
            app_id=str(APP_ID),
            private_key=github_app_key,
        )
        gh = GitHubAPI(
            session, "flux-review-tests", oauth_token=token["token"], base_url=fake_github.url
        )
        pr = await gh.getitem(f"{REPO_API}/pulls/1")
        assert pr["head"]["sha"] == pr_repo.rev_parse("feature")
        files = [f async for f in gh.getiter(f"{REPO_API}/pulls/1/files?per_page=2")]
    assert sorted(f["filename"] for f in files) == [
        "clusters/prod/app.yaml",
        "gone.yaml",
        "logo.png",
        "new.yaml",
        "new/name.yaml",
    ]


async def test_installation_token_required_and_expiry(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo
) -> None:
    fake_github.add_pull("feature")
    path = f"{REPO_API}/pulls/1"
    assert (await api.call("GET", path))[0] == 200
    assert (await api.call("GET", path, auth=f"Bearer {api.token}"))[0] == 200
    status, _, body = await api.call("GET", path, auth=None)
    assert status == 401
    status, _, body = await api.call("GET", path, auth="token ghs_nope")
    assert (status, body["message"]) == (401, "Bad credentials")
    fake_github.expire_tokens()
    status, _, body = await api.call("GET", path)
    assert (status, body["message"]) == (401, "Bad credentials")
    # Another repository is invisible, not forbidden.
    api.token = fake_github.create_token()
    assert (await api.call("GET", "/repos/someone/else/pulls/1"))[0] == 404
    fake_github.allow_openapi_errors = True  # the unauthenticated probe above


async def test_user_agent_is_mandatory(api: Api, fake_github: FakeGitHub, pr_repo: GitRepo) -> None:
    fake_github.add_pull("feature")
    async with api.session.get(
        f"{fake_github.url}{REPO_API}/pulls/1",
        headers={"Authorization": f"token {api.token}", "User-Agent": ""},
        skip_auto_headers=["User-Agent"],
    ) as resp:
        assert resp.status == 403


# -- pull request files and pagination -------------------------------------------------------


async def test_files_statuses_patches_and_renames(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo
) -> None:
    pr = fake_github.add_pull("feature")
    fake_github.omit_patch(pr, "new.yaml")
    status, headers, files = await api.call("GET", f"{REPO_API}/pulls/1/files")
    assert status == 200 and "Link" not in headers
    by_name = {f["filename"]: f for f in files}
    assert {n: f["status"] for n, f in by_name.items()} == {
        "clusters/prod/app.yaml": "modified",
        "gone.yaml": "removed",
        "logo.png": "modified",
        "new.yaml": "added",
        "new/name.yaml": "renamed",
    }
    app = by_name["clusters/prod/app.yaml"]
    assert (app["additions"], app["deletions"], app["changes"]) == (2, 2, 4)
    assert app["patch"].startswith("@@ -2,7 +2,7 @@")
    assert "\n-line 5\n+line five\n" in app["patch"]
    assert not app["patch"].endswith("\n")
    assert by_name["new/name.yaml"]["previous_filename"] == "old/name.yaml"
    assert "patch" not in by_name["new/name.yaml"]  # pure rename
    assert "patch" not in by_name["logo.png"]  # binary
    assert "patch" not in by_name["new.yaml"]  # marked as too large by the test
    assert by_name["gone.yaml"]["patch"] == "@@ -1 +0,0 @@\n-bye"
    assert by_name["new.yaml"]["sha"] == pr_repo.git("rev-parse", "feature:new.yaml")


async def test_pagination_link_headers_like_github(
    api: Api, fake_github: FakeGitHub, git_repo: GitRepo
) -> None:
    git_repo.commit("base", {"README.md": "hi\n"})
    git_repo.branch("many")
    git_repo.commit("many", {f"f{i:02}.yaml": f"n: {i}\n" for i in range(7)})
    fake_github.add_pull("many")
    base = f"{fake_github.url}/repositories/{fake_github.repo_id}/pulls/1/files"

    status, headers, page1 = await api.call("GET", f"{REPO_API}/pulls/1/files?per_page=3")
    assert status == 200 and [f["filename"] for f in page1] == ["f00.yaml", "f01.yaml", "f02.yaml"]
    assert headers["Link"] == (
        f'<{base}?per_page=3&page=2>; rel="next", <{base}?per_page=3&page=3>; rel="last"'
    )
    _, headers, page2 = await api.call("GET", f"{REPO_API}/pulls/1/files?per_page=3&page=2")
    assert [f["filename"] for f in page2] == ["f03.yaml", "f04.yaml", "f05.yaml"]
    assert headers["Link"] == (
        f'<{base}?per_page=3&page=1>; rel="prev", <{base}?per_page=3&page=3>; rel="next", '
        f'<{base}?per_page=3&page=3>; rel="last", <{base}?per_page=3&page=1>; rel="first"'
    )
    # Following the link as given (the /repositories/<id> spelling) works.
    _, headers, page3 = await api.call("GET", f"{base}?per_page=3&page=3")
    assert [f["filename"] for f in page3] == ["f06.yaml"]
    assert headers["Link"] == (
        f'<{base}?per_page=3&page=2>; rel="prev", <{base}?per_page=3&page=1>; rel="first"'
    )
    _, _, beyond = await api.call("GET", f"{REPO_API}/pulls/1/files?per_page=3&page=9")
    assert beyond == []
    # Default page size is 30 and per_page is capped at 100.
    _, headers, everything = await api.call("GET", f"{REPO_API}/pulls/1/files?per_page=500")
    assert len(everything) == 7 and "Link" not in headers
    fake_github.allow_openapi_errors = False


async def test_files_capped_at_3000(api: Api, fake_github: FakeGitHub, git_repo: GitRepo) -> None:
    git_repo.commit("base", {"README.md": "hi\n"})
    git_repo.branch("huge")
    git_repo.commit("huge", {f"m/{i:04}.yaml": "x\n" for i in range(3005)})
    fake_github.add_pull("huge")
    _, headers, first = await api.call("GET", f"{REPO_API}/pulls/1/files?per_page=100")
    assert len(first) == 100
    assert 'page=30>; rel="last"' in headers["Link"]
    _, _, last = await api.call("GET", f"{REPO_API}/pulls/1/files?per_page=100&page=30")
    assert len(last) == 100 and last[-1]["filename"] == "m/2999.yaml"
    _, _, past = await api.call("GET", f"{REPO_API}/pulls/1/files?per_page=100&page=31")
    assert past == []


# -- reviews -----------------------------------------------------------------------------------


async def test_review_rejected_whole_when_a_line_is_off_diff(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo
) -> None:
    fake_github.add_pull("feature")
    review = {
        "event": "COMMENT",
        "body": "flux-review found problems",
        "comments": [
            {"path": "clusters/prod/app.yaml", "line": 5, "side": "RIGHT", "body": "ok line"},
            {"path": "clusters/prod/app.yaml", "line": 20, "side": "RIGHT", "body": "off diff"},
        ],
    }
    status, _, body = await api.call("POST", f"{REPO_API}/pulls/1/reviews", review)
    assert status == 422
    assert body["message"] == "Unprocessable Entity"
    assert body["errors"] == ["Pull request review thread line must be part of the diff"]
    assert fake_github.reviews == [] and fake_github.review_comments == []

    review["comments"] = [
        review["comments"][0],
        # LEFT: old-file line numbers; line 5 was removed.
        {"path": "clusters/prod/app.yaml", "line": 5, "side": "LEFT", "body": "was here"},
        # Multi-line comment inside one hunk (context lines 27-33 around line 30).
        {
            "path": "clusters/prod/app.yaml",
            "start_line": 28,
            "line": 31,
            "side": "RIGHT",
            "body": "range",
        },
        {"path": "gone.yaml", "line": 1, "side": "LEFT", "body": "deleted file"},
    ]
    status, _, body = await api.call("POST", f"{REPO_API}/pulls/1/reviews", review)
    assert status == 200, body
    assert body["state"] == "COMMENTED"
    assert body["commit_id"] == pr_repo.rev_parse("feature")
    status, _, listed = await api.call("GET", f"{REPO_API}/pulls/1/comments")
    assert status == 200
    assert [(c["path"], c["line"], c["side"], c["start_line"]) for c in listed] == [
        ("clusters/prod/app.yaml", 5, "RIGHT", None),
        ("clusters/prod/app.yaml", 5, "LEFT", None),
        ("clusters/prod/app.yaml", 31, "RIGHT", 28),
        ("gone.yaml", 1, "LEFT", None),
    ]
    assert all(c["user"]["type"] == "Bot" for c in listed)
    assert listed[0]["user"]["login"] == "flux-review[bot]"
    assert listed[0]["diff_hunk"].startswith("@@ -2,7 +2,7 @@")
    assert listed[0]["diff_hunk"].endswith("+line five")


@pytest.mark.parametrize(
    ("comment", "error"),
    [
        ({"path": "nope.yaml", "line": 1}, "Path could not be resolved"),
        (
            {"path": "clusters/prod/app.yaml", "start_line": 3, "line": 31},
            "Pull request review thread start line must be part of the same hunk as the line.",
        ),
        (
            {"path": "clusters/prod/app.yaml", "start_line": 31, "line": 29},
            "Pull request review thread start line must precede the end line.",
        ),
        (
            {"path": "clusters/prod/app.yaml", "line": 40, "side": "LEFT"},
            "Pull request review thread line must be part of the diff",
        ),
    ],
)
async def test_review_comment_rules(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo, comment: dict[str, Any], error: str
) -> None:
    fake_github.add_pull("feature")
    review = {"event": "COMMENT", "body": "x", "comments": [{**comment, "body": "c"}]}
    status, _, body = await api.call("POST", f"{REPO_API}/pulls/1/reviews", review)
    assert (status, body["errors"]) == (422, [error])


async def test_review_body_required_for_comment(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo
) -> None:
    fake_github.add_pull("feature")
    status, _, _ = await api.call("POST", f"{REPO_API}/pulls/1/reviews", {"event": "COMMENT"})
    assert status == 422
    status, _, body = await api.call("POST", f"{REPO_API}/pulls/1/reviews", {"event": "APPROVE"})
    assert (status, body["state"]) == (200, "APPROVED")


async def test_review_comments_pagination(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo
) -> None:
    fake_github.add_pull("feature")
    for i in range(5):
        fake_github.add_review_comment(1, "clusters/prod/app.yaml", 5, f"old {i}")
    _, headers, first = await api.call("GET", f"{REPO_API}/pulls/1/comments?per_page=2")
    assert [c["body"] for c in first] == ["old 0", "old 1"]
    assert 'rel="next"' in headers["Link"] and 'page=3>; rel="last"' in headers["Link"]


# -- check runs --------------------------------------------------------------------------------


def _notes(n: int, start: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "path": "clusters/prod/app.yaml",
            "start_line": i,
            "end_line": i,
            "annotation_level": "warning",
            "message": f"note {i}",
        }
        for i in range(start, start + n)
    ]


async def test_check_run_annotations_append_and_limits(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo
) -> None:
    sha = pr_repo.rev_parse("feature")
    status, _, run = await api.call(
        "POST",
        f"{REPO_API}/check-runs",
        {"name": "flux-review", "head_sha": sha, "status": "in_progress"},
    )
    assert status == 201 and run["status"] == "in_progress"
    url = f"{REPO_API}/check-runs/{run['id']}"
    output = {"title": "t", "summary": "s"}
    for start in (1, 51):
        status, _, _ = await api.call(
            "PATCH", url, {"output": {**output, "annotations": _notes(50, start)}}
        )
        assert status == 200
    status, _, _ = await api.call("PATCH", url, {"output": {**output, "annotations": _notes(51)}})
    assert status == 422
    assert any("['annotations']" in e for e in fake_github.openapi_errors)  # maxItems: 50
    fake_github.allow_openapi_errors = True
    status, _, done = await api.call(
        "PATCH", url, {"conclusion": "neutral", "output": {**output, "text": "details"}}
    )
    assert status == 200
    assert (done["status"], done["conclusion"]) == ("completed", "neutral")
    assert done["completed_at"] is not None
    assert done["output"]["annotations_count"] == 100
    stored = fake_github.check_runs[run["id"]]
    assert [n["message"] for n in stored.annotations][48:52] == [
        "note 49",
        "note 50",
        "note 51",
        "note 52",
    ]
    assert [method for method, _ in stored.history] == ["POST", "PATCH", "PATCH", "PATCH"]
    status, _, fetched = await api.call("GET", url)
    assert (status, fetched["output"]["text"]) == (200, "details")


@pytest.mark.parametrize(
    "body",
    [
        {"status": "completed"},
        {"output": {"summary": "no title"}},
        {"output": {"title": "no summary"}},
        {"output": {"title": "t", "summary": "x" * 65536}},
        {"output": {"title": "t", "summary": "s", "text": "x" * 65536}},
    ],
)
async def test_check_run_rejections(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo, body: dict[str, Any]
) -> None:
    sha = pr_repo.rev_parse("feature")
    _, _, run = await api.call("POST", f"{REPO_API}/check-runs", {"name": "n", "head_sha": sha})
    status, _, _ = await api.call("PATCH", f"{REPO_API}/check-runs/{run['id']}", body)
    assert status == 422
    status, _, _ = await api.call(
        "POST", f"{REPO_API}/check-runs", {"name": "n", "head_sha": sha, **body}
    )
    assert status == 422
    # Some of these also break the schema (maxLength, required): that is the point.
    fake_github.allow_openapi_errors = True


async def test_check_run_unknown_sha(api: Api, fake_github: FakeGitHub, pr_repo: GitRepo) -> None:
    status, _, body = await api.call(
        "POST", f"{REPO_API}/check-runs", {"name": "n", "head_sha": "0" * 40}
    )
    assert status == 422 and "No commit found" in body["errors"][0]


# -- OpenAPI validation -----------------------------------------------------------------------


def test_validator_catches_bad_requests() -> None:
    validator = default_validator()
    ok = {"name": "flux-review", "head_sha": "a" * 40, "output": {"title": "t", "summary": "s"}}
    assert validator.validate("POST", f"{REPO_API}/check-runs", ok) == []
    typo = {**ok, "output": {"title": "t", "summary": "s", "anotations": []}}
    assert any("anotations" in e for e in validator.validate("POST", "/repos/o/r/check-runs", typo))
    wrong_type = {"event": "COMMENT", "body": "b", "comments": [{"path": "p", "line": "3"}]}
    errors = validator.validate("POST", "/repos/o/r/pulls/1/reviews", wrong_type)
    assert any("'3' is not of type 'integer'" in e for e in errors)
    assert any("'body' is a required property" in e for e in errors)
    assert validator.validate("PATCH", "/repos/o/r/check-runs/x", {}) != []
    assert validator.validate("GET", "/repos/o/r/pulls/1/files?perpage=5") != []
    assert validator.validate("DELETE", "/repos/o/r/pulls/1") != []
    assert validator.validate("GET", "/repos/o/r/contents/deep/dir/file.yaml?ref=main") == []
    assert validator.validate("GET", "/repos/o/r/tarball/refs/heads/feature/x") == []
    started = {"status": "in_progress", "started_at": "yesterday"}
    assert validator.validate("PATCH", "/repos/o/r/check-runs/1", started) != []
    # OpenAPI 3.0 `nullable`: null is allowed where the description says so.
    nullable = validator.validate_response(
        "GET",
        "/repos/o/r/check-runs/1",
        200,
        {"id": 1, "conclusion": None},
        "application/json",
    )
    assert not any("conclusion" in e for e in nullable)


async def test_fake_records_openapi_errors(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo
) -> None:
    sha = pr_repo.rev_parse("feature")
    body = {"name": "n", "head_sha": sha, "output": {"title": "t", "summary": "s", "oops": 1}}
    status, _, _ = await api.call("POST", f"{REPO_API}/check-runs", body)
    assert status == 201  # GitHub would accept it too; the schema check is what flags it
    await api.call("GET", f"{REPO_API}/no/such/endpoint")
    assert len(fake_github.openapi_errors) == 2
    assert "'oops' was unexpected" in fake_github.openapi_errors[0]
    assert "no such operation" in fake_github.openapi_errors[1]
    assert fake_github.requests[0].openapi_errors == [fake_github.openapi_errors[0]]
    fake_github.allow_openapi_errors = True


# -- tarball, contents, commits ----------------------------------------------------------------


async def test_tarball_round_trip(api: Api, fake_github: FakeGitHub, pr_repo: GitRepo) -> None:
    pr_repo.symlink("link.yaml", "clusters/prod/app.yaml")
    sha = pr_repo.commit("symlink")
    status, headers, _ = await api.call("GET", f"{REPO_API}/tarball/main")
    assert status == 302
    location = headers["Location"]
    assert "/_codeload/octo-org/gitops/legacy.tar.gz/main?token=" in location
    status, headers, data = await api.call("GET", location, auth=None)
    assert status == 200 and headers["Content-Type"] == "application/x-gzip"
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        prefix = f"octo-org-gitops-{sha[:7]}/"
        assert tar.pax_headers.get("comment") == sha
        assert members[prefix + "link.yaml"].issym()
        content = tar.extractfile(members[prefix + "clusters/prod/app.yaml"])
        assert content is not None and content.read() == lines(40).encode()

    # Redirect-following clients get the same bytes.
    _, _, followed = await api.call("GET", f"{REPO_API}/tarball/{sha}", allow_redirects=True)
    assert followed == data
    assert (await api.call("GET", f"{REPO_API}/tarball/no-such-ref"))[0] == 404
    bomb = gzip.compress(b"\0" * 10_000_000)
    fake_github.set_tarball("main", bomb)
    _, _, served = await api.call("GET", f"{REPO_API}/tarball/main", allow_redirects=True)
    assert served == bomb
    # codeload needs the token from the redirect.
    bare = location.split("?", 1)[0]
    assert (await api.call("GET", bare, auth=None))[0] == 404


async def test_git_trees_and_blobs_like_github(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo
) -> None:
    pr_repo.symlink("link.yaml", "clusters/prod/app.yaml")
    sha = pr_repo.commit("symlink")
    status, _, tree = await api.call("GET", f"{REPO_API}/git/trees/{sha}?recursive=1")
    assert status == 200 and tree["truncated"] is False
    entries = {e["path"]: e for e in tree["tree"]}
    assert entries["clusters"]["type"] == "tree" and "size" not in entries["clusters"]
    app = entries["clusters/prod/app.yaml"]
    assert (app["type"], app["mode"], app["size"]) == ("blob", "100644", len(lines(40)))
    assert entries["link.yaml"]["mode"] == "120000"
    # Without `recursive`: one level; a branch name works as well as a SHA.
    _, _, top = await api.call("GET", f"{REPO_API}/git/trees/main")
    assert {e["path"] for e in top["tree"]} == {
        "clusters",
        "gone.yaml",
        "link.yaml",
        "logo.png",
        "old",
    }
    # Above the entry limit a recursive listing is cut and says so.
    fake_github.tree_entry_limit = 2
    _, _, cut = await api.call("GET", f"{REPO_API}/git/trees/{sha}?recursive=1")
    assert cut["truncated"] is True and len(cut["tree"]) == 2
    status, _, blob = await api.call("GET", f"{REPO_API}/git/blobs/{app['sha']}")
    assert status == 200 and blob["encoding"] == "base64"
    assert base64.b64decode(blob["content"]) == lines(40).encode()
    assert (await api.call("GET", f"{REPO_API}/git/trees/{'0' * 40}"))[0] == 404
    assert (await api.call("GET", f"{REPO_API}/git/blobs/{'0' * 40}"))[0] == 404


async def test_contents_json_raw_and_missing(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo
) -> None:
    path = f"{REPO_API}/contents/clusters/prod/app.yaml"
    status, _, body = await api.call("GET", f"{path}?ref=feature")
    assert status == 200 and body["type"] == "file" and body["encoding"] == "base64"
    assert all(len(chunk) <= 60 for chunk in body["content"].split("\n"))
    assert base64.b64decode(body["content"]).decode().startswith("line 1\n")
    assert "line five" in base64.b64decode(body["content"]).decode()
    assert body["size"] == len(base64.b64decode(body["content"]))
    assert body["sha"] == pr_repo.git("rev-parse", "feature:clusters/prod/app.yaml")
    status, _, raw = await api.call("GET", path, headers={"Accept": "application/vnd.github.raw"})
    assert (status, raw) == (200, lines(40).encode())
    status, _, missing = await api.call("GET", f"{REPO_API}/contents/nope.yaml?ref=main")
    assert (status, missing["message"]) == (404, "Not Found")
    assert (await api.call("GET", f"{REPO_API}/contents/new.yaml?ref=main"))[0] == 404
    status, _, listing = await api.call("GET", f"{REPO_API}/contents/clusters?ref=main")
    assert status == 200 and [(e["name"], e["type"]) for e in listing] == [("prod", "dir")]


async def test_commit_pulls_lists_open_prs_with_that_head(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo
) -> None:
    fake_github.add_pull("feature", title="one")
    fake_github.add_pull("feature", title="closed", state="closed")
    sha = pr_repo.rev_parse("feature")
    status, _, prs = await api.call("GET", f"{REPO_API}/commits/{sha}/pulls")
    assert status == 200 and [p["title"] for p in prs] == ["one"]
    base = pr_repo.rev_parse("main")
    assert (await api.call("GET", f"{REPO_API}/commits/{base}/pulls"))[2] == []


async def test_pull_follows_branch(api: Api, fake_github: FakeGitHub, pr_repo: GitRepo) -> None:
    fake_github.add_pull("feature", draft=True)
    _, _, before = await api.call("GET", f"{REPO_API}/pulls/1")
    assert before["draft"] is True and before["changed_files"] == 5
    pr_repo.checkout("feature")
    new_head = pr_repo.commit("more", {"extra.yaml": "b: 2\n"})
    _, _, after = await api.call("GET", f"{REPO_API}/pulls/1")
    assert after["head"]["sha"] == new_head and after["changed_files"] == 6
    assert after["base"]["sha"] == pr_repo.rev_parse("main")
    assert (await api.call("GET", f"{REPO_API}/pulls/7"))[0] == 404


# -- comments, reactions, permissions -----------------------------------------------------------


async def test_issue_comments_and_reactions(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo
) -> None:
    fake_github.add_pull("feature")
    human = fake_github.add_issue_comment(1, "/flux-review rerun", user="alice")
    path = f"{REPO_API}/issues/comments/{human.id}/reactions"
    assert (await api.call("POST", path, {"content": "eyes"}))[0] == 201
    assert (await api.call("POST", path, {"content": "eyes"}))[0] == 200  # already there
    assert human.reactions == [("eyes", "flux-review[bot]")]
    assert (await api.call("POST", f"{REPO_API}/issues/comments/1/reactions", {"content": "+1"}))[
        0
    ] == 404
    status, headers, created = await api.call(
        "POST", f"{REPO_API}/issues/1/comments", {"body": "summary"}
    )
    assert status == 201 and created["user"]["login"] == "flux-review[bot]"
    assert headers["Location"].endswith(f"/issues/comments/{created['id']}")
    status, _, listed = await api.call("GET", f"{REPO_API}/issues/1/comments")
    assert [c["body"] for c in listed] == ["/flux-review rerun", "summary"]
    assert listed[0]["reactions"]["eyes"] == 1


async def test_collaborator_permission_table(api: Api, fake_github: FakeGitHub) -> None:
    fake_github.set_permission("admin-user", "admin")
    fake_github.set_permission("maintainer", "maintain")
    for user, expected in [
        ("admin-user", ("admin", "admin")),
        ("maintainer", ("write", "maintain")),
        ("stranger", ("read", "read")),
    ]:
        status, _, body = await api.call("GET", f"{REPO_API}/collaborators/{user}/permission")
        assert status == 200
        assert (body["permission"], body["role_name"]) == expected
        assert body["user"]["login"] == user


# -- failures and rate limits ----------------------------------------------------------------


async def test_failure_injection(api: Api, fake_github: FakeGitHub, pr_repo: GitRepo) -> None:
    fake_github.add_pull("feature")
    fake_github.fail("GET", r"/pulls/1$", 502, times=2)
    path = f"{REPO_API}/pulls/1"
    assert [(await api.call("GET", path))[0] for _ in range(3)] == [502, 502, 200]

    fake_github.fail_secondary_rate_limit("POST", r"/check-runs$", retry_after=1)
    sha = pr_repo.rev_parse("feature")
    status, headers, body = await api.call(
        "POST", f"{REPO_API}/check-runs", {"name": "n", "head_sha": sha}
    )
    assert status == 403 and headers["retry-after"] == "1"
    assert "You have exceeded a secondary rate limit" in body["message"]
    assert fake_github.check_runs == {}

    fake_github.fail("*", r"/files", 429, headers={"retry-after": "2"}, body={"message": "slow"})
    status, headers, body = await api.call("GET", f"{REPO_API}/pulls/1/files")
    assert (status, headers["retry-after"], body) == (429, "2", {"message": "slow"})

    fake_github.fail_forever("GET", r"/comments$", 500)
    for _ in range(3):
        assert (await api.call("GET", f"{REPO_API}/pulls/1/comments"))[0] == 500
    assert [r.status for r in fake_github.requests_to("GET", r"/pulls/1$")] == [502, 502, 200]


async def test_rate_limit_headers(api: Api, fake_github: FakeGitHub, pr_repo: GitRepo) -> None:
    fake_github.add_pull("feature")
    _, headers, _ = await api.call("GET", f"{REPO_API}/pulls/1")
    assert headers["x-ratelimit-limit"] == "5000"
    assert headers["x-ratelimit-remaining"] == "4999"
    assert headers["x-ratelimit-used"] == "1"
    assert headers["x-ratelimit-resource"] == "core"
    assert int(headers["x-ratelimit-reset"]) > time.time()
    fake_github.set_rate_limit(1)
    status, headers, _ = await api.call("GET", f"{REPO_API}/pulls/1")
    assert (status, headers["x-ratelimit-remaining"]) == (200, "0")
    status, headers, body = await api.call("GET", f"{REPO_API}/pulls/1")
    assert status == 403 and "API rate limit exceeded" in body["message"]


# -- webhooks and payloads --------------------------------------------------------------------


def test_vendored_payloads_present() -> None:
    expected = {
        "ping",
        "pull_request.opened",
        "pull_request.synchronize",
        "pull_request.reopened",
        "pull_request.ready_for_review",
        "issue_comment.created",
        "check_run.rerequested",
        "check_run.requested_action",
        "check_suite.requested",
        "check_suite.rerequested",
        "installation.deleted",
    }
    assert expected <= set(available_payloads())
    for name in expected:
        payload = load_payload(name)
        if name != "ping":
            assert payload["action"] == name.split(".", 1)[1]
    assert "pull_request" in load_payload("issue_comment.created")["issue"]
    assert load_payload("pull_request.opened", number=7)["number"] == 7


def test_vendored_openapi_subset_is_complete() -> None:
    spec = importlib.util.spec_from_file_location(
        "vendor_github_fixtures", ROOT / "scripts" / "vendor_github_fixtures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    validator = default_validator()
    assert validator.spec["info"]["x-vendored"]["package"] == "@octokit/openapi"
    found = {(op.method.lower(), op.template) for op in validator.operations}
    assert found == set(module.OPERATIONS)
    assert (ROOT / "tests" / "fakegithub" / "openapi-subset.json").stat().st_size < 1_000_000


async def test_webhook_payload_adapted_and_signed(
    fake_github: FakeGitHub, pr_repo: GitRepo, webhook_secret: str
) -> None:
    pr = fake_github.add_pull("feature", user="alice")
    received: list[tuple[dict[str, str], bytes]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.read()))
        return web.Response(status=202, text="queued")

    app = web.Application()
    app.router.add_post("/api/github/webhooks", hook)
    server = TestServer(app, host="127.0.0.1", port=None)
    await server.start_server()
    try:
        payload = fake_github.webhook_payload("pull_request.opened", pr=pr)
        resp = await fake_github.send_webhook(
            str(server.make_url("")), "pull_request", payload, webhook_secret
        )
        comment = fake_github.add_issue_comment(1, "/flux-review", user="bob")
        await fake_github.deliver(
            str(server.make_url("")), "issue_comment.created", webhook_secret, comment=comment
        )
    finally:
        await server.close()
    assert (resp.status, resp.text) == (202, "queued")
    headers, raw = received[0]
    assert headers["X-GitHub-Event"] == "pull_request"
    assert headers["X-GitHub-Delivery"] == resp.delivery_id
    assert headers["Content-Type"] == "application/json"
    digest = hmac.new(webhook_secret.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["X-Hub-Signature-256"] == f"sha256={digest}"
    sent = json.loads(raw)
    assert sent["number"] == 1
    assert sent["installation"]["id"] == INSTALLATION_ID
    assert sent["repository"]["full_name"] == "octo-org/gitops"
    assert sent["pull_request"]["head"]["sha"] == pr_repo.rev_parse("feature")
    assert sent["pull_request"]["base"]["sha"] == pr_repo.rev_parse("main")
    assert sent["pull_request"]["url"].startswith(fake_github.url)
    assert "api.github.com" not in raw.decode()

    issue_event = json.loads(received[1][1])
    assert received[1][0]["X-GitHub-Event"] == "issue_comment"
    assert issue_event["issue"]["number"] == 1 and "pull_request" in issue_event["issue"]
    assert issue_event["comment"]["id"] == comment.id
    assert issue_event["comment"]["user"]["login"] == "bob"


async def test_check_payloads_match_fake_state(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo
) -> None:
    pr = fake_github.add_pull("feature")
    sha = pr_repo.rev_parse("feature")
    _, _, run = await api.call(
        "POST", f"{REPO_API}/check-runs", {"name": "flux-review", "head_sha": sha}
    )
    rerun = fake_github.webhook_payload("check_run.rerequested", check_run=run["id"])
    assert rerun["check_run"]["id"] == run["id"]
    assert rerun["check_run"]["app"]["id"] == APP_ID
    assert rerun["check_run"]["pull_requests"][0]["number"] == pr.number
    suite = fake_github.webhook_payload("check_suite.requested")
    assert suite["check_suite"]["head_sha"] == sha
    assert suite["check_suite"]["pull_requests"][0]["number"] == 1
    action = fake_github.webhook_payload(
        "check_run.requested_action", requested_action={"identifier": "rerun"}
    )
    assert action["requested_action"] == {"identifier": "rerun"}
    gone = fake_github.webhook_payload("installation.deleted")
    assert gone["installation"]["id"] == INSTALLATION_ID
    assert gone["installation"]["app_id"] == APP_ID
    ping = fake_github.webhook_payload("ping")
    assert ping["hook"]["app_id"] == APP_ID


async def test_schema_violations_are_422_like_github(
    api: Api, fake_github: FakeGitHub, pr_repo: GitRepo
) -> None:
    fake_github.add_pull("feature")
    review = {"event": "COMMENT", "body": "b", "comments": [{"path": "new.yaml", "line": "1"}]}
    status, _, body = await api.call("POST", f"{REPO_API}/pulls/1/reviews", review)
    assert status == 422 and body["message"].startswith("Invalid request.")
    assert fake_github.reviews == [] and fake_github.internal_errors == []
    fake_github.allow_openapi_errors = True


async def test_pull_request_refs(api: Api, fake_github: FakeGitHub, pr_repo: GitRepo) -> None:
    fake_github.add_pull("feature")
    status, headers, _ = await api.call("GET", f"{REPO_API}/tarball/refs/pull/1/head")
    assert status == 302
    _, _, data = await api.call("GET", headers["Location"], auth=None)
    head = pr_repo.rev_parse("feature")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        assert tar.getmembers()[0].name.startswith(f"octo-org-gitops-{head[:7]}")
    path = f"{REPO_API}/contents/new.yaml?ref=refs/pull/1/head"
    assert (await api.call("GET", path))[0] == 200
    assert (await api.call("GET", f"{REPO_API}/tarball/refs/pull/2/head"))[0] == 404
