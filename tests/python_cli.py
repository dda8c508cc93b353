"""`python -m <module> <args>` for the CLI tests, forked from a pre-warmed interpreter.

Before the first line of an entry point runs, a fresh interpreter spends about 6 s of a core importing
torch, Lightning, timm and the rest: in `make test` that was paid once per CLI run, by about a hundred
runs. `run()` hands each command to a server process (one per environment, per test process) that has
imported those libraries once and forks a child per command. The child is what `python -m` would be:

- the module runs as `__main__` (runpy) with the command's sys.argv, sys.path[0], working folder and
  environment; a server is started per distinct environment (all but PER_COMMAND), since libraries
  read some variables while they are imported;
- it writes its own stdout and stderr, and ends as the interpreter ends (threads joined, atexit hooks
  run, streams flushed; `end`), so its exit code is the command's: SystemExit's code, or 1 with the
  traceback printed for an uncaught exception; only the teardown of every module is skipped (1.5 s
  of a core a command);
- it runs in a session of its own and is killed with its children when the timeout passes
  (subprocess.TimeoutExpired, as subprocess.run raises).

Commands that depend on how the interpreter was started keep subprocess: Lightning's DDP launcher
starts `python -m` again, a SIGKILL test needs the real process, an install test another venv.

Run as a script, this file is the server: it reads one JSON command per line on stdin and answers one
JSON line per command on stdout.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

# what the entry points import before their first line runs (the bulk of their start-up time)
WARM_MODULES = ("torch", "pytorch_lightning", "timm", "kornia", "albumentations", "cv2", "hydra", "wandb",
                "iid.models.families", "iid.module", "iid.engine.jobs", "iid.data.datamodule")  # fmt: skip
MAX_SERVERS = 4  # distinct environments kept warm per test process; the oldest is closed beyond it
# variables no library reads while importing: they are set in the child, not part of the server's key
# (pytest names the running test in PYTEST_CURRENT_TEST: a server per test otherwise)
PER_COMMAND = ("PYTEST_CURRENT_TEST",)


# ---- the client (in the test process) ----

_servers: dict[tuple[tuple[str, str], ...], subprocess.Popen] = {}


_session_env: dict[str, str] | None = None


def freeze_session_env() -> None:
    """Take the environment the CLI runs start from now: the test session's, once it is configured and
    before any test runs. Tests that train, log to W&B or execute notebooks in the test process change
    its os.environ (Lightning writes PL_GLOBAL_SEED, wandb its service socket, cv2 extends
    LD_LIBRARY_PATH, a notebook runner sets IID_ANALYSES): a command typed in a shell sees none of
    that, and each change started another warm server (6 s of imports; a profiled run started 8, where
    one per worker does)."""
    global _session_env
    _session_env = dict(os.environ)


def cli_env() -> dict[str, str]:
    """The environment of the suite's CLI runs: the session's (freeze_session_env; os.environ until it
    is taken), offline W&B, Python's warnings off, and 2 torch threads unless OMP_NUM_THREADS is set (a
    pytest-xdist worker sets 1). One environment, one warm server."""
    base = os.environ if _session_env is None else _session_env
    live = {k: os.environ[k] for k in PER_COMMAND if k in os.environ}  # the running test's name
    return {"OMP_NUM_THREADS": "2", **base, **live, "WANDB_MODE": "offline", "PYTHONWARNINGS": "ignore"}


def run(module: str, args: list[str], cwd: Path | str, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess:  # fmt: skip
    """What `subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True,
    text=True, timeout=timeout)` returns, or raises, without paying the interpreter's start-up. env
    defaults to cli_env()."""
    env = dict(cli_env() if env is None else env)
    cmd = [sys.executable, "-m", module, *args]
    server = _server(env)
    with tempfile.TemporaryDirectory(prefix="python-cli-") as tmp:
        out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
        job = {"module": module, "args": [str(a) for a in args], "cwd": str(Path(cwd).resolve()), "env": env,
               "stdout": str(out), "stderr": str(err), "timeout": timeout}  # fmt: skip
        server.stdin.write(json.dumps(job) + "\n")
        server.stdin.flush()
        # the server kills the command at its timeout: waiting far longer means the server itself hangs
        if not select.select([server.stdout], [], [], timeout + 120)[0]:
            server.kill()
            _servers.pop(_key(env), None)
            raise subprocess.TimeoutExpired(cmd, timeout)
        reply = server.stdout.readline()
        if not reply:
            _servers.pop(_key(env), None)
            raise RuntimeError(f"the warm interpreter for `{' '.join(cmd)}` died (exit {server.wait()})")
        answer = json.loads(reply)
        stdout, stderr = _read(out), _read(err)
    if answer["timed_out"]:
        raise subprocess.TimeoutExpired(cmd, timeout, output=stdout, stderr=stderr)
    return subprocess.CompletedProcess(cmd, answer["returncode"], stdout, stderr)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def _key(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in env.items() if k not in PER_COMMAND))


def _server(env: dict[str, str]) -> subprocess.Popen:
    key = _key(env)
    server = _servers.get(key)
    if server is not None and server.poll() is None:
        return server
    while len(_servers) >= MAX_SERVERS:
        _close(_servers.pop(next(iter(_servers))))
    server = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True, env=dict(key), cwd=tempfile.gettempdir())  # fmt: skip
    _servers[key] = server
    return server


def _close(server: subprocess.Popen) -> None:
    try:
        server.stdin.close()  # the server ends at the end of its input
        server.wait(timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        server.kill()


@atexit.register
def _close_all() -> None:
    while _servers:
        _close(_servers.popitem()[1])


# ---- the server (this file run as a script) ----


def serve() -> dict | None:
    """Answer commands until stdin ends (returns None), or return the command in a forked child."""
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what the imports print goes to stderr, never into the replies
    for name in WARM_MODULES:
        importlib.import_module(name)
    for line in sys.stdin:
        job = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            replies.close()
            return job
        returncode, timed_out = _wait(pid, job["timeout"])
        replies.write(json.dumps({"returncode": returncode, "timed_out": timed_out}) + "\n")
        replies.flush()
    return None


def _wait(pid: int, timeout: float) -> tuple[int, bool]:
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        if time.monotonic() > deadline:
            os.killpg(pid, signal.SIGKILL)  # the child leads its own session: its children go too
            os.waitpid(pid, 0)
            return -signal.SIGKILL, True
        time.sleep(0.02)


def become(job: dict) -> None:
    """Turn this forked child into `python -m <module> <args>` started in job's folder, then run it."""
    import runpy

    os.setsid()
    os.chdir(job["cwd"])
    os.environ.clear()
    os.environ.update(job["env"])
    for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, job["stdout"], os.O_WRONLY | os.O_CREAT),
                            (2, job["stderr"], os.O_WRONLY | os.O_CREAT)):  # fmt: skip
        opened = os.open(path, flags, 0o644)
        os.dup2(opened, fd)
        os.close(opened)
    sys.stdin = open(os.devnull)  # the server's stdin may hold commands read ahead
    sys.argv = ["-m", *job["args"]]  # runpy sets argv[0] to the module's file, as `python -m` does
    sys.path[0] = os.getcwd()  # `python -m` puts the working folder first; the script's folder goes
    if importlib.util.find_spec(job["module"]) is None:  # `python -m`'s own message and exit code
        sys.exit(f"{sys.executable}: No module named {job['module']}")
    try:
        runpy.run_module(job["module"], run_name="__main__", alter_sys=True)
    except SystemExit as stop:
        end(stop.code)
    end(None)


def end(code: object) -> NoReturn:
    """End the command as the interpreter ends one, less the teardown of its modules and objects.

    In the interpreter's order: SystemExit's message (a code neither None nor an int is printed to
    stderr, exit 1), non-daemon threads joined, atexit hooks run (logging's, wandb's,
    weakref.finalize's), stdout and stderr flushed; then os._exit. The teardown skipped frees every
    object the server imported, writing to each memory page the child shares with it: 1.5 s of a core
    per command (70 a run), even for one that ran 0.02 s. An uncaught exception keeps the interpreter's
    own path, for its traceback and exit code."""
    import atexit
    import threading

    if code is None or isinstance(code, int):
        status = code or 0
    else:  # sys.exit("message")
        sys.stderr.write(f"{code}\n")
        status = 1
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed by the command
            pass
    os._exit(status)


if __name__ == "__main__":
    command = serve()
    if command is not None:
        become(command)
