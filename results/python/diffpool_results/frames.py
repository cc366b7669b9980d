"""Experiments as pandas data frames (Debian's python3-pandas; imported only when called).

    from diffpool_results import to_dataframe, epochs_dataframe
    jobs = to_dataframe("runs/enzymes")              # one row per job
    epochs = epochs_dataframe("runs/enzymes")        # one row per job and epoch
    jobs[jobs.winner == True].groupby("fold").test_accuracy.mean()
    epochs.merge(jobs[["job_id", "training.learning_rate"]], on="job_id")

`experiment` is an experiment output folder or an Experiment from load_experiment. Fields that do
not apply to a job are missing (NaN, or <NA> in the nullable Int64 and boolean columns), never 0.
A folder that keeps only summary.h5 (results/published/, the output of `diffpool merge`) has no
job files: both raise ValueError there, naming summary_dataframe, which reads the summary's rows.
"""
import numpy as np

from .io import Experiment, load_experiment
from .selection import paper_epochs, winner_flags

# Columns of to_dataframe before the settings columns, in order.
JOB_COLUMNS = (
    "job_id", "experiment", "dataset", "variant", "protocol", "phase", "point", "point_label", "fold", "repeat",
    "seed", "split_seed", "status", "winner", "best_epoch", "epochs", "validation_accuracy", "validation_loss",
    "test_accuracy", "test_loss", "test_graphs", "test_epoch", "paper_epoch", "paper_test_accuracy", "wall_seconds",
    "host", "rank", "backend", "file",
)


def _pandas():
    try:
        import pandas
    except ImportError:  # pragma: no cover - depends on the machine
        raise ImportError("diffpool_results data frames need pandas: apt-get install python3-pandas "
                          "(jobs/install-deps.sh --tests installs it)") from None
    return pandas


def _experiment(experiment, caller):
    exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
    # A folder that keeps only its summary (results/published/, `diffpool merge`) would give an
    # empty frame here, which reads as "no jobs": say where its jobs are instead.
    completed = int(exp.summary.jobs_completed) if exp.summary is not None else 0
    if not exp.jobs and completed > 0:
        where = f"{exp.folder}: no job files, only summary.h5 ({completed} completed jobs): {caller} reads job files"
        if len(exp.summary.jobs) > 0:
            raise ValueError(f"{where}; summary_dataframe({exp.folder!r}) gives one row per job from the summary"
                             + (", load_summary(...).validation_curves the per-epoch validation curves"
                                if caller == "epochs_dataframe" else ""))
        raise ValueError(f"{where}, and this summary was written before summaries stored a row per job: "
                         f"load_summary(...) has its per-fold figures (winners, points)")
    return exp


def _typed(values):
    """A settings column as numbers where every present value is one (int64, or Int64 with missing
    values; float64), booleans for true/false, else strings (object, None where missing)."""
    present = [v for v in values if v is not None]

    def all_parse(kind):
        try:
            for v in present:
                kind(v)
            return True
        except ValueError:
            return False

    if present and all(v in ("true", "false") for v in present):
        return [None if v is None else v == "true" for v in values], "boolean"
    if present and all_parse(int):
        return [None if v is None else int(v) for v in values], ("int64" if len(present) == len(values) else "Int64")
    if present and all_parse(float):
        return [np.nan if v is None else float(v) for v in values], "float64"
    return list(values), "object"


def _nan_unless(condition, value):
    return value if condition else np.nan


