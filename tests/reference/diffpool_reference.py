#!/usr/bin/python3
"""Independent PyTorch implementation of the diffpool model, used as an oracle by
tests/unit/test_reference.cpp (see README.md in this folder for the exchange format).

Usage: /usr/bin/python3 tests/reference/diffpool_reference.py [--float32] <exchange-dir> [<exchange-dir> ...]
  --float32: also repeat everything in float32 into <exchange-dir>/float32/ (a yardstick for float32 runs)

For each exchange directory it reads manifest.json (model config, batch, parameter layout, Adam
settings) and the float64 .bin files next to it, then in float64:
  1. rebuilds the model from the config (its own derivation of layers, widths, cluster counts and
     parameter names and shapes, checked against the manifest's parameter table),
  2. runs the forward pass in training mode and writes the loss parts, the logits, the graph
     embedding and the gradient of the total loss w.r.t. every parameter,
  3. runs `steps` Adam steps (torch.optim.Adam + torch.nn.utils.clip_grad_norm_) on the same
     batch and writes the loss before each step.

The model (Ying et al., NeurIPS 2018; the C++ spec is engine/nn/model.hpp/.cpp):
  level l runs an embedding GraphSAGE stack Z_l = GNN_embed(A_l, X_l) and, except at the last
  level, an assignment stack S_l = softmax(GNN_pool(A_l, X_l)); X_{l+1} = S_l^T Z_l and
  A_{l+1} = S_l^T A_l S_l per graph. One GraphSAGE-mean layer is
      y = [x | mean_{j in N(i)} x_j] W + b,  W = [W_root; W_neighbour]  ([2 in, out])
  then (hidden layers) l2-normalise, ReLU, batch norm; the last layer of an embedding stack is
  l2-normalised only, the last layer of an assignment stack gives raw logits.
  Level 0 aggregates over the sparse input graph (D^-1 A); pooled levels aggregate with the dense
  weighted A_l: (A_l x) / (rowsum(A_l) + eps) ("mean") or A_l x ("sum").
  Link prediction per graph is computed here DIRECTLY as ||A_g - S_g S_g^T||_F with dense n x n
  matrices (the C++ model uses the trace identity and never forms S S^T); entropy is
  (1/n_g) sum_i H(S_g[i, :]); both are averaged over graphs and summed over levels.
  Readouts (max / mean / sum over each graph's rows of Z_l) are concatenated and fed to an MLP
  (ReLU between layers); the classification loss is the mean cross-entropy.
"""
import json
import math
import os
import sys

import numpy as np

try:
    import torch
except ImportError as e:  # the C++ test looks for this line
    print(f"diffpool_reference: PyTorch is not importable ({e}); install python3-torch", file=sys.stderr)
    sys.exit(3)

DT = torch.float64
L2_EPS = 1e-12     # l2 normalisation: x / max(||x||, eps)
SQRT_EPS = 1e-12   # link loss: sqrt(||.||^2 + eps)
TINY = torch.finfo(DT).tiny


class SpecError(Exception):
    pass


# ---- exchange files --------------------------------------------------------------------------

def read_bin(folder, name, dtype, shape):
    a = np.fromfile(os.path.join(folder, name), dtype=dtype)
    expect = int(np.prod(shape))
    if a.size != expect:
        raise SpecError(f"{name}: {a.size} values, expected {expect} for shape {list(shape)}")
    return a.reshape(shape)


def write_bin(folder, name, values):
    np.asarray(values, dtype="<f8").tofile(os.path.join(folder, name))


# ---- the model's structure, derived from the config --------------------------------------------

