"""`harambee phone NUMBER`: a feature phone in the terminal. It dials the service code
through the real HTTP endpoint of a running `harambee serve` (or an in-process app),
shows each screen like a handset, reads what you type, and lists the SMS that number
received (from the outbox table)."""
from __future__ import annotations

import itertools
import textwrap
import time
from collections.abc import Callable

import click

WIDTH = 26  # characters per line on a small handset screen
COMMANDS_HELP = "Type your answer; empty line = cancel. At the prompt: d = dial, s = SMS, q = quit."


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


def http_sender(url: str, key: str) -> Callable[[dict[str, str]], str]:
    import requests

    endpoint = f"{url.rstrip('/')}/hooks/ussd"

    def send(form: dict[str, str]) -> str:
        response = requests.post(endpoint, params={"key": key}, data=form, timeout=15)
        if response.status_code != 200:
            raise click.ClickException(f"{endpoint} answered {response.status_code}")
        return response.text

    return send


def in_process_sender(key: str) -> Callable[[dict[str, str]], str]:
    from web.app import create_app

    client = create_app().test_client()

    def send(form: dict[str, str]) -> str:
        response = client.post(f"/hooks/ussd?key={key}", data=form)
        if response.status_code != 200:
            raise click.ClickException(f"the app answered {response.status_code}")
        return response.get_data(as_text=True)

    return send


def inbox(number: str, limit: int = 10) -> list[tuple[str, str]]:
    """The latest SMS to `number` in the outbox: (when, text), newest last."""
    from sqlalchemy import select

    from core.config import load_settings
    from core.db import Database, UnitOfWork
    from core.models import OutboxMessage

    database = Database(load_settings())
    try:
        with UnitOfWork(database) as uow:
            rows = uow.session.execute(
                select(OutboxMessage.created_at, OutboxMessage.text)
                .where(OutboxMessage.phone == number)
                .order_by(OutboxMessage.id.desc()).limit(limit)).all()
    finally:
        database.dispose()
    return [(f"{when:%d/%m %H:%M}", body) for when, body in reversed(rows)]


def session(send: Callable[[dict[str, str]], str], number: str, service_code: str,
            read: Callable[[], str | None]) -> None:
    """One dial: show screens until END or the caller cancels."""
    session_id, text = f"phone-{int(time.time() * 1000)}", ""
    for hop in itertools.count():
        body = send({"sessionId": session_id, "serviceCode": service_code,
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
@click.option("--url", default="http://127.0.0.1:8000", show_default=True,
              help="A running `harambee serve`.")
@click.option("--key", default=None, help="Webhook key (default: from settings).")
@click.option("--in-process", is_flag=True, help="Use the app in this process, no server.")
@click.option("--sms", "show_sms", is_flag=True, help="List the SMS this number got, then exit.")
def phone(number: str, url: str, key: str | None, in_process: bool, show_sms: bool) -> None:
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
    send = in_process_sender(key) if in_process else http_sender(url, key)

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
        try:
            choice = click.prompt("d/s/q", default="q", show_default=False).strip().lower()
        except click.Abort:
            choice = "q"

