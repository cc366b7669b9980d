"""Checks the Python reader (results/python/diffpool_results) against files written by
test_results_python.cpp, value by value, with the formulas of tests/unit/results_fixtures.hpp:
load_job / load_experiment, the stored test predictions, the data frames (rows, columns, dtypes,
NaN where a field does not apply) and the confusion matrices (against hand-computed ones); then
renders every figure and checks what it draws (per-fold dots, reference lines, colour keys, legends
clear of the data, the confusion matrix's cells) from the matplotlib objects, and the study figure
of results/published and of a synthetic study folder.

Usage: PYTHONPATH=results/python /usr/bin/python3 check_results_python.py EXPERIMENT_DIR JOB_FILE
(exit status 0 and "results python check passed").

check_real_experiment(folder) checks an experiment the runner produced (tests/runner/
test_predictions.py): the stored predictions imply exactly the accuracies the job reports.
"""
import copy
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np

from diffpool_results import (confusion_from_labels, confusion_matrix, epochs_dataframe, load_confusion,
                              load_experiment, load_job, plots, published, save_confusion, study, sum_confusions,
                              to_dataframe)
from diffpool_results.frames import JOB_COLUMNS
from diffpool_results.io import AttrDict, GraphOutput, Level, rows

SOURCE_DIR = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

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
            # Evaluations record the cluster usage of each of the two pooling levels; training none.
            usage = [0.25 + 0.05 * e + acc_shift, 0.9 - 0.1 * e]
            for level in (0, 1):
                column = f"{prefix}_cluster_usage_level{level}"
                if prefix == "train":
                    expect(column not in m, f"{column} recorded")
                elif measured:
                    expect(abs(m[column][i] - usage[level]) < 1e-12, f"{column}[{i}] = {m[column][i]}")
                else:
                    expect(math.isnan(m[column][i]), f"{column}[{i}] = {m[column][i]}, expected NaN")
        expect(m["grad_norm"][i] == 1 + 0.5 * e and m["train_seconds"][i] == 0.25 * e and
               m["eval_seconds"][i] == 0.125 * e, f"timings at epoch {e}")
    expect(list(m["validation_measured"]) == [1, 1, 0, 1, 1, 1], "validation_measured")
    # Result.
    r = job.result
    expect(r.best_epoch == 5 and r.has_test, "result")
    expect(abs(r.best_validation.accuracy - metrics(5, offset, 0.1, -0.02)["accuracy"]) < 1e-12, "best_validation")
    close(r.best_validation.cluster_usage, [0.25 + 0.25 - 0.02, 0.9 - 0.5], "best_validation.cluster_usage")
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
    # Ties, the split seed (beyond int64), the population std, and NaN where a field does not apply.
    expect(list(s.winners.tied) == [1, 2] and s.tie_rule.startswith("lowest sweep point index"), "winners.tied")
    expect(s.split_seed == 0xfedcba9876543210 and abs(s.accuracy_std_population - 0.01) < 1e-15, "split seed, std")
    expect(bool(np.all(np.isnan(s.points.paper_accuracy))), f"paper_accuracy {s.points.paper_accuracy}")
    expect(s.failures.reason[0].startswith("numerical failure") and s.failures.job_id[0] == "00000000000abc99",
           "failures")
    expect(rows(s.points)[0]["label"] == "training.learning_rate=0.001", "rows()")

    check_dataframes(exp)
    check_confusion(exp)
    check_missing_fields(folder)
    check_accuracy_figure(exp)
    check_curves_figure(job)
    check_graph_figures(job)
    check_study()
    check_confusion_figure(exp)
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
    metric_columns |= {f"{s}_cluster_usage_level{l}" for s in ("validation", "test") for l in (0, 1)}
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
    check_saved_confusion(exp)


