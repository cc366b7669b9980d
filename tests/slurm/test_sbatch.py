"""The job scripts under a real (single-node) Slurm: jobs/slurm/sweep.sbatch (srun --mpi=pmix),
jobs/slurm/sweep-mpirun.sbatch and the job array of jobs/slurm/submit-array.sh (one task per fold,
then a summary job after all of them) each run the tiny experiment and end with exactly the
results of a plain single-process run. A step that srun could not launch fails the job."""
import os
import shutil
import subprocess
import tempfile
import time

from slurm_common import JOB_ENV, JOBS, common, expect, read
from slurm_cluster import SlurmCluster

root = tempfile.mkdtemp(prefix="diffpool-sbatch-")
try:
    t0 = time.time()
    reference = os.path.join(root, "reference")
    common.run(reference)
    print(f"reference run: {time.time() - t0:.1f}s", flush=True)
    with SlurmCluster() as cluster:
        t1 = time.time()
        submitted = {}
        for name, script in (("srun", "sweep.sbatch"), ("mpirun", "sweep-mpirun.sbatch")):
            out = os.path.join(root, name)
            log = os.path.join(root, f"{name}.out")
            job = cluster.sbatch([os.path.join(JOBS, script), common.TINY], env=dict(JOB_ENV, DIFFPOOL_OUTPUT=out),
                                 options=["--ntasks=2", "--time=10:00", f"--output={log}"])
            submitted[name] = (job, out, log)
        out = os.path.join(root, "array")
        p = subprocess.run([os.path.join(JOBS, "submit-array.sh"), "--time=10:00", f"--output={root}/array-%A_%a.out", "--",
                            common.TINY], env=dict(cluster.env, **JOB_ENV, DIFFPOOL_OUTPUT=out), cwd=root,
                           capture_output=True, text=True)
        expect(p.returncode == 0, f"submit-array.sh failed ({p.returncode})", ("output", p.stdout + p.stderr))
        array_job, summary_job = p.stdout.split()
        tasks = cluster.jobs(array_job)
        expect(len(tasks) == 4 or (len(tasks) == 1 and tasks[0].get("ArrayTaskId") == "0-3"),
               f"expected an array of 4 tasks (one per fold), got {[t.get('ArrayTaskId') for t in tasks]}")
        expect(f"afterok:{array_job}" in cluster.job(summary_job).get("Dependency", ""),
               f"summary job without afterok dependency: {cluster.job(summary_job).get('Dependency')}")
        submitted["array"] = (summary_job, out, os.path.join(root, f"diffpool-{array_job}_summary.out"))

        for name, (job, out, log) in submitted.items():
            records = cluster.wait(job, timeout=600)
            state, code = records[0]["JobState"], records[0]["ExitCode"]
            expect(state == "COMPLETED" and code == "0:0", f"{name}: job {job} ended {state} with {code}", ("job log", read(log)),
                   ("slurm", cluster.logs()))
            text = read(log)
            if name != "array":
                expect("2 rank(s)" in text and "step exited with 0" in text, f"{name}: unexpected log", ("job log", text))
            common.compare_dirs(reference, out, f"{name} job")
            print(f"ok: {name}: job {job} COMPLETED after {time.time() - t1:.1f}s, results identical", flush=True)

        # srun of Slurm 22.05 exits with 0 when the tasks could not be launched; the script must
        # notice (the plan is not done) and fail. A launch failure: PMIx finds its step folder taken.
        out = os.path.join(root, "launch-failure")
        log = os.path.join(root, "launch-failure.out")
        job = cluster.sbatch([os.path.join(JOBS, "sweep.sbatch"), common.TINY], env=dict(JOB_ENV, DIFFPOOL_OUTPUT=out),
                             options=["--hold", "--ntasks=2", f"--output={log}"])
        os.makedirs(cluster.path("tmp", f"spmix_appdir_0_{job}.0"))
        cluster.run(["scontrol", "release", job])
        record = cluster.wait(job)[0]
        text = read(log)
        expect(record["JobState"] == "FAILED" and record["ExitCode"] == "1:0" and "did the launch fail" in text,
               f"a failed srun launch was not reported: {record['JobState']} {record['ExitCode']}", ("job log", text))
        print("ok: a failed srun launch (srun exits 0) fails the job")

        tasks = cluster.wait(array_job)
        expect(len(tasks) == 4 and all(t["JobState"] == "COMPLETED" for t in tasks),
               f"array tasks: {[(t.get('ArrayTaskId'), t.get('JobState')) for t in tasks]}")
        task_logs = "".join(read(os.path.join(root, f"array-{array_job}_{k}.out")) for k in range(4))
        for k in range(4):
            expect(f"evaluation.only_folds=[{k}]" in task_logs, f"array task {k} did not run fold {k}", ("task logs", task_logs))
        print(f"ok: array: 4 tasks (one per fold) and the summary job, {time.time() - t1:.1f}s in the cluster")
finally:
    shutil.rmtree(root, ignore_errors=True)
