"""Several runs of one experiment into one output folder (a job script submitted twice, a requeued
job whose first run still lives, a second allocation started to help): they share the jobs through
claims (runner/job_claims.hpp) and no job is trained twice.

1. A run of 2 MPI ranks and a single-rank run started while it works: every job is trained by
   exactly one of them, each says which jobs it left to the other and takes their results, both
   exit 0, no claim is left, and the job files and summary equal those of one run alone. `plan`,
   asked while they run, shows the claimed jobs as running and names their run, and `run
   --summary-only` says that jobs it lacks are being trained now.
2. A claim of another host that was not refreshed for the timeout (a crashed node) is taken over
   at once; a fresh one is left to its run until it goes stale (output.claim_timeout_seconds 10).
3. A run SIGKILLed on this host leaves its claims; the rerun takes them over at once (its process
   is gone), without waiting for the timeout."""
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

from common import DIFFPOOL, ENV, TINY, compare_dirs, expect, job_files, read_rest, read_until, run, start

# tiny.yaml: 8 jobs (2 sweep points x 4 folds); long enough that the two runs overlap.
EXTRA = ["--set", "training.epochs=200", "--set", "output.checkpoint_every=5", "--set", "output.progress=plain",
         "--set", "output.progress_seconds=1"]
DONE = re.compile(r"^job ([0-9a-f]{16}) \[.*\] on rank \d+: done in ", re.M)


def trained(text):
    return DONE.findall(text)


def plan(out):
    p = subprocess.run([DIFFPOOL, "plan", TINY, "--set", f"output.dir={out}", *EXTRA], env=ENV, capture_output=True,
                       text=True, timeout=120)
    return p.stdout + p.stderr


def job_ids(out):
    ids = []
    for line in plan(out).splitlines():
        m = re.match(r"\s+\d+\s+train\s+.*\s([0-9a-f]{16})\s+\S+$", line)
        if m:
            ids.append(m.group(1))
    return ids


def write_claim(path, host, age_seconds):
    with open(path, "w") as f:
        f.write(f"diffpool job claim\nrun 00000000000000aa\nhost {host}\nboot not-this-boot\npid 4242\n"
                f"started 1\nclaimed 2026-01-01T00:00:00Z\n")
    t = time.time() - age_seconds
    os.utime(path, (t, t))


def main():
    root = tempfile.mkdtemp(prefix="diffpool-shared-")
    try:
        reference = os.path.join(root, "reference")
        run(reference, extra=EXTRA)
        expect(len(job_files(reference)) == 8, "the reference run did not write its 8 job files")
        ids = job_ids(reference)
        expect(len(ids) == 8, "plan did not list 8 job ids", plan(reference))

        # 1. Two runs side by side.
        out = os.path.join(root, "out")
        first = start(out, ranks=2, extra=EXTRA)
        seen_first = read_until(first, " done in ", 300)
        expect(" done in " in seen_first, "the first run finished no job", seen_first)
        listing = plan(out)
        partial = run(out, extra=EXTRA + ["--summary-only"], check=False, timeout=120)
        second = start(out, extra=EXTRA)
        text_second = read_rest(second, 600)
        text_first = seen_first + read_rest(first, 600)
        both = f"--- first run (2 ranks)\n{text_first}\n--- second run\n{text_second}\n--- plan\n{listing}"
        expect(first.returncode == 0 and second.returncode == 0,
               f"the runs exited {first.returncode} and {second.returncode}", both)
        by_first, by_second = trained(text_first), trained(text_second)
        expect(sorted(by_first + by_second) == sorted(ids),
               f"the jobs were not each trained once: first {by_first}, second {by_second}", both)
        expect(by_first and by_second, "one run trained every job: they did not overlap", both)
        expect("is being trained by another run into this folder" in text_second,
               "the second run does not say which jobs it left to the first", both)
        left = text_second.count("is being trained by another run into this folder")
        taken = text_second.count("completed by another run into this folder; its result is taken")
        expect(taken >= 1 and taken <= left + len(by_first), "the second run took no result of the first", both)
        expect(re.search(r"\s[0-9a-f]{16}\s+running$", listing, re.M) and "is being trained by a run (host" in listing,
               "plan does not show the job the first run trains", both)
        expect(partial.returncode == 3 and "being trained by a run now" in partial.stdout,
               f"--summary-only while a run works does not say so (exit {partial.returncode})",
               partial.stdout + partial.stderr)
        claims = os.path.join(out, "claims")
        expect(os.path.isdir(claims) and not os.listdir(claims), f"claims left behind: {os.listdir(claims)}", both)
        compare_dirs(reference, out, "after two runs shared the folder")

        # 2. Claims of another host: a stale one is taken over at once, a fresh one when it goes stale.
        out2 = os.path.join(root, "out2")
        os.makedirs(os.path.join(out2, "claims"))
        write_claim(os.path.join(out2, "claims", ids[0]), "node-that-died", 1000)
        write_claim(os.path.join(out2, "claims", ids[1]), "busy-node", 0)
        started = time.time()
        p = run(out2, extra=EXTRA + ["--set", "output.claim_timeout_seconds=10"], check=False, timeout=300)
        text = p.stdout + p.stderr
        took = time.time() - started
        expect(p.returncode == 0, f"the run with foreign claims exited {p.returncode}", text)
        expect(sorted(trained(text)) == sorted(ids), "not every job was trained once", text)
        expect(re.search(rf"job {ids[0]} .*: the run that claimed it is gone \(host node-that-died, process 4242", text),
               "the stale claim was not taken over with its holder named", text)
        expect(re.search(rf"job {ids[1]} .* is being trained by another run into this folder \(host busy-node", text),
               "the fresh claim was not left to its run", text)
        expect(re.search(rf"job {ids[1]} .*: the run that claimed it is gone \(host busy-node", text),
               "the fresh claim was not taken over once stale", text)
        expect(text.find(f"job {ids[1]} [") < text.find("the run that claimed it is gone (host busy-node"),
               "the fresh claim was taken over before it was left", text)
        expect(took >= 9.5, f"the fresh claim was taken over after {took:.1f} s, before its 10 s timeout", text)
        expect(not os.listdir(os.path.join(out2, "claims")), "claims left behind", text)

        # 3. SIGKILL on this host, then the same command: the dead run's claims are taken over at once.
        out3 = os.path.join(root, "out3")
        proc = start(out3, extra=EXTRA)
        seen = read_until(proc, " done in ", 300)
        time.sleep(0.5)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        left_over = os.listdir(os.path.join(out3, "claims"))
        expect(len(left_over) == 1, f"the killed run left {left_over}, not the claim of its running job", seen)
        started = time.time()
        p = run(out3, extra=EXTRA, check=False, timeout=600)
        text = p.stdout + p.stderr
        expect(p.returncode == 0, f"the rerun exited {p.returncode}", text)
        expect(f"job {left_over[0]} [" in text and "the run that claimed it is gone" in text,
               "the killed run's claim was not taken over", text)
        expect("is being trained by another run" not in text, "the rerun waited for the killed run's claim", text)
        compare_dirs(reference, out3, "after the kill and the rerun")
        print(f"ok: two runs shared 8 jobs ({len(by_first)} and {len(by_second)}), foreign claims taken over when "
              f"stale ({took:.1f} s), a killed run's claim at once")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
