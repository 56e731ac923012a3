"""``report.html``: the run's report for people, one self-contained page (no script, no network).

``report.json`` holds every figure for programs and for repeating a run; this page shows what a
geologist reads first: the units and their area, which accuracy to believe and why, the per-class
figures and confusions, where the map can be trusted, the inputs and the warnings. It is written
from the report and the run's legend CSV, so it shows exactly what the other files hold.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
from collections.abc import Sequence
from html import escape
from pathlib import Path

from geomap.trust import trust_words

#: The SOM's plots, in the order the page and the app show them, and what each shows.
SOM_PLOTS = {
    "som_u_matrix.png": "U-matrix: distances between neighbouring nodes (ridges separate groups)",
    "som_hit_map.png": "hit map: training pixels per node",
    "som_component_planes.png": "component planes: each feature across the nodes",
}

#: What each output file holds, for the page's file list (and the app's Export page).
FILE_NOTES = {
    "lithology.tif": "the map: class codes with colours and names (opens styled in QGIS)",
    "clusters.tif": "SOM clusters, styled like the map",
    "subunits.tif": "sub-units of one mapped unit",
    "clusters.qml": "QGIS style of the clusters",
    "clusters_by_unit.csv": "the observations' samples of each unit per cluster",
    "subunits.qml": "QGIS style of the sub-units",
    "clusters.tif.aux.xml": "the cluster names as GDAL categories, read by QGIS and GDAL",
    "subunits.tif.aux.xml": "the sub-unit names as GDAL categories, read by QGIS and GDAL",
    "clusters_legend.csv": "code, name, colour and mapped area per cluster",
    "subunits_legend.csv": "code, name, colour and mapped area per sub-unit",
    **{name: f"the SOM's {caption}" for name, caption in SOM_PLOTS.items()},
    "suggested_samples.csv": "the suggested sites with lon/lat for a GPS",
    "observations_to_check.csv": "the observations to check, with lon/lat for a GPS",
    "report.html": "this page",
    "uncertainty.tif": "entropy, margin uncertainty and the share of inputs missing per pixel",
    "probabilities.tif": "one band per class",
    "applicability.tif": "dissimilarity index and area-of-applicability mask",
    "expected_accuracy.tif": "probability that the mapped class is right",
    "quantization_error.tif": "distance of each pixel to its SOM node",
    "label_distance.tif": "distance of each pixel to the nearest labelled SOM node",
    "suggested_samples.gpkg": "where to sample next, ranked (CSV beside it has lon/lat)",
    "observations_to_check.gpkg": "observations the held-out model maps as another unit, "
    "ranked (CSV beside it has lon/lat)",
    "legend.csv": "code, name, colour, samples and mapped area per class",
    "lithology.qml": "QGIS style of the map (QGIS also reads the colours from the file)",
    "lithology.tif.aux.xml": "the class names as GDAL categories, read by QGIS and GDAL",
    "model.skops": "the model, for geomap predict",
    "report.json": "every figure of report.html and the full configuration",
}
#: Each kind of model in a few words (the web app's pages say the same).
MODEL_WORDS = {"rf": "random forest", "som": "labelled SOM", "som-clusters": "SOM clusters"}
_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:64em;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .6em;border:1px solid #ddd}
th{background:#f4f4f4;text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.sw{display:inline-block;width:1em;height:1em;border:1px solid #555;vertical-align:middle}
.warn{background:#fff6e0;border-left:4px solid #e0a000;padding:.4em .8em;margin:.3em 0}
.say{background:#eef5ff;border-left:4px solid #3a78c0;padding:.5em .8em}
.diag{background:#e6f2e6}small{color:#666}
figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}
"""


def write_report_html(path: Path, report: dict, title: str) -> None:
    """Write the page for ``report`` (as in ``report.json``) beside the run's other outputs.

    ``title`` names the run (its output folder). The units come from the folder's
    ``legend.csv`` (else its clusters' or sub-units' legend).
    """
    legends = ("legend.csv", "clusters_legend.csv", "subunits_legend.csv")
    legend = next((path.parent / n for n in legends if (path.parent / n).exists()), None)
    units = _read_legend(legend) if legend is not None else []
    parts = [
        _head(title, report),
        _units(units, report),
        _accuracy(
            report.get("validation") or report.get("training", {}).get("validation"),
            report.get("grid", {}).get("units", "map units"),
        ),
        _to_check(report.get("observations_to_check")),
        _som(report.get("som"), path.parent, report.get("subunits_of")),
        _trust(report, path.parent),
        _warnings(report.get("warnings", [])),
        _inputs(report),
        _importance(report.get("importance")),
        _files(path.parent),
        "</body></html>\n",
    ]
    path.write_text("".join(p for p in parts if p), encoding="utf-8")


