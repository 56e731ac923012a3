"""report.html: the run for people, self-contained, matching report.json and legend.csv."""

from __future__ import annotations

import csv
import json
from html.parser import HTMLParser

from geomap.report_html import _samples, write_report_html
from geomap.trust import reduced_input_words


class _Page(HTMLParser):
    """Text of the page, its headings, table rows and any external reference."""

    def __init__(self) -> None:
        super().__init__()
        self.text, self.headings, self.rows, self.external = [], [], [], []
        self._row, self._tag = None, None

    def handle_starttag(self, tag, attrs):
        self._tag = tag
        if tag == "tr":
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._row.append("")
        for name, value in attrs:
            if name in ("src", "href") or (value and "url(" in value):
                self.external.append(value)
        if tag == "script":
            self.external.append("script")

    def handle_endtag(self, tag):
        if tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._tag in ("h1", "h2"):
            self.headings.append(data)
        if self._row:
            self._row[-1] += data.strip()


def _page(path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_the_page_shows_the_runs_units_accuracy_and_trust(demo_run):
    out, report = demo_run
    page = _page(out / "report.html")
    assert page.headings[0] == f"geomap map report: {out.name}"  # the folder, not the staging one
    warned = ["Warnings"] if report["warnings"] else []
    checks = report["observations_to_check"]
    assert checks["n_listed"] > 0 and checks["first"][0]["site"] in page.text
    assert page.headings[1:] == [
        "Map units",
        "Accuracy",
        "Observations to check",
        "Where the map can be trusted",
        *warned,
        "Inputs",
        "What the model relies on",
        "Files",
    ]
    assert all(w in page.text for w in report["warnings"])
    assert not page.external  # opens offline, from a field laptop or an e-mail
    with open(out / "legend.csv", encoding="utf-8") as f:
        legend = list(csv.DictReader(f))
    for unit in legend:
        assert [unit["name"], unit["training_samples"]] == next(
            r[1:3] for r in page.rows if len(r) > 2 and r[1] == unit["name"]
        )
    spatial = report["validation"]["spatial"]
    random_ = report["validation"]["random"]
    assert ["overall accuracy", f"{spatial['overall_accuracy']:.3f}",
            f"{random_['overall_accuracy']:.3f}"] in page.rows  # fmt: skip
    text = " ".join(page.text)
    assert report["validation"]["summary"] in text
    names = list(spatial["per_class_recall"])
    confusion = [r for r in page.rows if r and r[0] in names and len(r) == len(names) + 1]
    assert [[int(v) for v in r[1:]] for r in confusion] == spatial["confusion_matrix"]
    estimate = report["map_accuracy_estimate"]["overall_accuracy"]
    assert f"Expected accuracy over the mapped pixels: {estimate:.2f}" in "".join(page.text)
    reduced = reduced_input_words(report["map_accuracy_estimate"])  # the demo's cloud
    assert reduced and reduced in text
    assert ["report.json", "every figure of report.html and the full configuration"] in page.rows
    (radiometrics,) = [s for s in report["sources"] if s["path"].endswith("radiometrics.tif")]
    x, y = radiometrics["resolution"]  # degrees, a pixel taller than wide: both were one number
    assert f"{x:.6g} x {y:.6g} degrees" in [
        r[3] for r in page.rows if r[0] == "radiometrics.tif" and len(r) > 3
    ]
    counts = report["samples"]["counts"]
    assert (
        f"Observations: field_points.gpkg, {counts['points']} points read; {counts['used']} "
        "samples trained on."
    ) in text


def test_polygons_read_are_not_confused_with_their_pixels():
    """report.html said '3600 samples used of 4 read' of four polygons (user pass)."""
    counts = {"observations": 4, "points": 0, "polygons": 4, "used": 3600}
    assert _samples(counts) == "4 polygons read; 3,600 samples (pixels) trained on"
    counts = {"observations": 2, "points": 1, "polygons": 1, "used": 41}
    assert _samples(counts) == (
        "1 point and 1 polygon read; 41 samples (the points and the polygons' pixels) trained on"
    )


def test_a_predicted_map_shows_the_training_figures(demo_run, demo_scene, tmp_path):
    from geomap.apply import predict

    out, report = demo_run
    again = tmp_path / "sheet_2"
    predict(out / "model.skops", list(demo_scene.rasters), again)
    page = _page(again / "report.html")
    assert page.headings[0] == "geomap map report: sheet_2"
    assert "Accuracy" in page.headings
    assert "Cross-validation of the model when it was trained." in page.text
    assert report["validation"]["summary"] in " ".join(page.text)
    header = next(r for r in page.rows if "unit" in r)
    assert header[-2:] == ["share", "share at training"]  # the same rasters: the same shares
    units = [
        r for r in page.rows if len(r) > 1 and r[1] in report["prediction"]["pixels_per_class"]
    ]
    assert len(units) == 6 and all(row[-1] == row[-2] for row in units)
    trained = _page(out / "report.html")  # the training's own page has no such column
    assert "share at training" not in next(r for r in trained.rows if "unit" in r)


def test_names_and_warnings_are_escaped(tmp_path):
    legend = tmp_path / "legend.csv"
    legend.write_text(
        "code,name,colour,training_samples,mapped_pixels,mapped_area_km2\n"
        '0,"<b>Granite & co</b>",#ff0000,10,100,0.09\n1,"Basalt ""Ö""",#00ff00,5,50,0.045\n',
        encoding="utf-8",
    )
    report = {"warnings": ["Class '<script>x</script>' has 1 sample"], "geomap_version": "t"}
    write_report_html(tmp_path / "report.html", report, "run <1>")
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script>" not in html and "<b>Granite" not in html
    page = _page(tmp_path / "report.html")
    assert page.headings[0] == "geomap map report: run <1>"
    assert ["", "<b>Granite & co</b>", "10", "0.09", "66.7%"] in page.rows
    assert "Class '<script>x</script>' has 1 sample" in page.text
    json.dumps(report)  # the report is left as it was given


def test_the_page_says_when_dissimilarity_used_a_subset_of_the_samples(tmp_path):
    report = {
        "map_accuracy_estimate": {"overall_accuracy": 0.9, "aoa_fraction": 0.95},
        "applicability": {"reference_samples": 2000, "training_samples": 12000},
    }
    write_report_html(tmp_path / "report.html", report, "patch")
    text = " ".join(_page(tmp_path / "report.html").text)
    assert "measured against a random 2,000 of the 12,000 training samples with data" in text
    report["applicability"] = {"reference_samples": 300, "training_samples": 300}
    write_report_html(tmp_path / "report.html", report, "points")
    assert "measured against" not in " ".join(_page(tmp_path / "report.html").text)
    report["applicability"] = {
        "reference_samples": 282,
        "complete_samples": 282,
        "training_samples": 300,
    }
    report["prediction"] = {"reduced_input_pixels": 4723}
    write_report_html(tmp_path / "report.html", report, "cloud")  # no uncertainty.tif beside it
    text = " ".join(_page(tmp_path / "report.html").text)
    assert "measured against the 282 of the 300 training samples with data in every input" in text
    assert "4,723 pixels were mapped from fewer inputs" in text and "band 3" not in text


def test_a_map_with_no_mapped_pixel_gets_a_page(tmp_path):
    report = {
        "map_accuracy_estimate": {"overall_accuracy": None, "aoa_fraction": None},
        "prediction": {"mapped_pixels": 0},
    }
    write_report_html(tmp_path / "report.html", report, "empty")
    text = " ".join(_page(tmp_path / "report.html").text)
    assert "Expected accuracy over the mapped pixels" not in text


def test_a_som_run_says_its_map_size_clusters_and_shows_its_plots(tmp_path):
    """The SOM's page named its clusters but not how many nodes, why k, nor the plots."""
    for name in ("som_u_matrix.png", "som_hit_map.png"):
        (tmp_path / name).write_bytes(b"\x89PNG")
    som = {
        "shape": [8, 10],
        "nodes": 80,
        "iterations": 3000,
        "training_pixels": 6000,
        "mean_quantization_error": 1.234,
        "empty_nodes": 3,
        "clusters": {
            "n_clusters": 4,
            "method": "kmeans",
            "chosen_by": "best silhouette index of 2..12 clusters (codebook nodes holding "
            "training pixels)",
            "scores": {"2": 0.31, "3": 0.35, "4": 0.42, "5": 0.28},
        },
        "labelled_nodes": 37,
        "label_bandwidth": 0.8123,
    }
    write_report_html(tmp_path / "report.html", {"som": som}, "som run")
    page = _page(tmp_path / "report.html")
    text = " ".join(" ".join(page.text).split())
    assert "Self-organizing map" in page.headings
    assert (
        "The self-organizing map: 8 x 10 nodes (3 of the 80 holding no training pixel), "
        "trained on 6,000 pixels in 3,000 iterations; mean quantization error 1.23 (distance in "
        "standardised features). Its nodes form 4 clusters (kmeans): chosen by the best "
        "silhouette index of 2..12 clusters (codebook nodes holding training pixels); higher "
        "is better: 4 clusters 0.42, then 3 clusters 0.35." in text
    )
    assert "37 nodes hold observations; every other node takes the classes" in text
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "The clusters are <code>clusters.tif</code>, found without the observations." in html
    # inside the page: downloaded alone, images beside it broke (user pass)
    assert page.external == ["data:image/png;base64,iVBORw==", "data:image/png;base64,iVBORw=="]
    som["clusters"] = {"n_clusters": 5, "method": "ward", "chosen_by": "the number asked for"}
    write_report_html(tmp_path / "report.html", {"som": som}, "som run")
    assert "Its nodes form 5 clusters (ward): as many as asked for." in " ".join(
        " ".join(_page(tmp_path / "report.html").text).split()
    )
