"""Settings: defaults, file, environment; a bad file names the key and the reason."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from core.config import ConfigError, Settings, load_settings, production_gaps

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body)
    return path


def test_example_file_loads_and_documents_every_key():
    settings = load_settings(ROOT / "config.example.toml", env={})
    assert settings == Settings()
    example = (ROOT / "config.example.toml").read_text()
    for section in dataclasses.fields(Settings):
        assert f"[{section.name}]" in example
        for field in dataclasses.fields(getattr(settings, section.name)):
            assert re.search(rf"^{field.name} = ", example, re.M), f"{section.name}.{field.name}"


def test_environment_wins_over_file(tmp_path):
    path = write(tmp_path, '[security]\nwebhook_key = "from-the-file"\n[ussd]\nmax_chars = 160\n')
    settings = load_settings(path, env={"HARAMBEE_WEBHOOK_KEY": "from-the-env",
                                        "DATABASE_URL": "postgresql://u@h/db",
                                        "HARAMBEE_LOAN__TERMS_WEEKS": "4,8"})
    assert settings.security.webhook_key == "from-the-env"
    assert settings.ussd.max_chars == 160
    assert settings.loan.terms_weeks == (4, 8)
    assert settings.database_url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize("body, key", [
    ("[ussd]\nmax_chars = 'many'\n", "ussd.max_chars"),
    ("[ussd]\nmax_char = 160\n", "ussd.max_char"),
    ("[nonsense]\nx = 1\n", "nonsense"),
    ("[app]\ncurrency = 'shillings'\n", "app.currency"),
    ("[app]\ntimezone = 'Mars/Olympus'\n", "app.timezone"),
    ("[loan]\nmin_amount = 900000\n", "loan.min_amount"),
    ("[loan]\ninstallment_every_weeks = 3\n", "loan.installment_every_weeks"),
    ("[reminders]\nquiet_start = 'late'\n", "reminders.quiet_start"),
    ("[gateway]\nsms = 'africastalking'\n", "gateway.api_key"),
    ("[app\n", "config.toml"),
])
def test_bad_config_names_the_key(tmp_path, body, key):
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, body), env={})
    assert err.value.key == key
    assert err.value.reason


def test_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_settings(env={"HARAMBEE_CONFIG": str(tmp_path / "nope.toml")})
    assert err.value.key == "HARAMBEE_CONFIG"


def test_bad_config_stops_the_cli_without_a_traceback(tmp_path):
    from click.testing import CliRunner

    from cli import main

    path = write(tmp_path, "[ussd]\nmax_chars = 'x'\n")
    result = CliRunner().invoke(main, ["check"], env={"HARAMBEE_CONFIG": str(path)})
    assert result.exit_code != 0
    assert "ussd.max_chars" in result.output
    assert "Traceback" not in result.output


def test_mpesa_secrets_come_from_the_environment_and_stay_out_of_the_repr():
    env = {"MPESA_CONSUMER_KEY": "ck-from-env", "MPESA_CONSUMER_SECRET": "cs-from-env",
           "MPESA_PASSKEY": "pk-from-env", "MPESA_SECURITY_CREDENTIAL": "sc-from-env",
           "MPESA_CALLBACK_TOKEN": "token-from-env", "MPESA_BASE_URL": "https://api.safaricom.co.ke",
           "MPESA_SHORTCODE": "600999", "MPESA_INITIATOR_NAME": "harambee-api",
           "HARAMBEE_MPESA__ALLOWED_IPS": "196.201.214.200,196.201.212.0/24"}
    m = load_settings(env=env).mpesa
    assert (m.consumer_key, m.consumer_secret, m.passkey, m.security_credential) == (
        "ck-from-env", "cs-from-env", "pk-from-env", "sc-from-env")
    assert (m.callback_token, m.base_url, m.shortcode, m.initiator_name) == (
        "token-from-env", "https://api.safaricom.co.ke", "600999", "harambee-api")
    assert m.allowed_ips == ("196.201.214.200", "196.201.212.0/24")
    assert m.b2c_party == "600999"  # b2c_shortcode empty: the paybill
    shown = repr(load_settings(env=env))
    for secret in ("ck-from-env", "cs-from-env", "pk-from-env", "sc-from-env", "token-from-env"):
        assert secret not in shown


@pytest.mark.parametrize("body, key", [
    ("[mpesa]\nbase_url = 'sandbox'\n", "mpesa.base_url"),
    ("[mpesa]\nshortcode = '17a379'\n", "mpesa.shortcode"),
    ("[mpesa]\nb2c_shortcode = '12'\n", "mpesa.b2c_shortcode"),
    ("[mpesa]\nb2c_command = 'Salary'\n", "mpesa.b2c_command"),
    ("[mpesa]\ncallback_base_url = 'https://pay.example/mpesa'\n", "mpesa.callback_base_url"),
    ("[mpesa]\ncallback_base_url = 'https://SAFARICOM-hooks.example'\n", "mpesa.callback_base_url"),
    ("[mpesa]\ncallback_base_url = 'ftp://x.example'\n", "mpesa.callback_base_url"),
    ("[mpesa]\ncallback_token = 'short'\n", "mpesa.callback_token"),
    ("[mpesa]\ncallback_token = 'has/a/slash'\n", "mpesa.callback_token"),
    ("[mpesa]\nallowed_ips = ['196.201.214.200', 'somewhere']\n", "mpesa.allowed_ips"),
    ("[security]\ntrusted_proxies = -1\n", "security.trusted_proxies"),
    ("[mpesa]\ntimeout_seconds = 0\n", "mpesa.timeout_seconds"),
    ("[mpesa]\nmax_amount = 0\n", "mpesa.max_amount"),
])
def test_bad_mpesa_settings_name_the_key(tmp_path, body, key):
    with pytest.raises(ConfigError) as err:
        load_settings(write(tmp_path, body), env={})
    assert err.value.key == key


PRODUCTION = {
    "HARAMBEE_ENV": "production", "HARAMBEE_WEBHOOK_KEY": "w" * 24,
    "HARAMBEE_SESSION_SECRET": "s" * 24, "MPESA_CALLBACK_TOKEN": "t" * 24,
    "HARAMBEE_CONSOLE_SECRET": "o" * 24,
    "MPESA_CONSUMER_KEY": "k", "MPESA_CONSUMER_SECRET": "c", "MPESA_PASSKEY": "p",
    "MPESA_INITIATOR_NAME": "i", "MPESA_SECURITY_CREDENTIAL": "x",
    "AT_API_KEY": "a" * 24, "HARAMBEE_METRICS_TOKEN": "m" * 24,
}
LIVE_GATEWAYS = {"gateway": {"sms": "africastalking", "payout": "daraja"},
                 "mpesa": {"callback_base_url": "https://harambee.example"}}


def test_production_needs_a_session_secret_of_its_own():
    ready = load_settings(env=PRODUCTION, overrides=LIVE_GATEWAYS)
    assert production_gaps(ready) == []
    for secret in ("dev-session-secret", "too-short-1", "w" * 24):  # default, weak, the webhook key
        settings = load_settings(env={**PRODUCTION, "HARAMBEE_SESSION_SECRET": secret},
                                 overrides=LIVE_GATEWAYS)
        assert [gap.split(":")[0] for gap in production_gaps(settings)] == \
            ["security.session_secret"], secret
    assert production_gaps(load_settings(env={**PRODUCTION, "HARAMBEE_ENV": "development",
                                              "HARAMBEE_SESSION_SECRET": "short-ok"})) == []
