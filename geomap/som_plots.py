"""PNG plots of a fitted self-organizing map: U-matrix, component planes and hit map.

Each plot draws the map's nodes as a grid with the codebook clusters outlined and numbered, so
the three figures can be read side by side with ``clusters.tif``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.collections import LineCollection  # noqa: E402

from geomap.models import SOMClusters  # noqa: E402

_MAX_PLANES = 30
_PLANES_PER_ROW = 5


def _outline(ax, node_cluster: np.ndarray, numbers: bool = True, width: float = 1.2) -> None:
    """Draw cluster boundaries between nodes and (if ``numbers``) each cluster's number."""
    rows, cols = node_cluster.shape
    r, c = np.nonzero(node_cluster[:, 1:] != node_cluster[:, :-1])  # between columns c and c+1
    segments = [[(cc + 0.5, rr - 0.5), (cc + 0.5, rr + 0.5)] for rr, cc in zip(r, c)]
    r, c = np.nonzero(node_cluster[1:] != node_cluster[:-1])  # between rows r and r+1
    segments += [[(cc - 0.5, rr + 0.5), (cc + 0.5, rr + 0.5)] for rr, cc in zip(r, c)]
    ax.add_collection(LineCollection(segments, colors="black", linewidths=width))
    for k in np.unique(node_cluster) if numbers else ():
        rr, cc = np.nonzero(node_cluster == k)
        i = np.argmin((rr - rr.mean()) ** 2 + (cc - cc.mean()) ** 2)  # a node inside the cluster
        ax.text(
            cc[i], rr[i], str(k + 1), ha="center", va="center", fontsize=9, weight="bold",
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
        )  # fmt: skip
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)


def _node_axes(ax, title: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("SOM column")
    ax.set_ylabel("SOM row")


def _save(fig, path: Path, dpi: int = 110) -> Path:
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_u_matrix(clusters: SOMClusters, path: Path, title: str) -> Path:
    """U-matrix: mean codebook distance of each node to its neighbours (ridges divide units)."""
    som = clusters.som_
    fig, ax = plt.subplots(figsize=(7, 6 * som.shape_[0] / max(som.shape_[1], 1) + 1))
    im = ax.imshow(som.u_matrix(), cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8, label="mean distance to neighbouring nodes (std. units)")
    _outline(ax, clusters.node_cluster_.reshape(som.shape_))
    _node_axes(
        ax, f"{title}: U-matrix ({som.shape_[0]} x {som.shape_[1]} nodes), clusters outlined"
    )
    return _save(fig, path)


#: Colour of the hit map's empty nodes: grey, apart from the palest colour (one hit), which
#: white (as it was) could not be told from.
EMPTY_NODE = "#bdbdbd"


def plot_hit_map(clusters: SOMClusters, path: Path, title: str) -> Path:
    """Training pixels per node (log colour scale); empty nodes are grey."""
    som = clusters.som_
    hits = som.hits_.reshape(som.shape_).astype(float)
    fig, ax = plt.subplots(figsize=(7, 6 * som.shape_[0] / max(som.shape_[1], 1) + 1))
    shown = np.ma.masked_equal(hits, 0)
    vmax = max(hits.max(), 2)
    norm = matplotlib.colors.LogNorm(vmin=1, vmax=vmax)
    palette = matplotlib.colormaps["magma_r"].with_extremes(bad=EMPTY_NODE)
    im = ax.imshow(shown, cmap=palette, norm=norm, interpolation="nearest")
    fig.colorbar(im, ax=ax, shrink=0.8, label="training pixels on the node")
    _outline(ax, clusters.node_cluster_.reshape(som.shape_))
    _node_axes(ax, f"{title}: hit map of {som.n_train_:,} training pixels (grey: none)")
    return _save(fig, path)


def plot_component_planes(
    clusters: SOMClusters, feature_names: Sequence[str], path: Path, title: str
) -> Path:
    """One panel per feature: each node's codebook value in the feature's own units.

    Five panels a row, each with the clusters outlined, so that a cluster can be read off
    against every feature; sized to be read on a page's width (about 300 pixels a panel).
    """
    som = clusters.som_
    values = som.codebook_ * som.scale_ + som.mean_
    order = plane_order(feature_names)
    n = len(order)
    ncols = min(_PLANES_PER_ROW, n)
    nrows = int(np.ceil(n / ncols))
    aspect = som.shape_[0] / max(som.shape_[1], 1)
    outlined = clusters.node_cluster_.reshape(som.shape_)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(3.4 * ncols, (3.4 * aspect + 0.5) * nrows + 0.6), squeeze=False
    )
    for i, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.set_axis_off()
            continue
        j = order[i]
        im = ax.imshow(values[:, j].reshape(som.shape_), cmap="RdYlBu_r", interpolation="nearest")
        _outline(ax, outlined, numbers=False, width=0.6)
        ax.set_title(feature_names[j], fontsize=10)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03).ax.tick_params(labelsize=7)
    fig.suptitle(planes_title(title, n, len(feature_names)), fontsize=12)
    fig.subplots_adjust(left=0.02, right=0.96, bottom=0.02, top=0.95, wspace=0.3, hspace=0.3)
    return _save(fig, path, dpi=90)


def planes_title(title: str, shown: int, features: int) -> str:
    """The component planes' title: which features they show when not every one."""
    more = (
        f" ({shown} of {features} features: the bands, ratios and terrain first, then focal "
        "statistics)"
        if shown < features
        else ""
    )
    return (
        f"{title}: component planes, codebook values in feature units{more}; clusters outlined "
        "as on the U-matrix"
    )


def plane_order(feature_names: Sequence[str]) -> list[int]:
    """Indices of the features to plot: bands, ratios and terrain first, then focal statistics.

    At most ``_MAX_PLANES``, so a rich feature set still gives a readable page.
    """
    focal = ["_mean" in n or "_std" in n for n in feature_names]
    order = [i for i, f in enumerate(focal) if not f] + [i for i, f in enumerate(focal) if f]
    return order[:_MAX_PLANES]


def write_som_plots(
    clusters: SOMClusters, feature_names: Sequence[str], out_dir: Path, title: str
) -> list[Path]:
    """Write ``som_u_matrix.png``, ``som_component_planes.png`` and ``som_hit_map.png``."""
    return [
        plot_u_matrix(clusters, out_dir / "som_u_matrix.png", title),
        plot_component_planes(clusters, feature_names, out_dir / "som_component_planes.png", title),
        plot_hit_map(clusters, out_dir / "som_hit_map.png", title),
    ]