def _read_legend(path: Path) -> list[dict]:
    with open(path, encoding="utf-8-sig", newline="") as f:  # a mark where not ASCII
        return list(csv.DictReader(f))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], numeric=()) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in
                  enumerate(row))
        + "</tr>"
        for row in rows
    )  # fmt: skip
    return f"<table><tr>{head}</tr>{body}</table>"


def _head(folder: str, report: dict) -> str:
    made = dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    model = report.get("configuration", {}).get("model", "rf")
    words = MODEL_WORDS.get(model, str(model))
    if "subunits_of" in report:
        of = report["subunits_of"]
        words = f"SOM sub-units of {of['unit']} in {of['map']}"
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>geomap: '
        f"{escape(folder)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>geomap map report: {escape(folder)}</h1><p><small>{escape(made)}, geomap "
        f"{escape(str(report.get('geomap_version', '?')))}, model: {escape(words)}</small></p>"
    )


def _units(units: list[dict], report: dict) -> str:
    if not units:
        return ""
    area = sum(float(u.get("mapped_area_km2") or 0) for u in units) or 1.0
    samples_key = next((k for k in ("training_samples", "training_pixels") if k in units[0]), None)
    rows = [
        [
            f'<span class="sw" style="background:{escape(u["colour"])}"></span>',
            escape(u["name"]),
            escape(u.get(samples_key, "")) if samples_key else "",
            f"{float(u['mapped_area_km2']):.2f}",
            f"{100 * float(u['mapped_area_km2']) / area:.1f}%",
        ]
        for u in units
    ]
    pred = report.get("prediction", {})
    mapped = pred.get("mapped_pixels")
    note = f"<p>{mapped:,} pixels mapped.</p>" if isinstance(mapped, int) else ""
    header = ["", "unit", "training samples", "area km²", "share"]
    before = report.get("training", {}).get("map_share_per_class")  # a map made with a model
    if before is not None and len(before) == len(rows):
        header.append("share at training")
        for row, share in zip(rows, before):
            row.append(f"{100 * share:.1f}%")
        note += (
            "<p>A unit mapped over a much larger share than on the training map may have taken "
            "ground of another unit where these rasters differ from the training ones.</p>"
        )
    return "<h2>Map units</h2>" + note + _table(header, rows, numeric=(2, 3, 4, 5))


def _accuracy(validation: dict | None, units: str) -> str:
    if not validation or "spatial" not in validation:
        return ""
    sp, rd = validation["spatial"], validation["random"]
    metrics = [
        ("overall accuracy", "overall_accuracy"),
        ("balanced accuracy", "balanced_accuracy"),
        ("macro-F1", "macro_f1"),
        ("kappa", "kappa"),
    ]
    rows = [[escape(label), f"{sp[k]:.3f}", f"{rd[k]:.3f}"] for label, k in metrics if k in sp]
    sentence = escape(validation.get("summary", ""))
    table = _table(["", "spatial CV", "random CV"], rows, numeric=(1, 2))
    out = f'<h2>Accuracy</h2><p class="say">{sentence}</p>{table}'
    if "per_class_recall" not in sp:  # a map made with `geomap predict`: the training's figures
        return out + "<p><small>Cross-validation of the model when it was trained.</small></p>"
    block = sp.get("block_size")
    blocks = f" Spatial blocks of {block:,.0f} {escape(units)} square." if block else ""
    names = list(sp["per_class_recall"])
    recall = [
        [escape(n), f"{sp['per_class_recall'][n]:.2f}", f"{rd['per_class_recall'][n]:.2f}"]
        for n in names
    ]
    return (
        out
        + f"<p><small>{sp['n_folds']} folds over {sp['n_samples']} samples.{blocks}</small></p>"
        + "<h3>Recall per unit</h3>"
        + _table(["unit", "spatial CV", "random CV"], recall, numeric=(1, 2))
        + "<h3>Spatial-CV confusions</h3>"
        + "<p><small>Rows: observed unit; columns: mapped unit.</small></p>"
        + _confusion(names, sp["confusion_matrix"])
    )


