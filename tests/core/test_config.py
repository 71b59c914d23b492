import subprocess
import sys
from pathlib import Path

import pytest

from membership import create_app
from membership.core.config import (
    DEFAULT_MEMBER_STATUSES,
    ENV_VARS,
    ConfigError,
    SettingsSchema,
    load_settings,
    settings_table,
)

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_DOC = ROOT / "docs" / "configuration.md"  # the page whose table lists every setting


def test_defaults_when_nothing_is_set(tmp_path):
    settings = load_settings({"MEMBERSHIP_DATA_DIR": str(tmp_path)})
    assert settings.redis_url is None
    assert settings.uses_embedded_redis
    assert settings.redis_prefix == "membership"
    assert settings.stripe_webhook_secrets == ()
    assert settings.stripe_webhook_tolerance == 300
    assert settings.member_statuses == DEFAULT_MEMBER_STATUSES
    assert settings.banner_max_age == 30


def test_values_are_parsed(tmp_path):
    settings = load_settings(
        {
            "REDIS_URL": "rediss://:pw@redis.internal:6380/2",
            "STRIPE_WEBHOOK_SECRET": "whsec_new, whsec_old",
            "STRIPE_WEBHOOK_TOLERANCE": "120",
            "STRIPE_API_KEY": "sk_test_abc123",
            "SECRET_KEY": "x" * 32,
            "ALLOWED_ORIGINS": "https://kyivindependent.com:443, https://www.KyivIndependent.com/,"
            " http://localhost:80, http://localhost:8080",
            "PUBLICATION_NAME": "The Kyiv Independent",
            "MEMBER_STATUSES": "active,trialing",
            "MEMBERSHIP_DATA_DIR": str(tmp_path),
        }
    )
    assert settings.redis_url == "rediss://:pw@redis.internal:6380/2"
    assert settings.stripe_webhook_secrets == ("whsec_new", "whsec_old")
    assert settings.stripe_webhook_tolerance == 120
    assert settings.allowed_origins == (
        "https://kyivindependent.com",
        "https://www.kyivindependent.com",  # as browsers send Origin: no default port
        "http://localhost",
        "http://localhost:8080",
    )
    assert settings.member_statuses == ("active", "trialing")
    assert settings.data_dir == Path(tmp_path)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("REDIS_URL", "http://localhost:6379", "redis://, rediss:// or unix://"),
        ("REDIS_URL", "redis://", "expected a host"),
        ("REDIS_URL", "redis://localhost:notaport/0", "numeric port"),
        ("REDIS_URL", "unix://", "unix:///path"),
        ("STRIPE_WEBHOOK_SECRET", "sk_live_oops", "whsec_"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_ok,not-a-secret", "whsec_"),
        ("STRIPE_WEBHOOK_TOLERANCE", "soon", "whole number"),
        ("STRIPE_WEBHOOK_TOLERANCE", "0", "between 1 and 86400"),
        ("STRIPE_API_KEY", "pk_test_123", "sk_... or rk_..."),
        ("SECRET_KEY", "short", "at least 16"),
        ("ALLOWED_ORIGINS", "kyivindependent.com", "origins like https://"),
        ("ALLOWED_ORIGINS", "https://site.org/path", "origins like https://"),
        ("ALLOWED_ORIGINS", "https://site.org?x=1", "origins like https://"),
        ("ALLOWED_ORIGINS", "https://user@site.org", "origins like https://"),
        ("ALLOWED_ORIGINS", "https://site.org:99999", "origins like https://"),
        ("MEMBER_STATUSES", "active,member", "Stripe subscription statuses"),
        ("REDIS_PREFIX", "has space", "A-Z a-z"),
        ("BANNER_MAX_AGE", "-1", "between 0 and 86400"),
        ("JOIN_URL", "ftp://example.org", "http:// or https://"),
        ("LOG_LEVEL", "LOUD", "DEBUG, INFO"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(tmp_path, name, value, expected):
    with pytest.raises(ConfigError) as info:
        load_settings({name: value, "MEMBERSHIP_DATA_DIR": str(tmp_path)})
    message = str(info.value)
    assert message.startswith(f"{name}: ")
    assert expected in message
    assert "\n" not in message


def test_blank_values_count_as_unset(tmp_path):
    settings = load_settings({"REDIS_URL": "  ", "MEMBERSHIP_DATA_DIR": str(tmp_path)})
    assert settings.redis_url is None


def test_create_app_refuses_a_bad_environment(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "mysql://db")
    with pytest.raises(ConfigError, match=r"^REDIS_URL: "):
        create_app()


def test_dev_secret_key_is_generated_once_and_kept(tmp_path):
    first = load_settings({"MEMBERSHIP_DATA_DIR": str(tmp_path)}).secret_key
    second = load_settings({"MEMBERSHIP_DATA_DIR": str(tmp_path)}).secret_key
    assert len(first) >= 32
    assert first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_processes_starting_together_all_get_the_one_dev_secret_key(tmp_path):
    """Workers that load the settings at once read one key, never an empty or half-written
    one; an empty file (left by a write a full disk refused) is replaced, not used."""
    (tmp_path / "secret_key").write_text("")
    script = (
        "import sys; from membership.core.config import load_settings; "
        "print(load_settings({'MEMBERSHIP_DATA_DIR': sys.argv[1]}).secret_key)"
    )
    starts = [
        subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE)
        for _ in range(6)
    ]
    keys = {p.communicate(timeout=60)[0].decode().strip() for p in starts}
    assert [p.returncode for p in starts] == [0] * len(starts)
    assert keys == {(tmp_path / "secret_key").read_text()}
    assert len(keys.pop()) >= 32
    assert sorted(f.name for f in tmp_path.iterdir()) == ["secret_key"]  # no temporary left


def test_cli_reports_a_bad_setting_in_one_line(monkeypatch):
    from click.testing import CliRunner

    from membership.cli import cli

    result = CliRunner().invoke(cli, ["serve"], env={"STRIPE_WEBHOOK_TOLERANCE": "x"})
    assert result.exit_code == 2
    assert result.output.strip() == (
        "configuration error: STRIPE_WEBHOOK_TOLERANCE: expected a whole number of seconds"
    )


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://127.0.0.1:26379/mymaster",
        "redis+sentinel://:pw@s1:26379,s2:26379,s3:26379/members/2",
        "redis+sentinel://[::1]:26379,s2/members",
        "redis+cluster://127.0.0.1:7000",
        "redis+cluster://:pw@n1:7000,n2:7001,n3:7002",
        "redis+cluster://user:p%40ss@n1:7000/0",
    ],
)
def test_sentinel_and_cluster_urls_are_accepted(tmp_path, url):
    settings = load_settings({"REDIS_URL": f" {url} ", "MEMBERSHIP_DATA_DIR": str(tmp_path)})
    assert settings.redis_url == url


