"""Train page: a few parameters, one button, cross-validation a geologist can believe."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import streamlit as st

import session
from geomap.features import PRESETS
from geomap.workflow import RunConfig, run

st.title("Train")
data = session.inputs()
if not data.ready:
    st.info("Choose the rasters, the observations and their class column on the Data page first.")
    st.page_link("views/data.py", label="Go to Data", icon=":material/arrow_back:")
    st.stop()

with st.form("train_form", border=False):
    a, b, c = st.columns(3)
    trees = a.slider("Trees in the forest", 10, 500, 200, step=10, key="trees")
    features = b.selectbox(
        "Features",
        list(PRESETS),
        index=list(PRESETS).index("default"),
        key="features",
        help="raw: the bands only; default: plus focal mean and deviation over 3 and 7 pixels; "
        "rich: also 15 pixels. Ratios (K/Th, U/Th, swir/nir...) and terrain come with band names.",
    )
    folds = c.slider("Cross-validation folds", 2, 10, 5, key="cv_folds")
    with st.expander("More"):
        seed = st.number_input("Random seed", 0, 2**31 - 1, 0, key="random_state")
        max_per_class = st.number_input(
            "Most polygon pixels per class", 10, 100_000, 2000, key="max_per_class"
        )
        smooth = st.selectbox(
            "Probability smoothing window (pixels)",
            [1, 3, 5],
            key="smooth",
            help="1 = off. Smoothing erased thin units (dykes) in the quality benchmark.",
        )
        n_sites = st.number_input(
            "Field sites to suggest",
            1,
            500,
            30,
            key="suggest",
            help="Places where a new observation would improve the map most, spread out.",
        )
    submitted = st.form_submit_button("Train and map", type="primary", key="train")

params = {
    "model": "rf",
    "trees": int(trees),
    "features": features,
    "cv_folds": int(folds),
    "random_state": int(seed),
    "max_per_class": int(max_per_class),
    "smooth": int(smooth),
    "suggest": int(n_sites),
}


def _train(key: str) -> None:
    out = session.workspace().run_dir(key)
    bar = st.progress(0.0, text="Placing the observations on the grid...")

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "validate":
            bar.progress(0.05, text="Cross-validating (random, spatial), then training...")
        elif stage == "predict":
            bar.progress(0.1 + 0.9 * done / max(total, 1), text=f"Mapping window {done} of {total}")

    config = RunConfig(
        rasters=list(data.rasters),
        labels=data.labels,
        label_column=data.label_column,
        label_crs=data.label_crs,
        out=out,
        overwrite=True,
        **params,
    )
    report = run(config, progress=progress)
    bar.empty()
    session.runs()[key] = {"key": key, "out": out, "report": report, "params": params}
    st.session_state.current_run = key


if submitted:
    key = session.run_key(data, params)
    if key in session.runs():
        st.session_state.current_run = key
        st.info("Same data and parameters as an earlier run: showing it without training again.")
    else:
        with session.reported("Training"):
            _train(key)

result = session.current_run()
if result is None:
    st.stop()
report = result["report"]
val = report["validation"]

st.subheader("How accurate is the map?")
st.write(val["summary"])
rows = ["overall_accuracy", "balanced_accuracy", "macro_f1", "kappa"]
st.dataframe(
    pd.DataFrame(
        {
            "spatial CV (believe this)": [val["spatial"][r] for r in rows],
            "random CV": [val["random"][r] for r in rows],
        },
        index=[r.replace("_", " ") for r in rows],
    ).style.format("{:.3f}"),
    key="cv_table",
)
estimate = report.get("map_accuracy_estimate")
if estimate and estimate["overall_accuracy"] is not None:
    sites = report.get("suggested_samples", {}).get("n_written", 0)
    st.info(
        f"Expected accuracy of the whole map: **{estimate['overall_accuracy']:.2f}** (calibrated "
        f"on the spatial CV, pixel by pixel); **{100 * estimate['aoa_fraction']:.0f}%** of the "
        f"map lies inside the area of applicability. {sites} suggested field sites are on the "
        "Map page and in the Export files.",
        icon=":material/verified:",
    )
for note in report.get("warnings", []):
    st.warning(note)

names = list(report["samples"]["per_class"])
left, right = st.columns(2)
with left:
    st.markdown("**Confusion matrix, spatial CV** (rows observed, columns predicted)")
    fig, ax = plt.subplots(figsize=(4.5, 4))
    matrix = val["spatial"]["confusion_matrix"]
    ax.imshow(matrix, cmap="Blues")
    for i, row in enumerate(matrix):
        for j, n in enumerate(row):
            ax.text(j, i, n, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    fig.tight_layout()
    st.pyplot(fig, clear_figure=True)
    plt.close(fig)
with right:
    st.markdown("**What the forest uses** (mean decrease in impurity)")
    imp = report["importance"]
    by_source = pd.DataFrame(imp["by_source"].items(), columns=["input", "importance"])
    st.bar_chart(by_source, x="input", y="importance", horizontal=True, sort="-importance")
    top = pd.DataFrame(list(imp["features"].items())[:12], columns=["feature", "importance"])
    st.bar_chart(top, x="feature", y="importance", horizontal=True, sort="-importance")

pred = report["prediction"]
st.caption(
    f"Mapped {pred['mapped_pixels']:,} pixels ({pred['reduced_input_pixels']:,} from fewer inputs, "
    f"e.g. under a cloud), {pred['nodata_pixels']:,} without data; "
    f"{report['timings_seconds']['total']:.1f} s."
)
st.page_link("views/map.py", label="See the map", icon=":material/map:")
