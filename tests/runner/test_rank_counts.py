"""The same experiment gives identical results with 1, 2, 4 and 8 ranks (CPU backend), for the
holdout and the nested protocol (whose retraining waits for its fold's selection)."""
import os
import shutil
import tempfile

from common import compare_dirs, run

root = tempfile.mkdtemp(prefix="diffpool-ranks-")
try:
    for protocol in ("holdout", "nested"):
        extra = ("--set", f"evaluation.protocol={protocol}", "--set", "evaluation.repeats=2")
        reference = os.path.join(root, f"{protocol}-single")
        p = run(reference, None, extra)
        print(p.stdout.splitlines()[-3])
        for ranks in (1, 2, 4, 8):
            out = os.path.join(root, f"{protocol}-{ranks}")
            p = run(out, ranks, extra)
            compare_dirs(reference, out, f"{protocol} with {ranks} ranks")
            print(f"{protocol}: {ranks} ranks identical to the single process")
finally:
    shutil.rmtree(root, ignore_errors=True)
print("ok")
