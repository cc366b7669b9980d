"""Stored test predictions of real runs: under each protocol (paper, holdout, nested), every job's
reported test accuracy, and the paper protocol's accuracy at every epoch, equal the accuracy its
stored labels and predictions imply; every test graph is stored although output.max_graphs keeps
only 4 graphs' outputs; the data frames and the confusion matrix give the experiment's figure;
`diffpool report --plots` draws the confusion matrix.

  test_predictions.py"""
import os
import shutil
import subprocess
import sys
import tempfile

from common import DIFFPOOL, ENV, SOURCE_DIR, run

sys.path.insert(0, os.path.join(SOURCE_DIR, "results", "python"))
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "unit"))
from check_results_python import check_real_experiment  # noqa: E402

root = tempfile.mkdtemp(prefix="diffpool-predictions-")
try:
    for protocol, extra in (("paper", ()), ("holdout", ()), ("nested", ("--set", "evaluation.repeats=2"))):
        out = os.path.join(root, protocol)
        run(out, extra=("--set", f"evaluation.protocol={protocol}", "--set", "training.epochs=3", *extra))
        checked = check_real_experiment(out)
        print(f"{protocol}: {checked} evaluations match their stored predictions")
        if checked == 0:
            sys.exit(f"{protocol}: no evaluation was checked")
    plots = os.path.join(root, "plots")
    p = subprocess.run([DIFFPOOL, "report", os.path.join(root, "paper"), "--plots", plots], env=ENV,
                       capture_output=True, text=True, timeout=300)
    if p.returncode != 0 or not os.path.exists(os.path.join(plots, "confusion.png")):
        sys.exit(f"report --plots drew no confusion matrix ({p.returncode}):\n{p.stdout}\n{p.stderr}")
    print("ok: stored predictions agree with every reported accuracy")
finally:
    shutil.rmtree(root, ignore_errors=True)
