"""Child processes this process started (the demo's server, worker and cron; a bench's
servers): stopped by the handle we kept, never looked up by name."""
from __future__ import annotations

import subprocess
from collections.abc import Iterable
from typing import Any


def stop(children: Iterable[subprocess.Popen[Any]], *, grace: float = 10) -> None:
    """SIGTERM every child still running, wait up to `grace` seconds for each, then
    SIGKILL what is left."""
    running = [child for child in children if child.poll() is None]
    for child in running:
        child.terminate()
    for child in running:
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
