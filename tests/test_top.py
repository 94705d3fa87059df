"""``rush top`` on a real terminal (a pty): it shows workers and tasks by state, the
throughput, the best objective value, worker errors and log lines; ``q`` or Ctrl-C
leaves it; a missing ``rich`` is one line."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import loops
from conftest import wait_until
from worker_helpers import SLOW, states

pytest.importorskip("rich")

TESTS = Path(__file__).resolve().parent
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r")


class Terminal:
    """``rush top ...`` in a child process whose controlling terminal is a pty."""

    def __init__(self, *args: str) -> None:
        env = dict(os.environ, COLUMNS="140", LINES="40", TERM="xterm-256color",
                   PYTHONPATH=os.pathsep.join([str(TESTS), str(TESTS.parent)]))
        env.pop("REDIS_URL", None)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: exec at once, whatever happens
            try:
                os.execve(sys.executable, [sys.executable, "-m", "rush", "top", *args], env)
            finally:
                os._exit(127)
        self.output = ""

    def read_until(self, pattern: str, timeout: float = SLOW) -> str:
        """Read the screen until ``pattern`` (a regex) shows; the text without escapes."""
        deadline = time.monotonic() + timeout
        while not re.search(pattern, ANSI.sub("", self.output)):
            left = deadline - time.monotonic()
            if left <= 0:
                pytest.fail(f"rush top never showed {pattern!r}; it showed:\n"
                            f"{ANSI.sub('', self.output)[-3000:]}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    self.output += os.read(self.fd, 65536).decode(errors="replace")
                except OSError:  # the child closed the terminal
                    break
        return ANSI.sub("", self.output)

    def press(self, keys: bytes) -> None:
        os.write(self.fd, keys)

    def exit_code(self, timeout: float = SLOW) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read_available()
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.pid = 0
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.02)  # polling the child's exit, bounded by the deadline
        pytest.fail("rush top did not leave")

    def read_available(self) -> None:
        while select.select([self.fd], [], [], 0)[0]:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.output += chunk.decode(errors="replace")

    def close(self) -> None:
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def terminal():
    made: list[Terminal] = []

    def start(*args: str) -> Terminal:
        made.append(Terminal(*args))
        return made[-1]

    yield start
    for t in made:
        t.close()


@pytest.fixture
def busy_network(rsh, worker):
    """Finished tasks (best y 0.5), a queued one, a crashed worker with a log line."""
    for y in (3.0, 0.5, 2.0):
        worker.finish_tasks(worker.push_running_tasks([{"x1": y}]), [{"y": y, "label": "t"}])
    rsh.push_tasks([{"x1": 9.0}])
    crashed = rsh.start_local_workers(worker_loop=loops.wl_typo_on_first_task, n_workers=1)[0]
    wait_until(lambda: states(rsh).get(crashed) == "lost", SLOW, message="the worker to crash")
    return rsh


def test_top_shows_the_network_and_leaves_on_q(busy_network, config, terminal):
    rsh = busy_network
    top = terminal("--network-id", rsh.network_id, "--url", config.url)

    # the whole frame: the terminal may hand it over in more than one piece
    screen = top.read_until(r"best\s+y=0\.5 \(minimize\)[\s\S]*q or Ctrl-C to leave")

    assert rsh.network_id in screen
    assert re.search(r"workers\s+1 running, 1 lost", screen)
    assert re.search(r"tasks\s+1 queued, 0 running, 3 finished, 1 failed", screen)
    assert re.search(r"throughput\s+", screen)
    assert "NameError: name 'branni' is not defined" in screen  # worker errors
    assert "the loop raised NameError" in screen  # the crash's ERROR record in the log
    top.press(b"q")
    assert top.exit_code() == 0


def test_top_refreshes_and_leaves_on_ctrl_c(busy_network, worker, config, terminal):
    top = terminal("--network-id", busy_network.network_id, "--url", config.url,
                   "--objective", "y", "--maximize")
    top.read_until(r"best\s+y=3 \(maximize\)")
    worker.finish_tasks(worker.push_running_tasks([{"x1": 7.0}]), [{"y": 7.0}])
    top.read_until(r"best\s+y=7 \(maximize\)")  # the next refresh saw the new task
    top.read_until(r"tasks\s+1 queued, 0 running, 4 finished")
    top.press(b"\x03")  # Ctrl-C through the terminal: SIGINT
    assert top.exit_code() == 0


def test_top_without_a_network_shows_the_most_recently_active(config, terminal, rsh, worker):
    worker.finish_tasks(worker.push_running_tasks([{"x1": 1.0}]), [{"y": 1.0}])
    top = terminal("--url", config.url)
    screen = top.read_until(r"best\s+y=")
    assert rsh.network_id in screen
    top.press(b"q")
    assert top.exit_code() == 0


def test_top_of_an_unknown_network_is_one_line(config, network_id):
    done = subprocess.run([sys.executable, "-m", "rush", "top", "--network-id", network_id,
                           "--url", config.url], capture_output=True, text=True, timeout=SLOW,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert f"no network {network_id!r}" in done.stderr and "Traceback" not in done.stderr


def test_top_without_rich_says_how_to_get_it(tmp_path, config):
    fake = tmp_path / "rich"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('no rich here')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(TESTS.parent)]))
    done = subprocess.run([sys.executable, "-m", "rush", "top", "--url", config.url],
                          capture_output=True, text=True, timeout=SLOW, env=env,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert "pip install rich" in done.stderr and len(done.stderr.strip().splitlines()) == 1
