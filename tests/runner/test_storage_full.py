"""A full file system under a run (ENOSPC; a quota, EDQUOT, takes the same path): checkpoints without
room are skipped while training goes on; a finished job waits for room to write its result
(output.storage_wait_seconds); when none comes the run stops with exit 74, no job counted as failed
and no temporary file left, and the rerun after freeing space resumes and finishes with exactly the
results of a run that never lacked space; `--summary-only` and `merge` without room exit 74 too. The file system is a small tmpfs mounted by this test
(root; exit 77, skipped, where mounting is not allowed)."""
import os
import shutil
import subprocess
import sys
import tempfile

from common import ENV, DIFFPOOL, compare_dirs, expect, job_files, readable, read_rest, read_until, run, start

FOLD = ["--set", "evaluation.only_folds=[0]", "--set", "output.progress=plain", "--set", "output.progress_seconds=1"]
# Room for experiment.yaml, experiment.id and the job logs, none for a checkpoint (about 190 KB for
# this model) or a job file (about 60 KB).
ROOM = 40 * 1024


def fill(mount, leave):
    """A ballast file leaving `leave` bytes of the tmpfs free."""
    stat = os.statvfs(mount)
    free = stat.f_bavail * stat.f_frsize
    ballast = os.path.join(mount, "ballast")
    with open(ballast, "wb") as f:
        f.write(b"\0" * max(0, free - leave))
    return ballast


def leftovers(out):
    return [os.path.join(d, f) for d, _, files in os.walk(out) for f in files if ".tmp." in f]


def main():
    root = tempfile.mkdtemp(prefix="diffpool-storage-")
    mount = os.path.join(root, "fs")
    os.makedirs(mount)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", mount], capture_output=True, text=True)
    if mounted.returncode != 0:
        print(f"SKIP: cannot mount a tmpfs here ({mounted.stderr.strip()}): the test needs root in a mount namespace")
        shutil.rmtree(root, ignore_errors=True)
        sys.exit(77)
    try:
        reference = os.path.join(root, "reference")
        run(reference, extra=FOLD)
        expect(len(job_files(reference)) == 2, "the reference run did not write its 2 job files")

        # 1. No room, and none comes: exit 74 after the wait, nothing failed, nothing half-written.
        out = os.path.join(mount, "out")
        ballast = fill(mount, ROOM)
        p = run(out, extra=[*FOLD, "--set", "output.storage_wait_seconds=3"], check=False, timeout=300)
        text = p.stdout + p.stderr
        expect(p.returncode == 74, f"a run without room exited {p.returncode}, not 74", text)
        expect("checkpoint of epoch 1 not written" in text and "training goes on" in text,
               "the skipped checkpoint is not said", text)
        expect("no space left on device" in text and os.path.join(out, "jobs") in text,
               "the message does not say which folder has no room", text)
        expect("waiting up to 3 s for space" in text, "the wait for space is not said", text)
        expect("1 running (1 waiting for space)" in text, "the progress line does not show the wait", text)
        expect("Free space, then run the same command again to resume" in text, "what to do is not said", text)
        expect("FAILED" not in text and not os.listdir(os.path.join(out, "failed")),
               "a job without room for its result was counted as failed", text)
        expect(job_files(out) == [], "a job file was written without room", text)
        expect(leftovers(out) == [], f"temporary files left: {leftovers(out)}", text)
        expect("HDF5" not in text, "the message carries HDF5's error stack instead of the cause", text)

        # 2. No room until someone frees it: the finished job waits, then its result is written.
        proc = start(out, extra=[*FOLD, "--set", "output.storage_wait_seconds=120"])
        seen = read_until(proc, "waiting up to 120 s for space", 120)
        expect("waiting up to 120 s for space" in seen, "the run did not wait for space", seen)
        os.remove(ballast)
        rest = read_rest(proc, 300)
        text = seen + rest
        expect(proc.returncode == 0, f"the run that got its room back exited {proc.returncode}", text)
        expect(len(job_files(out)) == 2 and all(readable(os.path.join(out, "jobs", f)) for f in job_files(out)),
               "the job files are not all there and readable", text)
        expect(leftovers(out) == [], f"temporary files left: {leftovers(out)}", text)
        compare_dirs(reference, out, "after waiting for space")

        # 3. A summary without room: exit 74 naming the file; --summary-only after freeing space writes it.
        os.remove(os.path.join(out, "summary.h5"))
        ballast = fill(mount, 4 * 1024)
        p = run(out, extra=[*FOLD, "--summary-only"], check=False)
        text = p.stdout + p.stderr
        expect(p.returncode == 74, f"a summary without room exited {p.returncode}, not 74", text)
        expect("summary.h5" in text and "--summary-only" in text, "the summary's failure does not say what to do", text)
        expect(not os.path.exists(os.path.join(out, "summary.h5")), "a summary was written without room", text)
        os.remove(ballast)
        run(out, extra=[*FOLD, "--summary-only"])
        compare_dirs(reference, out, "the summary written after freeing space")

        # 4. merge without room for the merged summary: exit 74 naming it, nothing written.
        ballast = fill(mount, 4 * 1024)
        merged = os.path.join(mount, "merged")
        p = subprocess.run([DIFFPOOL, "merge", out, "--out", merged], env=ENV, capture_output=True, text=True)
        text = p.stdout + p.stderr
        expect(p.returncode == 74, f"merge without room exited {p.returncode}, not 74", text)
        expect("no space left on device" in text and "free space" in text, "merge does not say what is wrong", text)
        expect(not os.path.exists(os.path.join(merged, "summary.h5")), "merge wrote a summary without room", text)
        expect(leftovers(merged) == [] if os.path.isdir(merged) else True, "merge left temporary files", text)
        os.remove(ballast)
        print("ok: checkpoints skipped without room, results waited for space, exit 74 and a clean resume")
    finally:
        subprocess.run(["umount", mount], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
