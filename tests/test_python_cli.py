"""The CLI tests' warm interpreter (tests/python_cli.py) answers as `python -m` does in a fresh process."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import python_cli

PROBE = '''
import atexit, os, sys
atexit.register(lambda: print("atexit ran"))
print("argv", sys.argv[1:], "cwd", os.getcwd(), "path0", sys.path[0], "main", __name__, "spec", __spec__.name)
print("env", os.environ.get("PYTEST_CURRENT_TEST"), file=sys.stderr)
if "fail" in sys.argv:
    raise ValueError("boom")
if "usage" in sys.argv:
    sys.exit("error: one line")
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 0)
'''


def _alive(pid: int) -> bool:
    """Whether process `pid` exists and has not exited (a zombie counts as exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _fresh(module: str, args: list[str], cwd, env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip


@pytest.mark.parametrize("args", [[], ["3"], ["usage"], ["a b", "x=[1,2]"]])
def test_same_streams_and_exit_code_as_a_fresh_interpreter(tmp_path, args):
    (tmp_path / "probe_mod.py").write_text(PROBE)
    warm = python_cli.run("probe_mod", args, cwd=tmp_path)
    fresh = _fresh("probe_mod", args, tmp_path, python_cli.cli_env())
    assert (warm.returncode, warm.stdout, warm.stderr) == (fresh.returncode, fresh.stdout, fresh.stderr)
    assert "atexit ran" in warm.stdout and "test_same_streams" in warm.stderr


def test_one_server_for_every_test_of_the_run(tmp_path):
    """pytest names the running test in the environment; the child sees it, the server is the same."""
    (tmp_path / "probe_mod.py").write_text(PROBE)
    seen = []
    for name in ("a.py::one", "b.py::two"):
        p = python_cli.run("probe_mod", [], cwd=tmp_path, env={**python_cli.cli_env(), "PYTEST_CURRENT_TEST": name})
        assert p.stderr.split() == ["env", name]
        seen.append(python_cli._servers[python_cli._key(python_cli.cli_env())].pid)
    assert seen[0] == seen[1]


def test_what_tests_write_into_the_environment_reaches_no_command(tmp_path, monkeypatch):
    """Lightning's seed_everything, wandb and cv2 write into the test process's os.environ: the commands
    start from the session's environment instead, on the same warm server."""
    (tmp_path / "env_mod.py").write_text("import os; print(os.environ.get('PL_GLOBAL_SEED'))")
    before = python_cli.run("env_mod", [], cwd=tmp_path)
    server = python_cli._servers[python_cli._key(python_cli.cli_env())].pid
    monkeypatch.setenv("PL_GLOBAL_SEED", "7")
    after = python_cli.run("env_mod", [], cwd=tmp_path)
    assert before.stdout == after.stdout == "None\n"
    assert python_cli._servers[python_cli._key(python_cli.cli_env())].pid == server


def test_uncaught_exception_and_missing_module(tmp_path):
    (tmp_path / "probe_mod.py").write_text(PROBE)
    warm, fresh = (run("probe_mod", ["fail"], tmp_path, python_cli.cli_env()) for run in (python_cli.run, _fresh))
    assert warm.returncode == fresh.returncode == 1
    assert warm.stderr.splitlines()[-1] == fresh.stderr.splitlines()[-1] == "ValueError: boom"
    warm, fresh = (run("no_such_module_here", [], tmp_path, python_cli.cli_env()) for run in (python_cli.run, _fresh))
    assert warm.returncode == fresh.returncode == 1 and warm.stderr == fresh.stderr


def test_timeout_kills_the_command_and_its_children(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    (tmp_path / "slow_mod.py").write_text(
        "import subprocess, sys, time\n"
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        f"open({str(pid_file)!r}, 'w').write(str(g.pid))\n"
        "time.sleep(60)\n"
    )
    with pytest.raises(subprocess.TimeoutExpired):
        python_cli.run("slow_mod", [], cwd=tmp_path, timeout=1)
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(grandchild) and time.monotonic() < deadline:  # killed with the command, then reaped by init
        time.sleep(0.05)
    assert not _alive(grandchild)
    (tmp_path / "probe_mod.py").write_text(PROBE)
    assert python_cli.run("probe_mod", ["4"], cwd=tmp_path).returncode == 4  # the server still answers
