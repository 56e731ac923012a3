"""SOM runs end to end on a small generated scene: outputs, novelty, streaming, bad inputs."""

import json
import threading
import xml.etree.ElementTree as ET

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from PIL import Image
from threadpoolctl import threadpool_info, threadpool_limits

from geomap.apply import predict, suggest
from geomap.errors import InputDataError, LabelError, MissingFileError, ModelError
from geomap.export import OUTPUT_NAMES, load_model
from geomap.features import FeatureRecipe
from geomap.predict import iter_windows, single_threaded_blas
from geomap.report_html import observed_cluster_words
from geomap.som_stream import SOMLayers, stream_som
from geomap.som_workflow import sample_pixels, write_som_outputs
from geomap.stack import RasterStack
from geomap.subunits import SubunitConfig, subunits
from geomap.trust import SiteRequest, TrustLayers
from geomap.workflow import RunConfig, run

SOM = {"som_samples": 6000, "iterations": 2000, "block_size": 64, "cv_folds": 3}
UNOBSERVED = "basalt"


def _config(scene, out, **kw):
    return RunConfig(
        rasters=list(scene.rasters),
        labels=kw.pop("labels", None),
        label_column="lithology",
        out=out,
        **{"model": "som-clusters", **SOM, **kw},
    )


@pytest.fixture(scope="module")
def clusters_run(demo_scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("som") / "clusters"
    return out, run(_config(demo_scene, out))


@pytest.fixture(scope="module")
def som_run(demo_scene, tmp_path_factory):
    """A semi-supervised run whose observations of one unit were all removed."""
    tmp = tmp_path_factory.mktemp("som")
    points = gpd.read_file(demo_scene.points_gpkg)
    labels = tmp / "no_basalt.gpkg"
    points[points["lithology"] != UNOBSERVED].to_file(labels)
    out = tmp / "som"
    return out, run(_config(demo_scene, out, model="som", labels=labels))


def _read(path, band=None):
    with rasterio.open(path) as src:
        return src.read(band) if band else src.read()


def test_som_clusters_writes_styled_clusters_novelty_and_plots(clusters_run):
    out, report = clusters_run
    assert {p.name for p in out.iterdir()} == {
        "clusters.tif",
        "clusters.tif.aux.xml",
        "clusters.qml",
        "clusters_legend.csv",
        "quantization_error.tif",
        "som_u_matrix.png",
        "som_component_planes.png",
        "som_hit_map.png",
        "report.json",
        "report.html",
        "model.skops",
    }
    k = report["som"]["clusters"]["n_clusters"]
    names = [f"cluster {i + 1}" for i in range(k)]
    with rasterio.open(out / "clusters.tif") as src:
        assert src.dtypes == ("uint8",) and src.nodata == 255
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert json.loads(src.tags()["CLASS_NAMES"]) == names
        assert len({src.colormap(1)[i] for i in range(k)}) == k
        codes = src.read(1)
    assert set(np.unique(codes)) <= set(range(k))
    assert [
        e.get("label") for e in ET.parse(out / "clusters.qml").findall(".//paletteEntry")
    ] == names
    legend = pd.read_csv(out / "clusters_legend.csv")
    assert list(legend["name"]) == names and legend["mapped_pixels"].sum() == codes.size
    assert {"mean_K", "mean_tmi", "mean_elevation"} <= set(legend.columns)
    for name in ("som_u_matrix.png", "som_component_planes.png", "som_hit_map.png"):
        assert min(Image.open(out / name).size) > 300
    assert report["som"]["clusters"]["chosen_by"].startswith("best davies-bouldin")
    assert report["configuration"]["labels"] is None


def test_overwrite_knows_every_file_of_a_som_run(clusters_run, som_run):
    for out, _ in (clusters_run, som_run):
        assert all(OUTPUT_NAMES.fullmatch(p.name) for p in out.iterdir())


def test_quantization_error_and_its_percentile(clusters_run):
    out, _ = clusters_run
    with rasterio.open(out / "quantization_error.tif") as src:
        assert src.descriptions == ("quantization_error", "percentile", "missing_features")
        qe, pct, missing = src.read()
    assert np.isfinite(qe).all() and (qe >= 0).all()
    assert 0 <= np.nanmin(pct) and np.nanmax(pct) <= 100 and 40 < np.median(pct) < 60
    # under the cloud the landsat features are missing: matched over the others, and flagged
    assert (missing > 0.2).any() and (missing[missing > 0] < 1).all()


def test_som_clusters_agree_with_the_truth(clusters_run, demo_scene):
    from sklearn.metrics import normalized_mutual_info_score

    out, _ = clusters_run
    assert (
        normalized_mutual_info_score(
            _read(demo_scene.truth, 1).ravel(), _read(out / "clusters.tif", 1).ravel()
        )
        > 0.3
    )


def test_som_clusters_say_where_the_observations_lie(demo_scene, tmp_path):
    """The clusters are found without the observations; given them, each unit's samples are
    counted per cluster (to name the clusters), in a table, the report and report.html."""
    out = tmp_path / "clusters"
    report = run(_config(demo_scene, out, labels=demo_scene.points_gpkg))
    observed = report["som"]["clusters"]["observed"]
    assert observed["file"] == demo_scene.points_gpkg.name
    assert not [w for w in report["warnings"] if "not used" in w]
    table = pd.read_csv(out / "clusters_by_unit.csv")
    points = gpd.read_file(demo_scene.points_gpkg)
    with rasterio.open(out / "clusters.tif") as src:  # the same counts, found independently
        names = json.loads(src.tags()["CLASS_NAMES"])
        xy = points.to_crs(src.crs).geometry
        codes = np.array([v[0] for v in src.sample(zip(xy.x, xy.y), indexes=1)])
    assert sorted(table["unit"]) == sorted(points["lithology"].unique())
    for unit, row in table.set_index("unit").iterrows():
        here = codes[(points["lithology"] == unit).to_numpy()]
        assert row["samples"] == len(here)
        for code, name in enumerate(names):
            assert row.get(name, 0) == np.count_nonzero(here == code)
        top = observed["units"][unit]["clusters"]
        assert list(top.values()) == sorted(top.values(), reverse=True)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Where the observations of <code>" in html and "clusters_by_unit.csv" in html
    # a unit of many polygon pixels counts those drawn: '2,000 samples' said 'once per pixel'
    assert observed["pixels_per_unit"] == 2000
    assert "a polygon once per pixel drawn, at most 2,000 per unit;" in html
    tops = {}
    for unit, row in observed["units"].items():
        tops.setdefault(next(iter(row["clusters"])), []).append(unit)
    shared = [units for units in tops.values() if len(units) > 1]
    words = observed_cluster_words(report)
    assert len(words) == len(observed["units"]) + len(shared)
    for units in shared:  # units whose samples lie mostly in one cluster are named together
        assert any(f"{units[-2]} and {units[-1]} lie in cluster" in w for w in words)
    # a bad observations file is refused before any training, and nothing is written
    config = _config(demo_scene, tmp_path / "bad", labels=demo_scene.points_gpkg)
    config.label_column = "lithology_typo"
    with pytest.raises(LabelError, match="lithology_typo"):
        run(config)
    assert not (tmp_path / "bad").exists()


def test_som_writes_the_forest_outputs_with_validation(som_run, demo_scene):
    out, report = som_run
    names = {p.name for p in out.iterdir()}
    assert {
        "lithology.tif",
        "uncertainty.tif",
        "probabilities.tif",
        "legend.csv",
        "lithology.qml",
    } <= names
    assert {"clusters.tif", "quantization_error.tif", "label_distance.tif"} <= names
    for kind in ("random", "spatial"):
        assert 0 <= report["validation"][kind]["overall_accuracy"] <= 1
    assert report["validation"]["by_kind"] is None  # field points only
    classes = [n for n in demo_scene.class_names if n != UNOBSERVED]
    assert json.loads(rasterio.open(out / "lithology.tif").tags()["CLASS_NAMES"]) == classes
    np.testing.assert_allclose(_read(out / "probabilities.tif").sum(axis=0), 1, atol=1e-5)
    truth = _read(demo_scene.truth, 1)
    lith = np.array(classes)[_read(out / "lithology.tif", 1)]
    observed = truth != demo_scene.class_names.index(UNOBSERVED)
    truth_names = np.array(demo_scene.class_names)[truth]
    assert (lith[observed] == truth_names[observed]).mean() > 0.5
    assert report["som"]["labelled_nodes"] > 0


def test_label_distance_stands_out_over_the_unit_nobody_observed(som_run, demo_scene):
    out, _ = som_run
    distance = _read(out / "label_distance.tif", 1)
    unobserved = _read(demo_scene.truth, 1) == demo_scene.class_names.index(UNOBSERVED)
    assert np.nanmean(distance[unobserved]) > 2 * np.nanmean(distance[~unobserved])


def test_predict_with_a_som_bundle_reproduces_every_layer_at_any_block_size(
    som_run, demo_scene, tmp_path
):
    out, trained = som_run
    bundle = load_model(out / "model.skops")
    assert bundle["kind"] == "som" and bundle["cluster_stem"] == "clusters"
    again = tmp_path / "again"
    report = predict(out / "model.skops", list(demo_scene.rasters), again, block_size=16)
    assert report["prediction"]["mapped_pixels"] == 160 * 160
    screened = report["prediction"]["screened_pixels"]
    assert screened == trained["prediction"]["screened_pixels"] > 0  # the bundle's screen
    for name in (
        "lithology.tif",
        "probabilities.tif",
        "uncertainty.tif",
        "clusters.tif",
        "quantization_error.tif",
        "label_distance.tif",
        "applicability.tif",
        "expected_accuracy.tif",
    ):
        np.testing.assert_array_equal(_read(out / name), _read(again / name), err_msg=name)
    # the model's training figures come along, as a forest's do (the report and its page)
    assert "training" not in trained
    training = report["training"]
    spatial = trained["validation"]["spatial"]["overall_accuracy"]
    assert training["validation"]["spatial"]["overall_accuracy"] == spatial
    assert training["samples_per_class"] == list(trained["samples"]["per_class"].values())
    assert sum(training["map_share_per_class"]) == pytest.approx(1, abs=1e-4)
    page = (again / "report.html").read_text(encoding="utf-8")
    assert "share at training" in page and f"{spatial:.3f}" in page


def test_som_maps_where_it_can_be_trusted_and_suggests_sites(som_run, demo_scene):
    out, report = som_run
    assert report["configuration"]["max_per_class"] == 25_000  # votes are cheap: many drawn
    di, aoa = _read(out / "applicability.tif")
    accuracy = _read(out / "expected_accuracy.tif", 1)
    assert ((accuracy >= 0) & (accuracy <= 1)).all()
    estimate = report["map_accuracy_estimate"]
    assert estimate["overall_accuracy"] == pytest.approx(accuracy.mean(), abs=1e-6)
    # the unit nobody observed is less like the training data than the observed ones
    unobserved = _read(demo_scene.truth, 1) == demo_scene.class_names.index(UNOBSERVED)
    assert di[unobserved].mean() > di[~unobserved].mean()
    assert (1 - aoa[unobserved]).mean() > (1 - aoa[~unobserved]).mean()
    by_input = estimate["outside_aoa_dissimilarity_by_input"]  # as for the forest
    assert set(by_input) == {p.name for p in demo_scene.rasters}
    assert sum(by_input.values()) == pytest.approx(1, abs=0.01)
    sites = gpd.read_file(out / "suggested_samples.gpkg")
    assert len(sites) == report["suggested_samples"]["n_written"] == 30


def test_suggest_from_a_som_bundle_is_refused_with_the_way_to_do_it(som_run, demo_scene, tmp_path):
    out, _ = som_run
    sites = tmp_path / "sites.gpkg"
    with pytest.raises(ModelError, match="'som' bundle.*--suggest N to `geomap run --model som`"):
        suggest(out / "model.skops", list(demo_scene.rasters), sites, SiteRequest(5))
    assert not sites.exists()


def test_a_labelled_som_votes_with_the_area_weights_in_its_folds_and_its_map(
    demo_scene, tmp_path, monkeypatch
):
    """The legacy patch's pixels weigh by their unit's area in every fit of the node labels."""
    import geomap.som_workflow as workflow
    from geomap.models import SOMClassifier

    votes, weights = [], []
    real_votes, real_fit = workflow.vote_weights, SOMClassifier.fit
    monkeypatch.setattr(
        workflow, "vote_weights", lambda *a: votes.append(real_votes(*a)) or votes[-1]
    )
    monkeypatch.setattr(
        SOMClassifier,
        "fit",
        lambda self, X, y, sample_weight=None: (
            weights.append(sample_weight) or real_fit(self, X, y, sample_weight)
        ),
    )
    out = tmp_path / "patch"
    patch = demo_scene.polygons_gpkg
    run(_config(demo_scene, out, model="som", labels=patch, cv_folds=2, max_per_class=50))
    (vote,) = votes
    assert vote.std() > 0  # the patch's units differ in area
    assert len(weights) == 2 + 2 + 1  # random and spatial folds, then the map's labels
    np.testing.assert_array_equal(weights[-1], vote)
    assert all(w is not None and set(np.unique(w)) <= set(np.unique(vote)) for w in weights)


def test_a_som_run_without_applicability_writes_no_trust_maps(som_run, demo_scene, tmp_path):
    """--no-applicability: no applicability or expected accuracy maps (the bundle keeps it)."""
    out, _ = som_run
    bundle = load_model(out / "model.skops")
    with RasterStack.open(list(demo_scene.rasters)) as stack:
        recipe = FeatureRecipe.from_dict(bundle["recipe"])
        report, notes = write_som_outputs(
            tmp_path, stack, recipe, bundle, 128, None, applicability=False
        )
    assert "map_accuracy_estimate" not in report and "prediction" in report
    assert "screen_notes" not in report and isinstance(notes, list)
    assert (tmp_path / "lithology.stream.tif").exists() or (tmp_path / "lithology.tif").exists()
    assert not (tmp_path / "applicability.tif").exists()
    assert not (tmp_path / "expected_accuracy.tif").exists()


def test_som_clusters_have_no_applicability(clusters_run):
    out, report = clusters_run
    assert not (out / "applicability.tif").exists() and "map_accuracy_estimate" not in report


def test_subunits_of_one_unit(som_run, demo_scene, tmp_path):
    out, _ = som_run
    config = SubunitConfig(
        map=out / "lithology.tif",
        unit="granite",
        rasters=list(demo_scene.rasters),
        out=tmp_path / "sub",
        clusters=3,
        iterations=1000,
        block_size=64,
    )
    report = subunits(config)
    codes = _read(tmp_path / "sub" / "subunits.tif", 1)
    granite = _read(out / "lithology.tif", 1) == json.loads(
        rasterio.open(out / "lithology.tif").tags()["CLASS_NAMES"]
    ).index("granite")
    assert (codes[~granite] == 255).all() and set(np.unique(codes[granite])) == {0, 1, 2}
    assert report["prediction"]["mapped_pixels"] == granite.sum()
    legend = pd.read_csv(tmp_path / "sub" / "subunits_legend.csv")
    assert list(legend["name"]) == ["granite subunit 1", "granite subunit 2", "granite subunit 3"]
    assert (tmp_path / "sub" / "som_u_matrix.png").exists()
    assert all(OUTPUT_NAMES.fullmatch(p.name) for p in (tmp_path / "sub").iterdir())
    page = (tmp_path / "sub" / "report.html").read_text(encoding="utf-8")
    assert "model: SOM sub-units of granite in lithology.tif" in page
    assert "random forest" not in page and "<code>clusters.tif</code>" not in page
    assert "<code>subunits.tif</code>: the sub-units of the pixels" in page
    with pytest.raises(ModelError, match="cannot be applied with `geomap predict`"):
        predict(tmp_path / "sub" / "model.skops", list(demo_scene.rasters), tmp_path / "p")


def test_a_unit_not_in_the_map_is_refused_with_the_names(som_run, demo_scene, tmp_path):
    out, _ = som_run
    config = SubunitConfig(
        map=out / "lithology.tif",
        unit="Granite",
        rasters=list(demo_scene.rasters),
        out=tmp_path / "sub",
    )
    with pytest.raises(InputDataError, match=r"Did you mean 'granite'\? Its units are: .*'gran"):
        subunits(config)
    assert not (tmp_path / "sub").exists()


def test_a_unit_is_found_by_the_users_own_code_in_the_runs_legend(tmp_path):
    """`--unit 4` (the legacy map's code for basalt) was refused: the map names its units."""
    from geomap.subunits import unit_code

    path = tmp_path / "lithology.tif"
    profile = {"driver": "GTiff", "width": 2, "height": 2, "count": 1, "dtype": "uint8"}
    profile.update(crs="EPSG:32633", transform=rasterio.transform.from_origin(0, 60, 30, 30))
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.zeros((1, 2, 2), "uint8"))
        dst.update_tags(CLASS_NAMES=json.dumps(["sandstone", "basalt"]))
    (tmp_path / "legend.csv").write_text(
        "code,name,value,colour\n0,sandstone,1,#f4e19c\n1,basalt,4; 7,#2f4f4f\n"
    )
    with rasterio.open(path) as src:
        assert unit_code(src, path, "4") == unit_code(src, path, "7") == 1
        assert unit_code(src, path, "sandstone") == 0
        with pytest.raises(InputDataError, match="Unit '9' is not in the map"):
            unit_code(src, path, "9")


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        ("observations", InputDataError, "is not a raster GDAL can read .*not a map to split"),
        ("run folder", MissingFileError, "is a folder: give its class map, '.*lithology.tif'"),
    ],
)
def test_a_map_that_is_not_a_class_raster_is_refused_in_words(
    som_run, demo_scene, tmp_path, given, error, message
):
    out, _ = som_run
    path = demo_scene.polygons_gpkg if given == "observations" else out
    config = SubunitConfig(
        map=path, unit="granite", rasters=list(demo_scene.rasters), out=tmp_path / "sub"
    )
    with pytest.raises(error, match=message):
        subunits(config)
    assert not (tmp_path / "sub").exists()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"model": "som"}, "learns from field observations; give --labels"),
        ({"clusters": 150, "som_size": (10, 10)}, "--clusters 150 does not fit a SOM of 100 nodes"),
        ({"clusters": 300, "som_size": (20, 20)}, "a class map holds at most 255 classes"),
        ({"som_size": (100, 100)}, "10000 nodes is larger than its training sample"),
        ({"smooth": 3}, "--smooth 3 applies to the random forest only"),
        ({"spectral_screen": False}, "--no-spectral-screen applies to models learnt from obs"),
        ({"model": "kohonen"}, "Available: rf, som, som-clusters"),
    ],
)
def test_bad_som_options_are_refused_and_write_nothing(demo_scene, tmp_path, options, error):
    out = tmp_path / "out"
    with pytest.raises(ModelError, match=error):
        run(_config(demo_scene, out, **options))
    assert not out.exists()


