"""Reading and plotting diffpool result files (job files jobs/<id>.h5 and summary.h5).

Run with Debian's /usr/bin/python3 (python3-h5py, python3-numpy, python3-matplotlib; the data
frames also python3-pandas). The file layouts are documented in results/README.md.

    import sys; sys.path.insert(0, "results/python")
    from diffpool_results import load_job, load_experiment
    job = load_job("results/enzymes/jobs/0123456789abcdef.h5")
    job.metrics["validation_accuracy"]          # numpy array, one entry per epoch (NaN: not measured)
    job.outputs[17].levels[0].assignment         # S of graph 17 at level 0, [nodes, clusters]
    exp = load_experiment("results/enzymes")     # every job and the summary
    exp.summary.points["test_mean"]              # a numpy structured array per table
    job.predictions.label, job.predictions.prediction   # every test graph's class and prediction

Data frames (pandas, Debian's python3-pandas; imported only when called):

    from diffpool_results import to_dataframe, epochs_dataframe
    jobs = to_dataframe("results/enzymes")       # one row per job: settings as typed columns, split,
                                                 # seeds, winner flag, test and validation figures
    epochs = epochs_dataframe("results/enzymes") # one row per job and epoch, every per-epoch metric
    jobs[jobs.winner == True].groupby("fold").test_accuracy.mean()

Folders that keep only summary.h5 (results/published/, `diffpool merge` output) list their
completed jobs there:

    from diffpool_results import summary_dataframe
    jobs = summary_dataframe("results/published/paper-enzymes-diffpool")   # one row per job

Confusion matrices (numpy only):

    from diffpool_results import confusion_matrix
    c = confusion_matrix("results/enzymes")      # the evaluations the experiment's figure comes from
    c.matrix, c.per_class_accuracy               # [true, predicted] counts; per true class

Plots: python3 -m diffpool_results.plots FOLDER --out DIR [--graph N] [--job ID]
Study figure: python3 -m diffpool_results.study results/published --out docs/figures/study.png
"""
from .confusion import confusion_from_labels, confusion_matrix, load_confusion, save_confusion, sum_confusions
from .frames import epochs_dataframe, summary_dataframe, to_dataframe
from .io import (AttrDict, DamagedFileError, Experiment, GraphOutput, Job, Level, Summary, load_experiment, load_job,
                 load_summary)

__all__ = [
    "AttrDict", "DamagedFileError", "Experiment", "GraphOutput", "Job", "Level", "Summary", "confusion_from_labels",
    "confusion_matrix", "epochs_dataframe", "load_confusion", "load_experiment", "load_job", "load_summary",
    "save_confusion", "sum_confusions", "summary_dataframe", "to_dataframe",
]
