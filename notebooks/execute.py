"""Execute every notebook (the jupytext percent scripts beside this file) against analysis outputs.

    python notebooks/execute.py [ANALYSES_DIR]            # check they run (nothing written)
    python notebooks/execute.py ANALYSES_DIR --write      # also write the executed <name>.ipynb

ANALYSES_DIR is the `out=` folder of `python -m iid.analyze` (default runs/analyses). The tests run
the same function on tiny checkpoints' outputs, so the notebooks cannot rot.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def notebooks() -> list[Path]:
    return sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)


def execute(script: Path, analyses: Path, timeout: int = 600):
    """The notebook of a percent script, executed with IID_ANALYSES=analyses (cwd: notebooks/)."""
    import jupytext
    from nbclient import NotebookClient

    nb = jupytext.read(script)
    os.environ["IID_ANALYSES"] = str(Path(analyses).resolve())  # the kernel inherits it
    NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}).execute()
    return nb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("analyses", nargs="?", default="runs/analyses")
    ap.add_argument("--write", action="store_true", help="write the executed .ipynb next to each script")
    a = ap.parse_args(argv)
    import jupytext

    for script in notebooks():
        nb = execute(script, Path(a.analyses))
        if a.write:
            jupytext.write(nb, script.with_suffix(".ipynb"))
        print(f"executed {script.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