def _to_check(checks: dict | None) -> str:
    if not checks or not checks["n_listed"]:
        return ""
    rows = [
        [
            str(c["rank"]),
            escape(str(c["site"])),
            escape(str(c["observed"])),
            escape(str(c["held_out"])),
            f"{c['p_observed']:.3f}",  # 0.095 is below one chance in ten; 0.10 read as not
            f"{c['p_held_out']:.3f}",
        ]
        for c in checks["first"]
    ]
    more = checks["n_listed"] - len(rows)
    return (
        "<h2>Observations to check</h2>"
        f"<p>{checks['n_listed']} of the {checks['n_points']} point observations used are mapped "
        "as another unit by the model trained without their surroundings (spatial CV), which "
        "gives their own unit less than one chance in ten: "
        "a misidentified rock, a point on the wrong side of a contact, or a unit the rasters do "
        "not separate. Revisit them, or look again at your notes: "
        "<code>observations_to_check.gpkg</code> (CSV with lon/lat beside it).</p>"
        + _table(
            ["rank", "observation", "observed", "mapped without it", "p(observed)", "p(mapped)"],
            rows,
            (0, 4, 5),
        )
        + (f"<p><small>and {more} more in the file.</small></p>" if more > 0 else "")
    )


def _confusion(names: list[str], matrix: list[list[int]]) -> str:
    head = "<tr><th></th>" + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"
    body = "".join(
        f"<tr><th>{escape(n)}</th>"
        + "".join(f'<td class="n{" diag" if i == j else ""}">{v}</td>' for j, v in enumerate(row))
        + "</tr>"
        for i, (n, row) in enumerate(zip(names, matrix))
    )
    return f"<table>{head}{body}</table>"


def _som(som: dict | None, folder: Path, subunits_of: dict | None = None) -> str:
    """The map's size and training, how many clusters and why, and its plots (in the page).

    ``subunits_of`` (a `geomap subunits` run): the unit and class map the clusters split.
    """
    plots = [name for name in SOM_PLOTS if (folder / name).is_file()]
    if not som and not plots:
        return ""
    text = ""
    if som:
        rows, cols = som["shape"]
        clusters = som["clusters"]
        text = (
            f"<p>The self-organizing map: {rows} x {cols} nodes ({som['empty_nodes']:,} of "
            f"the {som['nodes']:,} holding no training pixel), trained on "
            f"{som['training_pixels']:,} pixels in {som['iterations']:,} iterations; mean "
            f"quantization error {som['mean_quantization_error']:.2f} (distance in standardised "
            f"features). Its nodes form {clusters['n_clusters']} clusters "
            f"({escape(clusters['method'])}): {escape(chosen_words(clusters))}. "
            + (
                "The clusters are <code>clusters.tif</code>, found without the observations.</p>"
                if subunits_of is None
                else f"The clusters are <code>subunits.tif</code>: the sub-units of the pixels "
                f"<code>{escape(subunits_of['map'])}</code> maps as "
                f"{escape(subunits_of['unit'])}, found without observations; every other pixel "
                "is nodata.</p>"
            )
        )
        observed = observed_cluster_words({"som": som})
        if observed:
            where = som["clusters"]["observed"]
            text += (
                f"<p>Where the observations of <code>{escape(where['file'])}</code> lie among "
                f"the clusters ({observed_counts_words(where)}; "
                f"<code>{escape(where['table'])}</code> has every count):</p><ul>"
                + "".join(f"<li>{escape(line)}</li>" for line in observed)
                + "</ul>"
            )
        if "labelled_nodes" in som:
            text += (
                f"<p>{som['labelled_nodes']:,} nodes hold observations; every other node takes "
                "the classes of the labelled nodes nearest it in feature space (within about "
                f"{som['label_bandwidth']:.2f}, in standardised features), and "
                "<code>lithology.tif</code> maps each pixel as its node's classes say: "
                "<code>label_distance.tif</code> shows how far each pixel's node lies from "
                "one that holds an observation.</p>"
            )
    figures = "".join(
        f'<figure><img src="data:image/png;base64,{_base64(folder / name)}" '
        f'alt="{escape(FILE_NOTES[name])}"><figcaption><small>{escape(FILE_NOTES[name])} '
        f"(<code>{name}</code>)</small></figcaption></figure>"
        for name in plots
    )
    return "<h2>Self-organizing map</h2>" + text + figures


