"""Every Python block of the README runs as written: each one as a script of its own, in a
fresh process, against the test session's private Redis (``RUSH_REDIS_URL``). A block
marked ``<!-- readme-test: cluster -->`` right before it runs against the session's
private Redis Cluster instead (a ``redis+cluster://`` URL). A block that needs other
hosts is marked ``<!-- readme-test: skip (reason) -->`` and skipped with that reason."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(?:<!-- readme-test: (?:skip \((?P<skip>[^)]*)\)|(?P<cluster>cluster)) -->\n)?"
                   r"```python\n(?P<code>.*?)```", re.S)
#: A block that starts workers or a Dask cluster may take this long on a busy machine.
BLOCK_SECONDS = 240


def blocks() -> list:
    """``pytest.param`` per Python block, named after the README heading above it."""
    text = README.read_text()
    params, counts = [], {}
    for match in BLOCK.finditer(text):
        heading = re.findall(r"^#+ (.+)$", text[:match.start()], re.M)[-1]
        name = re.sub(r"\W+", "-", heading.lower()).strip("-")
        counts[name] = counts.get(name, 0) + 1
        marks = [pytest.mark.skip(reason=match["skip"])] if match["skip"] else []
        params.append(pytest.param(match["code"], bool(match["cluster"]),
                                   id=f"{name}-{counts[name]}", marks=marks))
    return params


def test_the_readme_has_python_blocks():
    assert len(blocks()) >= 10


@pytest.mark.timeout(BLOCK_SECONDS + 30)
@pytest.mark.parametrize("code, on_cluster", blocks())
def test_readme_block_runs_as_written(code, on_cluster, config, tmp_path, request):
    script = tmp_path / "block.py"
    script.write_text(code)
    url = request.getfixturevalue("redis_cluster").url if on_cluster else config.url
    env = dict(os.environ, RUSH_REDIS_URL=url)
    env.pop("REDIS_URL", None)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=BLOCK_SECONDS,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    if "RushWorkerError" not in code:  # only the block about crashes may show a traceback
        assert "Traceback" not in done.stderr, done.stderr
