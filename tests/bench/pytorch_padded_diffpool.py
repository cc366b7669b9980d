#!/usr/bin/python3
"""Benchmark: DiffPool in PyTorch the usual padded-dense way, for comparison with the C++ engine.

Every batch is padded to its largest graph: features [B, n_max, F], dense adjacency
[B, n_max, n_max] and a node mask [B, n_max], as PyTorch Geometric's dense_diff_pool examples do
(this file is written from the paper and engine/nn/model.hpp, not from those examples, and needs
no torch_geometric). The model is the engine's DiffPool with the paper's ENZYMES setup:
  - GraphSAGE-mean layers y = [x | mean of neighbours] W + b, then l2-normalise, ReLU and batch
    norm (statistics over real nodes only) on hidden layers; 2 layers before pooling and 3 after;
  - one DiffPool level, k = floor(0.1 * largest graph of the dataset) clusters, S = softmax of a
    separate GraphSAGE stack, X' = S^T Z, A' = S^T A S; pooled level aggregates by (A' x) / rowsum;
  - link-prediction ||A - S S^T||_F and entropy losses (weight 1 each), max readout per level,
    concatenated, MLP with 50 hidden units, cross-entropy;
  - hidden/embedding 30, batch 20, Adam lr 1e-3, gradient-norm clipping 2.0, float32.
It trains on a random 90% split (seeded) and prints seconds per training epoch: the median over
`--epochs` timed epochs that follow one untimed warm-up epoch. The last line is machine-readable:
    pytorch_padded seconds_per_epoch=0.412 epochs=5 dataset=ENZYMES threads=1 ...

Usage: /usr/bin/python3 tests/bench/pytorch_padded_diffpool.py [--data-dir DIR] [--epochs N]
       [--dataset NAME] [--threads T] [--seed S] [--batch-size B] [--device cpu|cuda]
       [--check-against EXCHANGE_DIR]
"""
import argparse
import math
import os
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from tu_files import TUDataset  # noqa: E402  (plain-numpy TU reader shared with the reference test)

HIDDEN = 30
EMBEDDING = 30
CLUSTER_RATIO = 0.1
MLP_HIDDEN = 50
LR = 1e-3
CLIP = 2.0
BN_EPS = 1e-5
DEGREE_EPS = 1e-6


# ---- padded batches ----------------------------------------------------------------------------

def padded_batch(ds, ids):
    """x [B, n, F], adjacency [B, n, n], mask [B, n], labels [B]; n = the batch's largest graph."""
    n_max = max(ds.num_nodes(g) for g in ids)
    b = len(ids)
    x = np.zeros((b, n_max, ds.num_features), dtype=np.float32)
    a = np.zeros((b, n_max, n_max), dtype=np.float32)
    mask = np.zeros((b, n_max), dtype=np.float32)
    labels = np.zeros(b, dtype=np.int64)
    for i, g in enumerate(ids):
        f, e, label = ds.graph(g)
        n = f.shape[0]
        x[i, :n] = f
        a[i, e[:, 0], e[:, 1]] = 1.0
        mask[i, :n] = 1.0
        labels[i] = label
    return torch.from_numpy(x), torch.from_numpy(a), torch.from_numpy(mask), torch.from_numpy(labels)


# ---- model -------------------------------------------------------------------------------------

class DenseSage(torch.nn.Module):
    """y = [x | (A x) / rowsum(A)] W + b on padded batches; optional l2, ReLU, masked batch norm."""

    def __init__(self, fan_in, fan_out, normalize, activation, batch_norm):
        super().__init__()
        bound = math.sqrt(2.0) * math.sqrt(6.0 / (2 * fan_in + fan_out))  # Glorot, ReLU gain
        self.weight = torch.nn.Parameter(torch.empty(2 * fan_in, fan_out).uniform_(-bound, bound))
        self.bias = torch.nn.Parameter(torch.zeros(fan_out))
        self.normalize, self.activation, self.batch_norm = normalize, activation, batch_norm
        if batch_norm:
            self.gamma = torch.nn.Parameter(torch.ones(fan_out))
            self.beta = torch.nn.Parameter(torch.zeros(fan_out))

    def forward(self, x, a, degree, mask):
        # x [B, n, F], a [B, n, n], degree [B, n, 1] (0 -> no neighbours), mask [B, n, 1]
        neighbours = torch.bmm(a, x) / degree
        y = torch.cat([x, neighbours], dim=-1) @ self.weight + self.bias
        if self.normalize:
            y = y / torch.linalg.vector_norm(y, dim=-1, keepdim=True).clamp(min=1e-12)
        if self.activation:
            y = torch.relu(y)
        if self.batch_norm:  # batch statistics over the real nodes only (training mode)
            count = mask.sum()
            mean = (y * mask).sum(dim=(0, 1)) / count
            var = (((y - mean) * mask) ** 2).sum(dim=(0, 1)) / count
            y = (y - mean) / torch.sqrt(var + BN_EPS) * self.gamma + self.beta
        return y * mask  # padding rows stay zero