def test_sentinel_and_cluster_urls_are_parsed():
    from membership.core.config import parse_redis_url

    t = parse_redis_url("redis+sentinel://:pw@s1:26379,[::1]:26380,s3/members/2")
    assert (t.kind, t.service, t.db) == ("sentinel", "members", 2)
    assert (t.username, t.password) == (None, "pw")
    assert t.nodes == (("s1", 26379), ("::1", 26380), ("s3", 26379))
    t = parse_redis_url("redis+cluster://app:p%40ss@n1:7000,n2")
    assert (t.kind, t.username, t.password) == ("cluster", "app", "p@ss")
    assert t.nodes == (("n1", 7000), ("n2", 6379))
    assert parse_redis_url("redis://h:6379/1").kind == "single"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("redis+sentinel://s1:26379", "a service name"),
        ("redis+sentinel://s1:26379/members/zero", "a service name and an optional db"),
        ("redis+sentinel://s1:port/members", "a numeric port"),
        ("redis+sentinel:///members", "host:port pairs"),
        ("redis+sentinel://s1:26379,,s2:26379/members", "host:port pairs"),
        ("redis+cluster://n1:7000/3", "a cluster has only db 0"),
        ("redis+cluster://n1:99999", "a numeric port"),
        ("redis+cluster://n1:7000?ssl=true", "no ?options"),
        ("redis+clusters://n1:7000", "redis+cluster://[:password@]host:port"),
    ],
)
def test_bad_sentinel_and_cluster_urls_name_the_form(tmp_path, value, expected):
    with pytest.raises(ConfigError) as info:
        load_settings({"REDIS_URL": value, "MEMBERSHIP_DATA_DIR": str(tmp_path)})
    message = str(info.value)
    assert message.startswith("REDIS_URL: expected") and expected in message
    assert "\n" not in message


def _documented_table(markdown: str) -> str:
    lines = markdown.splitlines()
    start = lines.index("| variable | default | meaning |")
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return "\n".join(lines[start:end]) + "\n"


def test_the_documented_table_is_generated_from_the_declared_settings():
    """Each setting is declared once (SettingsSchema): the docs' table is exactly its output."""
    doc = SETTINGS_DOC.relative_to(ROOT)
    assert _documented_table(SETTINGS_DOC.read_text()) == settings_table(), (
        f"{doc}'s settings table differs: python scripts/settings_table.py {doc}"
    )


def test_every_setting_has_a_row_and_one_line_help():
    rows = settings_table().splitlines()[2:]
    assert [row.split("`")[1] for row in rows] == list(ENV_VARS)
    assert len(set(ENV_VARS)) == len(ENV_VARS)
    for declared in SettingsSchema().fields.values():
        help_ = declared.metadata["help"]
        assert help_.strip() and "\n" not in help_ and "|" not in help_, declared.data_key


def test_the_script_puts_the_generated_table_in_place(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "# Settings\n\n| variable | default | meaning |\n| --- | --- | --- |\n"
        "| `GONE` | `1` | a setting no longer declared |\n\nAfter the table.\n"
    )
    script = ROOT / "scripts" / "settings_table.py"
    subprocess.run([sys.executable, str(script), str(page)], check=True, timeout=60)
    assert page.read_text() == "# Settings\n\n" + settings_table() + "\nAfter the table.\n"
    printed = subprocess.run(
        [sys.executable, str(script)], check=True, capture_output=True, text=True, timeout=60
    )
    assert printed.stdout == settings_table()
