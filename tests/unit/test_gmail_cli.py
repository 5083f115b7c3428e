"""`fte gmail watch` and `fte gmail sync` over a runtime whose Gmail API is canned, and
the GMAIL_* settings."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fte_core.errors import ConfigError
from service import cli_gmail
from service.bootstrap import bootstrap, make_senders
from service.cli import main
from service.settings import Settings, load_settings
from service.settings_gmail import GmailSettings
from tests import gmail_payloads as p

ROOT = Path(__file__).resolve().parents[2]


def settings(tmp_path: Path, **gmail: str) -> Settings:
    return Settings(
        storage="memory",
        data_dir=str(tmp_path),
        rules_dir=str(ROOT / "rules"),
        context_dir=str(ROOT / "context"),
        token_secret="s" * 40,
        gmail=GmailSettings(mailbox=p.MAILBOX, **gmail),
    )


async def test_watch_starts_and_renewal_keeps_the_history_id(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client, http = p.mock_client(
        [
            p.ok('{"historyId": "700", "expiration": "1796000000000"}'),
            p.ok('{"historyId": "900", "expiration": "1796600000000"}'),
        ]
    )
    runtime = await bootstrap(settings(tmp_path), gmail_client=client, ingest=False)
    try:
        assert await cli_gmail.watch(runtime, "projects/tasklane-prod/topics/gmail") == 0
        assert await cli_gmail.watch(runtime, "projects/tasklane-prod/topics/gmail") == 0
        assert await runtime.mailboxes.watermark(p.MAILBOX) == 700  # no mail jumped over
        expiry = await runtime.mailboxes.watch_expiry(p.MAILBOX)
        assert expiry == datetime.fromtimestamp(1_796_600_000, UTC)
        with pytest.raises(ConfigError, match="GMAIL_PUBSUB_TOPIC"):
            await cli_gmail.watch(runtime, None)
    finally:
        await runtime.aclose()
    out = capsys.readouterr().out
    assert "watching support@tasklane.example (INBOX) on projects/tasklane-prod/topics/gmail" in out
    assert "mail is read from history id 700" in out
    assert json.loads(http.request_sequence[0][2])["labelIds"] == ["INBOX"]


async def test_sync_reads_what_arrived_since_the_watermark(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client, _ = p.mock_client(
        [
            p.ok('{"emailAddress": "support@tasklane.example", "historyId": "1010"}'),
            p.ok(p.history_json([("m1", "t1"), ("m2", "t2")], 1010)),
            p.ok(p.message_json("m1", p.MULTIPART_ALTERNATIVE, thread_id="t1")),
            p.ok(p.message_json("m2", p.BULK, thread_id="t2")),
        ]
    )
    runtime = await bootstrap(settings(tmp_path), gmail_client=client, ingest=False)
    try:
        await runtime.mailboxes.advance(p.MAILBOX, 1000)
        assert await cli_gmail.sync(runtime) == 0
    finally:
        await runtime.aclose()
    out = capsys.readouterr().out
    assert "support@tasklane.example: 1 stored, 1 skipped, history id 1010" in out
    assert "skipped m2: automated: Precedence: bulk" in out


def test_watch_without_gmail_settings_says_what_is_missing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("GMAIL_MAILBOX", "GMAIL_SERVICE_ACCOUNT_FILE", "GMAIL_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    assert main(["gmail", "watch"]) == 2
    assert "GMAIL_MAILBOX and GMAIL_SERVICE_ACCOUNT_FILE or GMAIL_TOKEN_FILE" in (
        capsys.readouterr().err
    )


def test_gmail_settings_from_the_environment() -> None:
    loaded = load_settings(
        {
            "GMAIL_MAILBOX": " Support@Tasklane.example ",
            "GMAIL_TOKEN_FILE": "/run/secrets/gmail-token.json",
            "GMAIL_PUSH_AUDIENCE": "https://support.tasklane.example/api/v1/webhooks/gmail",
            "GMAIL_FROM_NAME": "Tasklane Support",
        }
    ).gmail
    assert loaded.mailbox == "support@tasklane.example"
    assert loaded.status() == "configured (support@tasklane.example)"
    assert loaded.label == "INBOX"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"GMAIL_MAILBOX": "not-an-address"}, "GMAIL_MAILBOX"),
        ({"GMAIL_SERVICE_ACCOUNT_FILE": "a.json", "GMAIL_TOKEN_FILE": "b.json"}, "set only one"),
        ({"GMAIL_PUSH_CERTS_URL": "http://evil.example/certs"}, "GMAIL_PUSH_CERTS_URL"),
    ],
)
def test_bad_gmail_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env)


def test_credentials_files_that_are_not_keys_are_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "key.json"
    bad.write_text('{"type": "service_account"}', encoding="utf-8")
    with pytest.raises(ConfigError, match="GMAIL_SERVICE_ACCOUNT_FILE"):
        make_senders(settings(tmp_path, service_account_file=str(bad)))
    with pytest.raises(ConfigError, match="GMAIL_TOKEN_FILE"):
        make_senders(settings(tmp_path, token_file=str(tmp_path / "missing.json")))


def test_senders_by_channel(tmp_path: Path) -> None:
    assert make_senders(settings(tmp_path)) == {}  # no credentials: no email sender
    token = tmp_path / "token.json"
    token.write_text(
        json.dumps(
            {
                "client_id": "123.apps.googleusercontent.com",
                "client_secret": "not-a-real-secret",
                "refresh_token": "1//not-a-real-refresh-token",
                "type": "authorized_user",
            }
        ),
        encoding="utf-8",
    )
    senders = make_senders(settings(tmp_path, token_file=str(token)))
    assert [channel.value for channel in senders] == ["email"]
