"""The console's doors: login with argon2 and TOTP, lockout, CSRF, roles on every view
and action, cookie flags, redirects for nobody logged in."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from console.access import OPEN
from core.models import AuditEntry, Member, MemberStatus, Operator
from tests.console_actions import ConsoleActions, make_operator


@pytest.fixture
def ops(services):
    return {role: make_operator(services, role) for role in ("support", "finance", "admin")}


def test_nobody_logged_in_is_sent_to_the_login(client):
    for path in ("/console/", "/console/dashboard", "/console/members/1", "/console/money",
                 "/console/audit", "/console/groups", "/console/groups/1", "/console/stories",
                 "/console/data", "/console/data/P1001", "/console/pauses"):
        answer = client.get(path)
        assert answer.status_code == 302, path
        assert answer.headers["Location"].startswith("/console/login?next=")
    assert client.get("/console/login").status_code == 200
    assert client.post("/console/members/1/suspend", data={"reason": "x"}).status_code in (302,
                                                                                          400)


def test_finance_logs_in_with_password_and_totp(console, ops, client):
    answer = console.login(ops["finance"])
    assert answer.status_code == 302 and answer.headers["Location"] == "/console/"
    assert client.get("/console/").headers["Location"] == "/console/dashboard"
    assert client.get("/console/dashboard").status_code == 200


def test_a_wrong_or_missing_totp_code_is_refused_like_a_wrong_password(console, ops, client):
    for code in ("", "000000", ops["finance"].code(console.services, steps_ahead=5)):
        answer = console.login(ops["finance"], code=code)
        assert answer.status_code == 401
        assert "Wrong email, password or code." in answer.get_data(as_text=True)
    assert console.login(ops["finance"], password="not the password").status_code == 401
    assert client.get("/console/dashboard").status_code == 302  # still nobody


def test_a_totp_code_is_good_once(console, ops, client):
    assert console.login(ops["admin"]).status_code == 302
    client.post("/console/logout", data={"csrf_token": console.token()})
    assert console.login(ops["admin"]).status_code == 401  # the same code, replayed
    console.services.clock.advance(seconds=30)
    assert console.login(ops["admin"]).status_code == 302


def test_an_unknown_email_gets_the_same_answer(console, ops):
    ghost = make_operator.__globals__["Operator"](0, "ghost@harambee.test", "support", None)
    answer = console.login(ghost)
    assert answer.status_code == 401
    assert "Wrong email, password or code." in answer.get_data(as_text=True)


def test_five_failures_lock_the_account(console, ops, services):
    for _ in range(5):
        assert console.login(ops["support"], password="wrong password!").status_code == 401
    answer = console.login(ops["support"])  # the right password, now too late
    assert answer.status_code == 401
    assert "Too many failed logins" in answer.get_data(as_text=True)
    services.clock.advance(minutes=16)
    assert console.login(ops["support"]).status_code == 302


def test_failed_logins_are_rate_limited_per_address(services, ops):
    import dataclasses

    from web.app import create_app

    settings = services.settings
    limited = dataclasses.replace(services, settings=dataclasses.replace(
        settings, security=dataclasses.replace(settings.security,
                                               console_login_limit="3 per minute")))
    app = create_app(services=limited)
    console = ConsoleActions(app.test_client(), services)
    codes = [console.login(ops["support"], password="wrong password!").status_code
             for _ in range(4)]
    assert codes == [401, 401, 401, 429]


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(console, ops, client,
                                                                      world, services):
    member = world.member("Halima Ali")
    console.login(ops["support"])
    answer = client.post(f"/console/members/{member.id}/suspend", data={"reason": "fraud"})
    assert answer.status_code == 400
    assert "CSRF" in answer.get_data(as_text=True)
    answer = client.post(f"/console/members/{member.id}/suspend",
                         data={"reason": "fraud", "csrf_token": "forged"})
    assert answer.status_code == 400
    with services.uow() as uow:
        assert uow.session.get(Member, member.id).status == MemberStatus.VERIFIED
        assert uow.session.scalar(select(func.count()).select_from(AuditEntry)) == 0
    # and the login form too: no token, no login
    answer = client.post("/console/login", data={"email": ops["admin"].email,
                                                 "password": "x", "code": "1"})
    assert answer.status_code == 400


def test_support_may_not_open_finance_or_admin_pages(console, ops, client):
    console.login(ops["support"])
    for path in ("/console/dashboard", "/console/money", "/console/money/check",
                 "/console/money/suspense.csv", "/console/audit", "/console/settings",
                 "/console/operators"):
        assert client.get(path).status_code == 403, path
    token = console.token()
    for path in ("/console/money/suspense/1/match", "/console/money/payouts/1/retry",
                 "/console/operators"):
        assert client.post(path, data={"csrf_token": token, "reason": "r",
                                       "target": "L1000"}).status_code == 403, path
    assert client.get("/console/members").status_code == 200
    assert client.get("/console/disputes").status_code == 200
    for path in ("/console/groups", "/console/stories", "/console/data", "/console/pauses"):
        assert client.get(path).status_code == 200, path


def test_finance_may_not_act_on_members_or_disputes(console, ops, client, world):
    member = world.member()
    console.login(ops["finance"])
    assert client.get("/console/disputes").status_code == 403
    answer = console.post(f"/console/members/{member.id}/suspend", {"reason": "r"})
    assert answer.status_code == 403
    assert client.get(f"/console/members/{member.id}").status_code == 200  # reading is fine


def test_every_console_view_checks_a_role(app):
    """Not just the menu: every endpoint under /console but the login and the stylesheet
    is wrapped by `requires`."""
    endpoints = [rule.endpoint for rule in app.url_map.iter_rules()
                 if rule.rule.startswith("/console")]
    assert len(endpoints) > 15
    unchecked = [e for e in endpoints if e not in OPEN
                 and not hasattr(app.view_functions[e], "roles")]
    assert unchecked == []


def test_the_cookie_is_httponly_and_secure_outside_development(services, ops, console):
    answer = console.login(ops["support"])
    cookie = answer.headers["Set-Cookie"]
    assert "harambee_console=" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development: the demo and tests speak plain http
    from dataclasses import replace

    from runtime.services import Services
    from web.app import create_app

    settings = services.settings
    production = replace(settings, app=replace(settings.app, environment="production"))
    app = create_app(services=Services(settings=production, db=services.db,
                                       redis=services.redis, clock=services.clock))
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True


def test_next_never_leads_off_the_console(console, ops, client):
    page = client.get("/console/login")
    from tests.console_actions import PASSWORD, token_in

    answer = client.post("/console/login", data={
        "csrf_token": token_in(page.get_data(as_text=True)), "email": ops["support"].email,
        "password": PASSWORD, "next": "//evil.example/console/"})
    assert answer.headers["Location"] == "/console/"


def test_a_disabled_operator_is_logged_out_at_the_next_request(console, ops, client, services):
    console.login(ops["support"])
    assert client.get("/console/members").status_code == 200
    with services.uow() as uow:
        uow.session.get(Operator, ops["support"].id).active = False
        uow.commit()
    assert client.get("/console/members").status_code == 302