def check_saved_confusion(exp):
    """confusion.csv: saved and read back exactly; a folder with only summary.h5 and confusion.csv
    (a published experiment) gives the saved matrix; shards' matrices add up, by function and by
    the confusion_csv command; a damaged file names its line."""
    c = confusion_matrix(exp)
    folder = tempfile.mkdtemp(prefix="diffpool-confusion-")
    try:
        shutil.copy(os.path.join(exp.folder, "summary.h5"), folder)
        path = save_confusion(c, os.path.join(folder, "confusion.csv"))
        for back in (load_confusion(path), confusion_matrix(folder)):
            expect(back.matrix.tolist() == c.matrix.tolist() and back.graphs == c.graphs, f"saved matrix {back.matrix}")
            expect(back.jobs == c.jobs and back.description == c.description and back.skipped == [],
                   f"saved jobs {back.jobs}, description {back.description!r}")
            close(back.per_class_accuracy, c.per_class_accuracy, "saved per_class_accuracy")
        twice = sum_confusions([c, c])
        expect(twice.matrix.tolist() == (2 * c.matrix).tolist() and twice.graphs == 2 * c.graphs
               and twice.accuracy == c.accuracy and len(twice.jobs) == 2 * len(c.jobs), f"sum {twice.matrix}")
        command = [sys.executable, "-m", "diffpool_results.confusion_csv", exp.folder, exp.folder, "--csv", path]
        p = subprocess.run(command, capture_output=True, text=True, timeout=120)
        expect(p.returncode == 0 and "16 test graphs" in p.stdout, f"confusion_csv: {p.returncode} {p.stdout} {p.stderr}")
        expect(load_confusion(path).matrix.tolist() == twice.matrix.tolist(), "confusion_csv did not add the folders")
        with open(path, "a") as f:
            f.write("3,1,x,0\n")
        try:
            load_confusion(path)
            sys.exit("a damaged confusion.csv was read")
        except ValueError as e:
            expect(f"{path}:" in str(e) and "'3,1,x,0'" in str(e), f"damaged confusion.csv: {e}")
    finally:
        shutil.rmtree(folder)


def drop_checksum_block(path):
    """Turns a job file of this version, edited in place with h5py (which leaves its checksum block
    stale: readers would call it corrupt), into a file of an earlier version: the same HDF5 bytes
    without the 512-byte block (results/README.md, "Checksum block")."""
    with open(path, "rb") as f:
        content = f.read()[512:]
    with open(path, "wb") as f:
        f.write(content)


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
        for job in jobs[:2]:
            drop_checksum_block(os.path.join(copy, "jobs", job))
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


def check_confusion_figure(exp):
    """confusion.png of the fixture (matrix of check_confusion): the heat map holds each true class's
    fractions, each cell its count and percentage, the twin axis each class's accuracy, clear of
    the colour bar."""
    fig = plots.confusion_figure(confusion_matrix(exp), "synthetic")
    ax, side, bar = fig.axes[0], fig.axes[1], fig.axes[2]
    close(ax.images[0].get_array(), [[2 / 3, 1 / 3, 0], [2 / 3, 0, 1 / 3], [0, 0.5, 0.5]], "confusion heat map")
    cells = [t.get_text() for t in ax.texts]
    expect(cells == ["2\n67%", "1\n33%", "0\n0%", "2\n67%", "0\n0%", "1\n33%", "0\n0%", "1\n50%", "1\n50%"],
           f"confusion cells {cells}")
    labels = [t.get_text() for t in side.get_yticklabels()]
    expect(labels == ["66.7% (2/3)", "0.0% (0/3)", "50.0% (1/2)"], f"per-class accuracy labels {labels}")
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for label in side.get_yticklabels():
        expect(not overlaps(label.get_window_extent(renderer), bar.get_window_extent(renderer)),
               f"per-class accuracy {label.get_text()!r} overlaps the colour bar")
    expect("37.50% over 8 test graphs" in fig._suptitle.get_text(), f"confusion title {fig._suptitle.get_text()!r}")
    plots.plt.close(fig)


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



# ---------------------------------------------------------------------------------------------
# Figures: what each draws, read back from its matplotlib objects.

def by_gid(artists, gid):
    return [a for a in artists if a.get_gid() == gid]