def to_dataframe(experiment):
    """One row per job file of an experiment (completed and failed jobs; damaged files are left
    out, as in load_experiment), sorted by fold, point, phase, repeat.

    Columns (dtype):
      job_id, experiment, dataset, variant, protocol, phase, point_label, status, host, backend,
        file (str); point, fold, repeat, rank (int64); seed (uint64: the job's training seed);
      split_seed (Int64: evaluation.split_seed, which draws the folds);
      winner (boolean): the job ran its fold's winning sweep point (paper: the point of the
        reported figure; nested: every retraining); <NA> where no winner is decided yet;
      best_epoch (Int64, <NA> without a validated epoch), epochs (int64: epochs run);
      validation_accuracy, validation_loss (float64): at the best epoch, NaN without one;
      test_accuracy, test_loss (float64), test_graphs (Int64): the job's test evaluation, NaN
        without a test split (the nested protocol's selection jobs);
      test_epoch (Int64): the epoch whose weights were tested (from the stored predictions; <NA>
        in files written before they were stored);
      paper_epoch (Int64), paper_test_accuracy (float64): the paper protocol's figure per job:
        the best epoch of its sweep point's fold-averaged test curve and the job's test accuracy
        there (the winners' mean is the reported figure; NaN under the other protocols);
      wall_seconds (float64);
      then one column per setting key (model.hidden_dim, training.learning_rate, ...), numbers as
        int64 or float64, true/false as boolean, names and lists as str; missing where a job's
        settings do not name the key.
    """
    pd = _pandas()
    exp = _experiment(experiment, "to_dataframe")
    jobs = exp.jobs
    flags = winner_flags(exp)
    paper = paper_epochs(exp) if jobs and jobs[0].protocol == "paper" else {}
    keys = []
    for j in jobs:
        for key in j.settings_dict:
            if key not in keys:
                keys.append(key)

    def paper_epoch(j):
        return paper[j.point][1] if j.point in paper and j.status == "completed" else None

    def paper_accuracy(j):
        epoch, curve = paper_epoch(j), j.metrics["test_accuracy"]
        return float(curve[epoch - 1]) if epoch is not None and epoch <= len(curve) else np.nan

    def split_seed(j):
        text = j.settings_dict.get("evaluation.split_seed")
        return None if text is None else int(text)

    has_validation = [j.best_epoch > 0 for j in jobs]
    tests = [j.result.test for j in jobs]
    data = {
        "job_id": pd.Series([j.job_id for j in jobs], dtype="object"),
        "experiment": pd.Series([j.experiment_name for j in jobs], dtype="object"),
        "dataset": pd.Series([j.dataset for j in jobs], dtype="object"),
        "variant": pd.Series([j.variant for j in jobs], dtype="object"),
        "protocol": pd.Series([j.protocol for j in jobs], dtype="object"),
        "phase": pd.Series([j.phase for j in jobs], dtype="object"),
        "point": pd.Series([j.point for j in jobs], dtype="int64"),
        "point_label": pd.Series([j.point_label for j in jobs], dtype="object"),
        "fold": pd.Series([j.fold for j in jobs], dtype="int64"),
        "repeat": pd.Series([j.repeat for j in jobs], dtype="int64"),
        "seed": pd.Series(np.array([j.seed for j in jobs], dtype=np.uint64), dtype="uint64"),
        "split_seed": pd.Series([split_seed(j) for j in jobs], dtype="Int64"),
        "status": pd.Series([j.status for j in jobs], dtype="object"),
        "winner": pd.Series([flags.get(j.job_id) for j in jobs], dtype="boolean"),
        "best_epoch": pd.Series([j.best_epoch if v else None for j, v in zip(jobs, has_validation)], dtype="Int64"),
        "epochs": pd.Series([len(j.metrics["epoch"]) for j in jobs], dtype="int64"),
        "validation_accuracy": pd.Series([_nan_unless(v, j.result.best_validation.accuracy)
                                          for j, v in zip(jobs, has_validation)], dtype="float64"),
        "validation_loss": pd.Series([_nan_unless(v, j.result.best_validation.loss)
                                      for j, v in zip(jobs, has_validation)], dtype="float64"),
        "test_accuracy": pd.Series([t.accuracy if t else np.nan for t in tests], dtype="float64"),
        "test_loss": pd.Series([t.loss if t else np.nan for t in tests], dtype="float64"),
        "test_graphs": pd.Series([t.graphs if t else None for t in tests], dtype="Int64"),
        "test_epoch": pd.Series([j.predictions.epoch if j.get("predictions") is not None else None for j in jobs],
                                dtype="Int64"),
        "paper_epoch": pd.Series([paper_epoch(j) for j in jobs], dtype="Int64"),
        "paper_test_accuracy": pd.Series([paper_accuracy(j) for j in jobs], dtype="float64"),
        "wall_seconds": pd.Series([j.wall_seconds for j in jobs], dtype="float64"),
        "host": pd.Series([j.host for j in jobs], dtype="object"),
        "rank": pd.Series([j.rank for j in jobs], dtype="int64"),
        "backend": pd.Series([j.backend for j in jobs], dtype="object"),
        "file": pd.Series([j.path for j in jobs], dtype="object"),
    }
    assert tuple(data) == JOB_COLUMNS
    for key in keys:
        values, dtype = _typed([j.settings_dict.get(key) for j in jobs])
        data[key] = pd.Series(values, dtype=dtype)
    return pd.DataFrame(data)


