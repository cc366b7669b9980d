"""Progress under mpirun: ranks started by mpirun see a pseudo-terminal even when mpirun's own
output goes to a pipe or a file, so the live progress line ('\\r' rewrites) must not be the
default there. Default (output.progress=auto) under mpirun: plain lines only; asked for with
output.progress=live: the live line."""
import os
import shutil
import sys
import tempfile

from common import run

# The live line rewrites itself with "\r\033[K"; the captured text has '\r' turned into '\n'
# (universal newlines), so the erase-line code marks it.
LIVE = "\x1b[K"
EXTRA = ("--set", "training.epochs=30", "--set", "output.progress_seconds=1")

root = tempfile.mkdtemp(prefix="diffpool-progress-")
try:
    default = run(os.path.join(root, "auto"), 2, EXTRA)
    if LIVE in default.stdout:
        sys.exit(f"live progress updates in mpirun's redirected output:\n{default.stdout!r}")
    if "[progress]" not in default.stdout:
        sys.exit(f"no plain progress line:\n{default.stdout}")
    live = run(os.path.join(root, "live"), 2, EXTRA + ("--set", "output.progress=live"))
    if LIVE not in live.stdout:
        sys.exit(f"output.progress=live showed no live line:\n{live.stdout!r}")
    print(f"auto: {default.stdout.count('[progress]')} plain lines, no live line; live: {live.stdout.count(LIVE)} rewrites")
finally:
    shutil.rmtree(root, ignore_errors=True)
print("ok")
