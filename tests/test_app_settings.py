"""Settings: read once, validated, one-line errors, secrets never shown."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from bot.settings import Settings, SettingsError, configure_logging, load_settings


@pytest.fixture(scope="module")
def pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def env(pem: str, **more: str) -> dict[str, str]:
    return {"APP_ID": "4242", "PRIVATE_KEY": pem, "WEBHOOK_SECRET": "s3cret", **more}


def test_defaults(pem: str) -> None:
    settings = load_settings(env(pem))
    assert settings.app_id == 4242
    assert settings.github_api_url == "https://api.github.com"
    assert settings.port == 3000
    assert settings.review_timeout == 120.0
    assert settings.write_interval == 1.0
    # The whole shutdown, from SIGTERM: under the 30 s Kubernetes and Heroku give.
    assert settings.shutdown_grace == 25.0


def test_shutdown_grace_leaves_time_to_conclude(pem: str) -> None:
    assert load_settings(env(pem, SHUTDOWN_GRACE="8")).shutdown_grace == 8.0
    assert load_settings(env(pem, SHUTDOWN_GRACE="2")).shutdown_grace == 2.0
    with pytest.raises(SettingsError, match="SHUTDOWN_GRACE must be between 2 and 3600"):
        load_settings(env(pem, SHUTDOWN_GRACE="1"))


def test_overrides_and_trailing_slash(pem: str) -> None:
    settings = load_settings(
        env(
            pem,
            GITHUB_API_URL="https://ghe.example.com/api/v3/",
            PORT="8080",
            LOG_LEVEL="debug",
            REVIEW_TIMEOUT="30",
            REVIEW_WORKERS="2",
            REVIEW_QUEUE_SIZE="5",
            GITHUB_WRITE_INTERVAL="0",
        )
    )
    assert settings.github_api_url == "https://ghe.example.com/api/v3"
    assert (settings.port, settings.log_level, settings.review_timeout) == (8080, "DEBUG", 30.0)
    assert (settings.workers, settings.queue_size, settings.write_interval) == (2, 5, 0.0)


def test_robustness_limits(pem: str) -> None:
    defaults = load_settings(env(pem))
    assert defaults.review_timeout == 120.0  # the wall-clock limit of one review
    assert (defaults.git_api_max_blobs, defaults.webhook_read_timeout) == (1000, 10.0)
    settings = load_settings(
        env(
            pem,
            GIT_API_MAX_BLOBS="50",
            GIT_API_MAX_BYTES="1048576",
            MAX_WEBHOOK_INFLIGHT_BYTES="2097152",
            WEBHOOK_READ_TIMEOUT="2.5",
        )
    )
    assert (settings.git_api_max_blobs, settings.git_api_max_bytes) == (50, 1048576)
    assert (settings.max_webhook_inflight_bytes, settings.webhook_read_timeout) == (2097152, 2.5)


@pytest.mark.parametrize(
    ("missing", "names"),
    [
        ("WEBHOOK_SECRET", "WEBHOOK_SECRET"),
        ("APP_ID", "APP_ID"),
        ("PRIVATE_KEY", "PRIVATE_KEY"),
    ],
)
def test_missing_required_is_one_line(pem: str, missing: str, names: str) -> None:
    values = env(pem)
    del values[missing]
    with pytest.raises(SettingsError) as info:
        load_settings(values)
    message = str(info.value)
    assert names in message
    assert "\n" not in message


def test_blank_secret_is_refused(pem: str) -> None:
    with pytest.raises(SettingsError, match="WEBHOOK_SECRET"):
        load_settings(env(pem, WEBHOOK_SECRET="   "))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "http"),
        ("PORT", "70000"),
        ("APP_ID", "abc"),
        ("REVIEW_TIMEOUT", "-1"),
        ("LOG_LEVEL", "LOUD"),
        ("GITHUB_API_URL", "ftp://x"),
        ("REVIEW_WORKERS", "0"),
    ],
)
def test_invalid_values_name_the_variable(pem: str, name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env(pem, **{name: value}))


def test_private_key_path(pem: str, tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text(pem)
    values = env(pem, PRIVATE_KEY_PATH=str(path))
    del values["PRIVATE_KEY"]
    assert load_settings(values).private_key.strip() == pem.strip()
    values["PRIVATE_KEY_PATH"] = str(tmp_path / "nope.pem")
    with pytest.raises(SettingsError, match="PRIVATE_KEY_PATH"):
        load_settings(values)


def test_flattened_key_with_escaped_newlines(pem: str) -> None:
    flat = pem.strip().replace("\n", "\\n")
    assert load_settings(env(pem, PRIVATE_KEY=flat)).private_key.strip() == pem.strip()


def test_bad_key_is_refused_without_echoing_it(pem: str) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings(env(pem, PRIVATE_KEY="not-a-key-SECRETVALUE"))
    assert "SECRETVALUE" not in str(info.value)
    ec_key = (
        ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    with pytest.raises(SettingsError, match="RSA"):
        load_settings(env(pem, PRIVATE_KEY=ec_key))


def test_repr_hides_secrets(pem: str) -> None:
    settings = load_settings(env(pem))
    text = repr(settings)
    assert "s3cret" not in text and "PRIVATE KEY" not in text
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]
    assert isinstance(settings, Settings)


def test_serve_refuses_to_start_without_secret(
    pem: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.server import serve

    for name, value in env(pem).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("WEBHOOK_SECRET")
    assert serve(None, None) == 2
    err = capsys.readouterr().err
    assert "WEBHOOK_SECRET" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(("level", "access_lines"), [("INFO", False), ("DEBUG", True)])
def test_aiohttps_line_per_request_only_at_debug(pem: str, level: str, access_lines: bool) -> None:
    access = logging.getLogger("aiohttp.access")
    root = logging.getLogger()
    saved = (access.level, root.level, list(root.handlers))
    try:
        root.handlers[:] = []  # as in a fresh process: basicConfig configures the root
        configure_logging(load_settings(env(pem, LOG_LEVEL=level)))
        assert access.isEnabledFor(logging.INFO) is access_lines
    finally:
        access.setLevel(saved[0])
        root.setLevel(saved[1])
        root.handlers[:] = saved[2]