def overlaps(a, b):
    """Whether two display-space boxes share area."""
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def legend_clear_of_axes(fig, legend, ax, what):
    fig.canvas.draw()
    box, axes_box = legend.get_window_extent(), ax.get_window_extent()
    expect(not overlaps(box, axes_box), f"{what}: the legend {box} lies over the axes {axes_box}")
    figure_box = fig.bbox
    expect(box.x0 >= figure_box.x0 - 1 and box.x1 <= figure_box.x1 + 1 and box.y0 >= figure_box.y0 - 1 and
           box.y1 <= figure_box.y1 + 1, f"{what}: the legend {box} leaves the figure {figure_box}")


def test_accuracy(fold, point, epoch):
    return metrics(epoch, 0.01 * (point + 2 * fold), 0.2, -0.04)["accuracy"]


def check_accuracy_figure(exp):
    fig = plots.accuracy_points_figure(exp)
    ax = fig.axes[0]
    # One dot per job over the bar of its point and series: validation at the best epoch, test.
    keys = [(j.fold, j.point) for j in exp.jobs]
    want = dict(validation=[100 * metrics(5, 0.01 * (p + 2 * f), 0.1, -0.02)["accuracy"] for f, p in keys],
                test=[100 * test_accuracy(f, p, 5) for f, p in keys])
    bars = [b for b in ax.patches if isinstance(b, plots.matplotlib.patches.Rectangle) and b.get_width() > 0]
    for series, values in want.items():
        dots = by_gid(ax.collections, f"folds_{series}")
        expect(len(dots) == 1, f"accuracy chart: {len(dots)} dot sets of {series}")
        xy = dots[0].get_offsets()
        close(np.sort(xy[:, 1]), np.sort(values), f"accuracy chart: {series} dots", atol=1e-9)
        colour = dots[0].get_facecolor()[0][:3]
        for x, y in xy:
            under = [b for b in bars if b.get_x() <= x <= b.get_x() + b.get_width()]
            expect(len(under) == 1 and np.allclose(under[0].get_facecolor()[:3], colour),
                   f"accuracy chart: the {series} dot at x={x} is not over a bar of its series")
        # Each point's dots are over that point's bar: the fixture's points differ by 0.01.
        for point in (0, 1):
            bar_x = sorted({b.get_x() for b in bars if np.allclose(b.get_facecolor()[:3], colour)})[point]
            mine = sorted(y for x, y in xy if bar_x <= x)
            expect(len([x for x, _ in xy if bar_x <= x <= bar_x + bars[0].get_width()]) == 2,
                   f"accuracy chart: point {point} has not two {series} dots over its bar ({mine})")
    # Reference lines: the reported figure and both published figures of ENZYMES diffpool, labelled.
    handles, labels = ax.get_legend_handles_labels()
    for gid, value, source in (("reported", 100 * exp.summary.accuracy_mean, "reported"),
                               ("published_ying2018", published.ying_2018("ENZYMES", "diffpool"), "Ying et al. 2018"),
                               ("published_errica2020", published.errica_2020("ENZYMES", "diffpool")[0],
                                "Errica et al. 2020")):
        lines = by_gid(ax.lines, gid)
        expect(len(lines) == 1, f"accuracy chart: {len(lines)} lines {gid}")
        close(lines[0].get_ydata(), [value, value], f"accuracy chart: line {gid}", atol=1e-9)
        label = lines[0].get_label()
        expect(label.startswith(source) and f"{value:.1f}" in label, f"accuracy chart: line {gid} labelled {label!r}")
        expect(label in ax.get_legend().get_texts()[labels.index(label)].get_text(), f"{gid} not in the legend")
    expect(published.ying_2018("ENZYMES", "diffpool") is not None and published.errica_2020("enzymes", "DiffPool"),
           "published figures of ENZYMES diffpool")
    legend_clear_of_axes(fig, ax.get_legend(), ax, "accuracy chart")
    plots.plt.close(fig)

    # The paper protocol: a third series, its dots each job's test-fold accuracy at the point's
    # paper_best_epoch (4: a measured test epoch of the fixture).
    paper = copy.copy(exp)
    paper.summary = AttrDict(exp.summary)
    paper.summary.protocol = "paper"
    paper.summary.points = exp.summary.points.copy()
    paper.summary.points.paper_best_epoch[:] = 4
    paper.summary.points.paper_accuracy[:] = 0.6
    fig = plots.accuracy_points_figure(paper)
    dots = by_gid(fig.axes[0].collections, "folds_paper")
    expect(len(dots) == 1, "paper protocol: no paper dots")
    close(np.sort(dots[0].get_offsets()[:, 1]), np.sort([100 * test_accuracy(f, p, 4) for f, p in keys]),
          "paper protocol: dots at the paper epoch", atol=1e-9)
    plots.plt.close(fig)

    # Only the published figures that exist for the dataset and variant.
    for dataset, variant, ying, errica in (("NCI1", "diffpool", False, True), ("ENZYMES", "graphsage", True, False),
                                           ("MUTAG", "diffpool", False, False)):
        other = copy.copy(exp)
        other.summary = AttrDict(exp.summary, dataset=dataset, variant=variant)
        fig = plots.accuracy_points_figure(other)
        ax = fig.axes[0]
        expect(bool(by_gid(ax.lines, "published_ying2018")) == ying and
               bool(by_gid(ax.lines, "published_errica2020")) == errica,
               f"{dataset} {variant}: published lines {[l.get_gid() for l in ax.lines]}")
        plots.plt.close(fig)