class Config:
    def __init__(self, c):
        self.variant = c["variant"]
        if self.variant not in ("diffpool", "diffpool-nolp", "diffpool-det", "graphsage"):
            raise SpecError(f"variant {self.variant!r} is not implemented by the reference "
                            "(diffpool, diffpool-nolp, diffpool-det, graphsage)")
        self.pool_levels = int(c["pool_levels"])
        self.conv_layers = [int(x) for x in c["conv_layers"]]
        self.hidden_dim = int(c["hidden_dim"])
        self.embedding_dim = int(c["embedding_dim"])
        self.cluster_ratio = float(c["cluster_ratio"])
        self.clusters = [int(x) for x in c["clusters"]]
        self.readout = c["readout"]
        self.concat_layers = bool(c["concat_layers"])
        self.mlp_hidden = [int(x) for x in c["mlp_hidden"]]
        self.dropout = float(c["dropout"])
        if self.dropout != 0.0:
            raise SpecError("the reference implements dropout 0 only")
        self.batch_norm = bool(c["batch_norm"])
        # "trained": learned scale and shift; "per_batch": neither (a fresh BatchNorm1d per pass)
        self.batch_norm_mode = c.get("batch_norm_mode", "trained")
        self.l2_normalize = bool(c["l2_normalize"])
        self.link_weight = float(c["link_weight"])
        self.entropy_weight = float(c["entropy_weight"])
        self.link_norm = c["link_norm"]
        self.dense_aggregation = c["dense_aggregation"]
        self.dense_degree_eps = float(c["dense_degree_eps"])
        self.batch_norm_eps = float(c["batch_norm_eps"])
        # "largest_graph": one k per level for every graph; "per_graph": graph g of n rows at level l
        # gets max(1, ceil(ratio * n)) clusters, capped by `clusters` when given.
        self.cluster_rule = c.get("cluster_rule", "largest_graph")
        if self.cluster_rule not in ("largest_graph", "per_graph"):
            raise SpecError(f"cluster_rule {self.cluster_rule!r}")

    def has_pooling(self):
        return self.variant != "graphsage" and self.pool_levels > 0

    def learned_assignments(self):
        return self.variant in ("diffpool", "diffpool-nolp")

    def conv_layers_at(self, level):
        if not self.conv_layers:
            return 1
        return self.conv_layers[min(level, len(self.conv_layers) - 1)]

    def clusters_for(self, level, rows):
        """per_graph: max(1, ceil(ratio * rows)), capped by clusters[level]. The ratio times rows is
        rounded to 12 significant digits first, so 0.1 * 30 (3.0000000000000004) counts as 3."""
        k = max(1, int(math.ceil(round(self.cluster_ratio * rows, 12))))
        if self.clusters:
            k = min(k, self.clusters[min(level, len(self.clusters) - 1)])
        return k

    def cluster_counts(self, max_nodes):
        """k_1 = floor(ratio * largest graph), k_{l+1} = floor(ratio * k_l), at least 1; per_graph:
        the counts of the largest graph, the widest each level needs."""
        if not self.has_pooling():
            return []
        if self.cluster_rule == "per_graph":
            out, rows = [], max_nodes
            for l in range(self.pool_levels):
                rows = self.clusters_for(l, rows)
                out.append(rows)
            return out
        if self.clusters:
            return [self.clusters[min(l, len(self.clusters) - 1)] for l in range(self.pool_levels)]
        out, previous = [], float(max_nodes)
        for _ in range(self.pool_levels):
            k = max(1, int(math.floor(previous * self.cluster_ratio)))
            out.append(k)
            previous = float(k)
        return out


class Layer:
    def __init__(self, prefix, fan_in, fan_out, normalize, activation, batch_norm):
        self.prefix, self.fan_in, self.fan_out = prefix, fan_in, fan_out
        self.normalize, self.activation, self.batch_norm = normalize, activation, batch_norm


