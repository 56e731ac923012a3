"""How a run is shown on the Train page: one function per section of its report."""

from __future__ import annotations

import os
from pathlib import Path

import altair as alt
import matplotlib.pyplot as plt
import pandas as pd
import streamlit as st

from geomap.report_html import (
    SOM_PLOTS,
    chosen_words,
    observed_cluster_words,
    observed_counts_words,
)
from geomap.trust import trust_words

_ROWS = ["overall_accuracy", "balanced_accuracy", "macro_f1", "kappa"]


def validation(report: dict) -> None:
    """Spatial and random cross-validation side by side, and which to believe."""
    val = report["validation"]
    st.subheader("How accurate is the map?")
    st.write(val["summary"])
    table = pd.DataFrame(
        {
            "spatial CV": [val["spatial"][r] for r in _ROWS],
            "random CV": [val["random"][r] for r in _ROWS],
        },
        index=[r.replace("_", " ") for r in _ROWS],
    )
    st.dataframe(table.style.format("{:.3f}"), key="cv_table")


def applied(report: dict) -> None:
    """A model applied to other rasters: its training's accuracy, and each unit here."""
    training = report.get("training", {})
    summary = training.get("validation", {}).get("summary")
    if summary:
        st.write(f"At training: {summary}")
    pixels = report.get("prediction", {}).get("pixels_per_class")
    if not pixels:
        return
    expected = (report.get("map_accuracy_estimate") or {}).get("per_class") or {}
    total = max(sum(pixels.values()), 1)
    here = [n / total for n in pixels.values()]
    before = training.get("map_share_per_class")
    columns = {
        "share of this map": here,
        "share of the training map": before,
        "times the training share": (
            [h / b if b > 0 else float("nan") for h, b in zip(here, before)] if before else None
        ),
        "expected accuracy": [
            float("nan") if expected.get(name) is None else expected[name] for name in pixels
        ],  # a unit mapped nowhere here has none
        "training samples": training.get("samples_per_class"),
    }
    table = pd.DataFrame(
        {k: v for k, v in columns.items() if v is not None and len(v) == len(pixels)},
        index=pd.Index(list(pixels), name="unit"),
    )
    formats = {
        "share of this map": "{:.1%}",
        "share of the training map": "{:.1%}",
        "times the training share": "{:.1f}",
        "expected accuracy": "{:.2f}",
    }
    st.dataframe(
        table.style.format({k: f for k, f in formats.items() if k in table}, na_rep="-"),
        key="applied_units",
    )
    st.caption(
        "Expected accuracy per unit: the chance that a pixel mapped as the unit is that unit, "
        "learnt from the training's cross-validation. It cannot see a unit taking another's "
        "ground on this sheet, where the inputs differ from the training ones: a unit that grew "
        "much while another shrank (its share 1.5 times or more, the other's two thirds or "
        "less) may have, or the ground may differ; check such units in the field."
    )


def trust(report: dict) -> None:
    """The expected accuracy of the whole map and the share inside the area of applicability."""
    estimate = report.get("map_accuracy_estimate")
    if not estimate or estimate["overall_accuracy"] is None:
        return
    more = " ".join(trust_words(report))
    sites = (
        f" {report['suggested_samples'].get('n_written', 0)} suggested field sites are in the "
        "Export files and on the Map page (add the layer 'Suggested field sites' in its box "
        "'Layers')."
        if "suggested_samples" in report  # a model applied to other rasters suggests none
        else ""
    )
    st.info(
        f"Expected accuracy of the whole map: **{estimate['overall_accuracy']:.2f}** (calibrated "
        f"on the spatial CV, pixel by pixel); **{100 * estimate['aoa_fraction']:.0f}%** of the "
        f"map lies inside the area of applicability.{f' {more}' if more else ''}{sites}",
        icon=":material/verified:",
    )


def to_check(report: dict, out: Path) -> None:
    """The observations the held-out map gives another unit: a list to revisit."""
    checks = report.get("observations_to_check")
    if not checks or not checks["n_listed"]:
        return
    st.markdown(
        f"**Observations to check: {checks['n_listed']}** of the {checks['n_points']} used. The "
        "model trained without their surroundings maps another unit there and gives theirs "
        "less than one chance in ten. A misidentified rock, a point across a contact, or a "
        "unit the rasters do not separate: look at your notes or revisit them. They are a "
        "layer on the Map page and a file on the Export page."
    )
    table = pd.read_csv(out / "observations_to_check.csv")
    shown = table[["rank", "site", "observed", "held_out", "p_observed", "p_held_out"]]
    st.dataframe(
        shown.rename(
            columns={
                "site": "observation",
                "held_out": "mapped without it",
                "p_observed": "p(observed)",
                "p_held_out": "p(mapped)",
            }
        ),
        hide_index=True,
        key="to_check_table",
        column_config={
            "p(observed)": st.column_config.NumberColumn(format="%.3f"),  # 0.095, not 0.10
            "p(mapped)": st.column_config.NumberColumn(format="%.3f"),
        },
    )


