"""A fake GitHub for the App's tests: real HTTP on loopback, real git, GitHub's REST schema.

See ``server.FakeGitHub`` for the emulated API and ``fixtures`` for the pytest fixtures.
"""

from .gitrepo import GitRepo
from .openapi import OpenAPIValidator, default_validator
from .payloads import DELETE, available_payloads, deep_merge, load_payload
from .server import (
    CheckRun,
    FakeGitHub,
    IssueComment,
    PullRequest,
    RecordedRequest,
    Review,
    ReviewComment,
    WebhookResponse,
    adapt_payload,
)

__all__ = [
    "DELETE",
    "CheckRun",
    "FakeGitHub",
    "GitRepo",
    "IssueComment",
    "OpenAPIValidator",
    "PullRequest",
    "RecordedRequest",
    "Review",
    "ReviewComment",
    "WebhookResponse",
    "adapt_payload",
    "available_payloads",
    "deep_merge",
    "default_validator",
    "load_payload",
]