def _base64(path: Path) -> str:
    """The file's bytes in base64, for an image inside the page.

    The page is one file, read alone when downloaded alone: images beside it broke.
    """
    return base64.b64encode(path.read_bytes()).decode("ascii")


def chosen_words(clusters: dict) -> str:
    """How the number of clusters was chosen, with the two best scores when it was scored."""
    scores = {int(k): v for k, v in clusters.get("scores", {}).items()}
    if not scores or clusters["chosen_by"] == "the number asked for":
        return "as many as asked for"
    lowest = "davies" in clusters["chosen_by"]
    best = sorted(scores, key=scores.get, reverse=not lowest)[:2]
    ranked = ", then ".join(f"{k} clusters {scores[k]:.2f}" for k in best)
    better = "lower" if lowest else "higher"
    return f"chosen by the {clusters['chosen_by']}; {better} is better: {ranked}"


def cluster_words(report: dict) -> str | None:
    """The SOM's clusters in a sentence: how many, how chosen, each one's share of the map.

    None for a report without a SOM. A small cluster beside large ones is often not a rock
    at all (haze or cloud shadow around a hole in an image): the shares let it stand out.
    """
    som = report.get("som")
    if not som:
        return None
    clusters = som["clusters"]
    part = report.get("clusters") or report.get("prediction") or {}  # som: its own entry
    pixels = part.get("pixels_per_class") or {}
    total = sum(pixels.values())
    shares = (
        "; of the mapped pixels: "
        + ", ".join(f"{name} {count / total:.0%}" for name, count in pixels.items())
        if total
        else ""
    )
    return (
        f"SOM of {som['shape'][0]} x {som['shape'][1]} nodes; {clusters['n_clusters']} clusters "
        f"({clusters['method']}), {chosen_words(clusters)}{shares}."
    )


def observed_counts_words(observed: dict) -> str:
    """How the samples of :func:`observed_cluster_words` were counted, in parentheses' words."""
    cap = observed.get("pixels_per_unit")  # absent in reports written before it was kept
    drawn = f" drawn, at most {cap:,} per unit" if cap else ""
    return f"a point counts once, a polygon once per pixel{drawn}"


def observed_cluster_words(report: dict) -> list[str]:
    """Where each observed unit lies among the clusters, a line per unit; [] without them.

    ``geomap run --model som-clusters --labels``: the three clusters holding most of each unit's
    samples, with their shares of the samples on the clusters' map.
    """
    observed = ((report.get("som") or {}).get("clusters") or {}).get("observed")
    if not observed:
        return []
    lines = []
    for unit, row in observed["units"].items():
        on_map = sum(row["clusters"].values())
        top = list(row["clusters"].items())[:3]
        where = (
            ", ".join(f"{name} {count / on_map:.0%}" for name, count in top)
            if on_map
            else "none on the clusters' map"
        )
        lines.append(f"{unit} ({row['samples']:,} samples): {where}")
    tops: dict[str, list[str]] = {}
    for unit, row in observed["units"].items():
        if row["clusters"]:
            tops.setdefault(next(iter(row["clusters"])), []).append(unit)
    for cluster, shared in tops.items():
        if len(shared) > 1:
            units = ", ".join(shared[:-1]) + f" and {shared[-1]}"
            lines.append(f"most of {units} lie in {cluster}: these clusters do not tell them apart")
    return lines


