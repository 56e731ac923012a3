import numpy as np
import pytest
import rasterio
from affine import Affine
from rasterio.crs import CRS

from geomap.errors import ModelError, OutputExistsError
from geomap.export import (
    add_overviews,
    class_colours,
    hex_colour,
    lab_colour,
    raster_profile,
    staged_output,
    style_class_raster,
    to_cog,
)
from geomap.grid import Grid


def test_known_rock_names_get_conventional_colours_and_others_a_palette():
    colours = class_colours(["Granite (Permian)", "basalt", "unit 7", "unit 8"])
    assert colours[0] == (239, 120, 130) and colours[1] == (70, 140, 80)
    assert colours[2] != colours[3]
    assert hex_colour((255, 0, 16)) == "#ff0010"
    # the same rocks in other languages: "grès" lost sandstone's yellow for the palette's red
    others = class_colours(["Grès", "Calcaire récifal", "Arenisca roja", "Kalkstein", "progres"])
    assert others[0] == class_colours(["sandstone"])[0]
    assert others[1] == class_colours(["limestone"])[0]
    assert others[4] not in class_colours(["sandstone", "limestone"])
    # a one-point typo sorted first does not take the rock colour from the unit of 61 points
    typo, unit = class_colours(["Aluvion", "Aluvión"], samples=[1, 61])
    assert unit == class_colours(["alluvium"])[0] and typo != unit


def test_units_mapped_side_by_side_get_colours_told_apart():
    """Alluvium and colluvium, limestone and dolomite, basalt and dolerite: 7 to 12 apart (CIE76)
    before; alluvium and sandstone, confused in the demo's observation dots, 33."""
    pairs = [
        ("alluvium", "colluvium"),
        ("limestone", "dolomite"),
        ("basalt", "dolerite"),
        ("alluvium", "sandstone"),
        ("granite", "granodiorite"),
        ("shale", "mudstone"),
    ]
    for a, b in pairs:
        ca, cb = class_colours([a, b])
        assert np.linalg.norm(lab_colour(ca) - lab_colour(cb)) >= 20, (a, b)
    assert (
        np.linalg.norm(
            lab_colour(class_colours(["alluvium"])[0]) - lab_colour(class_colours(["sandstone"])[0])
        )
        > 40
    )


def test_a_greenstone_belts_units_take_their_rocks_colours():
    """'Diabase dyke' took the palette's red beside granodiorite's crimson, 'Mafic volcanics'
    purple, 'Felsic volcanics' blue."""
    names = ["Mafic volcanics", "Felsic volcanics", "Metasedimentary rocks", "Diabase dyke"]
    rocks = ["basalt", "rhyolite", "mudstone", "dolerite"]
    assert class_colours(names) == class_colours(rocks)
    ultramafic = class_colours(["Ultramafic volcanics (komatiite)"])
    assert ultramafic == class_colours(["ultramafic"])  # not the mafic volcanics' green


def test_a_yilgarn_sheets_regolith_and_iron_formations_take_their_colours():
    """Laterite took the palette's blue (#377eb8) beside the limestone's."""
    laterite, bif = class_colours(["Laterite", "Banded iron formation"])
    assert class_colours(["Ferricrete"]) == [laterite] and class_colours(["BIF"]) == [bif]
    limestone = class_colours(["limestone"])[0]
    assert (
        laterite != (55, 126, 184)
        and np.linalg.norm(lab_colour(laterite) - lab_colour(limestone)) > 20
    )
    assert np.linalg.norm(lab_colour(laterite) - lab_colour(bif)) >= 20