class Stack(torch.nn.Module):
    def __init__(self, fan_in, out, layers, embedding):
        super().__init__()
        mods = []
        for i in range(layers):
            last = i == layers - 1
            mods.append(DenseSage(fan_in, out if last else HIDDEN, normalize=embedding or not last,
                                  activation=not last, batch_norm=not last))
            fan_in = out if last else HIDDEN
        self.layers = torch.nn.ModuleList(mods)

    def forward(self, x, a, degree, mask):
        for layer in self.layers:
            x = layer(x, a, degree, mask)
        return x


class PaddedDiffPool(torch.nn.Module):
    def __init__(self, in_features, num_classes, clusters):
        super().__init__()
        self.embed0 = Stack(in_features, EMBEDDING, 2, True)
        self.assign0 = Stack(in_features, clusters, 2, False)
        self.embed1 = Stack(EMBEDDING, EMBEDDING, 3, True)
        self.mlp0 = torch.nn.Linear(2 * EMBEDDING, MLP_HIDDEN)
        self.mlp1 = torch.nn.Linear(MLP_HIDDEN, num_classes)

    def forward(self, x, a, mask):
        m = mask.unsqueeze(-1)                               # [B, n, 1]
        rowsum = a.sum(dim=-1, keepdim=True)
        degree = torch.where(rowsum > 0, rowsum, torch.ones_like(rowsum))
        z = self.embed0(x, a, degree, m)                     # [B, n, D]
        s = torch.softmax(self.assign0(x, a, degree, m), dim=-1) * m   # [B, n, k], padding rows 0
        readout0 = z.masked_fill(m == 0, float("-inf")).max(dim=1).values
        nodes = mask.sum(dim=1)                              # [B]
        # Link prediction ||A - S S^T||_F per graph (padding contributes 0) and entropy.
        link = torch.linalg.matrix_norm(a - s @ s.transpose(1, 2)).mean()
        entropy = (-(s * torch.log(s.clamp(min=1e-30))).sum(dim=-1).sum(dim=1) / nodes).mean()
        x1 = s.transpose(1, 2) @ z                           # [B, k, D]
        a1 = s.transpose(1, 2) @ a @ s                       # [B, k, k]
        k = torch.ones(x1.shape[0], x1.shape[1], 1, device=x1.device)
        z1 = self.embed1(x1, a1, a1.sum(dim=-1, keepdim=True) + DEGREE_EPS, k)
        readout1 = z1.max(dim=1).values
        h = torch.relu(self.mlp0(torch.cat([readout0, readout1], dim=-1)))
        return self.mlp1(h), link, entropy


# ---- optional: the same model as the engine (weights from a reference exchange folder) -----------