def check_curves_figure(job):
    # Holdout: the restored model of the best epoch (5; the test curve was not measured there).
    fig = plots.learning_curves_figure(job)
    ax = fig.axes[4]
    stars = by_gid(ax.lines, "reported_test")
    expect(len(stars) == 1, f"curves: {len(stars)} reported test markers")
    close(stars[0].get_xdata(), [5], "curves: reported test epoch")
    close(stars[0].get_ydata(), [100 * test_accuracy(0, 1, 5)], "curves: reported test accuracy", atol=1e-9)
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    expect(any(t.startswith("test accuracy reported: 71.00 %") and "epoch 5" in t for t in labels),
           f"curves legend {labels}")
    # The cluster usage panel: one line per split and pooling level, the job's values.
    usage = fig.axes[6]
    expect(usage.get_title().startswith("cluster usage") and len(usage.lines) >= 4,
           f"curves: cluster usage panel {usage.get_title()!r} with {len(usage.lines)} lines")
    line = [l for l in usage.lines if l.get_label() == "validation, level 1"]
    expect(len(line) == 1, f"curves: usage lines {[l.get_label() for l in usage.lines]}")
    close(line[0].get_ydata(), job.metrics["validation_cluster_usage_level1"], "curves: validation usage, level 1")
    plots.plt.close(fig)
    # The paper protocol tests the last epoch's model.
    paper = copy.copy(job)
    paper.protocol = "paper"
    fig = plots.learning_curves_figure(paper)
    close(by_gid(fig.axes[4].lines, "reported_test")[0].get_xdata(), [6], "curves, paper protocol: the last epoch")
    plots.plt.close(fig)
    # No test result, no marker.
    untested = copy.copy(job)
    untested.result = AttrDict(job.result, test=None, has_test=False)
    fig = plots.learning_curves_figure(untested)
    expect(not by_gid(fig.axes[4].lines, "reported_test"), "curves: a test marker without a test result")
    plots.plt.close(fig)


def check_cluster_key(fig, out, level, what):
    s = out.levels[level].assignment
    cluster = np.argmax(s, axis=1)
    ax = fig.axes[0]
    nodes = by_gid(ax.collections, "nodes")[0].get_facecolor()
    keys = [legend for legend in fig.legends if legend.get_gid() == "cluster_key"]
    expect(len(keys) == 1, f"{what}: {len(keys)} cluster legends")
    texts = [t.get_text() for t in keys[0].get_texts()]
    used = sorted(set(int(c) for c in cluster))
    counts = np.bincount(cluster)
    expect(texts == [f"cluster {c}: {counts[c]} node{'s' if counts[c] != 1 else ''}" for c in used],
           f"{what}: colour key {texts}")
    for c, handle in zip(used, keys[0].legend_handles if hasattr(keys[0], "legend_handles")
                         else keys[0].legendHandles):
        colour = np.asarray(plots.matplotlib.colors.to_rgba(handle.get_markerfacecolor()))
        expect(np.allclose(nodes[cluster == c], colour), f"{what}: nodes of cluster {c} are not its key colour")
    expect(len({tuple(np.round(plots.matplotlib.colors.to_rgba(h.get_markerfacecolor()), 6))
                for h in (keys[0].legend_handles if hasattr(keys[0], "legend_handles") else keys[0].legendHandles)})
           == len(used), f"{what}: two clusters share a colour")
    legend_clear_of_axes(fig, keys[0], ax, what)


