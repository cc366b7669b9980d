"""Results are never mixed across different copies of a dataset: job files and checkpoints record
the digest of the data they were computed on, and a run into a folder whose results came from other
data (a changed file, or DIFFPOOL_DATA pointing at another copy) exits 2 naming the file and both
digests, touching nothing; with the original data again it resumes as before. `merge` refuses
folders whose jobs trained on different copies."""
import os
import shutil
import signal
import subprocess
import tempfile
import time

import h5py

from common import DIFFPOOL, ENV, TINY, expect, job_files, run, start

FOLD = ["--set", "evaluation.only_folds=[0]", "--set", "training.epochs=2"]


def main():
    root = tempfile.mkdtemp(prefix="diffpool-digest-")
    try:
        data = os.path.join(root, "data")
        shutil.copytree(os.path.join(ENV["DIFFPOOL_DATA"], "MUTAG"), os.path.join(data, "MUTAG"))
        ENV["DIFFPOOL_DATA"] = data  # common.run passes ENV to the runs
        labels = os.path.join(data, "MUTAG", "MUTAG_graph_labels.txt")
        original = open(labels).read()
        changed = "-1\n" + original.split("\n", 1)[1] if original.startswith("1\n") else "1\n" + original.split("\n", 1)[1]

        # 1. Job files: a run, the labels changed, the same run again.
        out = os.path.join(root, "out")
        run(out, extra=FOLD)
        names = job_files(out)
        digests = {h5py.File(os.path.join(out, "jobs", n), "r").attrs["dataset_digest"] for n in names}
        expect(len(names) == 2 and len(digests) == 1, f"the job files do not record one digest: {digests}")
        stamps = {n: os.stat(os.path.join(out, "jobs", n)).st_mtime_ns for n in names}
        open(labels, "w").write(changed)
        p = run(out, extra=FOLD, check=False)
        text = p.stdout + p.stderr
        digest = digests.pop()
        expect(p.returncode == 2, f"a run on changed data into the folder exited {p.returncode}, not 2", text)
        expect("holds results computed on other data" in text and digest in text and "jobs/" in text
               and "DIFFPOOL_DATA" in text, "the message does not name the file, the digests and the cause", text)
        expect({n: os.stat(os.path.join(out, "jobs", n)).st_mtime_ns for n in job_files(out)} == stamps,
               "a job file was touched", text)
        open(labels, "w").write(original)
        p = run(out, extra=FOLD)
        expect("2 already done" in p.stdout, "the original data did not resume the folder", p.stdout)

        # 2. A checkpoint of a killed run, then changed data.
        out = os.path.join(root, "killed")
        proc = start(out, extra=["--set", "evaluation.only_folds=[0]", "--set", "training.epochs=400",
                                 "--set", "output.checkpoint_every=1"])
        checkpoints = os.path.join(out, "checkpoints")
        deadline = time.time() + 120
        while time.time() < deadline and not (os.path.isdir(checkpoints) and
                                              any(f.endswith(".h5") for f in os.listdir(checkpoints))):
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        expect(any(f.endswith(".h5") for f in os.listdir(checkpoints)), "no checkpoint was written")
        open(labels, "w").write(changed)
        p = run(out, extra=["--set", "evaluation.only_folds=[0]", "--set", "training.epochs=400"], check=False)
        text = p.stdout + p.stderr
        expect(p.returncode == 2 and "checkpoints/" in text,
               f"a checkpoint of other data did not stop the run (exit {p.returncode})", text)

        # 3. Within one run: a worker rank that reads another copy of the data (its own DIFFPOOL_DATA)
        #    writes job files of that data; rank 0 writes no summary mixing them.
        other = os.path.join(root, "other")
        shutil.copytree(data, other)  # the labels are still changed here
        open(labels, "w").write(original)
        out = os.path.join(root, "mixed")
        args = [DIFFPOOL, "run", TINY, "--set", f"output.dir={out}", "--set", "evaluation.only_folds=[0,1]",
                "--set", "training.epochs=2", "--set", "output.progress=plain"]  # 4 jobs: the worker gets some
        p = subprocess.run(["mpirun", "--oversubscribe", "--bind-to", "none", "-np", "1", "-x", f"DIFFPOOL_DATA={data}", *args,
                            ":", "-np", "1", "-x", f"DIFFPOOL_DATA={other}", *args],
                           env=ENV, capture_output=True, text=True, timeout=300)
        text = p.stdout + p.stderr
        expect(p.returncode == 2 and "the summary was not written" in text and "holds results computed on other data" in text,
               f"a run whose worker read other data wrote its summary (exit {p.returncode})", text)
        expect(not os.path.exists(os.path.join(out, "summary.h5")), "a mixed summary was written", text)

        # 4. Folds run in separate folders, one of them on the other copy: merge refuses to join them
        #    (exit 2, naming both folders and digests); folds of the same data merge, digests kept.
        folds = {}
        for fold, copy in ((0, data), (1, other), (2, data)):
            folds[fold] = os.path.join(root, f"fold{fold}")
            ENV["DIFFPOOL_DATA"] = copy
            run(folds[fold], extra=["--set", f"evaluation.only_folds=[{fold}]", "--set", "training.epochs=2"])
        ENV["DIFFPOOL_DATA"] = data
        p = subprocess.run([DIFFPOOL, "merge", folds[0], folds[1], "--out", os.path.join(root, "merged-mixed")],
                           env=ENV, capture_output=True, text=True, timeout=120)
        text = p.stdout + p.stderr
        expect(p.returncode == 2 and folds[0] in text and folds[1] in text and digest in text
               and "do not form one experiment" in text,
               f"merge joined folds trained on different data (exit {p.returncode})", text)
        expect(not os.path.exists(os.path.join(root, "merged-mixed", "summary.h5")), "a mixed summary was merged", text)
        merged = os.path.join(root, "merged")
        p = subprocess.run([DIFFPOOL, "merge", folds[0], folds[2], "--out", merged],
                           env=ENV, capture_output=True, text=True, timeout=120)
        expect(p.returncode == 3, f"merging two folds of the same data exited {p.returncode}, not 3 (folds missing)",
               p.stdout + p.stderr)
        with h5py.File(os.path.join(merged, "summary.h5"), "r") as f:
            kept = {d.decode() if isinstance(d, bytes) else d for d in f["jobs"]["dataset_digest"][()]}
        expect(kept == {digest}, f"the merged summary's jobs do not record the data's digest: {kept}")
        print("ok: results of other data are refused with exit 2, nothing touched; the original data resumes; "
              "merge refuses folds of different data")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
