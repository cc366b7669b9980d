"""Which jobs and which epoch an experiment's reported figure comes from, per protocol (the rules
of runner/protocol/*.cpp, applied to the job files; summary.h5 decides where it has the answer).

    paper     every (fold, repeat) job of the sweep point with the best fold-averaged test curve,
              at that curve's best epoch (summary points: paper_accuracy, paper_best_epoch)
    holdout   each outer fold's job(s) of the winning point (summary winners), tested once, with
              the weights of the best validation epoch
    nested    each outer fold's retrainings (phase retrain), tested once each

Only completed jobs count. Nothing here needs pandas.
"""
import math

import numpy as np


def _completed(jobs):
    return [j for j in jobs if j.status == "completed"]


def fold_winners(exp):
    """{fold: winning sweep point}: from summary.h5's winners, else the highest mean validation
    accuracy of the fold's selection jobs (ties: the lowest point), as the runner chooses. Empty for
    the paper protocol (it selects on the test folds: see paper_choice)."""
    if exp.summary is not None and len(exp.summary.winners):
        return {int(w.fold): int(w.point) for w in exp.summary.winners}
    jobs = _completed(exp.jobs)
    if not jobs or jobs[0].protocol == "paper":
        return {}
    winners = {}
    for fold in sorted({j.fold for j in jobs}):
        by_point = {}
        for j in jobs:
            if j.fold == fold and j.phase != "retrain" and j.best_epoch > 0:
                by_point.setdefault(j.point, []).append(j.result.best_validation.accuracy)
        if by_point:
            winners[fold] = max(sorted(by_point), key=lambda p: np.mean(by_point[p]))
    return winners


def paper_epochs(exp):
    """{point: (accuracy, epoch)} of the paper protocol: each sweep point's best epoch of the
    fold-averaged test-fold accuracy curve and that mean (summary.h5's points, else computed from
    the job files over the epochs every job of the point reached, as the runner does)."""
    if exp.summary is not None and len(exp.summary.points) and "paper_best_epoch" in exp.summary.points.dtype.names:
        points = exp.summary.points
        return {int(points.point[i]): (float(points.paper_accuracy[i]), int(points.paper_best_epoch[i]))
                for i in range(len(points)) if int(points.paper_best_epoch[i]) > 0}
    jobs = _completed(exp.jobs)
    result = {}
    for point in sorted({j.point for j in jobs}):
        curves = [np.asarray(j.metrics["test_accuracy"], dtype=np.float64) for j in jobs if j.point == point]
        for e in range(min(len(c) for c in curves)):
            values = [c[e] for c in curves]
            if any(math.isnan(v) for v in values):
                continue
            mean = float(np.mean(values))
            if point not in result or mean > result[point][0]:
                result[point] = (mean, e + 1)
    return result


def paper_choice(exp):
    """(point, epoch) of the paper protocol's figure: the sweep point with the best fold-averaged
    curve (ties: the lowest point) at its best epoch; None when there is none."""
    epochs = paper_epochs(exp)
    if not epochs:
        return None
    point = max(sorted(epochs), key=lambda p: epochs[p][0])
    return point, epochs[point][1]


def reported_jobs(exp):
    """The completed jobs the experiment's figure comes from, and the epoch of their test
    evaluation that counts: a list of (job, epoch), epoch None meaning the job's final test
    (job.result.test, job.predictions.prediction)."""
    jobs = _completed(exp.jobs)
    if not jobs:
        return []
    protocol = jobs[0].protocol
    if protocol == "paper":
        choice = paper_choice(exp)
        if choice is None:
            return []
        point, epoch = choice
        return [(j, epoch) for j in jobs if j.point == point]
    if protocol == "nested":
        return [(j, None) for j in jobs if j.phase == "retrain"]
    winners = fold_winners(exp)
    return [(j, None) for j in jobs if j.result.test is not None and winners.get(j.fold) == j.point]


def winner_flags(exp):
    """{job_id: True, False or None}: whether each job ran its fold's winning sweep point (paper:
    the point of the reported figure; nested: every retraining); None where nothing was decided
    yet (a fold whose selection is incomplete, no summary and no completed job)."""
    jobs = exp.jobs
    if not jobs:
        return {}
    if jobs[0].protocol == "paper":
        choice = paper_choice(exp)
        return {j.job_id: None if choice is None else j.point == choice[0] for j in jobs}
    winners = fold_winners(exp)
    flags = {}
    for j in jobs:
        if j.phase == "retrain":
            flags[j.job_id] = True  # the retrainings run the fold's selected point by construction
        elif j.fold in winners:
            flags[j.job_id] = winners[j.fold] == j.point
        else:
            flags[j.job_id] = None
    return flags


def predictions_at(job, epoch=None):
    """(graphs, labels, predictions) of a job's stored test predictions: the final test evaluation
    (epoch None), or the per-epoch predictions of `epoch` (the paper protocol). None when the job
    stored none (no test split, an older file, or no per-epoch predictions for that epoch)."""
    p = job.get("predictions")
    if p is None:
        return None
    if epoch is None or (epoch == p.epoch and p.per_epoch is None):
        return p.graphs, p.label, p.prediction
    if p.per_epoch is None or not 1 <= epoch <= len(p.per_epoch):
        return None
    row = p.per_epoch[epoch - 1]
    if (row < 0).any():  # the test split was not measured at that epoch
        return None
    return p.graphs, p.label, row