def check_graph_figures(job):
    out = job.outputs[31]
    for level in (0, 1):
        fig = plots.clusters_figure(job, out, level)
        check_cluster_key(fig, out, level, f"clusters level {level}")
        # The pooled graph is weighted: its edge opacity has a key; the input graph's edges do not.
        edge_keys = [legend for legend in fig.legends if legend.get_gid() == "edge_key"]
        expect(len(edge_keys) == (1 if level == 1 else 0), f"clusters level {level}: {len(edge_keys)} edge keys")
        plots.plt.close(fig)
        for figure, label in ((plots.assignment_figure(job, out, level), "assignment probability"),
                              (plots.pooled_adjacency_figure(job, out, level), "edge weight")):
            bars = [a for a in figure.axes if a.get_ylabel() == label]
            expect(len(figure.axes) == 2 and len(bars) == 1, f"level {level}: no colour bar '{label}'")
            plots.plt.close(figure)
    # More clusters in use than distinct colours: a colour bar of the cluster index instead.
    n, k = 90, 40
    s = np.zeros((n, k), np.float32)
    s[np.arange(n), np.arange(n) % k] = 1.0
    many = GraphOutput(graph=0, label=0, prediction=0, edges=None,
                       levels=[Level(rows=n, clusters=k, embedding_dim=1, assignment=s, pooled_adjacency=None)])
    fig = plots.clusters_figure(job, many, 0)
    expect(not [g for g in fig.legends if g.get_gid() == "cluster_key"], "40 clusters: a legend of 40 entries")
    bars = [a for a in fig.axes if a.get_gid() == "cluster_key"]
    expect(len(bars) == 1 and bars[0].get_ylabel() == "argmax cluster (index)", "40 clusters: no colour bar")
    expect(len({tuple(c) for c in by_gid(fig.axes[0].collections, "nodes")[0].get_facecolor()}) == k,
           "40 clusters: not 40 colours")
    plots.plt.close(fig)


# ---------------------------------------------------------------------------------------------
# The study figure.

SUMMARY_HEADER = ("experiment,dataset,variant,protocol,row,point,label,jobs,validation_mean_pct,validation_std_pct,"
                  "test_mean_pct,test_std_pct,paper_best_epoch,paper_accuracy_pct,paper_std_pct,accuracy_mean_pct,"
                  "accuracy_std_pct,measure,optimistic")
REPORT_HEADER = ("dataset,variant,protocol,optimistic,summarised,accuracy_mean_pct,accuracy_std_pct,measure,"
                 "jobs_completed,jobs_failed,jobs_total,ying2018_table1_pct,errica2020_mean_pct,errica2020_std_pct,"
                 "experiment,folder")


def write_study_experiment(root, name, dataset, variant, protocol, mean, std, done, total, yaml_lines):
    folder = os.path.join(root, name)
    os.makedirs(folder)
    optimistic = "yes" if protocol == "paper" else "no"
    with open(os.path.join(folder, "summary.csv"), "w") as f:
        f.write(SUMMARY_HEADER + "\n")
        f.write(f"{name},{dataset},{variant},{protocol},point,0,,{done},70,5,70,5,,,,,,,{optimistic}\n")
        f.write(f"{name},{dataset},{variant},{protocol},final,,,{done},,,,,,,,{mean},{std},\"a, measure\","
                f"{optimistic}\n")
    with open(os.path.join(folder, "report.csv"), "w") as f:
        f.write(REPORT_HEADER + "\n")
        f.write(f"{dataset},{variant},{protocol},{optimistic},yes,{mean},{std},m,{done},0,{total},,,,{name},"
                f"/x/{name}\n")
    with open(os.path.join(folder, "experiment.yaml"), "w") as f:
        f.write("# the experiment as run (overrides applied)\nname: " + name + "\n" + "\n".join(yaml_lines) + "\n")
    return folder