def confusion(report: dict) -> None:
    """The spatial-CV confusion matrix as a labelled heat map."""
    names = list(report["samples"]["per_class"])
    matrix = report["validation"]["spatial"]["confusion_matrix"]
    st.markdown("**Confusion matrix, spatial CV** (rows observed, columns predicted)")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, n in enumerate(row):
            ax.text(j, i, n, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    fig.tight_layout()
    st.pyplot(fig, clear_figure=True)
    plt.close(fig)


def importance(report: dict) -> None:
    """Importance by input file and of the top features, largest first."""
    imp = report["importance"]
    st.markdown("**What the forest uses** (mean decrease in impurity)")
    prefix = common_beginning(list(imp["by_source"]))

    def chart(items, label: str) -> None:
        names = shown_names([n for n, _ in items], prefix)
        table = pd.DataFrame({label: names, "importance": [v for _, v in items]})
        bars = (
            alt.Chart(table)
            .mark_bar()
            .encode(
                x="importance:Q",
                y=alt.Y(f"{label}:N", sort="-x", axis=alt.Axis(labelLimit=0)),  # names uncut
                tooltip=[label, alt.Tooltip("importance:Q", format=".3f")],
            )
        )
        st.altair_chart(bars)  # as wide as the column

    chart(list(imp["by_source"].items()), "input")
    chart(list(imp["features"].items())[:12], "feature")
    if prefix:
        st.caption(f"Inputs named without the beginning their names share, '{prefix}'.")


def shown_names(names: list[str], prefix: str) -> list[str]:
    """Names without ``prefix`` wherever it stands (a ratio of two bands holds it twice)."""
    return [n.replace(prefix, "") for n in names] if prefix else list(names)


def common_beginning(names: list[str]) -> str:
    """The beginning all ``names`` share, up to a separator ("T33TWM_20230612T100031_").

    Only a beginning of at least 6 characters that leaves something of every name: the bands
    of one scene in separate files have long names the charts would cut to the same stub.
    """
    if len(names) < 2:
        return ""
    shared = os.path.commonprefix(names)
    cut = max(shared.rfind(c) for c in "_-. :") + 1
    if cut < 6 or any(len(n) <= cut for n in names):
        return ""
    return shared[:cut]


def som(report: dict, out: Path) -> None:
    """The map's size, its clusters and the SOM plots."""
    info = report["som"]
    clusters = info["clusters"]
    st.subheader("Self-organizing map")
    st.write(
        f"{info['shape'][0]} x {info['shape'][1]} nodes trained on "
        f"{info['training_pixels']:,} pixels; mean quantization error "
        f"{info['mean_quantization_error']:.3g}. {clusters['n_clusters']} clusters "
        f"({clusters['method']}), {chosen_words(clusters)}."
    )
    observed = observed_cluster_words(report)
    if observed:
        st.markdown(
            f"Where the observations of `{clusters['observed']['file']}` lie among the clusters "
            f"({observed_counts_words(clusters['observed'])}; every count in "
            f"`{clusters['observed']['table']}`):\n" + "\n".join(f"- {line}" for line in observed)
        )
    plots = [
        (out / name, caption[0].upper() + caption[1:])
        for name, caption in SOM_PLOTS.items()
        if (out / name).exists()
    ]
    small, wide = plots[:2], plots[2:]  # the component planes need the page's width
    for column, (path, caption) in zip(st.columns(2), small):
        column.image(str(path), caption=caption)
    for path, caption in wide:
        st.image(str(path), caption=caption)


def footer(report: dict) -> None:
    """Pixels mapped and the time it took."""
    pred = report.get("prediction")
    if pred:
        screened = pred.get("screened_pixels", 0)  # said only where a screen took some out
        screened = (
            f"; {screened:,} of them where the optical bands were unlike every observation's"
            if screened
            else ""
        )
        st.caption(
            f"Mapped {pred['mapped_pixels']:,} pixels ({pred['reduced_input_pixels']:,} from "
            f"fewer inputs, e.g. under a cloud{screened}), {pred['nodata_pixels']:,} without "
            f"data; {report['timings_seconds']['total']:.1f} s."
        )
