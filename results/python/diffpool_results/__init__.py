"""Reading and plotting diffpool result files (job files jobs/<id>.h5 and summary.h5).

Run with Debian's /usr/bin/python3 (python3-h5py, python3-numpy, python3-matplotlib); nothing else
is needed. The file layouts are documented in results/README.md.

    import sys; sys.path.insert(0, "results/python")
    from diffpool_results import load_job, load_experiment
    job = load_job("results/enzymes/jobs/0123456789abcdef.h5")
    job.metrics["validation_accuracy"]          # numpy array, one entry per epoch (NaN: not measured)
    job.outputs[17].levels[0].assignment         # S of graph 17 at level 0, [nodes, clusters]
    exp = load_experiment("results/enzymes")     # every job and the summary
    exp.summary.points["test_mean"]              # a numpy structured array per table

Plots: python3 -m diffpool_results.plots FOLDER --out DIR [--graph N] [--job ID]
Study figure: python3 -m diffpool_results.study results/published --out docs/figures/study.png
"""
from .io import (AttrDict, DamagedFileError, Experiment, GraphOutput, Job, Level, Summary, load_experiment, load_job,
                 load_summary)

__all__ = [
    "AttrDict", "DamagedFileError", "Experiment", "GraphOutput", "Job", "Level", "Summary", "load_experiment", "load_job",
    "load_summary",
]