def check_study():
    configs = os.path.join(SOURCE_DIR, "configs")
    with tempfile.TemporaryDirectory() as root:
        # Full paper run; a per-graph paper run missing a job; the fair ENZYMES run with 100 of its
        # ready config's 3000 epochs and one learning rate of three; NCI1 (no ready config, no
        # Table 1 figure); a folder without summary.csv is not an experiment.
        write_study_experiment(root, "paper-enzymes-diffpool", "ENZYMES", "diffpool", "paper", 69.6667, 5.0185, 10, 10,
                               ["model:", "  variant: diffpool", "training:", "  epochs: 1000", "evaluation:",
                                "  protocol: paper", "  folds: 10"])
        write_study_experiment(root, "paper-proteins-diffpool-per-graph", "PROTEINS", "diffpool", "paper", 76.1, 4.4,
                               9, 10, ["model:", "  cluster_rule: per_graph", "training:", "  epochs: 1000"])
        write_study_experiment(root, "fair-enzymes-diffpool", "ENZYMES", "diffpool", "nested", 55.25, 6.5, 30, 30,
                               ["model:", "  pool_levels: 2", "training:", "  epochs: 100", "evaluation:",
                                "  protocol: nested", "  folds: 10", "  repeats: 3", "sweep:", "  mode: grid",
                                "  parameters:", "    training.learning_rate: [0.001]"])
        write_study_experiment(root, "nci1-nested", "NCI1", "diffpool", "nested", 74.5, 2.5, 30, 30,
                               ["training:", "  epochs: 50"])
        os.makedirs(os.path.join(root, "notes"))
        table = study.load_study(root, configs)
        got = [(r.experiment, r.per_graph, r.reduced) for r in table]
        expect(got == [("paper-enzymes-diffpool", False, []),
                       ("fair-enzymes-diffpool", False, ["100 of 3000 epochs",
                                                          "1 of 3 values of training.learning_rate"]),
                       ("paper-proteins-diffpool-per-graph", True, ["9 of 10 jobs"]),
                       ("nci1-nested", False, [])], f"study rows {got}")
        expect(table[0].ying == published.ying_2018("ENZYMES", "diffpool") and table[3].ying is None and
               table[3].errica == published.errica_2020("NCI1", "diffpool"), "study: published figures")
        fig = study.study_figure(table)
        ax = fig.axes[0]

        def drawn(gid):
            return [(float(l.get_xdata()[0]), float(l.get_ydata()[0]), l.get_marker(), l.get_markerfacecolor())
                    for l in by_gid(ax.lines, gid)]

        paper, fair = drawn("ours_paper"), drawn("ours_fair")
        expect([y for _, y, _, _ in paper] == [69.6667, 76.1] and [y for _, y, _, _ in fair] == [55.25, 74.5],
               f"study: ours {paper} {fair}")
        # Slots: ENZYMES diffpool full, ENZYMES diffpool reduced, PROTEINS per-graph (reduced), NCI1.
        slot = [round(x) for x, _, _, _ in paper + fair]
        expect(slot == [0, 2, 1, 3], f"study: slots {slot}")
        expect([m for _, _, m, _ in paper] == ["o", "s"], "study: per-graph runs are squares")
        hollow = [plots.matplotlib.colors.to_rgba(c) == (1, 1, 1, 1) for _, _, _, c in paper + fair]
        expect(hollow == [False, True, True, False], f"study: reduced runs hollow {hollow}")
        ying = drawn("ying")
        expect([(round(x), y) for x, y, _, _ in ying] ==
               [(0, 62.53), (1, 62.53), (2, published.ying_2018("PROTEINS", "diffpool"))], f"study: ying {ying}")
        errica = drawn("errica")
        expect([round(x) for x, _, _, _ in errica] == [0, 1, 2, 3], f"study: errica {errica}")
        # Error bars: ours +- our std, Errica et al. +- theirs (vertical segments of the errorbar collections).
        segments = [tuple(np.round(seg[:, 1], 4)) for c in ax.collections for seg in c.get_segments()
                    if len(seg) == 2 and abs(seg[0, 0] - seg[1, 0]) < 1e-9]
        for mean, std in ((69.6667, 5.0185), (55.25, 6.5), published.errica_2020("PROTEINS", "diffpool")):
            expect((round(mean - std, 4), round(mean + std, 4)) in segments, f"study: no error bar {mean} +- {std}")
        labels = [t.get_text() for t in ax.get_xticklabels()]
        expect("reduced:\n" in labels[1] and "100 of 3000 epochs" in labels[1] and "per-graph" in labels[2] and
               labels[2].endswith("reduced:\n9 of 10 jobs") and "reduced" not in labels[0], f"study: labels {labels}")
        texts = [t.get_text() for t in ax.texts]
        expect(all(d in texts for d in ("ENZYMES", "PROTEINS", "NCI1")), f"study: dataset names {texts}")
        legend_clear_of_axes(fig, ax.get_legend(), ax, "study figure")
        plots.plt.close(fig)
        # Values written above neighbouring marks never overlap: one 0.2 slots beside an earlier one at
        # about the same height is raised above it by a label's gap; one 0.4 slots away, one far
        # enough below, and one in another slot are not.
        marks = [dict(x=0.0, y=70.0, err=4.0), dict(x=0.2, y=72.5, err=1.0), dict(x=0.4, y=73.0, err=0.0),
                 dict(x=1.0, y=74.0, err=0.0), dict(x=1.2, y=80.0, err=0.0)]
        heights = study.label_heights(marks)
        expect(heights == [74.0, 74.0 + study.LABEL_GAP, 73.0, 74.0, 80.0], f"study: label heights {heights}")

        # The command: a PNG of FIGURE_PIXELS; bad input exits 2 naming file:line:column, key and value.
        png = os.path.join(root, "out", "study.png")
        expect(study.main([root, "--out", png, "--configs", configs]) == 0, "study command failed")
        with open(png, "rb") as f:
            header = f.read(24)
        expect(header[:8] == b"\x89PNG\r\n\x1a\n" and struct.unpack(">II", header[16:24]) == study.FIGURE_PIXELS,
               f"study.png: {header!r}")
        broken = os.path.join(root, "nci1-nested", "summary.csv")
        lines = open(broken).read().splitlines()
        lines[2] = lines[2].replace(",74.5,", ",74.5x,")
        open(broken, "w").write("\n".join(lines) + "\n")
        column = lines[2].index("74.5x") + 1
        try:
            study.load_study(root, configs)
            expect(False, "a value that is not a number was accepted")
        except study.StudyError as error:
            expect(str(error) == f"{broken}:3:{column}: accuracy_mean_pct: '74.5x' is not a number", str(error))
        expect(study.main([root, "--out", png]) == 2, "bad input: exit status not 2")
        open(broken, "w").write("\n".join(lines[:2]) + "\n")
        try:
            study.load_study(root, configs)
            expect(False, "a summary.csv without its final row was accepted")
        except study.StudyError as error:
            expect(str(error).startswith(f"{broken}:1:1: row: no row 'final'"), str(error))
        empty = os.path.join(root, "notes")
        expect(study.main([empty, "--out", png]) == 2 and study.main([os.path.join(root, "none"), "--out", png]) == 2,
               "a folder without experiments: exit status not 2")

    # The published results of this repository: every experiment, its figure as summary.csv says.
    folder = os.path.join(SOURCE_DIR, "results", "published")
    table = study.load_study(folder, configs)
    names = sorted(n for n in os.listdir(folder) if os.path.isfile(os.path.join(folder, n, "summary.csv")))
    expect(sorted(r.experiment for r in table) == names, f"published: {[r.experiment for r in table]} != {names}")
    for r in table:
        final = [line.split(",") for line in open(os.path.join(r.folder, "summary.csv")) if ",final," in line][0]
        expect(abs(r.mean - float(final[15])) < 1e-9 and abs(r.std - float(final[16])) < 1e-9, f"published {r}")
    plots.plt.close(study.study_figure(table))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
