"""`harambee phone NUMBER`: a feature phone in the terminal. It dials the service code
through the real HTTP endpoint of a running `harambee serve` or `harambee demo` (or an
in-process app), shows each screen like a handset, reads what you type, sends SMS to
the short code through the real SMS hook, and lists the SMS that number received (from
the outbox table, in local time). The browser's phones are at /simulator."""
from __future__ import annotations

import itertools
import os
import textwrap
import time
import uuid
from collections.abc import Callable
from datetime import UTC

import click

from cli.instance import database_or_hint

WIDTH = 26  # characters per line on a small handset screen
COMMANDS_HELP = ("Type your answer; empty line = cancel. At the prompt: d = dial, "
                 "s = SMS received, w = write an SMS, q = quit.")
Sender = Callable[[str, dict[str, str]], str]


def handset(body: str) -> str:
    """A screen as a small handset shows it: wrapped, framed."""
    kind, _, message = body.partition(" ")
    lines: list[str] = []
    for line in message.split("\n"):
        lines.extend(textwrap.wrap(line, WIDTH) or [""])
    top = "+" + "-" * (WIDTH + 2) + "+"
    framed = [top] + [f"| {line:<{WIDTH}} |" for line in lines] + [top]
    if kind == "END":
        framed.append("  (session ended)")
    return "\n".join(framed)


def default_url() -> str:
    """Where `harambee demo` and `serve` listen: HARAMBEE_PORT, else 8000."""
    return f"http://127.0.0.1:{os.environ.get('HARAMBEE_PORT', '8000')}"


def http_sender(url: str, key: str) -> Sender:
    import requests

    def send(hook: str, form: dict[str, str]) -> str:
        endpoint = f"{url.rstrip('/')}{hook}"
        try:
            response = requests.post(endpoint, params={"key": key}, data=form, timeout=15)
        except requests.ConnectionError:
            raise click.ClickException(
                f"nothing answers at {url}: start `make demo` (or `harambee serve`), pass "
                "--url, set HARAMBEE_PORT, or use --in-process") from None
        if response.status_code != 200:
            raise click.ClickException(f"{endpoint} answered {response.status_code}")
        return response.text

    return send


def in_process_sender(key: str) -> Sender:
    from web.app import create_app

    client = create_app().test_client()

    def send(hook: str, form: dict[str, str]) -> str:
        response = client.post(f"{hook}?key={key}", data=form)
        if response.status_code != 200:
            raise click.ClickException(f"the app answered {response.status_code}")
        return response.get_data(as_text=True)

    return send


def inbox(number: str, limit: int = 10) -> list[tuple[str, str]]:
    """The latest SMS to `number` in the outbox: (when, in local time; text), newest
    last."""
    from sqlalchemy import select

    from core.config import load_settings
    from core.db import UnitOfWork
    from core.models import OutboxMessage

    settings = load_settings()
    database = database_or_hint(settings)
    try:
        with UnitOfWork(database) as uow:
            rows = uow.session.execute(
                select(OutboxMessage.created_at, OutboxMessage.text)
                .where(OutboxMessage.phone == number)
                .order_by(OutboxMessage.id.desc()).limit(limit)).all()
    finally:
        database.dispose()
    zone = settings.zone
    return [((when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(zone)
             .strftime("%d/%m %H:%M"), body) for when, body in reversed(rows)]


def write_sms(send: Sender, number: str, short_code: str, text: str) -> None:
    """An SMS from this phone to the short code, as Africa's Talking posts it."""
    send("/hooks/sms", {"from": number, "to": short_code, "text": text,
                        "id": f"phone-{uuid.uuid4().hex[:16]}",
                        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "linkId": "",
                        "networkCode": "63902"})
    click.echo(f"  (sent to {short_code}; the answer comes as an SMS: s to read it)")


def session(send: Sender, number: str, service_code: str,
            read: Callable[[], str | None]) -> None:
    """One dial: show screens until END or the caller cancels."""
    session_id, text = f"phone-{int(time.time() * 1000)}", ""
    for hop in itertools.count():
        body = send("/hooks/ussd", {"sessionId": session_id, "serviceCode": service_code,
                     "phoneNumber": number, "networkCode": "63902", "text": text})
        click.echo(handset(body))
        if not body.startswith("CON "):
            return
        typed = read()
        if typed is None or typed == "":
            click.echo("  (cancelled)")
            return
        text = typed if hop == 0 else f"{text}*{typed}"


@click.command("phone")
@click.argument("number")
@click.option("--url", default=None,
              help="A running `harambee demo` or `serve` (default: http://127.0.0.1:"
                   "$HARAMBEE_PORT, else port 8000).")
@click.option("--key", default=None, help="Webhook key (default: from settings).")
@click.option("--in-process", is_flag=True, help="Use the app in this process, no server.")
@click.option("--sms", "show_sms", is_flag=True, help="List the SMS this number got, then exit.")
@click.option("--send", "sms_text", default=None,
              help="Send this SMS to the short code, then exit.")
def phone(number: str, url: str | None, key: str | None, in_process: bool, show_sms: bool,
          sms_text: str | None) -> None:
    """A terminal feature phone dialling the USSD service as NUMBER."""
    from core.config import load_settings
    from core.phones import try_normalise

    settings = load_settings()
    e164 = try_normalise(number, settings.app.default_region)
    if e164 is None:
        raise click.BadParameter(f"not a phone number: {number}")
    if show_sms:
        for when, body in inbox(e164):
            click.echo(f"[{when}] {body}")
        return
    key = key or settings.security.webhook_key
    send = in_process_sender(key) if in_process else http_sender(url or default_url(), key)
    short_code = settings.simulator.short_code
    if sms_text is not None:
        write_sms(send, e164, short_code, sms_text)
        return

    def read() -> str | None:
        try:
            return click.prompt("", default="", show_default=False, prompt_suffix="> ")
        except click.Abort:
            return None

    click.echo(f"{e164} dialling {settings.ussd.service_code}. {COMMANDS_HELP}")
    choice = "d"
    while choice != "q":
        if choice == "d":
            session(send, e164, settings.ussd.service_code, read)
        elif choice == "s":
            for when, body in inbox(e164):
                click.echo(f"[{when}] {body}")
        elif choice == "w":
            try:
                typed = click.prompt(f"SMS to {short_code}", default="", show_default=False)
            except click.Abort:
                typed = ""
            if typed.strip():
                write_sms(send, e164, short_code, typed.strip())
        try:
            choice = click.prompt("d/s/w/q", default="q", show_default=False).strip().lower()
        except click.Abort:
            choice = "q"

