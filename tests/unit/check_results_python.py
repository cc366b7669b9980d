"""Checks the Python reader (results/python/diffpool_results) against files written by
test_results_python.cpp, value by value, with the formulas of tests/unit/results_fixtures.hpp:
load_job / load_experiment, the stored test predictions, the data frames (rows, columns, dtypes,
NaN where a field does not apply) and the confusion matrices (against hand-computed ones).

Usage: PYTHONPATH=results/python /usr/bin/python3 check_results_python.py EXPERIMENT_DIR JOB_FILE
(exit status 0 and "results python check passed").

check_real_experiment(folder) checks an experiment the runner produced (tests/runner/
test_predictions.py): the stored predictions imply exactly the accuracies the job reports.
"""
import math
import os
import shutil
import sys
import tempfile

import h5py
import numpy as np

from diffpool_results import (confusion_from_labels, confusion_matrix, epochs_dataframe, load_experiment, load_job,
                              to_dataframe)
from diffpool_results.frames import JOB_COLUMNS
from diffpool_results.io import rows

CLUSTERS = (6, 2, 0)
EMBEDDING_DIM = 32
CLASSES = 3
OUTPUT_GRAPHS = {0: [(3, 7), (8, 23), (12, 4), (20, 61), (31, 150)], 1: [(1, 5), (5, 150), (9, 12), (14, 40), (27, 9)]}


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def wave(g, l, k, r, c):
    return np.sin(0.1 * g + 0.7 * l + 0.013 * np.asarray(r, dtype=np.float64) + 0.029 * np.asarray(c, dtype=np.float64) + k)


def grid(g, l, k, rows_, cols):
    r, c = np.meshgrid(np.arange(rows_), np.arange(cols), indexing="ij")
    return wave(g, l, k, r, c).astype(np.float32)


def close(a, b, what, atol=1e-6):
    a, b = np.asarray(a), np.asarray(b)
    expect(a.shape == b.shape, f"{what}: shape {a.shape}, expected {b.shape}")
    expect(np.allclose(a, b, atol=atol, rtol=0, equal_nan=True), f"{what}: {a} != {b}")


def metrics(epoch, offset, loss_shift, accuracy_shift):
    e = float(epoch)
    return dict(loss=2.0 / e + offset + loss_shift, classification_loss=1.5 / e + offset + loss_shift,
                link_loss=0.4 / e + loss_shift, entropy_loss=0.1 / e + loss_shift,
                accuracy=0.5 + 0.05 * e + accuracy_shift)


