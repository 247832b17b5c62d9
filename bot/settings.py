"""The App's settings: read once from the environment, validated, then frozen.

The names of the required ones are Probot's (`APP_ID`, `PRIVATE_KEY`, `WEBHOOK_SECRET`...)
so people who already run GitHub Apps know them. The server refuses to start without
the webhook secret: accepting unsigned deliveries would let anyone drive the App.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIB = 1024 * 1024
# The default bound of the queue in Redis (REVIEW_QUEUE_SIZE unset).
SHARED_QUEUE_SIZE = 10_000
# Below this a shutdown has no time left to conclude a check run.
MIN_SHUTDOWN_GRACE = 2.0


class SettingsError(ValueError):
    """A missing or invalid setting; the message is one line naming the variable."""


@dataclass(frozen=True)
class Settings:
    app_id: int
    private_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    github_api_url: str = "https://api.github.com"
    host: str = "0.0.0.0"
    port: int = 3000
    log_level: str = "INFO"
    # Wall-clock limit for one review, from fetching the PR to the last report call.
    review_timeout: float = 120.0
    # Pending reviews beyond this answer the webhook with 503.
    queue_size: int = 100
    # Reviews running at once in this process.
    workers: int = 4
    # Seconds between two writes to GitHub for the same installation (GitHub asks for >= 1).
    write_interval: float = 1.0
    # From SIGTERM to the end of the process, all of it (see bot/server/shutdown.py): under
    # the 30 s after which Kubernetes (terminationGracePeriodSeconds) and Heroku kill it, so
    # no check run is left `in_progress` by a SIGKILL.
    shutdown_grace: float = 25.0
    max_webhook_bytes: int = 25 * MIB
    # Webhook bodies being read at once, all together: a burst of large deliveries (or
    # senders that trickle their bodies) must not take the memory of the process.
    max_webhook_inflight_bytes: int = 100 * MIB
    # GitHub gives up on a delivery after 10 s; a body still arriving after that is not
    # GitHub's.
    webhook_read_timeout: float = 10.0
    # Snapshot limits, enforced while the tarball streams in.
    max_tarball_bytes: int = 200 * MIB
    max_unpacked_bytes: int = 512 * MIB
    max_file_bytes: int = 10 * MIB
    max_tarball_members: int = 200_000
    tree_cache_bytes: int = 256 * MIB
    # What the analysis parsed and built, kept per repository for its next review.
    analysis_cache_bytes: int = 512 * MIB
    # When the tarball cannot be used, the files the review reads are fetched one blob at a
    # time through the Git database API, within these bounds.
    git_api_max_blobs: int = 1000
    git_api_max_bytes: int = 64 * MIB
    # Where docs/rules.md is published; rule ids in reports link to `DOCS_URL#rule-id`.
    docs_url: str = ""
    # The shared queue: set, any number of `serve --no-worker` and `worker` processes share
    # the work; unset, one process queues in memory (see docs/deployment.md).
    redis_url: str = ""
    redis_prefix: str = "flux-review"
    # A worker's hold on a job, renewed by its heartbeat (a quarter of this): a killed
    # worker's job is taken up again this long after its last heartbeat.
    job_lease: float = 10.0
    # Workers killed by the same job before it is dead-lettered.
    max_attempts: int = 3
    # A job whose work GitHub or Redis failed (a check run not concluded, inline comments
    # not posted) runs again this long after, then twice as long each time up to an hour.
    retry_delay: float = 30.0
    # `text` or `json` (one object per line, for log collectors).
    log_format: str = "text"
    # Seconds between passes that compare GitHub's open pull requests with the reviews they
    # have (bot/server/reconcile.py); 0: only when Redis is found to have lost its data.
    reconcile_interval: float = 1800.0
    # GitHub calls one pass may make, at most.
    reconcile_max_calls: int = 300
    # `warn`: a Redis without an append-only file is logged as an error at start;
    # `require`: the processes refuse to start on one.
    redis_persistence: str = "warn"
    # Connections open at once; beyond it the oldest that has not sent a whole request is
    # closed (or the new one, when all are busy). Also capped by the open-file limit.
    max_connections: int = 1000
    # Seconds a connection may take to send its request's line and headers.
    header_timeout: float = 10.0


_INT_VARS: dict[str, tuple[str, int, int]] = {
    # env name: (field, minimum, maximum)
    "PORT": ("port", 1, 65535),
    "REVIEW_QUEUE_SIZE": ("queue_size", 1, 1_000_000),
    "REVIEW_WORKERS": ("workers", 1, 256),
    "MAX_WEBHOOK_BYTES": ("max_webhook_bytes", 1024, 1 << 40),
    "MAX_WEBHOOK_INFLIGHT_BYTES": ("max_webhook_inflight_bytes", 1024, 1 << 40),
    "MAX_TARBALL_BYTES": ("max_tarball_bytes", 1024, 1 << 40),
    "MAX_UNPACKED_BYTES": ("max_unpacked_bytes", 1024, 1 << 40),
    "MAX_FILE_BYTES": ("max_file_bytes", 1024, 1 << 40),
    "MAX_TARBALL_MEMBERS": ("max_tarball_members", 1, 100_000_000),
    "TREE_CACHE_BYTES": ("tree_cache_bytes", 0, 1 << 40),
    "ANALYSIS_CACHE_BYTES": ("analysis_cache_bytes", 0, 1 << 40),
    "GIT_API_MAX_BLOBS": ("git_api_max_blobs", 0, 1_000_000),
    "GIT_API_MAX_BYTES": ("git_api_max_bytes", 0, 1 << 40),
    "REVIEW_MAX_ATTEMPTS": ("max_attempts", 1, 100),
    "RECONCILE_MAX_CALLS": ("reconcile_max_calls", 1, 100_000),
    "MAX_CONNECTIONS": ("max_connections", 16, 1_000_000),
}
_FLOAT_VARS: dict[str, tuple[str, float, float]] = {
    "REVIEW_TIMEOUT": ("review_timeout", 1.0, 3600.0),
    "GITHUB_WRITE_INTERVAL": ("write_interval", 0.0, 60.0),
    "SHUTDOWN_GRACE": ("shutdown_grace", MIN_SHUTDOWN_GRACE, 3600.0),
    "WEBHOOK_READ_TIMEOUT": ("webhook_read_timeout", 0.1, 300.0),
    "JOB_LEASE": ("job_lease", 0.5, 600.0),
    "RETRY_DELAY": ("retry_delay", 0.01, 3600.0),
    "RECONCILE_INTERVAL": ("reconcile_interval", 0.0, 7 * 24 * 3600.0),
    "HEADER_TIMEOUT": ("header_timeout", 0.1, 300.0),
}


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `environ` (default: the process environment); SettingsError if invalid."""
    env = os.environ if environ is None else environ

    def get(name: str) -> str:
        return env.get(name, "").strip()

    app_id_text = get("APP_ID")
    if not app_id_text:
        raise SettingsError("APP_ID is not set: use the App ID from the GitHub App's settings page")
    if not app_id_text.isdigit():
        raise SettingsError(f"APP_ID must be a number (got {app_id_text!r})")

    secret = env.get("WEBHOOK_SECRET", "")
    if not secret.strip():
        raise SettingsError(
            "WEBHOOK_SECRET is not set: the server refuses to accept unsigned webhooks"
        )

    private_key = _private_key(env)

    values: dict[str, Any] = {}
    api_url = get("GITHUB_API_URL") or Settings.github_api_url
    parsed = urllib.parse.urlsplit(api_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SettingsError(f"GITHUB_API_URL must be an http(s) URL (got {api_url!r})")
    values["github_api_url"] = api_url.rstrip("/")

    level = get("LOG_LEVEL").upper() or Settings.log_level
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise SettingsError(
            f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL (got {level!r})"
        )
    values["log_level"] = level

    log_format = get("LOG_FORMAT").lower() or Settings.log_format
    if log_format not in ("text", "json"):
        raise SettingsError(f"LOG_FORMAT must be text or json (got {log_format!r})")
    values["log_format"] = log_format
    redis_url = get("REDIS_URL")
    if redis_url:
        scheme = urllib.parse.urlsplit(redis_url).scheme
        if scheme not in ("redis", "rediss", "unix"):
            # Never echo the URL: it may carry a password.
            raise SettingsError("REDIS_URL must be a redis://, rediss:// or unix:// URL")
        values["redis_url"] = redis_url
        if not get("REVIEW_QUEUE_SIZE"):
            # Redis holds far more than a process's memory should: one job per PR.
            values["queue_size"] = SHARED_QUEUE_SIZE
    persistence = get("REDIS_PERSISTENCE").lower()
    if persistence:
        if persistence not in ("warn", "require"):
            raise SettingsError(f"REDIS_PERSISTENCE must be warn or require (got {persistence!r})")
        values["redis_persistence"] = persistence
    if get("REDIS_PREFIX"):
        values["redis_prefix"] = get("REDIS_PREFIX")

    if get("HOST"):
        values["host"] = get("HOST")
    if get("DOCS_URL"):
        values["docs_url"] = get("DOCS_URL")

    for name, (attr, low, high) in _INT_VARS.items():
        text = get(name)
        if not text:
            continue
        try:
            number = int(text)
        except ValueError:
            raise SettingsError(f"{name} must be a whole number (got {text!r})") from None
        if not low <= number <= high:
            raise SettingsError(f"{name} must be between {low} and {high} (got {number})")
        values[attr] = number
    for name, (attr, flow, fhigh) in _FLOAT_VARS.items():
        text = get(name)
        if not text:
            continue
        try:
            seconds = float(text)
        except ValueError:
            raise SettingsError(f"{name} must be a number of seconds (got {text!r})") from None
        if not flow <= seconds <= fhigh:
            raise SettingsError(f"{name} must be between {flow:g} and {fhigh:g} (got {text})")
        values[attr] = seconds

    base = Settings(app_id=int(app_id_text), private_key=private_key, webhook_secret=secret)
    return dataclasses.replace(base, **values)


def _private_key(env: Mapping[str, str]) -> str:
    text = env.get("PRIVATE_KEY", "").strip()
    path = env.get("PRIVATE_KEY_PATH", "").strip()
    if not text and path:
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SettingsError(
                f"PRIVATE_KEY_PATH {path!r} cannot be read: {exc.strerror or exc}"
            ) from None
        except UnicodeDecodeError:
            raise SettingsError(f"PRIVATE_KEY_PATH {path!r} is not a PEM text file") from None
        source = "PRIVATE_KEY_PATH"
    elif text:
        source = "PRIVATE_KEY"
    else:
        raise SettingsError(
            "PRIVATE_KEY or PRIVATE_KEY_PATH must be set to the GitHub App's private key (PEM)"
        )
    # Hosting dashboards often flatten a multi-line value into one line with literal `\n`s.
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(text.encode("utf-8"), password=None)
    except (ValueError, TypeError):
        # Never echo the value: it is a secret, even when malformed.
        raise SettingsError(f"{source} is not a PEM-encoded, unencrypted private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SettingsError(f"{source} must be an RSA key (GitHub Apps sign JWTs with RS256)")
    return text + "\n"


# Attributes of a log record that `context_log` and the review set, in JSON logs.
JSON_FIELDS = ("delivery", "repository", "pr", "head", "duration")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: what log collectors index without a parser."""

    def format(self, record: logging.LogRecord) -> str:
        import json

        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in JSON_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings) -> None:
    # aiohttp's access log is a line per request: probes every few seconds, and under a
    # burst of deliveries a fifth of the web process's time. Each delivery gets its own
    # line (delivery id, event, what became of it) instead; DEBUG brings the access log back.
    if settings.log_level != "DEBUG":
        logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if settings.log_format == "json":
        import time

        handler = logging.StreamHandler()
        formatter = JsonFormatter()
        formatter.converter = time.gmtime
        handler.setFormatter(formatter)
        logging.basicConfig(level=settings.log_level, handlers=[handler])
        return
    logging.basicConfig(
        level=settings.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