def test_a_failed_block_leaves_nothing(tmp_path):
    out = tmp_path / "map"
    with pytest.raises(RuntimeError), staged_output(out, overwrite=False) as tmp:
        (tmp / "lithology.tif").write_text("half")
        raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_overwrite_keeps_the_old_folder_until_the_new_one_is_complete(tmp_path):
    out = tmp_path / "map"
    out.mkdir()
    (out / "report.json").write_text("old")
    with pytest.raises(RuntimeError), staged_output(out, overwrite=True):
        raise RuntimeError("crash")
    assert (out / "report.json").read_text() == "old"
    inode = out.stat().st_ino
    with staged_output(out, overwrite=True) as tmp:
        (tmp / "legend.csv").write_text("new")
    assert [p.name for p in out.iterdir()] == ["legend.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["map"]
    assert out.stat().st_ino == inode  # the same folder: a shell inside it sees the new files
    with pytest.raises(OutputExistsError):
        with staged_output(out, overwrite=False):
            pass


def test_a_failure_while_moving_the_files_in_puts_the_old_run_back(tmp_path, monkeypatch):
    import os

    out = tmp_path / "map"
    out.mkdir()
    (out / "report.json").write_text("old")
    (out / "legend.csv").write_text("old")
    real, calls = os.replace, []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 4:  # two old files set aside, one new moved in, then the disk fails
            raise OSError("disk full")
        real(src, dst)

    with pytest.raises(OSError, match="disk full"):
        with staged_output(out, overwrite=True) as tmp:
            (tmp / "legend.csv").write_text("new")
            (tmp / "report.json").write_text("new")
            monkeypatch.setattr(os, "replace", flaky)
    monkeypatch.undo()
    assert {p.name: p.read_text() for p in out.iterdir()} == {
        "report.json": "old",
        "legend.csv": "old",
    }
    assert [p.name for p in tmp_path.iterdir()] == ["map"]


def test_an_output_folder_given_as_a_link_is_filled_where_it_points(tmp_path):
    target = tmp_path / "disk" / "maps"
    target.mkdir(parents=True)
    link = tmp_path / "maps"
    link.symlink_to(target)
    with staged_output(link, overwrite=False) as tmp:
        (tmp / "report.json").write_text("new")
    assert (target / "report.json").read_text() == "new" and link.is_symlink()
    assert sorted(p.name for p in (tmp_path / "disk").iterdir()) == ["maps"]


def _grid(n):
    return Grid(CRS.from_epsg(32633), Affine(30, 0, 500000, 0, -30, 5200000), n, n)


def test_class_map_becomes_a_cog_with_colours_and_overviews(tmp_path):
    grid = _grid(1100)
    stream = tmp_path / "s.tif"
    with rasterio.open(stream, "w", **raster_profile(grid, 1, "uint8", 255)) as dst:
        style_class_raster(dst, ["a", "b"], [(1, 2, 3), (4, 5, 6)])
        dst.write((np.indices((1100, 1100)).sum(axis=0) % 2).astype("uint8")[None])
    to_cog(stream, tmp_path / "cog.tif")
    with rasterio.open(tmp_path / "cog.tif") as src:
        assert src.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert src.overviews(1) == [2, 4, 8]
        assert src.colormap(1)[1] == (4, 5, 6, 255)
        assert src.tags()["CLASS_NAMES"] == '["a", "b"]'
        assert src.compression.name == "deflate"


def test_float_outputs_get_averaged_overviews(tmp_path):
    grid = _grid(600)
    path = tmp_path / "p.tif"
    with rasterio.open(path, "w", **raster_profile(grid, 2, "float32", np.nan)) as dst:
        dst.write(np.ones((2, 600, 600), "float32"))
    add_overviews(path)
    with rasterio.open(path) as src:
        assert src.overviews(1) == [2, 4]
        assert src.read(1, out_shape=(150, 150)).mean() == pytest.approx(1.0)


def test_a_many_class_model_is_saved_compressed_and_loads_the_same(tmp_path):
    import zipfile

    from sklearn.ensemble import RandomForestClassifier

    from geomap.export import load_model, save_model

    rng = np.random.default_rng(0)
    X = rng.normal(size=(3000, 5)).astype("float32")
    y = rng.integers(0, 60, 3000)  # node tables of 60 class weights, mostly zeros
    forest = RandomForestClassifier(10, random_state=0).fit(X, y)
    path = tmp_path / "m.skops"
    save_model(path, {"format": "geomap-model", "estimator": forest})
    arrays = sum(t.tree_.value.nbytes for t in forest.estimators_)
    with zipfile.ZipFile(path) as z:
        assert {i.compress_type for i in z.infolist()} == {zipfile.ZIP_DEFLATED}
    assert path.stat().st_size < arrays / 4
    loaded = load_model(path)["estimator"]
    assert np.array_equal(loaded.predict_proba(X), forest.predict_proba(X))


@pytest.mark.parametrize("cut", [None, 0.5])
def test_a_model_file_that_is_no_zip_or_cut_short_is_named_so(tmp_path, cut):
    """'(BadZipFile: File is not a zip file)' was all a user uploading the wrong file read."""
    from geomap.export import load_model, save_model

    path = tmp_path / "model.skops"
    if cut is None:
        path.write_bytes(b"II*\x00 a GeoTIFF given for the model")
    else:
        save_model(path, {"format": "geomap-model", "values": np.arange(10_000)})
        path.write_bytes(path.read_bytes()[: int(path.stat().st_size * cut)])
    with pytest.raises(ModelError, match="not even a skops file .a zip archive., or it was cut"):
        load_model(path)


def test_a_zip_of_a_runs_files_given_as_the_model_is_named_so(tmp_path):
    """'KeyError: There is no item named 'schema.json' in the archive' (user pass)."""
    import zipfile

    from geomap.export import load_model

    path = tmp_path / "geomap-run.skops"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("lithology.tif", b"II*\x00")
    with pytest.raises(ModelError, match="it is a zip archive, not a skops file. Give the model"):
        load_model(path)


def test_a_legacy_map_of_many_units_gets_a_colour_each():
    names = [f"unit {i}" for i in range(100)] + ["granite"]
    colours = class_colours(names, fixed={"unit 3": (228, 26, 28)})  # the palette's first
    assert len(set(colours)) == len(names)
    assert colours[3] == (228, 26, 28) and colours[-1] == (239, 120, 130)
    assert colours[:16].count((228, 26, 28)) == 1


def test_an_output_folder_gets_the_users_umask_without_setting_it(tmp_path, monkeypatch):
    import os
    import stat

    previous = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", lambda *a: pytest.fail("umask set while reading it"))
        with staged_output(tmp_path / "map", overwrite=False) as tmp:
            (tmp / "lithology.tif").write_text("x")
    finally:
        monkeypatch.undo()
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "map").stat().st_mode) == 0o750