class Structure:
    """Levels, stacks and parameter shapes of the model, in registration order."""

    def __init__(self, cfg, in_features, num_classes, max_nodes):
        self.cfg = cfg
        self.clusters = cfg.cluster_counts(max_nodes)
        self.params = []  # (name, shape)
        num_levels = cfg.pool_levels + 1 if cfg.has_pooling() else 1
        self.levels = []  # (embed layers, assign layers or None, pools, embed output width)
        width, readout_width = in_features, 0
        for l in range(num_levels):
            layers = cfg.conv_layers_at(l)
            if not cfg.has_pooling():  # the GraphSAGE baseline stacks every level's layers
                layers = sum(cfg.conv_layers_at(i) for i in range(max(0, cfg.pool_levels) + 1))
            embed, embed_width = self._stack(f"level{l}.embed", width, cfg.embedding_dim, layers, True)
            assign, pools = None, l < num_levels - 1
            if pools and cfg.learned_assignments():
                assign, _ = self._stack(f"level{l}.assign", width, self.clusters[l], layers, False)
            self.levels.append((embed, assign, pools, embed_width))
            width = embed_width
            readout_width += width
        self.mlp = []
        fan_in = readout_width
        for i, fan_out in enumerate(cfg.mlp_hidden + [num_classes]):
            self.params.append((f"mlp.layer{i}.weight", (fan_in, fan_out)))
            self.params.append((f"mlp.layer{i}.bias", (fan_out,)))
            self.mlp.append(f"mlp.layer{i}")
            fan_in = fan_out

    def _stack(self, name, fan_in, out, layers, embedding):
        cfg, result, widths = self.cfg, [], []
        for i in range(layers):
            last = i == layers - 1
            layer = Layer(f"{name}.layer{i}", fan_in, out if last else cfg.hidden_dim,
                          normalize=cfg.l2_normalize and (embedding or not last),
                          activation=not last, batch_norm=cfg.batch_norm and not last)
            self.params.append((layer.prefix + ".weight", (2 * layer.fan_in, layer.fan_out)))
            self.params.append((layer.prefix + ".bias", (layer.fan_out,)))
            if layer.batch_norm and cfg.batch_norm_mode == "trained":
                self.params.append((layer.prefix + ".bn.gamma", (layer.fan_out,)))
                self.params.append((layer.prefix + ".bn.beta", (layer.fan_out,)))
            result.append(layer)
            widths.append(layer.fan_out)
            fan_in = layer.fan_out
        width = sum(widths) if (cfg.concat_layers and embedding) else widths[-1]
        return result, width


# ---- the batch -------------------------------------------------------------------------------

class Batch:
    def __init__(self, features, edges, node_offsets, labels):
        self.x = torch.tensor(features, dtype=DT)                # [N, F]
        self.offsets = [int(o) for o in node_offsets]            # [B + 1]
        self.labels = torch.tensor(labels, dtype=torch.int64)    # [B]
        n = self.offsets[-1]
        self.rows = torch.tensor(edges[:, 0], dtype=torch.int64)  # A[row, col] = 1
        self.cols = torch.tensor(edges[:, 1], dtype=torch.int64)
        degree = torch.zeros(n, dtype=DT).index_add(0, self.rows, torch.ones(len(edges), dtype=DT))
        self.inv_degree = torch.where(degree > 0, 1.0 / degree.clamp(min=1.0), torch.zeros_like(degree))
        # Dense adjacency of every graph (small graphs: this is the direct, independent route).
        self.dense = []
        for g in range(self.num_graphs):
            lo, hi = self.offsets[g], self.offsets[g + 1]
            a = torch.zeros(hi - lo, hi - lo, dtype=DT)
            mask = (self.rows >= lo) & (self.rows < hi)
            if bool(((self.cols[mask] < lo) | (self.cols[mask] >= hi)).any()):
                raise SpecError(f"batch graph {g}: an edge leaves the graph")
            a[self.rows[mask] - lo, self.cols[mask] - lo] = 1.0
            self.dense.append(a)

    @property
    def num_graphs(self):
        return len(self.offsets) - 1

    def mean_neighbours(self, x):
        """Row i: mean of x over the neighbours of node i (0 for an isolated node)."""
        summed = torch.zeros_like(x).index_add(0, self.rows, x[self.cols])
        return summed * self.inv_degree[:, None]


# ---- forward ---------------------------------------------------------------------------------

def l2_normalize(y):
    return y / torch.linalg.vector_norm(y, dim=1, keepdim=True).clamp(min=L2_EPS)


def batch_norm_train(y, gamma, beta, eps):
    mean = y.mean(dim=0)
    var = ((y - mean) ** 2).mean(dim=0)  # biased, as in training mode
    return (y - mean) / torch.sqrt(var + eps) * gamma + beta


