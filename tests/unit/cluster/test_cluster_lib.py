"""hack/cluster/lib.sh's startup poll, run in bash against processes started here."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

PRELUDE = """
set -euo pipefail
source hack/cluster/lib.sh
mkdir -p "$STATE_DIR/pids" "$STATE_DIR/logs"
AWAITED=(etcd)
"""


def _bash(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PARTYQUIZ_CLUSTER_DIR": str(tmp_path / "state"),
        "PARTYQUIZ_CACHE": str(tmp_path / "cache"),
    }
    # From a file: with `bash -c`, the forked shell's command line would hold the script's text,
    # component names included.
    path = tmp_path / "script.sh"
    path.write_text(PRELUDE + script)
    return subprocess.run(
        ["bash", str(path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_component_still_on_its_way_to_its_binary_is_waited_for_not_taken_for_a_crash(
    tmp_path: Path,
) -> None:
    # On a loaded machine the forked shell can run for a while before it execs the component;
    # its command line is the shell's until then.
    done = _bash(
        tmp_path,
        """
( sleep 1; exec -a etcd sleep 30 ) </dev/null >/dev/null 2>&1 &
echo $! >"$(pid_file etcd)"
started() { component_pid etcd; }
await "etcd to start" 10 started
pid=$(component_pid etcd)
kill "$pid"
echo "started $pid"
""",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("started "), done.stdout


def test_a_component_that_exits_fails_the_wait_at_once_with_its_log(tmp_path: Path) -> None:
    done = _bash(
        tmp_path,
        """
sh -c 'echo "etcd: cannot bind its port" >&2; exit 3' 2>>"$(log_file etcd)" &
echo $! >"$(pid_file etcd)"
wait $! || true
SECONDS=0
await "etcd to start" 30 false
""",
    )
    assert done.returncode != 0
    assert "etcd exited while waiting for etcd to start" in done.stderr
    assert "etcd: cannot bind its port" in done.stderr
