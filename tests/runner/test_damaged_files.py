"""Damaged result files say so. After a finished run, one job file is cut in half, another job's
file is replaced by a damaged checkpoint, a third job file has one bit flipped in the middle, a
fourth job's file is replaced by a checkpoint with one bit flipped, a fifth job file holds an input
that crashes Debian's libhdf5 (tests/fuzz/known/) behind a checksum block of this version with a
wrong CRC-32, and summary.h5 is cut short:

  * `report` calls summary.h5 damaged, naming it (never advice about file locking);
  * `plan` shows both jobs as `damaged` (its last column; "done" only for intact files), names the
    files and what a run will do (rerun; restart from epoch 1), and counts them as work not done;
  * `report` without a summary and `run --summary-only` name the damaged job file and do not count
    it as done; `report --plots` names it instead of a Python traceback;
  * the resumed run names both files with what it does, and ends with the uninterrupted run's
    results.

  test_damaged_files.py"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

from common import DIFFPOOL, ENV, SOURCE_DIR, TINY, compare_dirs, job_files, readable, run

root = tempfile.mkdtemp(prefix="diffpool-damaged-")
extra = ("--set", "training.epochs=3")


def diffpool(*args):
    p = subprocess.run([DIFFPOOL, *args], env=ENV, capture_output=True, text=True, errors="replace", timeout=600)
    return p.returncode, p.stdout + p.stderr


def expect(condition, what, output):
    if not condition:
        sys.exit(f"{what}\n--- output ---\n{output}")


def cut(path, fraction):
    os.truncate(path, int(os.path.getsize(path) * fraction))


def flip_middle_bit(path):
    with open(path, "r+b") as f:
        middle = 512 + (os.path.getsize(path) - 512) // 2
        f.seek(middle)
        byte = f.read(1)[0]
        f.seek(middle)
        f.write(bytes([byte ^ 0x08]))


def wrap_with_wrong_checksum(content, path):
    """A file of this version (results/checksum_block.hpp, written out here independently) holding
    `content` behind a header whose CRC-32 of the content is wrong by one bit."""
    header = b"\x89diffpool-h5\r\n\x1a\n" + struct.pack("<IIQI", 1, 512, len(content), zlib.crc32(content) ^ 1)
    header += struct.pack("<I", zlib.crc32(header))
    with open(path, "wb") as f:
        f.write(header.ljust(512, b"\0") + content)


try:
    reference = os.path.join(root, "reference")
    run(reference, None, extra)
    out = os.path.join(root, "damaged")
    shutil.copytree(reference, out)
    names = job_files(out)
    expect(len(names) == 8, f"expected 8 job files, found {names}", "")
    damaged_job = os.path.join(out, "jobs", names[0])
    cut(damaged_job, 0.5)
    checkpoint_id = names[1][:-len(".h5")]
    damaged_checkpoint = os.path.join(out, "checkpoints", names[1])
    shutil.copy(os.path.join(out, "jobs", names[1]), damaged_checkpoint)
    cut(damaged_checkpoint, 0.3)
    os.remove(os.path.join(out, "jobs", names[1]))
    flipped_job = os.path.join(out, "jobs", names[2])
    flip_middle_bit(flipped_job)
    flipped_checkpoint_id = names[3][:-len(".h5")]
    flipped_checkpoint = os.path.join(out, "checkpoints", names[3])
    shutil.copy(os.path.join(out, "jobs", names[3]), flipped_checkpoint)
    flip_middle_bit(flipped_checkpoint)
    os.remove(os.path.join(out, "jobs", names[3]))
    crashing_job = os.path.join(out, "jobs", names[4])
    with open(os.path.join(SOURCE_DIR, "tests", "fuzz", "known", "job_record", "hdf5-global-heap-segv"), "rb") as f:
        wrap_with_wrong_checksum(f.read()[1:], crashing_job)  # byte 0 is the fuzz target's flag byte
    summary = os.path.join(out, "summary.h5")
    cut(summary, 0.5)
    plan_args = ["plan", TINY, "--set", f"output.dir={out}", *extra]

    # A damaged summary.h5.
    code, text = diffpool("report", out)
    expect(code != 0 and "damaged" in text and summary in text, "report: summary.h5 not called damaged", text)
    expect("HDF5_USE_FILE_LOCKING" not in text and "is locked" not in text, "report: locking advice", text)

    # plan: the last column is the status; "done" only for intact files.
    code, text = diffpool(*plan_args)
    expect(code == 0, f"plan exited {code}", text)
    statuses = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[0].isdigit():
            statuses[fields[-2]] = fields[-1]
    expect(statuses.get(names[0][:-3]) == "damaged", "plan: the cut job file is not 'damaged'", text)
    expect(statuses.get(checkpoint_id) == "damaged", "plan: the job with a cut checkpoint is not 'damaged'", text)
    expect(statuses.get(names[2][:-3]) == "damaged", "plan: the job file with a flipped bit is not 'damaged'", text)
    expect(statuses.get(flipped_checkpoint_id) == "damaged",
           "plan: the job with a flipped bit in its checkpoint is not 'damaged'", text)
    expect(statuses.get(names[4][:-3]) == "damaged", "plan: the wrapped libhdf5 crash is not 'damaged'", text)
    expect(sum(s == "done" for s in statuses.values()) == 3, f"plan: expected 3 done, got {statuses}", text)
    expect(f"job file {damaged_job} is damaged" in text and "reruns the job" in text,
           "plan: the damaged job file is not named with what run does", text)
    expect(f"checkpoint {damaged_checkpoint} is damaged" in text and "from epoch 1" in text,
           "plan: the damaged checkpoint is not named with what run does", text)
    for damaged in (flipped_job, crashing_job):
        expect(f"job file {damaged} is damaged" in text, f"plan: {damaged} is not named", text)
    expect(f"checkpoint {flipped_checkpoint} is damaged" in text, "plan: the flipped checkpoint is not named", text)
    # ... with what is wrong with each: the cut ones truncated (both lengths), the flipped ones corrupt.
    expect(re.search(rf"job file {re.escape(damaged_job)} is damaged \(truncated: it is \d+ bytes long", text),
           "plan: the cut job file is not said to be truncated, with its length", text)
    expect(re.search(rf"checkpoint {re.escape(damaged_checkpoint)} is damaged \(truncated: ", text),
           "plan: the cut checkpoint is not said to be truncated", text)
    expect(re.search(rf"job file {re.escape(flipped_job)} is damaged \(corrupt: .*CRC-32", text),
           "plan: the flipped job file is not said to be corrupt (CRC-32)", text)
    expect("3 finished jobs" in text, "plan: the time estimate counts a damaged file as finished", text)

    # report from the job files: the damaged one is named and not counted.
    os.remove(summary)
    code, text = diffpool("report", out)
    expect(damaged_job in text and "damaged" in text, "report: the damaged job file is not named", text)
    expect(flipped_job in text and crashing_job in text, "report: the corrupt job files are not named", text)
    expect(" 3/?" in text, "report: a damaged job file is counted as done", text)
    plots = os.path.join(root, "plots")
    code, text = diffpool("report", out, "--plots", plots)
    expect("Traceback" not in text, "report --plots: a Python traceback", text)
    expect(damaged_job in text and "damaged" in text, "report --plots: the damaged job file is not named", text)
    expect(crashing_job in text and "CRC-32" in text, "report --plots: the wrapped libhdf5 crash is not named", text)

    # --summary-only: named, not counted (3 of 8 completed: exit 3).
    code, text = diffpool("run", TINY, "--set", f"output.dir={out}", *extra, "--summary-only")
    expect(code == 3, f"run --summary-only exited {code}, expected 3", text)
    expect(damaged_job in text and "not counted" in text, "summary: the damaged job file is not named", text)
    expect(flipped_job in text and crashing_job in text, "summary: the corrupt job files are not named", text)
    expect("3 of 8 jobs completed" in text, "summary: wrong count of completed jobs", text)

    # Resume: both named with what happens, then the uninterrupted run's results.
    p = run(out, None, extra)
    text = p.stdout + p.stderr
    expect(f"result file {damaged_job} is damaged" in text and "running the job again" in text,
           "resume: the damaged job file is not named", text)
    expect(f"checkpoint {damaged_checkpoint} is damaged" in text and "restarts from epoch 1" in text,
           "resume: the damaged checkpoint is not named", text)
    for damaged in (flipped_job, crashing_job):
        expect(f"result file {damaged} is damaged" in text, f"resume: {damaged} is not named", text)
    expect(f"checkpoint {flipped_checkpoint} is damaged" in text, "resume: the flipped checkpoint is not named", text)
    for job in (checkpoint_id, flipped_checkpoint_id):
        with open(os.path.join(out, "logs", job + ".log"), encoding="utf-8") as log:
            expect("restarts from epoch 1" in log.read(), f"resume: the log of {job} does not say its checkpoint was "
                   "damaged", "")
    for name in job_files(out):
        expect(readable(os.path.join(out, "jobs", name)), f"{name} unreadable after the rerun", "")
    compare_dirs(reference, out, "after resuming over damaged files")
    code, text = diffpool(*plan_args)
    expect(text.count(" done\n") == 8 and "damaged" not in text, "plan after the rerun: not every job done", text)
finally:
    shutil.rmtree(root, ignore_errors=True)
print("damaged files are named, never counted as done, and rerun")
