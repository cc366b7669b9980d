"""Confusion matrices and per-class accuracy from the test predictions stored in every job file.

    from diffpool_results import confusion_matrix
    c = confusion_matrix("runs/enzymes")     # the evaluations the experiment's figure comes from
    c.matrix          # int64 [C, C]: row = true class, column = predicted class
    c.per_class_accuracy, c.accuracy, c.graphs, c.jobs, c.description

A folder that keeps only its summary (results/published/) keeps the matrix of its figure in
confusion.csv, written from the run folders before their job files went:

    /usr/bin/python3 -m diffpool_results.confusion_csv runs/fold0 runs/fold1 ... --csv confusion.csv

(the shards of one experiment: their matrices add up), and confusion_matrix(folder) reads it there.

Needs numpy only.
"""
import os

import numpy as np

from .io import AttrDict, Experiment, load_experiment, load_job
from .selection import predictions_at, reported_jobs

CSV_NAME = "confusion.csv"  # a published folder's matrix (save_confusion)


def confusion_from_labels(labels, predictions, classes=None):
    """The confusion matrix of one set of (true, predicted) classes.

    Returns an AttrDict: matrix (int64 [C, C], matrix[t, p] = graphs of true class t predicted as p),
    classes (C: `classes`, else 1 + the largest class seen), per_class_accuracy (float64 [C]:
    matrix[t, t] / graphs of class t, NaN for a class without graphs), accuracy (the diagonal over
    all graphs, NaN without graphs), graphs (int)."""
    labels = np.asarray(labels, dtype=np.int64).ravel()
    predictions = np.asarray(predictions, dtype=np.int64).ravel()
    if labels.shape != predictions.shape:
        raise ValueError(f"{labels.size} labels but {predictions.size} predictions")
    if labels.size and (labels.min() < 0 or predictions.min() < 0):
        raise ValueError("classes are numbered from 0; a negative label or prediction marks an unmeasured epoch")
    seen = int(max(labels.max(initial=-1), predictions.max(initial=-1))) + 1
    if classes is None:
        classes = seen
    elif seen > classes:
        raise ValueError(f"class {seen - 1} seen, but classes={classes}")
    matrix = np.zeros((classes, classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return _from_matrix(matrix)


def _from_matrix(matrix):
    """confusion_from_labels' AttrDict of a matrix of counts."""
    per_class = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_class_accuracy = np.where(per_class > 0, np.diag(matrix) / np.maximum(per_class, 1), np.nan)
    total = int(matrix.sum())
    return AttrDict(matrix=matrix, classes=matrix.shape[0], per_class_accuracy=per_class_accuracy.astype(np.float64),
                    accuracy=float(np.trace(matrix) / total) if total else float("nan"), graphs=total)


def confusion_matrix(experiment, jobs=None, epoch=None, classes=None):
    """The confusion matrix of an experiment's test predictions, summed over jobs.

    experiment: an output folder or an Experiment (load_experiment). jobs: None for the
    evaluations the experiment's figure comes from (paper: every job of the reported sweep point
    at the reported epoch; holdout: each fold's winning point; nested: every retraining), or a list
    of jobs (Job objects, job ids or job file paths), each at its final test evaluation, or at
    `epoch` when given (per-epoch predictions: the paper protocol). Jobs without stored
    predictions (older files) are skipped and named in `skipped`.

    Returns confusion_from_labels' AttrDict plus jobs (the job ids counted), skipped (job ids
    without predictions) and description (what was counted, for titles); None when no job has
    stored predictions. A folder without job files that keeps a confusion.csv (save_confusion):
    that matrix (its jobs as saved, skipped empty)."""
    if isinstance(experiment, Experiment):
        exp = experiment
    else:
        exp = load_experiment(experiment)
    saved = os.path.join(exp.folder, CSV_NAME)
    if not exp.jobs and jobs is None and os.path.exists(saved):
        return load_confusion(saved)
    if jobs is None:
        chosen = reported_jobs(exp)
        protocol = exp.jobs[0].protocol if exp.jobs else ""
        if protocol == "paper" and chosen:
            job = chosen[0][0]
            description = f"paper protocol: point {job.point}, epoch {chosen[0][1]}, {len(chosen)} jobs"
        elif protocol == "nested":
            description = f"nested protocol: {len(chosen)} retrainings"
        else:
            description = f"{protocol} protocol: {len(chosen)} jobs of the folds' winning points"
    else:
        by_id = {j.job_id: j for j in exp.jobs}
        chosen = []
        for item in jobs:
            if isinstance(item, dict):
                job = item
            elif item in by_id:
                job = by_id[item]
            else:
                job = load_job(item, outputs=False)
            chosen.append((job, epoch))
        description = f"{len(chosen)} selected jobs" + (f", epoch {epoch}" if epoch is not None else "")
    labels, predictions, counted, skipped = [], [], [], []
    for job, at in chosen:
        stored = predictions_at(job, at)
        if stored is None:
            skipped.append(job.job_id)
            continue
        _, label, prediction = stored
        labels.append(label)
        predictions.append(prediction)
        counted.append(job.job_id)
    if not counted:
        return None
    result = confusion_from_labels(np.concatenate(labels), np.concatenate(predictions), classes)
    result.jobs = counted
    result.skipped = skipped
    result.description = description
    return result


def save_confusion(confusion, path):
    """Writes a confusion matrix as CSV: a comment line with what was counted (description), one
    listing the job ids counted, a header `true\\predicted,0,1,...`, then one row of counts per
    true class. load_confusion reads it back."""
    matrix = np.asarray(confusion.matrix, dtype=np.int64)
    with open(path, "w") as out:
        out.write(f"# {confusion.get('description', '')}\n")
        out.write(f"# jobs: {' '.join(confusion.get('jobs', []))}\n")
        out.write("true\\predicted," + ",".join(str(p) for p in range(matrix.shape[1])) + "\n")
        for t, row in enumerate(matrix):
            out.write(f"{t}," + ",".join(str(int(v)) for v in row) + "\n")
    return path


def load_confusion(path):
    """A confusion matrix saved by save_confusion, as confusion_from_labels' AttrDict plus jobs,
    skipped (empty) and description."""
    description, jobs, rows = "", [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if line.startswith("# jobs:"):
                jobs = line[len("# jobs:"):].split()
            elif line.startswith("# "):
                description = line[2:]
            elif line.startswith("true\\predicted"):
                continue
            elif line:
                try:
                    cells = [int(v) for v in line.split(",")]
                except ValueError:
                    raise ValueError(f"{path}:{number}: not a row of integer counts: {line!r}") from None
                if cells[0] != len(rows):
                    raise ValueError(f"{path}:{number}: row of true class {cells[0]} where {len(rows)} was expected")
                rows.append(cells[1:])
    matrix = np.array(rows, dtype=np.int64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ValueError(f"{path}: not a square matrix of counts ({matrix.shape})")
    result = _from_matrix(matrix)
    result.jobs, result.skipped, result.description = jobs, [], description
    return result


def sum_confusions(confusions, description=None):
    """The confusion matrix of several disjoint sets of evaluations (the shards of one experiment,
    each run over some of its folds): the counts add. Jobs are concatenated; description, when not
    given, joins theirs."""
    confusions = [c for c in confusions if c is not None]
    if not confusions:
        raise ValueError("no confusion matrix to add up")
    classes = max(c.matrix.shape[0] for c in confusions)
    total = np.zeros((classes, classes), dtype=np.int64)
    for c in confusions:
        k = c.matrix.shape[0]
        total[:k, :k] += c.matrix
    result = _from_matrix(total)
    result.jobs = [j for c in confusions for j in c.get("jobs", [])]
    result.skipped = [j for c in confusions for j in c.get("skipped", [])]
    result.description = description if description is not None else "; ".join(c.get("description", "")
                                                                                  for c in confusions)
    return result
