"""jobs/mpirun.sh with DIFFPOOL_MPS=1 (ranks sharing GPUs through CUDA MPS), without a GPU: a fake
nvidia-cuda-mps-control on PATH records what the script asks of it, and a wrapper around diffpool
records the CUDA_MPS_PIPE_DIRECTORY each rank (each `diffpool run`) sees. The script must start the daemon with its
pipes in DIFFPOOL_MPS_DIR/pipe, hand that folder to every rank, finish the run (exit 0) and quit
the daemon; without the program, DIFFPOOL_MPS=1 is an exit-2 error naming it. Needs no Slurm."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runner"))
import common  # noqa: E402

SCRIPT = os.path.join(common.SOURCE_DIR, "jobs", "mpirun.sh")
extra = ["--set", "training.epochs=3"]
root = tempfile.mkdtemp(prefix="diffpool-mpirun-mps-")


def executable(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


try:
    fake_bin = os.path.join(root, "bin")
    os.makedirs(fake_bin)
    calls = os.path.join(root, "mps-calls")
    executable(os.path.join(fake_bin, "nvidia-cuda-mps-control"), f"""#!/bin/sh
if [ "$1" = "-d" ]; then echo "start $CUDA_MPS_PIPE_DIRECTORY $CUDA_MPS_LOG_DIRECTORY" >> {calls}; exit 0; fi
while read -r command; do echo "stdin $command" >> {calls}; done
""")
    seen = os.path.join(root, "rank-env")
    wrapper = os.path.join(root, "diffpool-wrapper")
    executable(wrapper, f"""#!/bin/sh
echo "$1 ${{CUDA_MPS_PIPE_DIRECTORY:-unset}}" >> {seen}
exec {common.DIFFPOOL} "$@"
""")
    mps_dir = os.path.join(root, "mps")
    out = os.path.join(root, "run")
    env = dict(common.ENV, DIFFPOOL_BIN=wrapper, DIFFPOOL_OUTPUT=out, DIFFPOOL_RANKS="2",
               DIFFPOOL_MPIRUN_ARGS="--oversubscribe", DIFFPOOL_BIND="none", DIFFPOOL_MPS="1",
               DIFFPOOL_MPS_DIR=mps_dir, PATH=fake_bin + os.pathsep + common.ENV.get("PATH", os.environ["PATH"]))
    p = subprocess.run([SCRIPT, common.TINY, *extra], env=env, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        sys.exit(f"DIFFPOOL_MPS=1 run failed ({p.returncode}):\n{p.stdout[-3000:]}{p.stderr[-2000:]}")
    log = open(calls).read().splitlines()
    pipe = os.path.join(mps_dir, "pipe")
    if log != [f"start {pipe} {os.path.join(mps_dir, 'log')}", "stdin quit"]:
        sys.exit(f"the MPS control program was asked {log}, expected a start with the pipes in {pipe}, then quit")
    # `diffpool run` once per rank (the script's own later calls, e.g. its check that every job is
    # done, are other subcommands).
    ranks = [line.split(" ", 1)[1] for line in open(seen).read().splitlines() if line.startswith("run ")]
    if ranks != [pipe, pipe]:
        sys.exit(f"the ranks saw CUDA_MPS_PIPE_DIRECTORY {ranks}, expected {pipe} twice")
    if not os.path.isdir(pipe) or "MPS control daemon started" not in p.stdout:
        sys.exit(f"no pipe folder {pipe}, or the script did not say it started the daemon:\n{p.stdout[-2000:]}")

    # Without the program: an exit-2 error naming it (skipped where a real one is installed).
    if shutil.which("nvidia-cuda-mps-control", path=common.ENV.get("PATH", os.environ["PATH"])) is None:
        env["PATH"] = common.ENV.get("PATH", os.environ["PATH"])
        p = subprocess.run([SCRIPT, common.TINY, *extra], env=env, capture_output=True, text=True, timeout=120)
        if p.returncode != 2 or "nvidia-cuda-mps-control not found" not in p.stdout + p.stderr:
            sys.exit(f"DIFFPOOL_MPS=1 without nvidia-cuda-mps-control: exit {p.returncode}, expected 2 and its name:\n"
                     f"{p.stdout[-2000:]}{p.stderr[-1000:]}")
    print("ok: jobs/mpirun.sh DIFFPOOL_MPS=1 started the MPS daemon, handed its pipes to both ranks, quit it at the end")
finally:
    shutil.rmtree(root, ignore_errors=True)
