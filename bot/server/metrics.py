"""Prometheus metrics, in a registry of the App's own (no process-global state).

Labels are bounded and never carry repository content, names or paths.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Fast enough to tell a 5 ms acknowledgement from a 50 ms one: GitHub waits 10 s at most.
ACK_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
GITHUB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _SharedCollector:
    """What all processes share in Redis, read from the queue's last snapshot."""

    def __init__(self, queue: Any) -> None:
        self._queue = queue

    def collect(self) -> Iterator[Any]:
        stats = self._queue.stats
        yield GaugeMetricFamily(
            "flux_review_shared_queue_depth",
            "Jobs waiting in the shared queue (Redis), over all processes.",
            value=stats.depth,
        )
        yield GaugeMetricFamily(
            "flux_review_shared_jobs_running",
            "Jobs being worked on by any worker of the shared queue.",
            value=stats.running,
        )
        yield GaugeMetricFamily(
            "flux_review_queue_oldest_job_age_seconds",
            "How long the oldest waiting job of the shared queue has waited.",
            value=stats.oldest_age,
        )
        yield GaugeMetricFamily(
            "flux_review_workers_alive",
            "Worker processes whose heartbeat Redis has within one job lease.",
            value=stats.workers_alive,
        )
        yield GaugeMetricFamily(
            "flux_review_dead_letters",
            "Jobs given up after their worker died too many times.",
            value=stats.dead,
        )
        yield GaugeMetricFamily(
            "flux_review_jobs_retrying",
            "Jobs waiting to run again because GitHub or Redis failed part of their work "
            "(a check run not concluded, inline comments not posted).",
            value=stats.retrying,
        )
        reviews = CounterMetricFamily(
            "flux_review_shared_reviews",
            "Reviews run by all workers of the shared queue, by outcome.",
            labels=["conclusion"],
        )
        for outcome, count in sorted(stats.reviews.items()):
            reviews.add_metric([outcome[:40]], count)
        yield reviews


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
        self.webhook_ack = Histogram(
            "flux_review_webhook_ack_seconds",
            "From the webhook request's arrival to its answer.",
            buckets=ACK_BUCKETS,
            registry=self.registry,
        )
        self.github_seconds = Histogram(
            "flux_review_github_request_seconds",
            "Time of one HTTP exchange with GitHub's API, by method.",
            ["method"],
            buckets=GITHUB_BUCKETS,
            registry=self.registry,
        )

    def track_shared(self, queue: Any) -> None:
        self.registry.register(_SharedCollector(queue))

    def github_latency(self, method: str, seconds: float) -> None:
        label = method if method in ("GET", "POST", "PATCH", "PUT", "DELETE") else "other"
        self.github_seconds.labels(method=label).observe(seconds)

    def ack(self, seconds: float) -> None:
        self.webhook_ack.observe(seconds)

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
