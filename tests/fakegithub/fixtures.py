"""Pytest fixtures: a test RSA key for the App, a git repository and a running fake GitHub.

Loaded for the whole suite by ``tests/conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from .gitrepo import GitRepo
from .server import FakeGitHub

OWNER = "octo-org"
REPO = "gitops"
APP_ID = 4242
INSTALLATION_ID = 99
DEFAULT_BRANCH = "main"
WEBHOOK_SECRET = "fake-webhook-secret"


@pytest.fixture(scope="session")
def github_app_key() -> str:
    """PEM (PKCS#8) of a fresh 2048-bit RSA key: the App's private key for this session."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="session")
def github_app_public_key(github_app_key: str) -> str:
    private = serialization.load_pem_private_key(github_app_key.encode(), password=None)
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@pytest.fixture
def webhook_secret() -> str:
    return WEBHOOK_SECRET


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    """An empty repository on ``main`` (commit something before opening a PR)."""
    return GitRepo(tmp_path / "repo", default_branch=DEFAULT_BRANCH)


@pytest.fixture
async def fake_github(git_repo: GitRepo, github_app_public_key: str) -> AsyncIterator[FakeGitHub]:
    """A started FakeGitHub on 127.0.0.1 serving ``git_repo`` as octo-org/gitops.

    At teardown the test fails if any request broke GitHub's OpenAPI description, unless it
    set ``fake_github.allow_openapi_errors = True`` (tests that send bad requests on purpose).
    """
    fake = FakeGitHub(
        git_repo,
        app_public_key=github_app_public_key,
        owner=OWNER,
        name=REPO,
        app_id=APP_ID,
        installation_id=INSTALLATION_ID,
        default_branch=DEFAULT_BRANCH,
    )
    await fake.start()
    try:
        yield fake
    finally:
        await fake.close()
    problems: list[str] = []
    if fake.openapi_errors and not fake.allow_openapi_errors:
        problems.append(
            "requests that do not match GitHub's REST description "
            f"({fake.validator.source}):\n  " + "\n  ".join(fake.openapi_errors)
        )
    if fake.response_errors:
        problems.append(
            "the fake answered with JSON that is not GitHub-shaped (a bug in "
            "tests/fakegithub):\n  " + "\n  ".join(fake.response_errors)
        )
    if fake.internal_errors:
        problems.append(
            "the fake crashed (a bug in tests/fakegithub):\n  " + "\n  ".join(fake.internal_errors)
        )
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)
