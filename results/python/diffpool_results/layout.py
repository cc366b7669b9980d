"""Graph layouts with numpy only (no networkx): spectral start, then Fruchterman-Reingold refinement.

Both are deterministic: the same graph gives the same picture every time.
"""
import numpy as np

# Above this many nodes the O(n^2) force refinement is skipped (spectral layout only; about 2 s
# at this size on one slow core).
SPRING_MAX_NODES = 600
SPRING_ITERATIONS = 60


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


def spring_layout(adjacency, iterations=SPRING_ITERATIONS, initial=None):
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


def layout_from_edges(n, edges):
    """Positions [n, 2] of a graph given as an [E, 2] edge list: the spring layout up to
    SPRING_MAX_NODES nodes, above that the spectral layout, computed sparse with scipy when it is
    installed (Debian's python3-scipy), else dense."""
    if n <= SPRING_MAX_NODES:
        return spring_layout(adjacency_from_edges(n, edges))
    try:
        import scipy.sparse as sp
        from scipy.sparse.linalg import eigsh
    except ImportError:
        return spectral_layout(adjacency_from_edges(n, edges))
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    e = e[e[:, 0] != e[:, 1]]
    a = sp.coo_matrix((np.ones(2 * len(e)), (np.concatenate([e[:, 0], e[:, 1]]), np.concatenate([e[:, 1], e[:, 0]]))),
                      shape=(n, n)).tocsr()
    a.data[:] = 1.0
    degree = np.asarray(a.sum(axis=1)).ravel()
    degree[degree <= 0] = 1.0
    d = sp.diags(1.0 / np.sqrt(degree))
    # The smallest eigenvectors of I - D^-1/2 A D^-1/2 are the largest of I + D^-1/2 A D^-1/2.
    m = sp.identity(n) + d @ a @ d
    try:
        values, vectors = eigsh(m, k=3, which="LA", v0=np.ones(n), maxiter=5000, tol=1e-6)
    except Exception:  # no convergence: fall back to the dense solver
        return spectral_layout(a.toarray())
    largest_first = np.argsort(values)[::-1]
    # Skip the trivial eigenvector (D^1/2 1, eigenvalue 2); the next two give the coordinates.
    pos = vectors[:, largest_first[1:3]] * (1.0 / np.sqrt(degree))[:, None]
    pos -= pos.mean(axis=0)
    scale = np.abs(pos).max()
    return pos / scale if np.isfinite(scale) and scale > 1e-12 else spectral_layout(a.toarray())
