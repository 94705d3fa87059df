"""``rush demo``, the main job: runs to the end, reaps its workers, leaves no keys."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import rush
from rush import demo, plan
from rush.local_redis import LocalServer


def _network(output: str) -> str:
    return re.search(r"network (demo-[0-9a-f]+)", output).group(1)


def test_demo_command_runs_on_the_configured_redis(config):
    env = dict(os.environ, RUSH_REDIS_URL=config.url)
    done = subprocess.run([sys.executable, "-m", "rush", "demo", "--workers", "2",
                           "--evaluations", "200"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert re.search(r"^2\d\d tasks finished in", out, re.M)
    assert "the best 5" in out and "worker_info" in out
    pids = [int(p) for p in re.findall(r"(\d+)\s+False\s+\S+\s+False\s+terminated", out)]
    assert len(pids) == 2
    assert not any(os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" for pid in pids)
    assert_best_is_the_tables(out)
    assert "\r" not in out  # captured output gets no bar, only the final summary
    # the demo deleted its network and nothing else
    with rush.rsh(_network(out), config=config) as controller:
        assert controller.connector.keys("{" + controller.network_id + "}*") == []


def test_demo_runs_on_the_local_server_and_deletes_only_its_own_network(monkeypatch, rush_home):
    for name in ("RUSH_REDIS_URL", "REDIS_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(plan, "_plan", None)
    # pretend nothing answers on 127.0.0.1:6379 (the machine's shared server may)
    monkeypatch.setattr(plan, "answers", lambda config, timeout=0.2: False)
    local = LocalServer()
    with rush.rsh("kept", config=rush.local_server()) as other:
        other.push_tasks([{"x": 1}])
    out = io.StringIO()
    assert demo.run_demo(n_workers=2, n_evaluations=100, out=out) == 0
    text = out.getvalue()
    assert f"(the local rush server, data in {local.data_dir})" in text
    assert re.search(r"^1\d\d tasks finished in", text, re.M)
    assert_best_is_the_tables(text)
    assert local.status().running  # it outlives the demo, with the other network
    with rush.rsh(_network(text), config=local.config()) as controller:
        assert controller.connector.keys("{" + controller.network_id + "}*") == []
        assert controller.connector.keys("{kept}*") != []


def assert_best_is_the_tables(out: str) -> None:
    """The summary's best y is the best row of the table below it, however captured."""
    summary = float(re.search(r"best y (\d+\.\d+)", out).group(1))
    table = float(re.search(r"^\s*\S+\s+\S+\s+(\d+\.\d+)\s+\S+_\S+$", out, re.M).group(1))
    # the table prints 6 significant digits, the summary 5 decimals of the same float:
    # rounding twice may differ in the last digit (0.585305 -> 0.58531 and 0.5853)
    assert abs(summary - table) <= 1e-5
    assert demo.BRANIN_MINIMUM <= summary < 5


def test_demo_on_a_terminal_shows_a_live_bar(config):
    import fcntl
    import pty
    import struct
    import termios

    pid, fd = pty.fork()
    if pid == 0:
        try:  # a terminal of 30 x 120 characters (a new pty has none)
            fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
            os.execve(sys.executable, [sys.executable, "-m", "rush", "demo", "--workers", "2",
                                       "--evaluations", "300"],
                      dict(os.environ, RUSH_REDIS_URL=config.url, COLUMNS="120"))
        finally:
            os._exit(127)
    out = b""
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:  # the demo ended and closed the terminal
                break
            if not chunk:
                break
            out += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = out.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    assert "\r" in text and re.search(r"tasks: +\d+%.*\d+/300", text)  # tqdm's bar
    assert_best_is_the_tables(text.replace("\r\n", "\n"))


def test_branin_minimum():
    assert abs(demo.branin(3.141592653589793, 2.275) - demo.BRANIN_MINIMUM) < 1e-5


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0]
    except FileNotFoundError:
        return "gone"