def readout(z, offsets, kind):
    out = []
    for g in range(len(offsets) - 1):
        zg = z[offsets[g]:offsets[g + 1]]
        if kind == "max":
            # First maximal row per column (ties go to the lowest row, as in the C++ op).
            first = torch.argmax((zg == zg.max(dim=0, keepdim=True).values).to(torch.int64), dim=0)
            out.append(zg.gather(0, first[None, :])[0])
        elif kind == "mean":
            out.append(zg.mean(dim=0))
        elif kind == "sum":
            out.append(zg.sum(dim=0))
        else:
            raise SpecError(f"readout {kind!r}")
    return torch.stack(out)


def forward(structure, params, batch, fixed_assignments=None):
    """fixed_assignments: DIFFPOOL-DET's one-hot S per level ([rows_l, k_{l+1}]), else None."""
    cfg = structure.cfg
    B = batch.num_graphs

    def sage_stack(layers, x, aggregate, embedding):
        outputs = []
        for layer in layers:
            h = torch.cat([x, aggregate(x)], dim=1)
            y = h @ params[layer.prefix + ".weight"] + params[layer.prefix + ".bias"]
            if layer.normalize:
                y = l2_normalize(y)
            if layer.activation:
                y = torch.relu(y)
            if layer.batch_norm and cfg.batch_norm_mode == "trained":
                y = batch_norm_train(y, params[layer.prefix + ".bn.gamma"], params[layer.prefix + ".bn.beta"],
                                     cfg.batch_norm_eps)
            elif layer.batch_norm:
                y = batch_norm_train(y, 1.0, 0.0, cfg.batch_norm_eps)
            outputs.append(y)
            x = y
        return torch.cat(outputs, dim=1) if (cfg.concat_layers and embedding) else x

    # Level 0: the sparse input graphs, rows of graph g at offsets[g]:offsets[g+1].
    x = batch.x
    offsets = batch.offsets
    adjacency = batch.dense          # list of per-graph dense A_l
    aggregate = batch.mean_neighbours
    readouts, link_losses, entropy_losses = [], [], []
    for l, (embed, assign, pools, _) in enumerate(structure.levels):
        z = sage_stack(embed, x, aggregate, True)
        readouts.append(readout(z, offsets, cfg.readout))
        if not pools:
            continue
        per_graph = cfg.cluster_rule == "per_graph"
        if assign is not None:
            logits = sage_stack(assign, x, aggregate, False)
            if per_graph:  # graph g: the softmax over its own first k_g columns
                ks = [cfg.clusters_for(l, offsets[g + 1] - offsets[g]) for g in range(B)]
                s = [torch.softmax(logits[offsets[g]:offsets[g + 1], :ks[g]], dim=1) for g in range(B)]
            else:
                s = torch.softmax(logits, dim=1)
        else:  # DIFFPOOL-DET: fixed Graclus assignments, computed by the C++ side
            if per_graph:
                raise SpecError("the reference implements diffpool-det with largest_graph clusters only")
            s = fixed_assignments[l]
        k = structure.clusters[l]
        if not per_graph and s.shape[1] != k:
            raise SpecError(f"level {l}: assignment has {s.shape[1]} columns for {k} clusters")
        next_x, next_a, links, entropies = [], [], [], []
        bce_sum, bce_pairs = 0.0, 0
        for g in range(B):
            sg = s[g] if per_graph else s[offsets[g]:offsets[g + 1]]
            zg, ag = z[offsets[g]:offsets[g + 1]], adjacency[g]
            n = sg.shape[0]
            next_x.append(sg.T @ zg)        # X' = S^T Z   (paper eq. 3)
            next_a.append(sg.T @ ag @ sg)   # A' = S^T A S (paper eq. 4)
            residual = ag - sg @ sg.T       # dense n x n: the direct link-prediction loss
            sq = (residual * residual).sum()
            if cfg.link_norm == "frobenius_squared":
                links.append(sq)
            elif cfg.link_norm == "frobenius":
                links.append(torch.sqrt(sq + SQRT_EPS))
            elif cfg.link_norm == "per_entry":
                links.append(torch.sqrt(sq + SQRT_EPS) / (n * n))
            elif cfg.link_norm == "bce":
                # The authors' code: binary cross-entropy between A and min(S S^T, 1), eps 1e-7,
                # summed over the batch's node pairs and divided by their number; level 0 only.
                if l == 0:
                    p = torch.clamp(sg @ sg.T, max=1.0)
                    bce_sum = bce_sum - (ag * torch.log(p + 1e-7) + (1 - ag) * torch.log(1 - p + 1e-7)).sum()
                    bce_pairs += n * n
            else:
                raise SpecError(f"link_norm {cfg.link_norm!r}")
            # H(S_i) = -sum_j S_ij log S_ij (0 log 0 = 0), averaged over the graph's nodes. The
            # clamp keeps the derivative finite where the softmax underflows to exactly 0 (xlogy's
            # backward would give 0/0 there).
            entropies.append(-(sg * torch.log(sg.clamp(min=TINY))).sum(dim=1).mean())
        if cfg.link_norm == "bce":
            if l == 0:
                link_losses.append(bce_sum / bce_pairs)
        else:
            link_losses.append(torch.stack(links).mean())
        entropy_losses.append(torch.stack(entropies).mean())

        # The next level: every graph has exactly k rows (or its own k_g); dense weighted adjacency.
        x = torch.cat(next_x, dim=0)
        adjacency = next_a
        if per_graph:
            offsets = [0]
            for g in range(B):
                offsets.append(offsets[-1] + next_a[g].shape[0])

            def ragged_aggregate(v, a=next_a, off=offsets):
                parts = []
                for g in range(B):
                    av = a[g] @ v[off[g]:off[g + 1]]
                    if cfg.dense_aggregation == "mean":
                        av = av / (a[g].sum(dim=1, keepdim=True) + cfg.dense_degree_eps)
                    parts.append(av)
                return torch.cat(parts, dim=0)
            aggregate = ragged_aggregate
            continue
        offsets = [g * k for g in range(B + 1)]
        stacked = torch.stack(next_a)  # [B, k, k]

        def dense_aggregate(v, a=stacked, k=k):
            av = torch.bmm(a, v.reshape(B, k, -1))
            if cfg.dense_aggregation == "mean":
                av = av / (a.sum(dim=2, keepdim=True) + cfg.dense_degree_eps)
            elif cfg.dense_aggregation != "sum":
                raise SpecError(f"dense_aggregation {cfg.dense_aggregation!r}")
            return av.reshape(B * k, -1)
        aggregate = dense_aggregate

    h = torch.cat(readouts, dim=1)
    graph_embedding = h
    for i, name in enumerate(structure.mlp):
        h = h @ params[name + ".weight"] + params[name + ".bias"]
        if i + 1 < len(structure.mlp):
            h = torch.relu(h)
    logits = h
    classification = torch.nn.functional.cross_entropy(logits, batch.labels)
    total = classification
    link = torch.stack(link_losses).sum() if link_losses else None
    entropy = torch.stack(entropy_losses).sum() if entropy_losses else None
    if link is not None and cfg.variant == "diffpool" and cfg.link_weight > 0:
        total = total + cfg.link_weight * link
    if entropy is not None and cfg.learned_assignments() and cfg.entropy_weight > 0:
        total = total + cfg.entropy_weight * entropy
    return dict(total=total, classification=classification, link=link, entropy=entropy,
                level_link=link_losses, level_entropy=entropy_losses, logits=logits,
                graph_embedding=graph_embedding)