def test_a_labelled_som_maps_the_haze_the_mask_missed_without_the_image(demo_scene, tmp_path):
    """The forest's spectral screen, now the labelled SOM's: haze and cloud shadow were matched
    on their spectra (the demo's haze ring 0.255 right, shadow 0.367; screened 0.635, 0.831;
    here both together 0.04, screened 0.84)."""
    from geomap.synthetic._rasters import _cloud, _cloud_radius

    labels = demo_scene.points_gpkg
    runs = {
        screen: run(_config(demo_scene, tmp_path / str(screen), model="som", labels=labels,
                            spectral_screen=screen))
        for screen in (True, False)
    }  # fmt: skip
    [screen] = runs[True]["spectral_screen"]
    assert screen["active"] and screen["sources"] == [0]
    assert runs[False]["spectral_screen"] is None
    assert runs[False]["prediction"]["screened_pixels"] == 0
    with rasterio.open(demo_scene.truth) as src:
        truth = src.read(1)
        rows, cols = np.mgrid[0 : src.height, 0 : src.width]
        x, y = src.transform @ (cols + 0.5, rows + 0.5)
    cloud = _cloud(160, 30.0, 3)
    r = _cloud_radius(x, y, cloud, 3)
    artefact = ((r >= 1) & (r < 1.3)) | (
        (_cloud_radius(x, y, cloud, 3, cloud.shadow) < 1) & (r >= 1)
    )
    right = {}
    for screened in (True, False):
        out = tmp_path / str(screened)
        lithology, missing = _read(out / "lithology.tif", 1), _read(out / "uncertainty.tif", 3)
        right[screened] = (lithology == truth)[artefact].mean()
        flagged = (missing > 0) & (r >= 1)  # the cloud itself is no data in landsat
        assert flagged.sum() == runs[screened]["prediction"]["screened_pixels"]
    assert right[True] > right[False] + 0.15


