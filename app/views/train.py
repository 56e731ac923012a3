"""Train page: a model, a few parameters, one button, cross-validation a geologist can believe."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

import results
import session
from geomap.apply import predict
from geomap.errors import GeomapError
from geomap.features import PRESETS
from geomap.workflow import MAX_PER_CLASS, SOM_SAMPLES, RunConfig, run

MODELS = {
    "rf": "Random forest trained on the observations",
    "som": "Self-organizing map labelled by the observations",
    "som-clusters": "Self-organizing map clusters (no observations needed)",
    "apply": "A model trained earlier, applied to these rasters (the next sheet)",
}
#: The Model box's choice of a model file to upload rather than an earlier run's.
UPLOAD = "upload"

st.title("Train")
data = session.inputs()
if not data.rasters:
    st.info("Choose the rasters (and observations) on the Data page first.")
    st.page_link("views/data.py", label="Go to Data", icon=":material/arrow_back:")
    session.stop()
if data.problem:
    st.error(f"The Data page could not read these inputs: {data.problem}", icon=":material/error:")
    st.page_link("views/data.py", label="Go to Data", icon=":material/arrow_back:")
    session.stop()
model = st.radio("Model", list(MODELS), format_func=MODELS.get, key="model")
if model in ("rf", "som") and not data.ready:
    if data.observations_problem:
        st.error(
            "This model learns from observations, and the Data page could not read them: "
            f"{data.observations_problem}",
            icon=":material/error:",
        )
        st.caption(f"'{MODELS['som-clusters']}' can map the rasters without them.")
    else:
        st.info(
            "This model learns from observations: add them and their class column on the Data page."
        )
    st.page_link("views/data.py", label="Go to Data", icon=":material/arrow_back:")
    session.stop()


def _forest_options() -> dict:
    a, b = st.columns(2)
    return {
        "trees": int(a.slider("Trees in the forest", 10, 500, 200, step=10, key="trees")),
        "suggest": int(
            b.number_input(
                "Field sites to suggest", 1, 500, 30, key="suggest",
                help="Places where a new observation would improve the map most, spread out.",
            )
        ),
        "smooth": int(
            st.selectbox(
                "Probability smoothing window (pixels)", [1, 3, 5], key="smooth",
                help="1 = off. Smoothing erased thin units (dykes) in the quality benchmark.",
            )
        ),
        "spectral_screen": _screen_option(),
    }  # fmt: skip


def _screen_option() -> bool:
    return st.checkbox(
        "Map haze and cloud shadow from the other rasters", value=True, key="screen",
        help="Pixels whose optical bands are unlike every observation's (haze at a cloud's "
        "edge, its shadow: what the nodata mask missed) are mapped without the satellite "
        "image, like pixels under the cloud, and shown in the missing-inputs layer.",
    )  # fmt: skip


def _som_options() -> dict:
    a, b, c = st.columns(3)
    clusters = a.number_input("Clusters (0: chosen from the data)", 0, 30, 0, key="clusters")
    side = b.number_input("Map side in nodes (0: about 5 sqrt(N) nodes)", 0, 60, 0, key="som_side")
    iterations = c.number_input("Training iterations (0: automatic)", 0, 10**7, 0, key="iterations")
    options = {
        "clusters": int(clusters) or None,
        "som_size": (int(side), int(side)) if side else None,
        "iterations": int(iterations) or None,
    }
    if model == "som":  # the screen compares pixels with the observations: none for clusters
        options["spectral_screen"] = _screen_option()
    return options


def _uploaded_model() -> Path | None:
    """The model file uploaded in this session (the box empties after a visit elsewhere)."""
    box = st.file_uploader(
        "Model file", type=["skops"], key="model_file",
        help="model.skops as geomap writes it: the Export page of an earlier run, or the "
        "output folder of `geomap run`.",
    )  # fmt: skip
    if box is not None and st.session_state.get("uploaded_model_id") != box.file_id:
        # saved once per upload, not hashed again on every rerun (a bundle can be 400 MB)
        saved = session.workspace().save("models", box.name, box.getvalue())
        st.session_state.uploaded_model, st.session_state.uploaded_model_id = saved, box.file_id
    kept = st.session_state.get("uploaded_model")
    if kept is not None and box is None:
        st.caption(f"Model in use: {kept.name} (a new upload replaces it).")
    return kept


def _apply_options() -> tuple[dict, Path | None, bool]:
    """The model to apply, from an earlier run of this session or a file; the button."""
    trained = {  # not runs that applied a model: their model.skops is that model again
        k: r
        for k, r in session.runs().items()
        if r["params"]["model"] != "apply" and (r["out"] / "model.skops").is_file()
    }
    source = st.selectbox(
        "Trained model",
        [*reversed(list(trained)), UPLOAD],  # the latest first: the one just trained, mostly
        format_func=lambda k: (
            "A model file (model.skops) to upload"
            if k == UPLOAD
            else f"Run {k} of this session: {session.describe_params(trained[k]['params'])}"
        ),
        key="apply_from",
    )
    path = _uploaded_model() if source == UPLOAD else trained[source]["out"] / "model.skops"
    if path is not None:
        try:
            st.caption(session.model_words(path))
        except GeomapError as exc:  # said at once, not when the button is pressed
            session.show_error("Reading the model", exc)
            path = None
    if data.labels is not None:
        st.caption(
            "The observations on the Data page are not used: the model maps the rasters from "
            "what it learnt in training."
        )
    same_order = st.checkbox(
        session.ORDER_BOX, key="same_order",
        help="For copies whose bands carry no names: each raster is taken for the training "
        "raster at its place in the Data page's list, checking only band counts. Otherwise the "
        "rasters are matched to the training rasters by their band names, in any order.",
    )  # fmt: skip
    params = {
        "model": "apply",
        "applied": "an uploaded model" if source == UPLOAD else f"run {source}'s model",
        "model_digest": session.file_digest(path) if path is not None else None,
        "same_order": same_order,
    }
    clicked = st.button("Map with this model", type="primary", key="apply", disabled=path is None)
    return params, path, clicked


def _training_options() -> tuple[dict, bool]:
    """The parameters of a model to train, and the button."""
    a, b = st.columns(2)
    params = {
        "model": model,
        "features": a.selectbox(
            "Features", list(PRESETS), index=list(PRESETS).index("default"), key="features",
            help="raw: the bands only; default: plus focal mean and deviation over 3 and 7 "
            "pixels and Kuwahara means over 3 and 5 pixels, which smooth noise without blurring "
            "contacts; rich: also 15 pixels. Ratios (K/Th, U/Th, swir/nir...) and terrain come "
            "with band names.",
        ),
    }  # fmt: skip
    if model != "som-clusters":
        params["cv_folds"] = int(b.slider("Cross-validation folds", 2, 10, 5, key="cv_folds"))
    params.update(_forest_options() if model == "rf" else _som_options())
    with st.expander("More"):
        params["random_state"] = int(
            st.number_input("Random seed", 0, 2**31 - 1, 0, key="random_state")
        )
        params["max_per_class"] = (
            int(
                st.number_input(
                    "Most polygon pixels per class (0: the model's default)", 0, 100_000, 0,
                    key="max_per_class",
                    help=f"The random forest draws {MAX_PER_CLASS['rf']:,}; the labelled SOM "
                    f"up to {MAX_PER_CLASS['som']:,}, fewer when the map has many units "
                    f"(at most {SOM_SAMPLES:,} in all).",
                )
            )
            or None
        )  # fmt: skip
        size = st.number_input(
            "Pixel size of the map (0: the finest raster's)", 0.0, 1e6, 0.0, key="resolution",
            format="%g",
            help="In the grid's units (metres for a projected CRS; the Data page shows the "
            "grid). A coarser pixel maps a large sheet faster: 10 m Sentinel-2 over 30 km is "
            "9 million pixels, at 30 m 1 million.",
        )  # fmt: skip
        params["resolution"] = float(size) or None
        params["crs"] = _map_crs()
    return params, st.button("Train and map", type="primary", key="train")


def _map_crs() -> str | None:
    """The CRS chosen for the map among the rasters' projected ones; None: the first raster's."""
    choices = session.map_crs_choices(list(data.rasters))
    if len(choices) < 2:
        return None
    if st.session_state.get("map_crs") not in choices:  # kept from other rasters
        st.session_state.pop("map_crs", None)
    chosen = st.selectbox(
        "CRS of the map", list(choices), format_func=choices.get, key="map_crs",
        help="The map's grid is drawn in this CRS and every raster is read onto it (the "
        "command line's --crs). By default the first projected raster's; rasters in degrees "
        "are not offered, as a map in degrees has pixels of unequal ground size.",
    )  # fmt: skip
    return None if chosen == next(iter(choices)) else chosen


with st.container():  # not a form: a value set and left untrained is kept (KEPT_WIDGETS)
    if model == "apply":
        params, model_path, submitted = _apply_options()
    else:
        (params, submitted), model_path = _training_options(), None
st.caption("Stay on this page while it runs: leaving it stops the run.")


def _record(key: str, out: Path, report: dict) -> None:
    """A finished run: its report.json without server paths, kept, and shown."""
    session.workspace().tidy_report(out)
    session.runs()[key] = {"key": key, "out": out, "report": report, "params": params}
    st.session_state.current_run = key


def _apply(key: str, model_file: Path) -> None:
    out = session.workspace().run_dir(key)
    bar = st.progress(0.0, text="Reading the model and the rasters...")

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "predict":
            bar.progress(done / max(total, 1), text=f"Mapping window {done} of {total}")

    try:
        report = predict(
            model_file,
            list(data.rasters),
            out,
            overwrite=True,
            progress=progress,
            nodata=data.nodata,
            raster_nodata=data.raster_nodata,
            same_order=params["same_order"],
        )
    finally:  # a failed run leaves its message, not a stalled bar
        bar.empty()
    _record(key, out, report)


def _train(key: str) -> None:
    out = session.workspace().run_dir(key)
    bar = st.progress(0.0, text="Preparing the samples...")

    def progress(stage: str, done: int, total: int) -> None:
        if stage == "fit":
            bar.progress(0.05, text="Training the model...")
        elif stage == "validate":
            bar.progress(
                0.05 + 0.35 * done / max(total, 1),
                text=f"Cross-validating: model {done} of {total} (random folds, then spatial "
                "blocks)",
            )
        elif stage == "predict":
            bar.progress(0.4 + 0.6 * done / max(total, 1), text=f"Mapping window {done} of {total}")

    # clusters are found without observations; those that read are counted per cluster
    labelled = model != "som-clusters" or (
        data.labels is not None and data.label_column is not None and not data.observations_problem
    )
    config = RunConfig(
        rasters=list(data.rasters),
        labels=data.labels if labelled else None,
        label_column=data.label_column if labelled else None,
        label_crs=data.label_crs,
        label_layer=data.label_layer,
        legend=data.legend if labelled else None,
        nodata=data.nodata,
        raster_nodata=data.raster_nodata,
        out=out,
        overwrite=True,
        **params,
    )
    try:
        report = run(config, progress=progress)
    finally:  # a failed run leaves its message, not a stalled bar
        bar.empty()
    _record(key, out, report)


failed = False  # the run just asked for did not finish: its message stands above the results
if submitted:
    key = session.run_key(data, params)
    if key in session.runs():
        st.session_state.current_run = key
        st.info("Same data and parameters as an earlier run: showing it without training again.")
    else:
        session.begin_training(key)
        if model_path is not None:
            with session.reported("Mapping with the model"):
                _apply(key, model_path)
        else:
            with session.reported("Training"):
                _train(key)
        session.end_training()  # not reached when Streamlit stops the page: interrupted()
        failed = key not in session.runs()

result = session.current_run()
if result is None:
    session.stop()
stale = session.stale_note(result, data)
if stale:
    st.info(stale, icon=":material/update:")
if failed:  # the figures below are not the failed run's (user pass: an earlier model's 0.89)
    st.info(
        "The run just asked for did not finish (its message is above); below are the results of "
        "the last run that did.",
        icon=":material/history:",
    )
shown = result["params"]
if shown["model"] != model:
    button = "Map with this model" if model == "apply" else "Train and map"
    st.info(
        f"Below: the last run ({session.MODEL_WORDS[shown['model']]}). Press {button} "
        f"for {session.MODEL_WORDS[model]}.",
        icon=":material/update:",
    )
st.caption(f"Results of run `{result['key']}`: {session.describe_params(shown)}.")
report = result["report"]
if "validation" in report:
    results.validation(report)
if shown["model"] == "apply":
    results.applied(report)
results.trust(report)
on_data = [n for n in report.get("warnings", []) if n in data.warnings]
for note in report.get("warnings", []):
    if note not in on_data:
        st.warning(session.in_app_words(note))
if on_data:  # read on the Data page already: out of the way of the figures
    with st.expander(f"{len(on_data)} warning(s) on the inputs, as on the Data page"):
        for note in on_data:
            st.warning(session.in_app_words(note))
if "validation" in report:
    left, right = st.columns(2)
    with left:
        results.confusion(report)
    if "importance" in report:
        with right:
            results.importance(report)
results.to_check(report, result["out"])
if "som" in report:
    results.som(report, result["out"])
results.footer(report)
st.page_link("views/map.py", label="See the map", icon=":material/map:")
