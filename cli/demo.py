"""`harambee demo`: the whole service on a laptop, and `harambee fake-daraja`.

The demo runs on embedded defaults (SQLite, an embedded Redis) with M-Pesa through a
fake Daraja it starts beside the app, so money moves end to end: paybill payments,
prompts, payouts and their callbacks. Its history (the seeded loans) is written with
the console rail; everything after it starts goes through the fake. SMS go to the
simulator's gateway, and the phones at /simulator open with the demo's people
(docs/simulator.md). HARAMBEE_PORT sets the port (default 8000), HARAMBEE_INSTANCE the
folder of its database and Redis (default ./instance).
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from typing import Any

import click
import requests

from core.config import ConfigError, Settings, load_settings

FAKE = {"MPESA_CONSUMER_KEY": "fake-consumer-key", "MPESA_CONSUMER_SECRET": "fake-consumer-secret",
        "MPESA_PASSKEY": "fake-passkey", "MPESA_SHORTCODE": "174379",
        "MPESA_INITIATOR_NAME": "testapi",
        "MPESA_SECURITY_CREDENTIAL": "fake-security-credential"}


def free_port(host: str) -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _wait_for(url: str, process: subprocess.Popen[Any], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise click.ClickException(f"{url} did not come up")


@click.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=int(os.environ.get("HARAMBEE_PORT", "8000")), type=int)
@click.option("--no-seed", is_flag=True, help="Do not add the demo world.")
def demo(host: str, port: int, no_seed: bool) -> None:
    """The whole service on a laptop: SQLite, embedded Redis, console SMS, and M-Pesa
    through a fake Daraja."""
    from cli.demo_world import seed
    from core.migrate import upgrade
    from runtime import processes
    from runtime.mpesa import CallbackUrls
    from runtime.redis import start_embedded
    from runtime.services import build_services

    os.environ["HARAMBEE_ENV"] = "development"  # the demo is never production
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    upgrade(settings)
    redis_handle = None if settings.redis.url else start_embedded(
        settings.instance_path / "redis.db")
    env = dict(os.environ)
    if redis_handle is not None:
        env["REDIS_URL"] = redis_handle.url
    children: list[subprocess.Popen[Any]] = []
    stopping = False

    def stop(*_: Any) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        fake_port = free_port(host)
        children.append(subprocess.Popen(
            [sys.executable, "-m", "mpesa.fake", "--host", host, "--port", str(fake_port)],
            env=env, stdout=subprocess.DEVNULL))
        fake_url = f"http://{host}:{fake_port}"
        _wait_for(f"{fake_url}/fake/state", children[-1])
        env.update(FAKE, MPESA_BASE_URL=fake_url, HARAMBEE_GATEWAY__PAYOUT="daraja",
                   HARAMBEE_MPESA__CALLBACK_BASE_URL=f"http://{host}:{port}",
                   **simulator_env())
        live = load_settings(env=env)
        if not no_seed and _seed(seed, build_services, live):
            click.echo("seeded the demo world (PIN 2580 for everyone)")
        children.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", "2",
             "--log-level", "warning", "wsgi:app"], env=env))
        for name in ("worker", "cron"):
            children.append(subprocess.Popen([sys.executable, "-m", "cli", name], env=env))
        svc = build_services(live)
        operator = _demo_operator(svc)
        urls = CallbackUrls.of(live)
        assert svc.daraja is not None
        svc.daraja.register_urls(confirmation_url=urls.c2b_confirmation,
                                 validation_url=urls.c2b_validation)
        svc.db.dispose()
        _banner(live, host, port, fake_url, operator)
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.2)
    finally:
        processes.stop(children)
        if redis_handle is not None:
            redis_handle.close()
        click.echo("demo stopped")


def _seed(seed: Any, build_services: Any, live: Settings) -> bool:
    """The demo's history, paid out by the console rail as of its own dates."""
    svc = build_services(replace(live, gateway=replace(live.gateway, payout="console")))
    try:
        return bool(seed(svc, svc.now()))
    finally:
        svc.db.dispose()


DEMO_OPERATOR = "admin@harambee.demo"
DEMO_PASSWORD = "harambee-demo-2580"


def _demo_operator(svc: Any) -> tuple[str, str, str]:
    """The demo's console operator (admin, with TOTP): made once, its secret read back
    on later runs. Only the demo prints a password and a TOTP secret."""
    from sqlalchemy import select

    from core import operators
    from core.errors import Conflict
    from core.models import Operator

    try:
        made = operators.add_operator(svc.uow(), email=DEMO_OPERATOR, role="admin",
                                      password=DEMO_PASSWORD, now=svc.now())
        secret = made.totp_secret or ""
    except Conflict:
        with svc.uow() as uow:
            secret = uow.session.scalar(select(Operator.totp_secret).where(
                Operator.email == DEMO_OPERATOR)) or ""
    return DEMO_OPERATOR, DEMO_PASSWORD, secret


def simulator_env() -> dict[str, str]:
    """The simulator on, with the demo's people on its page and SMS to its phones."""
    from cli.demo_world import PIN, cast

    return {"HARAMBEE_SIMULATOR__ENABLED": "true", "HARAMBEE_GATEWAY": "simulator",
            "HARAMBEE_SIMULATOR__PHONES": ",".join(phone for phone, _, _ in cast()),
            "HARAMBEE_SIMULATOR__KNOWN_PIN": PIN}


def banner(settings: Settings, host: str, port: int, fake_url: str,
           operator: tuple[str, str, str]) -> list[str]:
    """What the demo prints once it is up (the README's first lines say the same)."""
    from cli.demo_world import PIN, cast

    key = settings.security.webhook_key
    email, password, secret = operator
    base = f"http://{host}:{port}"
    lines = [f"Harambee demo on {base}",
             f"  Open the phones: {base}/simulator/",
             f"  The demo's people (PIN {PIN} for everyone):"]
    lines += [f"    {role:<9} {name:<16} {phone}" for phone, name, role in cast()]
    env = "" if port == 8000 else f"HARAMBEE_PORT={port} "
    lines += [f"  A phone in the terminal: {env}make phone N=+254711000001 "
              f"(or {env}.venv/bin/harambee phone +254711000001)",
              f"  USSD hook: POST {base}/hooks/ussd?key={key}",
              f"  Operator console: {base}/console/  log in as {email}, password "
              f"{password!r}, TOTP secret {secret} (add it to an authenticator app, or: "
              f".venv/bin/python -c \"import pyotp; print(pyotp.TOTP('{secret}').now())\")",
              f"  M-Pesa runs through a fake Daraja on {fake_url}"]
    return lines


def _banner(settings: Settings, host: str, port: int, fake_url: str,
            operator: tuple[str, str, str]) -> None:
    click.echo("\n".join(banner(settings, host, port, fake_url, operator)))


@click.command("fake-daraja")
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=0, type=int, help="0: any free port")
@click.option("--float", "float_", default="1000000", help="B2C float, whole shillings")
def fake_daraja(host: str, port: int, float_: str) -> None:
    """Run a fake of Safaricom's Daraja API (for the demo and tests) until stopped."""
    from mpesa import fake

    sys.exit(fake.main(["--host", host, "--port", str(port), "--float", float_]))