def check_job(job, fold, point, with_outputs):
    # Identity and environment attributes.
    expect(job.job_id == f"{0xabc000 + fold * 16 + point:016x}", f"job_id {job.job_id}")
    expect(job.experiment_name == "synthetic-enzymes" and job.protocol == "holdout" and job.phase == "train",
           f"identity {job.experiment_name} {job.protocol} {job.phase}")
    expect(job.fold == fold and job.point == point and job.repeat == 0, f"fold/point {job.fold} {job.point}")
    expect(job.seed == 0xfedcba9876543210 + fold, f"seed {job.seed}")
    expect(job.dataset == "ENZYMES" and job.variant == "diffpool", "dataset/variant")
    expect(job.status == "completed" and job.failure == "" and job.best_epoch == 5, "outcome")
    expect(job.host == "node001" and job.rank == 3 and job.backend == "cpu", "environment")
    expect(job.wall_seconds == 12.5 and job.started_at == "2024-05-01T10:00:00Z", "times")
    expect(job.schema_version == 1, "schema_version")
    expect(job.settings_dict["dataset.name"] == "ENZYMES", f"settings {job.settings!r}")
    expect("gr\u00fc\u00dfe \u0394" in job.config, f"config {job.config!r}")
    # Splits.
    ids = np.arange(40)
    close(job.splits.test, ids[ids % 10 == fold], "splits.test")
    close(job.splits.validation, ids[(ids % 10 == 9) & (ids % 10 != fold)], "splits.validation")
    expect(job.splits.train.dtype == np.int64 and len(job.splits.train) == 40 - 4 - 4, "splits.train")
    # Metrics: one array per column, NaN where not measured.
    offset = 0.01 * (point + 2 * fold)
    m = job.metrics
    close(m["epoch"], np.arange(1, 7), "epoch")
    for e in range(1, 7):
        i = e - 1
        for prefix, loss_shift, acc_shift, measured in (("train", 0.0, 0.0, True), ("validation", 0.1, -0.02, e != 3),
                                                        ("test", 0.2, -0.04, e % 2 == 0)):
            want = metrics(e, offset, loss_shift, acc_shift)
            for name, value in want.items():
                got = m[f"{prefix}_{name}"][i]
                if measured:
                    expect(abs(got - value) < 1e-12, f"{prefix}_{name}[{i}] = {got}, expected {value}")
                else:
                    expect(math.isnan(got), f"{prefix}_{name}[{i}] = {got}, expected NaN")
        expect(m["grad_norm"][i] == 1 + 0.5 * e and m["train_seconds"][i] == 0.25 * e and
               m["eval_seconds"][i] == 0.125 * e, f"timings at epoch {e}")
    expect(list(m["validation_measured"]) == [1, 1, 0, 1, 1, 1], "validation_measured")
    # Result.
    r = job.result
    expect(r.best_epoch == 5 and r.has_test, "result")
    expect(abs(r.best_validation.accuracy - metrics(5, offset, 0.1, -0.02)["accuracy"]) < 1e-12, "best_validation")
    expect(abs(r.test.loss - metrics(5, offset, 0.2, -0.04)["loss"]) < 1e-12 and r.test.graphs == 60, "test")
    # Test predictions: every test graph, label g % 3, prediction (g / 2) % 3 at the best epoch,
    # per epoch (g / 2 + e) % 3 where the test split was measured (even epochs), -1 elsewhere.
    p = job.predictions
    test = ids[ids % 10 == fold]
    expect(p is not None and p.split == "test" and p.epoch == 5, f"predictions {p}")
    expect(p.graphs.dtype == np.int64 and list(p.graphs) == list(test), f"predictions.graphs {p.graphs}")
    expect(p.label.dtype == np.int32 and list(p.label) == list(test % CLASSES), f"predictions.label {p.label}")
    expect(list(p.prediction) == list((test // 2) % CLASSES), f"predictions.prediction {p.prediction}")
    expect(p.per_epoch.shape == (6, len(test)), f"per_epoch shape {p.per_epoch.shape}")
    for e in range(1, 7):
        want = (test // 2 + e) % CLASSES if e % 2 == 0 else np.full(len(test), -1)
        expect(list(p.per_epoch[e - 1]) == list(want), f"per_epoch[{e - 1}] = {p.per_epoch[e - 1]}, expected {want}")
    # Outputs.
    expect(job.outputs_split == "test", "outputs_split")
    expect(job.graphs == [g for g, _ in OUTPUT_GRAPHS[fold]], f"graphs {job.graphs}")
    if not with_outputs:
        expect(len(job.outputs) == 0, "outputs read although not asked for")
        return
    for g, n in OUTPUT_GRAPHS[fold]:
        out = job.outputs[g]
        expect(out.graph == g and out.label == g % CLASSES and out.prediction == (g // 2) % CLASSES, f"graph {g}")
        close(out.logits, grid(g, 0, 3, 1, CLASSES)[0], f"graph {g} logits")
        close(out.graph_embedding, grid(g, 0, 4, 1, 3 * EMBEDDING_DIM)[0], f"graph {g} graph_embedding")
        expect(out.logits.dtype == np.float32, "logits dtype")
        # Edges: ring plus chords, (low, high) pairs.
        edges = [(i, i + 1) for i in range(n - 1)] + ([(0, n - 1)] if n > 2 else []) + \
                [(i, i + 3) for i in range(0, n - 4, 5)]
        close(out.edges, np.array(edges, dtype=np.int32).reshape(-1, 2), f"graph {g} edges")
        expect(len(out.levels) == 3, f"graph {g}: {len(out.levels)} levels")
        rows_of = (n, CLUSTERS[0], CLUSTERS[1])
        for l, level in enumerate(out.levels):
            expect(level.rows == rows_of[l] and level.clusters == CLUSTERS[l], f"graph {g} level {l} sizes")
            close(level.embedding, grid(g, l, 0, rows_of[l], EMBEDDING_DIM), f"graph {g} level {l} embedding")
            if CLUSTERS[l] == 0:
                expect(level.assignment is None and level.pooled_adjacency is None, f"graph {g} last level")
                continue
            r, c = np.meshgrid(np.arange(rows_of[l]), np.arange(CLUSTERS[l]), indexing="ij")
            logits = 3.0 * wave(g, l, 1, 37 * r, 53 * c).astype(np.float32).astype(np.float64)
            s = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            close(level.assignment, s, f"graph {g} level {l} assignment")
            close(level.assignment.sum(axis=1), np.ones(rows_of[l]), f"graph {g} level {l} rows of S", atol=1e-5)
            k = CLUSTERS[l]
            r, c = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
            a = np.abs(wave(g, l, 2, np.minimum(r, c), np.maximum(r, c)).astype(np.float32))
            close(level.pooled_adjacency, a, f"graph {g} level {l} pooled_adjacency")


def main(folder, job_path):
    job = load_job(job_path)
    check_job(job, fold=0, point=1, with_outputs=True)
    check_job(load_job(job_path, outputs=False), fold=0, point=1, with_outputs=False)

    exp = load_experiment(folder)
    expect(len(exp.jobs) == 4, f"{len(exp.jobs)} jobs")
    keys = [(j.fold, j.point) for j in exp.jobs]
    expect(keys == [(0, 0), (0, 1), (1, 0), (1, 1)], f"job order {keys}")
    for j in exp.jobs:
        check_job(j, j.fold, j.point, with_outputs=False)
    t = exp.job_table
    expect(list(t.fold) == [0, 0, 1, 1] and list(t.point) == [0, 1, 0, 1], "job_table fold/point")
    close(t.test_accuracy, [metrics(5, 0.01 * (p + 2 * f), 0.2, -0.04)["accuracy"] for f, p in keys], "job_table test")
    expect(t.status[0] == "completed" and t.epochs[0] == 6, "job_table status/epochs")
    expect(len(exp.failed) == 1 and exp.failed[0]["reason"].startswith("numerical failure"), f"failed {exp.failed}")

    s = exp.summary
    expect(s.name == "synthetic-enzymes" and s.protocol == "holdout" and s.optimistic is False, "summary attributes")
    expect(s.jobs_total == 5 and s.jobs_completed == 4 and s.jobs_failed == 1, "summary counts")
    expect(abs(s.accuracy_mean - 0.70) < 1e-15 and s.accuracy_label == "test accuracy of per-fold winners", "figure")
    expect(s.environment.hosts == ["node001", "node002"] and s.environment.ranks == 4, "environment")
    expect(list(s.points.point) == [0, 1] and s.points.label[1] == "training.learning_rate=0.0001", "points")
    close(s.points.test_mean, [0.71, 0.70], "points.test_mean")
    expect(list(s.winners.point) == [1, 0], "winners")
    expect(s.failures.reason[0].startswith("numerical failure") and s.failures.job_id[0] == "00000000000abc99",
           "failures")
    expect(rows(s.points)[0]["label"] == "training.learning_rate=0.001", "rows()")

    check_dataframes(exp)
    check_confusion(exp)
    check_missing_fields(folder)
    print("results python check passed")


def check_dataframes(exp):
    frame = to_dataframe(exp)
    expect(len(frame) == 4, f"to_dataframe: {len(frame)} rows")
    settings = ["dataset.name", "model.variant", "training.learning_rate"]
    expect(list(frame.columns) == list(JOB_COLUMNS) + settings, f"to_dataframe columns {list(frame.columns)}")
    dtypes = {"job_id": "object", "phase": "object", "point": "int64", "fold": "int64", "repeat": "int64",
              "seed": "uint64", "split_seed": "Int64", "winner": "boolean", "best_epoch": "Int64", "epochs": "int64",
              "validation_accuracy": "float64", "test_accuracy": "float64", "test_graphs": "Int64",
              "test_epoch": "Int64", "paper_epoch": "Int64", "paper_test_accuracy": "float64",
              "dataset.name": "object", "model.variant": "object", "training.learning_rate": "float64"}
    for column, dtype in dtypes.items():
        expect(str(frame[column].dtype) == dtype,
               f"to_dataframe {column}: dtype {frame[column].dtype}, expected {dtype}")
    keys = [(0, 0), (0, 1), (1, 0), (1, 1)]
    expect(list(zip(frame.fold, frame.point)) == keys, "to_dataframe order")
    expect(list(frame.seed) == [0xfedcba9876543210, 0xfedcba9876543210, 0xfedcba9876543211, 0xfedcba9876543211],
           f"to_dataframe seed {list(frame.seed)}")
    expect(list(frame["training.learning_rate"]) == [0.001, 0.0001, 0.001, 0.0001], "typed learning rate")
    # Winners (summary): fold 0 chose point 1, fold 1 point 0.
    expect(list(frame.winner) == [False, True, True, False], f"to_dataframe winner {list(frame.winner)}")
    close(frame.test_accuracy, [metrics(5, 0.01 * (p + 2 * f), 0.2, -0.04)["accuracy"] for f, p in keys],
          "test_accuracy")
    close(frame.validation_accuracy, [metrics(5, 0.01 * (p + 2 * f), 0.1, -0.02)["accuracy"] for f, p in keys],
          "validation_accuracy")
    expect(list(frame.best_epoch) == [5] * 4 and list(frame.test_epoch) == [5] * 4, "best_epoch, test_epoch")
    # Fields that do not apply: no split seed in these settings, no paper figure under holdout.
    expect(frame.split_seed.isna().all() and frame.paper_epoch.isna().all(), "split_seed / paper_epoch not NA")
    expect(frame.paper_test_accuracy.isna().all(), "paper_test_accuracy not NaN under holdout")

    epochs = epochs_dataframe(exp)
    expect(len(epochs) == 24, f"epochs_dataframe: {len(epochs)} rows")
    expect(list(epochs.columns[:6]) == ["job_id", "phase", "point", "fold", "repeat", "epoch"],
           f"epochs_dataframe columns {list(epochs.columns)}")
    metric_columns = {f"{s}_{m}" for s in ("train", "validation", "test")
                      for m in ("loss", "classification_loss", "link_loss", "entropy_loss", "accuracy", "graphs")}
    metric_columns |= {"validation_measured", "test_measured", "grad_norm", "train_seconds", "eval_seconds"}
    expect(set(epochs.columns[6:]) == metric_columns, f"epochs_dataframe metric columns {sorted(epochs.columns[6:])}")
    expect(str(epochs.epoch.dtype) == "int64" and str(epochs.test_graphs.dtype) == "Int64" and
           str(epochs.test_measured.dtype) == "bool" and str(epochs.test_accuracy.dtype) == "float64",
           f"epochs_dataframe dtypes {epochs.dtypes.to_dict()}")
    first = epochs[epochs.job_id == exp.jobs[0].job_id]
    expect(list(first.epoch) == [1, 2, 3, 4, 5, 6], "epochs of the first job")
    odd = first[first.epoch % 2 == 1]
    expect(odd.test_accuracy.isna().all() and odd.test_graphs.isna().all() and not odd.test_measured.any(),
           "unmeasured test epochs are NaN / NA")
    expect(list(first[first.epoch % 2 == 0].test_graphs) == [60, 60, 60], "measured test_graphs")
    close(first.train_loss, [metrics(e, 0.0, 0.0, 0.0)["loss"] for e in range(1, 7)], "train_loss")
    expect(first.validation_accuracy.isna().tolist() == [False, False, True, False, False, False],
           "validation NaN at epoch 3")


def check_confusion(exp):
    # By hand: true 0 0 1 1 1 2, predicted 0 1 1 1 0 2, four classes (class 3 has no graphs).
    c = confusion_from_labels([0, 0, 1, 1, 1, 2], [0, 1, 1, 1, 0, 2], classes=4)
    expect(c.matrix.tolist() == [[1, 1, 0, 0], [1, 2, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]], f"matrix {c.matrix}")
    close(c.per_class_accuracy, [0.5, 2 / 3, 1.0, np.nan], "per_class_accuracy")
    expect(abs(c.accuracy - 4 / 6) < 1e-15 and c.graphs == 6, f"accuracy {c.accuracy}")
    # The experiment: holdout, the winners' jobs (fold 0 point 1, fold 1 point 0), final predictions.
    # Fold 0 tests graphs 0 10 20 30 (true 0 1 2 0, predicted 0 2 1 0), fold 1 graphs 1 11 21 31
    # (true 1 2 0 1, predicted 0 2 1 0).
    c = confusion_matrix(exp)
    expect(c.matrix.tolist() == [[2, 1, 0], [2, 0, 1], [0, 1, 1]], f"experiment matrix {c.matrix}")
    expect(abs(c.accuracy - 3 / 8) < 1e-15 and c.graphs == 8, f"experiment accuracy {c.accuracy}")
    close(c.per_class_accuracy, [2 / 3, 0.0, 0.5], "experiment per_class_accuracy")
    expect(sorted(c.jobs) == sorted([exp.jobs[1].job_id, exp.jobs[2].job_id]), f"experiment jobs {c.jobs}")
    # Selected jobs at an epoch: fold 0 point 0 at epoch 2 predicts (g / 2 + 2) % 3 = 2 1 0 2.
    c = confusion_matrix(exp, jobs=[exp.jobs[0].job_id], epoch=2)
    expect(c.matrix.tolist() == [[0, 0, 2], [0, 1, 0], [1, 0, 0]], f"epoch 2 matrix {c.matrix}")
    # Epoch 3 did not measure the test split: nothing to count.
    expect(confusion_matrix(exp, jobs=[exp.jobs[0].path], epoch=3) is None, "epoch 3 has no predictions")


def check_missing_fields(folder):
    """A job without a test split and a validated epoch, and an older file without predictions:
    NaN / NA in the data frame, never 0; left out of the confusion matrix."""
    root = tempfile.mkdtemp(prefix="diffpool-frames-")
    try:
        copy = os.path.join(root, "experiment")
        shutil.copytree(folder, copy)
        os.remove(os.path.join(copy, "summary.h5"))
        jobs = sorted(os.listdir(os.path.join(copy, "jobs")))
        with h5py.File(os.path.join(copy, "jobs", jobs[0]), "r+") as f:  # like a nested selection job
            f.attrs["phase"] = "select"
            f.attrs["best_epoch"] = 0
            f["result"].attrs["has_test"] = 0
            f["result"].attrs["best_epoch"] = 0
            del f["result/test"]
            del f["predictions"]
        with h5py.File(os.path.join(copy, "jobs", jobs[1]), "r+") as f:  # written before predictions existed
            del f["predictions"]
        exp = load_experiment(copy)
        frame = to_dataframe(copy).set_index("job_id")
        select = frame.loc[jobs[0][:-3]]
        expect(select.phase == "select", "modified job")
        for column in ("test_accuracy", "test_loss", "validation_accuracy", "validation_loss"):
            expect(math.isnan(select[column]), f"{column} of a job without it: {select[column]}, not NaN")
        for column in ("test_graphs", "test_epoch", "best_epoch"):
            expect(select[column] is np.nan or str(select[column]) == "<NA>", f"{column}: {select[column]!r}, not NA")
        expect(str(frame.loc[jobs[1][:-3]].test_epoch) == "<NA>", "test_epoch of an old file")
        expect(load_job(os.path.join(copy, "jobs", jobs[1])).predictions is None, "predictions of an old file")
        # Without a summary the winners are recomputed from validation accuracy: fold 0 has only
        # point 1 validated now, and
        # point 0 is the lowest of fold 1's equal validation accuracies.
        expect(list(frame.winner) == [False, True, True, False], f"recomputed winners {list(frame.winner)}")
        c = confusion_matrix(exp)
        expect(c.skipped == [jobs[1][:-3]] and c.graphs == 4, f"confusion with an old file: {c}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


def check_real_experiment(folder):
    """An experiment the runner wrote: every test figure a job reports equals the accuracy its
    stored predictions imply; returns the number of evaluations checked."""
    exp = load_experiment(folder)
    checked = 0
    for job in exp.jobs:
        if job.result.test is None:
            expect(job.predictions is None, f"{job.job_id}: predictions without a test split")
            continue
        p = job.predictions
        expect(p is not None, f"{job.job_id}: no stored predictions")
        expect(list(p.graphs) == list(job.splits.test),
               f"{job.job_id}: predictions of other graphs than the test split")
        expect(len(p.graphs) == job.result.test.graphs, f"{job.job_id}: {len(p.graphs)} predictions")
        implied = float(np.mean(p.label == p.prediction))
        expect(abs(implied - job.result.test.accuracy) < 1e-6,
               f"{job.job_id}: result/test accuracy {job.result.test.accuracy}, predictions imply {implied}")
        expected_epoch = job.best_epoch if job.protocol != "paper" and job.best_epoch > 0 else len(job.metrics["epoch"])
        expect(p.epoch == expected_epoch, f"{job.job_id}: predictions of epoch {p.epoch}, expected {expected_epoch}")
        checked += 1
        measured = np.asarray(job.metrics["test_measured"]).astype(bool)
        if job.protocol == "paper":
            expect(p.per_epoch is not None and measured.all(), f"{job.job_id}: paper job without per-epoch predictions")
            expect(list(p.per_epoch[-1]) == list(p.prediction), f"{job.job_id}: last epoch differs from the final test")
        if p.per_epoch is None:
            continue
        for e in np.flatnonzero(measured):
            implied = float(np.mean(p.label == p.per_epoch[e]))
            expect(abs(implied - job.metrics["test_accuracy"][e]) < 1e-6,
                   f"{job.job_id} epoch {e + 1}: test accuracy {job.metrics['test_accuracy'][e]}, "
                   f"predictions imply {implied}")
            checked += 1
    # The experiment's figure from the data frame and from the confusion matrix (which pools the
    # graphs, so it equals the mean over folds weighted by their test graphs).
    frame = to_dataframe(exp)
    chosen = frame[frame.winner == True]  # noqa: E712 - a nullable boolean column
    if exp.summary.protocol == "paper":
        accuracy, graphs = chosen.paper_test_accuracy, chosen.test_graphs
    else:
        chosen = chosen[chosen.phase != "select"]
        accuracy, graphs = chosen.test_accuracy, chosen.test_graphs
    if exp.summary.protocol == "paper":
        close(accuracy.mean(), exp.summary.accuracy_mean, "paper figure from the data frame")
        for point in exp.summary.points:  # every sweep point's curve figure, not only the winner's
            close(frame[frame.point == point.point].paper_test_accuracy.mean(), point.paper_accuracy,
                  f"paper figure of point {point.point} from the data frame")
    c = confusion_matrix(exp)
    expect(c.graphs == int(graphs.sum()), f"confusion matrix of {c.graphs} graphs, the winners tested {graphs.sum()}")
    close(c.accuracy, float((accuracy * graphs).sum() / graphs.sum()), "figure from the confusion matrix", atol=1e-9)
    return checked


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
