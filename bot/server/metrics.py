"""Prometheus metrics, in a registry of the App's own (no process-global state).

Labels are bounded and never carry repository content, names or paths.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Events with a label of their own; anything else counts as "other".
KNOWN_EVENTS = frozenset(
    {
        "ping",
        "pull_request",
        "check_suite",
        "check_run",
        "issue_comment",
        "installation",
        "installation_repositories",
        "push",
    }
)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries = Counter(
            "flux_review_webhook_deliveries",
            "Webhook deliveries received, by event and what the server did with them.",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.reviews = Counter(
            "flux_review_reviews",
            "Reviews run, by outcome (the check run's conclusion, or why there is none).",
            ["conclusion"],
            registry=self.registry,
        )
        self.review_duration = Histogram(
            "flux_review_review_duration_seconds",
            "Wall-clock time of one review, from reading the PR to the last report call.",
            buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 90, 120, 180, 300),
            registry=self.registry,
        )
        self.github_requests = Counter(
            "flux_review_github_requests",
            "Calls to the GitHub API, by method and HTTP status ('error': no response).",
            ["method", "status"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "flux_review_queue_depth",
            "Jobs waiting in the queue.",
            registry=self.registry,
        )
        self.jobs_running = Gauge(
            "flux_review_jobs_running",
            "Jobs being worked on.",
            registry=self.registry,
        )

    def track_queue(self, depth: Callable[[], int], running: Callable[[], int]) -> None:
        self.queue_depth.set_function(lambda: float(depth()))
        self.jobs_running.set_function(lambda: float(running()))

    def delivery(self, event: str, outcome: str) -> None:
        label = event if event in KNOWN_EVENTS else "other"
        self.deliveries.labels(event=label, outcome=outcome).inc()

    def github_response(self, method: str, status: str) -> None:
        self.github_requests.labels(method=method, status=status).inc()

    def review(self, conclusion: str, seconds: float) -> None:
        self.reviews.labels(conclusion=conclusion).inc()
        self.review_duration.observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