def _trust(report: dict, folder: Path) -> str:
    estimate = report.get("map_accuracy_estimate")
    pred = report.get("prediction", {})
    lines = []
    if estimate and estimate.get("overall_accuracy") is not None:
        lines.append(
            f"Expected accuracy over the mapped pixels: <b>{estimate['overall_accuracy']:.2f}</b> "
            f"(<code>expected_accuracy.tif</code>); {100 * estimate['aoa_fraction']:.1f}% of the "
            "pixels lie inside the area of applicability (<code>applicability.tif</code>)."
        )
        lines += [escape(words) for words in trust_words(report)]
    applicability = report.get("applicability") or {}
    reference, training = (
        applicability.get("reference_samples"),
        applicability.get("training_samples"),
    )
    complete = applicability.get("complete_samples", training)
    if reference and complete and reference < complete:
        lines.append(
            f"Dissimilarity was measured against a random {reference:,} of the {complete:,} "
            "training samples with data in every input (each costs one distance per pixel)."
        )
    elif complete and training and complete < training:
        lines.append(
            f"Dissimilarity was measured against the {complete:,} of the {training:,} training "
            "samples with data in every input; the others lie under a cloud or in a gap."
        )
    reduced = pred.get("reduced_input_pixels")
    if reduced:
        screened = pred.get("screened_pixels", 0)
        haze = f", or {screened:,} optical pixels unlike every observation" if screened else ""
        layer = (
            ": band 3 of <code>uncertainty.tif</code>"
            if (folder / "uncertainty.tif").exists()
            else ""
        )
        lines.append(
            f"{reduced:,} pixels were mapped from fewer inputs (no data in a raster, as under a "
            f"cloud{haze}){layer}."
        )
    sites = report.get("suggested_samples")
    if sites and sites.get("n_written"):
        lines.append(
            f"{sites['n_written']} field sites are suggested in "
            "<code>suggested_samples.gpkg</code>, ranked by how much an observation there would "
            "improve the map."
        )
    if not lines:
        return ""
    return "<h2>Where the map can be trusted</h2>" + "".join(f"<p>{t}</p>" for t in lines)


def _warnings(warnings: list[str]) -> str:
    if not warnings:
        return ""
    return "<h2>Warnings</h2>" + "".join(f'<div class="warn">{escape(w)}</div>' for w in warnings)


def _inputs(report: dict) -> str:
    grid = report.get("grid")
    if not grid:
        return ""
    out = (
        "<h2>Inputs</h2>"
        f"<p>Grid: {escape(str(grid['crs']))}, {grid['resolution'][0]:g} x "
        f"{grid['resolution'][1]:g} {escape(grid.get('units', ''))} per pixel, {grid['width']} x "
        f"{grid['height']} pixels.</p>"
    )
    fractions = report.get("prediction", {}).get("source_nodata_fraction") or []
    rows = []
    for i, s in enumerate(report.get("sources", [])):
        share = f"{100 * fractions[i]:.1f}%" if i < len(fractions) else ""
        rows.append(
            [
                escape(Path(s["path"]).name),
                escape(", ".join(s["bands"])),
                escape(str(s["crs"])),
                f"{_resolution(s['resolution'])} {escape(s.get('units', ''))}",
                escape(s["resampling"]),
                share,
            ]
        )
    out += _table(["raster", "bands", "CRS", "resolution", "resampling", "no data"], rows, (5,))
    counts = report.get("samples", {}).get("counts")
    labels = report.get("inputs", {}).get("labels")
    if counts and labels:
        out += f"<p>Observations: {escape(Path(labels[0]['path']).name)}, {_samples(counts)}.</p>"
    return out


def _resolution(res: list[float]) -> str:
    """A pixel's width, and its height where that differs (degrees of longitude and latitude)."""
    x, y = (f"{abs(v):.6g}" for v in res)
    return x if x == y else f"{x} x {y}"


def _samples(counts: dict) -> str:
    """What was read and what the model learnt from.

    '4 polygons read; 3,600 samples (pixels) trained on': it said '3600 samples used of 4 read',
    which read as an error.
    """
    read = [
        f"{counts[kind]:,} {kind[:-1] if counts[kind] == 1 else kind}"
        for kind in ("points", "polygons")
        if counts.get(kind)
    ]
    read = " and ".join(read) or f"{counts['observations']:,} observations"
    what = ""
    if counts.get("polygons"):
        what = " (the points and the polygons' pixels)" if counts.get("points") else " (pixels)"
    return f"{read} read; {counts['used']:,} samples{what} trained on"


def _importance(importance: dict | None) -> str:
    if not importance or not importance.get("by_source"):
        return ""
    rows = [[escape(k), f"{v:.2f}"] for k, v in importance["by_source"].items()]
    top = list(importance.get("features", {}).items())[:10]
    return (
        "<h2>What the model relies on</h2>"
        + _table(["raster", "share of importance"], rows, numeric=(1,))
        + "<p><small>Ten most important features: "
        + escape(", ".join(f"{k} ({v:.3f})" for k, v in top))
        + "</small></p>"
    )


def _files(folder: Path) -> str:
    rows = [
        [f"<code>{escape(p.name)}</code>", escape(FILE_NOTES[p.name])]
        for p in sorted(folder.iterdir())
        if p.name in FILE_NOTES
    ]
    return "<h2>Files</h2>" + _table(["file", "content"], rows) if rows else ""