# ---- optional: the batch rebuilt from the raw TU files ----------------------------------------

def check_against_tu_files(manifest, features, edges, node_offsets, labels):
    """Rebuilds the exported batch from the TU text files with tu_files.py and compares."""
    ds = manifest.get("dataset")
    if not ds or not ds.get("data_dir"):
        return None
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from tu_files import TUDataset
    tu = TUDataset(ds["data_dir"], ds["name"])
    problems = []
    if tu.max_nodes != manifest["max_nodes"]:
        problems.append(f"largest graph: TU files {tu.max_nodes}, C++ {manifest['max_nodes']}")
    if tu.num_features != features.shape[1]:
        problems.append(f"feature width: TU files {tu.num_features}, C++ {features.shape[1]}")
        return problems
    for b, gid in enumerate(manifest["batch"]["graph_ids"]):
        f, e, label = tu.graph(gid)
        lo, hi = node_offsets[b], node_offsets[b + 1]
        if f.shape[0] != hi - lo:
            problems.append(f"graph {gid}: {f.shape[0]} nodes in the TU files, {hi - lo} in the batch")
            continue
        if label != labels[b]:
            problems.append(f"graph {gid}: label {label} in the TU files, {labels[b]} in the batch")
        worst = float(np.max(np.abs(f.astype(np.float64) - features[lo:hi]) / np.maximum(1.0, np.abs(features[lo:hi]))))
        if worst > 1e-6:
            problems.append(f"graph {gid}: features differ by {worst:.3g} (relative)")
        mask = (edges[:, 0] >= lo) & (edges[:, 0] < hi)
        mine = {(int(u), int(v)) for u, v in e}
        theirs = {(int(u) - lo, int(v) - lo) for u, v in edges[mask]}
        if mine != theirs:
            problems.append(f"graph {gid}: {len(mine ^ theirs)} edges differ between the TU files and the batch")
    return problems