def epochs_dataframe(experiment):
    """One row per job and epoch run, in the order of to_dataframe and then by epoch.

    Columns: job_id, phase (str), point, fold, repeat (int64), then every per-epoch column of the
    job files: epoch (int64); {train,validation,test}_{loss,classification_loss,link_loss,
    entropy_loss,accuracy} (float64, NaN where that split was not measured that epoch);
    {train,validation,test}_graphs (Int64, <NA> where not measured); validation_measured,
    test_measured (bool); grad_norm, train_seconds, eval_seconds (float64). Merge with
    to_dataframe on job_id for the settings."""
    pd = _pandas()
    exp = _experiment(experiment, "epochs_dataframe")
    frames = []
    for j in exp.jobs:
        m = j.metrics
        n = len(m["epoch"])
        data = {
            "job_id": pd.Series([j.job_id] * n, dtype="object"),
            "phase": pd.Series([j.phase] * n, dtype="object"),
            "point": pd.Series(np.full(n, j.point, dtype=np.int64)),
            "fold": pd.Series(np.full(n, j.fold, dtype=np.int64)),
            "repeat": pd.Series(np.full(n, j.repeat, dtype=np.int64)),
        }
        for name in ["epoch"] + [k for k in m if k != "epoch"]:
            values = np.asarray(m[name])
            if name.endswith("_measured"):
                data[name] = pd.Series(values.astype(bool), dtype="bool")
            elif name.endswith("_graphs"):
                split = name[:-len("_graphs")]
                measured = np.asarray(m[f"{split}_measured"]).astype(bool) if f"{split}_measured" in m else \
                    np.ones(n, dtype=bool)
                data[name] = pd.Series([int(v) if ok else None for v, ok in zip(values, measured)], dtype="Int64")
            elif name == "epoch":
                data[name] = pd.Series(values.astype(np.int64), dtype="int64")
            else:
                data[name] = pd.Series(values.astype(np.float64), dtype="float64")
        frames.append(pd.DataFrame(data))
    if not frames:
        return pd.DataFrame({"job_id": pd.Series([], dtype="object"), "epoch": pd.Series([], dtype="int64")})
    # Jobs with and without a column (none today) still line up: missing columns become NaN.
    return pd.concat(frames, ignore_index=True, sort=False)


__all__ = ["to_dataframe", "epochs_dataframe", "JOB_COLUMNS"]


# Columns of summary_dataframe, in order.
SUMMARY_JOB_COLUMNS = (
    "job_id", "experiment", "dataset", "variant", "protocol", "phase", "point", "point_label", "fold", "repeat",
    "winner", "best_epoch", "epochs", "validation_accuracy", "test_accuracy", "paper_epoch", "paper_test_accuracy",
    "test_split", "seconds", "host", "git_revision",
)