def test_sample_is_bounded_valid_and_reproducible(demo_scene):
    with RasterStack.open(demo_scene.rasters) as stack:
        from geomap.features import FeatureRecipe

        recipe = FeatureRecipe.build(stack.band_names, stack.band_source, 30.0)
        a = sample_pixels(stack, recipe, 3000, 1)
        b = sample_pixels(stack, recipe, 3000, 1)
    assert a.shape == (3000, recipe.n_features) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)


def test_streamed_som_layers_equal_a_serial_computation_on_the_raw_features(
    som_run, demo_scene, tmp_path
):
    """Matched in this thread, written (and the applicability computed) in the writer thread."""
    out, _ = som_run
    bundle = load_model(out / "model.skops")
    recipe = FeatureRecipe.from_dict(bundle["recipe"])
    clf, som = bundle["estimator"], bundle["clusters"].som_
    names, calls = bundle["class_names"], []
    layers = SOMLayers(
        bundle["clusters"], bundle["cluster_names"], bundle["cluster_colours"], "clusters",
        clf, names, bundle["colours"],
    )  # fmt: skip
    with RasterStack.open(list(demo_scene.rasters)) as stack:
        trust = TrustLayers(bundle["applicability"], names, stack.grid)
        stream_som(
            stack, recipe, layers, tmp_path, block_size=48, hooks=[trust],
            progress=lambda done, total: calls.append((done, total, threading.get_ident())),
        )  # fmt: skip
        expected = []
        for _, _, job in iter_windows(stack, recipe, 48):
            bmu, _ = som.bmu(job.X)  # a copy: job.X stays the raw features
            P = clf.proba_of(bmu)
            expected.append((job.win, bmu, bundle["applicability"].transform(job.X, P)[0]))
    n = len(expected)
    assert n > 1 and calls == [(i, n, threading.get_ident()) for i in range(1, n + 1)]
    with (
        rasterio.open(tmp_path / "clusters.stream.tif") as clusters,
        rasterio.open(tmp_path / "lithology.stream.tif") as lith,
        rasterio.open(tmp_path / "applicability.tif") as app,
    ):
        for win, bmu, di in expected:
            shape = (int(win.height), int(win.width))
            cluster = bundle["clusters"].cluster_of(bmu).reshape(shape)
            assert np.array_equal(clusters.read(1, window=win), cluster)
            codes = np.argmax(clf.proba_of(bmu), axis=1).reshape(shape)
            assert np.array_equal(lith.read(1, window=win), codes)
            assert np.array_equal(app.read(1, window=win), di.reshape(shape), equal_nan=True)