# ---- one exchange directory ------------------------------------------------------------------

def run(folder, out):
    """Reads the exchange folder, writes the results into `out` (the folder itself, or its float32/)."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    cfg = Config(manifest["config"])
    structure = Structure(cfg, manifest["in_features"], manifest["num_classes"], manifest["max_nodes"])
    if structure.clusters != list(manifest.get("cluster_counts", structure.clusters)):
        raise SpecError(f"cluster counts: reference {structure.clusters}, C++ {manifest['cluster_counts']}")

    # Parameters: the reference's own names and shapes must be exactly the manifest's.
    table = manifest["parameters"]
    entries = {e["name"]: e for e in table["entries"]}
    mine = {name: tuple(shape) for name, shape in structure.params}
    theirs = {name: tuple(e["shape"]) for name, e in entries.items()}
    if mine != theirs:
        missing = sorted(set(mine) - set(theirs))
        extra = sorted(set(theirs) - set(mine))
        shapes = sorted(n for n in set(mine) & set(theirs) if mine[n] != theirs[n])
        raise SpecError(f"parameter table differs: missing in C++ {missing}, not in the reference {extra}, "
                        f"shape differs {[(n, mine[n], theirs[n]) for n in shapes]}")
    arena_size = int(table["size"])
    arena = read_bin(folder, table["file"], "<f8", (arena_size,))
    params = {}
    for name, shape in structure.params:
        off = int(entries[name]["offset"])
        count = int(np.prod(shape))
        params[name] = torch.tensor(arena[off:off + count].reshape(shape), dtype=DT, requires_grad=True)

    bm = manifest["batch"]
    node_offsets = np.array(bm["node_offsets"], dtype=np.int64)
    labels = np.array(bm["labels"], dtype=np.int64)
    n = int(node_offsets[-1])
    features = read_bin(folder, bm["features"], "<f8", (n, manifest["in_features"]))
    edges = read_bin(folder, bm["edges"], "<i8", (int(bm["num_edges"]), 2))
    tu_problems = (check_against_tu_files(manifest, features, edges, node_offsets, labels)
                   if DT == torch.float64 else None)
    batch = Batch(features, edges, node_offsets, labels)
    fixed = None
    if cfg.variant == "diffpool-det":
        files = bm.get("fixed_assignments", [])
        if len(files) != len(structure.clusters):
            raise SpecError(f"diffpool-det needs {len(structure.clusters)} fixed assignment files, got {files}")
        fixed, rows = [], n
        for level, (name, k) in enumerate(zip(files, structure.clusters)):
            onehot = read_bin(folder, name, "<f8", (rows, k))
            if not np.all(onehot.sum(axis=1) == 1.0) or not np.all((onehot == 0) | (onehot == 1)):
                raise SpecError(f"{name}: level {level} assignment is not one-hot per row")
            fixed.append(torch.tensor(onehot, dtype=DT))
            rows = len(labels) * k

    # Forward, backward and the Adam steps: the loss before each step; the gradient of the first.
    opt = manifest["optimizer"]
    ordered = [params[name] for name, _ in structure.params]
    adam = torch.optim.Adam(ordered, lr=opt["learning_rate"], betas=(opt["beta1"], opt["beta2"]), eps=opt["eps"],
                            weight_decay=opt["weight_decay"])
    steps = int(opt["steps"])
    train_losses, first = [], None
    for step in range(max(steps, 1)):
        adam.zero_grad(set_to_none=False)
        fwd = forward(structure, params, batch, fixed)
        fwd["total"].backward()
        train_losses.append(float(fwd["total"].detach()))
        if step == 0:
            first = fwd
            gradients = np.zeros(arena_size)
            for name, shape in structure.params:
                off = int(entries[name]["offset"])
                gradients[off:off + int(np.prod(shape))] = params[name].grad.detach().numpy().ravel()
            grad_norm = float(np.linalg.norm(gradients))
        if step >= steps:
            break
        if opt["clip_norm"] > 0:
            torch.nn.utils.clip_grad_norm_(ordered, opt["clip_norm"])
        adam.step()
    train_losses = train_losses[:steps]

    def value(t):
        return float("nan") if t is None else float(t.detach())

    write_bin(out, "loss_parts.bin", [value(first["classification"]), value(first["link"]),
                                         value(first["entropy"]), value(first["total"])])
    write_bin(out, "level_losses.bin", [[value(a), value(b)] for a, b in
                                           zip(first["level_link"], first["level_entropy"])])
    write_bin(out, "gradients.bin", gradients)
    write_bin(out, "logits.bin", first["logits"].detach().numpy())
    write_bin(out, "graph_embedding.bin", first["graph_embedding"].detach().numpy())
    write_bin(out, "train_losses.bin", train_losses)
    result = {
        "status": "ok",
        "torch_version": torch.__version__,
        "dtype": str(DT).replace("torch.", ""),
        "cluster_counts": structure.clusters,
        "parameters": len(structure.params),
        "gradient_norm": grad_norm,
        "levels_pooled": len(first["level_link"]),
        "steps": len(train_losses),
        "tu_check": "skipped" if tu_problems is None else ("ok" if not tu_problems else "failed"),
        "tu_problems": tu_problems or [],
        "files": ["loss_parts.bin", "level_losses.bin", "gradients.bin", "logits.bin", "graph_embedding.bin",
                  "train_losses.bin"],
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(result, f, indent=1)
    return result


def set_dtype(dtype):
    global DT, TINY
    DT = dtype
    TINY = torch.finfo(DT).tiny


def main(argv):
    flags = [a for a in argv[1:] if a.startswith("--")]
    folders = [a for a in argv[1:] if not a.startswith("--")]
    if not folders or any(f not in ("--float32",) for f in flags):
        print(__doc__, file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    torch.manual_seed(0)
    status = 0
    for folder in folders:
        # float64 is the reference. With --float32 the whole computation (parameters, Adam state,
        # arithmetic) is repeated in float32 into <folder>/float32/: the yardstick for how far any
        # float32 implementation lands from the float64 result on this problem.
        runs = [(torch.float64, folder)] + ([(torch.float32, os.path.join(folder, "float32"))] if flags else [])
        for dtype, out in runs:
            set_dtype(dtype)
            try:
                r = run(folder, out)
                print(f"{out}: {r['dtype']} ok, clusters {r['cluster_counts']}, {r['parameters']} parameter tensors, "
                      f"{r['steps']} Adam steps, TU check {r['tu_check']}")
            except (SpecError, KeyError, ValueError, FileNotFoundError) as e:
                print(f"diffpool_reference: {out}: {type(e).__name__}: {e}", file=sys.stderr)
                os.makedirs(out, exist_ok=True)
                with open(os.path.join(out, "results.json"), "w") as f:
                    json.dump({"status": "error", "message": f"{type(e).__name__}: {e}"}, f)
                status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