def check_against_reference(folder, ds):
    """Loads the weights and batch of a tests/reference exchange folder (the diffpool_1level case of
    test_reference) into this padded model and compares its float64 losses with the reference's."""
    import json
    with open(os.path.join(folder, "manifest.json")) as f:
        m = json.load(f)
    c = m["config"]
    expected = dict(variant="diffpool", pool_levels=1, hidden_dim=HIDDEN, embedding_dim=EMBEDDING,
                    readout="max", concat_layers=False, mlp_hidden=[MLP_HIDDEN], batch_norm=True, l2_normalize=True,
                    link_norm="frobenius", dense_aggregation="mean")
    for key, value in expected.items():
        if c[key] != value:
            raise SystemExit(f"{folder}: config {key} = {c[key]!r}, the benchmark model has {value!r}")
    torch.set_default_dtype(torch.float64)
    model = PaddedDiffPool(ds.num_features, ds.num_classes, m["cluster_counts"][0])
    arena = np.fromfile(os.path.join(folder, m["parameters"]["file"]), dtype="<f8")
    mine = dict(model.named_parameters())
    rename = {"level0.embed": "embed0", "level0.assign": "assign0", "level1.embed": "embed1"}
    with torch.no_grad():
        for e in m["parameters"]["entries"]:
            name, shape = e["name"], tuple(e["shape"])
            value = torch.from_numpy(arena[e["offset"]:e["offset"] + int(np.prod(shape))].reshape(shape).copy())
            if name.startswith("mlp."):
                layer, field = name.split(".")[1:]
                target = f"mlp{layer[-1]}.{field}"
                value = value.T if field == "weight" else value  # nn.Linear stores [out, in]
            else:
                parts = name.split(".")
                stack, layer, field = ".".join(parts[:2]), parts[2], parts[-1]
                target = f"{rename[stack]}.layers.{layer[5:]}.{field}"
            mine.pop(target).copy_(value)
    if mine:
        raise SystemExit(f"parameters without a value in {folder}: {sorted(mine)}")
    x, a, mask, labels = padded_batch(ds, m["batch"]["graph_ids"])
    logits, link, entropy = model(x.double(), a.double(), mask.double())
    classification = torch.nn.functional.cross_entropy(logits, labels)
    ours = [float(classification), float(link), float(entropy), float(classification + link + entropy)]
    theirs = np.fromfile(os.path.join(folder, "loss_parts.bin"))
    worst = max(abs(o - t) / abs(t) for o, t in zip(ours, theirs))
    print(f"padded model vs reference losses (classification, link, entropy, total): {ours} vs {list(theirs)}; "
          f"worst relative difference {worst:.2e}")
    torch.set_default_dtype(torch.float32)
    if worst > 1e-10:
        raise SystemExit("the padded benchmark model differs from the reference model")


# ---- training ----------------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.environ.get("DIFFPOOL_DATA", "/work/shared/datasets"))
    parser.add_argument("--dataset", default="ENZYMES")
    parser.add_argument("--epochs", type=int, default=5, help="timed epochs (after one warm-up epoch)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device: cpu, or cuda on a GPU machine")
    parser.add_argument("--check-against", metavar="EXCHANGE_DIR",
                        help="first check that this padded model computes the reference's losses for the weights "
                             "and batch of a test_reference exchange folder (e.g. build/reference_exchange/diffpool_1level)")
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error("--epochs must be at least 1")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    ds = TUDataset(args.data_dir, args.dataset)
    load_s = time.perf_counter() - t0
    if args.check_against:
        check_against_reference(args.check_against, ds)
    clusters = max(1, int(math.floor(ds.max_nodes * CLUSTER_RATIO)))
    order = rng.permutation(ds.num_graphs)
    train = order[: int(round(0.9 * ds.num_graphs))]
    device = torch.device(args.device)
    model = PaddedDiffPool(ds.num_features, ds.num_classes, clusters).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    print(f"{args.dataset}: {ds.num_graphs} graphs, largest {ds.max_nodes} nodes, {ds.num_features} features, "
          f"{ds.num_classes} classes; {len(train)} training graphs, batch {args.batch_size}, {clusters} clusters, "
          f"{sum(p.numel() for p in model.parameters())} parameters, device {device}, {args.threads} thread(s); "
          f"read in {load_s:.2f} s", flush=True)

    times = []
    for epoch in range(args.epochs + 1):
        perm = rng.permutation(train)
        start = time.perf_counter()
        total, correct, padded_rows, real_rows = 0.0, 0, 0, 0
        for i in range(0, len(perm), args.batch_size):
            ids = perm[i:i + args.batch_size]
            x, a, mask, labels = padded_batch(ds, ids)  # batch building and the copy to the device count
            x, a, mask, labels = x.to(device), a.to(device), mask.to(device), labels.to(device)
            padded_rows += mask.numel()
            real_rows += int(mask.sum())
            optimizer.zero_grad()
            logits, link, entropy = model(x, a, mask)
            loss = torch.nn.functional.cross_entropy(logits, labels) + link + entropy
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            optimizer.step()
            # Accumulated on the device: no synchronisation per step on a GPU.
            total = total + loss.detach() * len(ids)
            correct = correct + (logits.argmax(dim=1) == labels).sum()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if epoch > 0:
            times.append(seconds)
        print(f"epoch {epoch}{' (warm-up)' if epoch == 0 else ''}: {seconds:.3f} s, loss {float(total) / len(perm):.4f}, "
              f"train accuracy {int(correct) / len(perm):.3f}, padding {1 - real_rows / padded_rows:.1%} of node rows",
              flush=True)
    print(f"pytorch_padded seconds_per_epoch={statistics.median(times):.4f} epochs={len(times)} "
          f"dataset={args.dataset} device={device} threads={args.threads} batch_size={args.batch_size} clusters={clusters} "
          f"torch={torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
