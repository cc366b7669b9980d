"""Graph layouts with numpy only (no networkx): spectral start, then Fruchterman-Reingold refinement.

Both are deterministic: the same graph gives the same picture every time.
"""
import numpy as np

# Above this many nodes the O(n^2) force refinement is skipped (spectral layout only).
SPRING_MAX_NODES = 1500


def adjacency_from_edges(n, edges):
    """A dense symmetric 0/1 adjacency [n, n] from an [E, 2] array of node pairs."""
    a = np.zeros((n, n), dtype=np.float64)
    if edges is not None and len(edges):
        e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        a[e[:, 0], e[:, 1]] = 1.0
        a[e[:, 1], e[:, 0]] = 1.0
    return a


def spectral_layout(adjacency):
    """Positions [n, 2] from the 2nd and 3rd eigenvectors of the normalised Laplacian
    I - D^-1/2 A D^-1/2 (isolated nodes get degree 1 so they stay finite)."""
    a = np.asarray(adjacency, dtype=np.float64)
    n = a.shape[0]
    if n == 0:
        return np.zeros((0, 2))
    if n <= 2:
        return np.array([[0.0, 0.0], [1.0, 0.0]])[:n]
    a = 0.5 * (np.abs(a) + np.abs(a.T))
    np.fill_diagonal(a, 0.0)
    degree = a.sum(axis=1)
    degree[degree <= 0] = 1.0
    d = 1.0 / np.sqrt(degree)
    laplacian = np.eye(n) - d[:, None] * a * d[None, :]
    _, vectors = np.linalg.eigh(laplacian)
    pos = vectors[:, 1:3] * d[:, None]
    pos -= pos.mean(axis=0)
    scale = np.abs(pos).max()
    if not np.isfinite(scale) or scale < 1e-12:
        angle = 2 * np.pi * np.arange(n) / n
        return np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return pos / scale


def spring_layout(adjacency, iterations=100, initial=None):
    """Fruchterman-Reingold force layout [n, 2] in [-1, 1]^2 (weights scale the attraction), started
    from `initial` or the spectral layout, with a tiny deterministic jitter to separate coincident
    nodes."""
    a = np.asarray(adjacency, dtype=np.float64)
    n = a.shape[0]
    pos = spectral_layout(a) if initial is None else np.array(initial, dtype=np.float64)
    if n <= 2 or n > SPRING_MAX_NODES:
        return pos
    a = 0.5 * (np.abs(a) + np.abs(a.T))
    np.fill_diagonal(a, 0.0)
    rng = np.random.default_rng(0)
    pos = pos + 1e-3 * rng.standard_normal(pos.shape)
    k = 1.0 / np.sqrt(n)  # ideal distance
    temperature = 0.1
    cooling = temperature / (iterations + 1)
    for _ in range(iterations):
        delta = pos[:, None, :] - pos[None, :, :]          # [n, n, 2]
        distance = np.sqrt((delta ** 2).sum(axis=-1))      # [n, n]
        np.fill_diagonal(distance, 1.0)
        distance = np.maximum(distance, 1e-3)
        # Repulsion k^2 / d between all pairs, attraction A_ij d^2 / k along edges.
        force = (k * k / distance ** 2 - a * distance / k)[:, :, None] * delta
        displacement = force.sum(axis=1)
        length = np.maximum(np.sqrt((displacement ** 2).sum(axis=1)), 1e-9)
        pos += displacement / length[:, None] * np.minimum(length, temperature)[:, None]
        temperature -= cooling
    pos -= pos.mean(axis=0)
    scale = np.abs(pos).max()
    return pos / scale if scale > 1e-12 else pos
