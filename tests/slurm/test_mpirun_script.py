"""jobs/mpirun.sh (the workstation script): two ranks give the results of a plain single-process
run; SIGINT to the script's process group (Ctrl-C) makes the ranks checkpoint and the script exit
with 75, and the same command resumes and ends with identical results. Needs no Slurm."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "runner"))
import common  # noqa: E402

SCRIPT = os.path.join(common.SOURCE_DIR, "jobs", "mpirun.sh")
extra = ["--set", "training.epochs=300", "--set", "output.checkpoint_every=0"]
root = tempfile.mkdtemp(prefix="diffpool-mpirun-sh-")


def restore_sigint():  # as a shell in a terminal: SIGINT not ignored, own process group
    signal.signal(signal.SIGINT, signal.SIG_DFL)


try:
    reference = os.path.join(root, "reference")
    common.run(reference, None, extra)
    out = os.path.join(root, "script")
    env = dict(common.ENV, DIFFPOOL_BIN=common.DIFFPOOL, DIFFPOOL_OUTPUT=out, DIFFPOOL_RANKS="2",
               DIFFPOOL_MPIRUN_ARGS="--oversubscribe", DIFFPOOL_BIND="none")
    p = subprocess.Popen([SCRIPT, common.TINY, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True, preexec_fn=restore_sigint)
    deadline = time.time() + 120
    logs = os.path.join(out, "logs")
    while time.time() < deadline and p.poll() is None:
        if os.path.isdir(logs) and any(open(os.path.join(logs, f)).read().count("epoch ") >= 3 for f in os.listdir(logs)):
            break
        time.sleep(0.05)
    if p.poll() is not None:
        sys.exit(f"the script ended ({p.returncode}) before it could be interrupted:\n{p.communicate()[0]}")
    os.killpg(p.pid, signal.SIGINT)
    output = p.communicate(timeout=120)[0]
    if p.returncode != 75 or "received SIGINT" not in output:
        sys.exit(f"exit code {p.returncode} after Ctrl-C, expected 75:\n{output[-3000:]}")
    if not [f for f in os.listdir(os.path.join(out, "checkpoints")) if f.endswith(".h5")]:
        sys.exit("no checkpoint after Ctrl-C")
    p = subprocess.run([SCRIPT, common.TINY, *extra], env=env, capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        sys.exit(f"the rerun failed ({p.returncode}):\n{p.stdout[-3000:]}{p.stderr[-2000:]}")
    common.compare_dirs(reference, out, "jobs/mpirun.sh after Ctrl-C and rerun")
    print("ok: jobs/mpirun.sh: Ctrl-C checkpointed (exit 75), the rerun resumed, results identical")
finally:
    shutil.rmtree(root, ignore_errors=True)