def summary_dataframe(experiment):
    """One row per completed job that summary.h5 lists (its /jobs table), for folders that keep
    only the summary: the published results (results/published/), or a merge of runs of
    different folds (`diffpool merge`). Sorted by fold, point, phase, repeat, as stored.

    `experiment` is a folder, a summary.h5 path, or a Summary from load_summary. Columns (dtype):
      job_id, experiment, dataset, variant, protocol, phase, point_label, test_split, host,
        git_revision (str); point, fold, repeat, epochs (int64);
      winner (boolean): the job ran its fold's winning point (paper: the reported point; nested:
        every retraining); <NA> for a fold without a winner;
      best_epoch (Int64, <NA> without a validated epoch); validation_accuracy (at the best
        epoch), test_accuracy (NaN without a test split) (float64);
      paper_epoch (Int64), paper_test_accuracy (float64): under the paper protocol, the epoch of
        the point's fold-averaged figure and the job's accuracy there (the winners' mean is the
        reported figure); <NA> and NaN under the other protocols;
      seconds (float64): training and evaluation time of the job.
    Summaries written before the job rows were stored give an empty frame with these columns.
    The per-epoch curves are load_summary(...).validation_curves, in the same order."""
    import os

    from .io import Summary, load_summary

    pd = _pandas()
    if isinstance(experiment, Summary):
        summary = experiment
    else:
        path = os.fspath(experiment)
        summary = load_summary(os.path.join(path, "summary.h5") if os.path.isdir(path) else path)
    jobs = summary.jobs
    n = len(jobs)
    labels = {int(p["point"]): str(p["label"]) for p in summary.points}
    winners = {int(w["fold"]): int(w["point"]) for w in summary.winners}
    paper = summary.protocol == "paper"
    paper_epoch = {int(p["point"]): int(p["paper_best_epoch"]) for p in summary.points if int(p["paper_best_epoch"]) > 0}
    curves = summary.validation_curves

    def field(name, default):
        return [jobs[name][i].item() for i in range(n)] if name in (jobs.dtype.names or ()) else [default] * n

    phases, points, folds = field("phase", ""), field("point", 0), field("fold", 0)

    def winner(i):
        if phases[i] == "retrain":
            return True
        if folds[i] not in winners:
            return None
        return winners[folds[i]] == points[i]

    def paper_values(i):
        epoch = paper_epoch.get(points[i]) if paper else None
        if epoch is None or epoch > len(curves[i]):
            return None, np.nan
        return epoch, float(curves[i][epoch - 1])  # the paper protocol validates on the test fold

    papers = [paper_values(i) for i in range(n)]
    best = field("best_epoch", 0)
    data = {
        "job_id": pd.Series(field("job_id", ""), dtype="object"),
        "experiment": pd.Series([summary.name] * n, dtype="object"),
        "dataset": pd.Series([summary.dataset] * n, dtype="object"),
        "variant": pd.Series([summary.variant] * n, dtype="object"),
        "protocol": pd.Series([summary.protocol] * n, dtype="object"),
        "phase": pd.Series(phases, dtype="object"),
        "point": pd.Series(points, dtype="int64"),
        "point_label": pd.Series([labels.get(p, "") for p in points], dtype="object"),
        "fold": pd.Series(folds, dtype="int64"),
        "repeat": pd.Series(field("repeat", 0), dtype="int64"),
        "winner": pd.Series([winner(i) for i in range(n)], dtype="boolean"),
        "best_epoch": pd.Series([b if b > 0 else None for b in best], dtype="Int64"),
        "epochs": pd.Series(field("epochs", 0), dtype="int64"),
        "validation_accuracy": pd.Series(field("validation_accuracy", np.nan), dtype="float64"),
        "test_accuracy": pd.Series(field("test_accuracy", np.nan), dtype="float64"),
        "paper_epoch": pd.Series([p[0] for p in papers], dtype="Int64"),
        "paper_test_accuracy": pd.Series([p[1] for p in papers], dtype="float64"),
        "test_split": pd.Series(field("test_split", ""), dtype="object"),
        "seconds": pd.Series(field("seconds", np.nan), dtype="float64"),
        "host": pd.Series(field("host", ""), dtype="object"),
        "git_revision": pd.Series(field("git_revision", ""), dtype="object"),
    }
    assert tuple(data) == SUMMARY_JOB_COLUMNS
    return pd.DataFrame(data)