def test_a_som_stream_keeps_blas_single_threaded_for_a_stream_that_started_during_it(
    clusters_run, demo_scene, tmp_path
):
    """Two app sessions: a forest's stream starts while a SOM streams and outlives it."""
    out, _ = clusters_run
    bundle = load_model(out / "model.skops")
    layers = SOMLayers(bundle["clusters"], bundle["cluster_names"], bundle["cluster_colours"])
    other = single_threaded_blas()

    def start_the_other(done, total):
        if done == 1:
            other.__enter__()

    with threadpool_limits(2, user_api="blas"), RasterStack.open(list(demo_scene.rasters)) as s:
        stream_som(
            s, FeatureRecipe.from_dict(bundle["recipe"]), layers, tmp_path, block_size=64,
            progress=start_the_other,
        )  # fmt: skip
        assert _blas_threads() == {1}  # the other stream still runs
        other.__exit__(None, None, None)
        assert _blas_threads() == {2}


def _blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_units_lying_mostly_in_one_cluster_are_named_together():
    units = {
        "granite": {"samples": 25, "clusters": {"cluster 1": 24, "cluster 3": 1}},
        "shale": {"samples": 102, "clusters": {"cluster 1": 76, "cluster 4": 20, "cluster 3": 3}},
        "basalt": {"samples": 14, "clusters": {}},  # all on the clusters' nodata
    }
    som = {"clusters": {"observed": {"file": "f.gpkg", "table": "t.csv", "units": units}}}
    assert observed_cluster_words({"som": som}) == [
        "granite (25 samples): cluster 1 96%, cluster 3 4%",
        "shale (102 samples): cluster 1 77%, cluster 4 20%, cluster 3 3%",
        "basalt (14 samples): none on the clusters' map",
        "most of granite and shale lie in cluster 1: these clusters do not tell them apart",
    ]
    assert observed_cluster_words({"som": {"clusters": {}}}) == []
