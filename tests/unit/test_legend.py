"""--legend: integer codes get names, units take the legend's order and colours, end to end."""

from __future__ import annotations

import codecs
import json
from itertools import combinations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from shapely.geometry import Point

from geomap.cli import main
from geomap.errors import LabelError, MissingFileError
from geomap.export import class_colours, lab_colour
from geomap.legend import Legend, parse_colour
from geomap.summary import describe_inputs
from geomap.webmap import observations_geojson

X0, Y0 = 500000.0, 5200000.0
CODES = {"granite": 11, "basalt": 12, "shale": 30}


@pytest.fixture
def coded(raster_factory, tmp_path):
    """Two rasters of three vertical units; observations holding integer codes (LITH_CODE)."""
    rng = np.random.default_rng(1)
    truth = (np.arange(60)[None, :] // 20).repeat(60, axis=0)
    bands = np.stack([truth * 10 + rng.normal(0, 3, truth.shape), truth * -5.0])
    a = raster_factory("sat.tif", bands.astype("float32"), descriptions=["red", "nir"])
    b = raster_factory("mag.tif", (truth * 2.0 + rng.normal(0, 1, truth.shape)).astype("float32"))
    r, c = rng.integers(0, 60, 90), rng.integers(0, 60, 90)
    names = np.array(["granite", "basalt", "shale"])[truth[r, c]]
    pts = gpd.GeoDataFrame(
        {"LITH_CODE": [CODES[n] for n in names]},
        geometry=[Point(X0 + 30 * cc + 15, Y0 - 30 * rr - 15) for rr, cc in zip(r, c)],
        crs="EPSG:32633",
    )
    labels = tmp_path / "obs.gpkg"
    pts.to_file(labels)
    return {"rasters": [a, b], "labels": labels, "tmp": tmp_path}


def _write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


def _run(scene, out, legend, extra=()):
    argv = ["run", "--labels", str(scene["labels"]), "--label-column", "LITH_CODE"]
    argv += ["--legend", str(legend), "--out", str(out), "--trees", "10", "--quiet", *extra]
    for r in scene["rasters"]:
        argv += ["--raster", str(r)]
    return main(argv)


def test_a_spanish_legend_names_the_units(coded):
    """'CODIGO;UNIDAD;R;G;B' from Excel: the colours were taken, the names silently not."""
    legend = coded["tmp"] / "leyenda.csv"
    legend.write_bytes(
        "CODIGO;UNIDAD;R;G;B\r\n11;Granito;239;120;130\r\n12;Basalto;70;140;80\r\n"
        "30;Lutita;180;180;185\r\n".encode("cp1252")
    )
    read = Legend.read(legend, ["11", "12", "30"], "LITH_CODE")
    assert [read.rename[v] for v in ("11", "12", "30")] == ["Granito", "Basalto", "Lutita"]
    for header in ("NOMBRE_UNIDAD", "Litología", "Unité", "Denominación"):
        legend.write_text(f"CODIGO;{header}\n11;Granito\n12;Basalto\n30;Lutita\n")
        assert Legend.read(legend, ["11", "12", "30"], "LITH_CODE").rename["12"] == "Basalto"


def test_codes_are_mapped_with_the_legends_names_order_and_colours(coded, capsys):
    legend = _write(
        coded["tmp"] / "house_legend.csv",
        "LITH_CODE;Unit name;Colour\n30;Shale (Devonian);#1f78b4\n11;Granite à biotite;200,20,60\n"
        "12;Basalt;\n99;Gabbro;darkgreen\n",
    )
    out = coded["tmp"] / "map"
    assert _run(coded, out, legend, ["--no-applicability"]) == 0
    err = capsys.readouterr().err
    assert "'Gabbro'" in err  # a unit of the legend without observations is named
    order = ["Shale (Devonian)", "Granite à biotite", "Basalt"]
    with rasterio.open(out / "lithology.tif") as src:
        assert json.loads(src.tags()["CLASS_NAMES"]) == order
        cmap = src.colormap(1)
    assert cmap[0][:3] == (0x1F, 0x78, 0xB4) and cmap[1][:3] == (200, 20, 60)
    assert cmap[2][:3] not in {(0x1F, 0x78, 0xB4), (200, 20, 60)}  # basalt: its own colour
    table = pd.read_csv(out / "legend.csv")
    assert table["name"].tolist() == order
    assert (out / "legend.csv").read_bytes().startswith(codecs.BOM_UTF8)  # Excel reads the 'à'
    assert table["colour"].tolist()[:2] == ["#1f78b4", "#c8143c"]
    assert 'label="Shale (Devonian)"' in (out / "lithology.qml").read_text()
    report = json.loads((out / "report.json").read_text())
    assert report["legend"]["units"] == [*order, "Gabbro"]
    assert report["inputs"]["legend"][0]["path"].endswith("house_legend.csv")
    assert set(report["samples"]["per_class"]) == set(order)
    assert list(report["validation"]["spatial"]["per_class_recall"]) == order
    again = coded["tmp"] / "again"  # predict keeps the names and colours from the model
    argv = ["predict", "--model", str(out / "model.skops"), "--out", str(again), "--quiet"]
    for r in coded["rasters"]:
        argv += ["--raster", str(r)]
    assert main(argv) == 0
    with rasterio.open(again / "lithology.tif") as src:
        assert json.loads(src.tags()["CLASS_NAMES"]) == order
        assert src.colormap(1)[0][:3] == (0x1F, 0x78, 0xB4)


def test_an_earlier_runs_legend_csv_recolours_a_text_labelled_run(coded, tmp_path):
    frame = gpd.read_file(coded["labels"])
    frame["lithology"] = frame["LITH_CODE"].map({v: k for k, v in CODES.items()})
    text = tmp_path / "text.gpkg"
    frame.to_file(text)
    first = tmp_path / "first"
    argv = ["run", "--labels", str(text), "--label-column", "lithology", "--out", str(first)]
    argv += ["--trees", "10", "--quiet", "--no-applicability"]
    for r in coded["rasters"]:
        argv += ["--raster", str(r)]
    assert main(argv) == 0
    edited = pd.read_csv(first / "legend.csv")
    edited.loc[edited["name"] == "shale", "colour"] = "#123456"
    edited = edited.iloc[::-1]  # the geologist's order: shale on top
    edited.to_csv(tmp_path / "legend.csv", index=False)
    second = tmp_path / "second"
    argv[argv.index(str(first))] = str(second)
    assert main([*argv, "--legend", str(tmp_path / "legend.csv")]) == 0
    with rasterio.open(second / "lithology.tif") as src:
        assert json.loads(src.tags()["CLASS_NAMES"]) == ["shale", "granite", "basalt"]
        assert src.colormap(1)[0][:3] == (0x12, 0x34, 0x56)


def test_values_given_one_name_are_one_unit(coded):
    legend = _write(coded["tmp"] / "l.csv", "code,name\n11,igneous\n12,igneous\n30,shale\n")
    frame = gpd.read_file(coded["labels"]).rename(columns={"LITH_CODE": "label"})
    frame["label"] = frame["label"].astype(str)
    key = Legend.read(legend, frame["label"].unique())
    named, notes = key.apply(frame)
    assert set(named["label"]) == {"igneous", "shale"}
    assert any("as one unit: '11', '12' as 'igneous'." in n for n in notes)
    assert key.sort(["shale", "igneous", "zz"]) == ["igneous", "shale", "zz"]


def test_values_missing_from_the_legend_keep_their_own_names(coded):
    legend = _write(coded["tmp"] / "l.csv", "code,name\n11,granite\n12,basalt\n")
    summary = describe_inputs(coded["rasters"], coded["labels"], "LITH_CODE", legend=legend)
    assert set(summary["samples"]["per_class"]) == {"granite", "basalt", "30"}
    assert list(summary["samples"]["per_class"])[:2] == ["granite", "basalt"]
    assert any("not in the legend 'l.csv' ('30')" in w for w in summary["warnings"])


def test_a_legend_of_colours_only_says_the_units_keep_their_values(coded):
    """Units became '11', '12', '30' with a warning about unlisted values only."""
    legend = _write(coded["tmp"] / "c.csv", "code,colour\n11,#ff0000\n12,#00ff00\n30,#0000ff\n")
    summary = describe_inputs(coded["rasters"], coded["labels"], "LITH_CODE", legend=legend)
    assert set(summary["samples"]["per_class"]) == {"11", "12", "30"}
    assert any(
        "'c.csv' gives colours but no names" in w and "keep their values as names" in w
        for w in summary["warnings"]
    )
    named = _write(coded["tmp"] / "n.csv", "code,name\n11,granite\n12,basalt\n30,shale\n")
    summary = describe_inputs(coded["rasters"], coded["labels"], "LITH_CODE", legend=named)
    assert not any("no names" in w for w in summary["warnings"])


def test_a_runs_own_legend_given_again_names_the_units_without_a_warning(tmp_path):
    """Observations named 'granite' with the legend.csv of an earlier run: its 'name' column
    holds their values, and it was said to give colours but no names (helper's audit)."""
    text = "code,name,colour,training_samples\n0,granite,#ff0000,10\n1,shale,#00ff00,12\n"
    legend = Legend.read(_write(tmp_path / "legend.csv", text), ["granite", "shale"])
    assert legend.named and legend.colours["shale"] == (0, 255, 0)
    labels = gpd.GeoDataFrame({"label": ["granite", "shale"]}, geometry=[Point(0, 0)] * 2)
    out, notes = legend.apply(labels)
    assert list(out["label"]) == ["granite", "shale"] and notes == []
    plain = Legend.read(
        _write(tmp_path / "plain.csv", "lithology,colour\ngranite,#ff0000\n"), ["granite"]
    )
    assert plain.named  # a column of values headed as names: the units' own names
    codes = _write(tmp_path / "codes.csv", "label,colour\n11,#ff0000\n")
    assert not Legend.read(codes, ["11"]).named  # codes, not names, whatever the header


def test_the_map_draws_observations_under_the_legends_names(coded):
    legend = _write(coded["tmp"] / "l.csv", "code,name\n11,granite\n12,basalt\n30,shale\n")
    geojson = observations_geojson(coded["labels"], "LITH_CODE", legend=legend)
    assert {f["properties"]["label"] for f in geojson["features"]} == set(CODES)


@pytest.mark.parametrize(
    ("text", "phrases"),
    [
        ("code,name\n1,granite\n2,basalt\n", ["none of the observations' class values", "'11'"]),
        ("code,name\n11,granite\n11,basalt\n", ["'11' has two names", "line 3"]),
        ("code,name,colour\n11,granite,#12345\n", ["colour '#12345' on line 2", "#rrggbb"]),
        ("code,name,colour\n11,granite,red\n12,granite,blue\n", ["'granite' has two colours"]),
        ("code,name\n", ["no rows"]),
    ],
)
def test_a_bad_legend_gets_a_message_naming_the_file(coded, text, phrases):
    legend = _write(coded["tmp"] / "bad_legend.csv", text)
    with pytest.raises(LabelError) as info:
        Legend.read(legend, ["11", "12", "30"], "LITH_CODE")
    assert "bad_legend.csv" in str(info.value)
    for phrase in phrases:
        assert phrase in str(info.value)


def test_legend_errors_from_the_command_line_write_nothing(coded, capsys):
    out = coded["tmp"] / "o"
    assert _run(coded, out, coded["tmp"] / "nowhere.csv") == 2
    assert "nowhere.csv" in capsys.readouterr().err and not out.exists()
    spreadsheet = coded["tmp"] / "legend.xlsx"
    spreadsheet.write_bytes(b"PK\x03\x04")  # a workbook cut short
    assert _run(coded, out, spreadsheet) == 2
    assert "not a workbook: it is not the zip" in capsys.readouterr().err
    assert not out.exists()
    spreadsheet.with_suffix(".odt").write_bytes(b"PK\x03\x04")
    assert _run(coded, out, spreadsheet.with_suffix(".odt")) == 2
    assert "as a CSV table, an Excel workbook or an .ods" in capsys.readouterr().err
    with pytest.raises(MissingFileError):
        Legend.read(coded["tmp"] / "nowhere.csv", ["11"])


def test_a_legend_without_labels_is_refused(coded, capsys):
    legend = _write(coded["tmp"] / "l.csv", "code,name\n11,granite\n")
    argv = ["run", "--model", "som-clusters", "--legend", str(legend), "--quiet"]
    argv += ["--out", str(coded["tmp"] / "o"), "--raster", str(coded["rasters"][0])]
    assert main(argv) == 2
    assert "no --labels are given" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("cell", "rgb"),
    [
        ("#E4781E", (228, 120, 30)),
        ("e4781e", (228, 120, 30)),
        ("#fff", (255, 255, 255)),
        ("228, 120, 30", (228, 120, 30)),
        ("rgb(1 2 3)", (1, 2, 3)),
        ("navy", (0, 0, 128)),
        ("255,255,190,255", (255, 255, 190)),  # QGIS writes the alpha
        ("rgba(1, 2, 3, 0.5)", (1, 2, 3)),
        ("#e4781eff", (228, 120, 30)),
    ],
)
def test_colour_cells(cell, rgb, tmp_path):
    assert parse_colour(cell, tmp_path / "l.csv", "line 2") == rgb


def test_colours_of_other_classes_avoid_the_fixed_ones():
    palette_first = class_colours(["a", "b"])
    fixed = class_colours(["a", "b", "granite"], {"b": palette_first[0], "granite": (1, 2, 3)})
    assert fixed[1] == palette_first[0] and fixed[2] == (1, 2, 3)
    assert fixed[0] not in (palette_first[0], (1, 2, 3))
    assert len(set(class_colours([f"u{i}" for i in range(40)]))) == 40  # beyond the palette too


def test_a_unit_the_legend_leaves_out_takes_no_colour_near_the_legends():
    """A legend of 3 reds and greens, one for a unit not observed: the unit it leaves out was
    mapped in the palette's first red, 2 (CIE76) from the legend's unobserved unit."""
    legend = {"granite": (230, 30, 30), "basalt": (40, 170, 70), "dyke": (228, 28, 30)}
    colours = class_colours(["granite", "basalt", "unit 7"], legend)
    assert colours[:2] == [(230, 30, 30), (40, 170, 70)]
    for other in legend.values():
        assert np.linalg.norm(lab_colour(colours[2]) - lab_colour(other)) >= 20
    many = class_colours([f"u{i}" for i in range(30)])
    gaps = [np.linalg.norm(lab_colour(a) - lab_colour(b)) for a, b in combinations(many[:16], 2)]
    assert min(gaps) >= 20  # the palette's own near twins are passed over


def test_a_geomap_legend_csv_gives_the_users_codes_not_the_maps(coded, capsys):
    """Codes 11, 12, 30 named by a legend: legend.csv's 'code' is the map's 0..2; its 'value'
    holds the user's codes (they were nowhere in the outputs), and it serves as a legend again."""
    first = coded["tmp"] / "first"
    legend = _write(
        coded["tmp"] / "l.csv", "code,name\n11,granite\n12,basalt\n30,shale\n31,shale\n"
    )
    assert _run(coded, first, legend, ["--no-applicability"]) == 0
    table = pd.read_csv(first / "legend.csv", dtype=str)
    assert list(table.columns[:4]) == ["code", "name", "value", "colour"]
    assert table[["code", "name", "value"]].values.tolist() == [
        ["0", "granite", "11"],
        ["1", "basalt", "12"],
        ["2", "shale", "30; 31"],  # two codes of one unit
    ]
    again = Legend.read(first / "legend.csv", ["0", "1", "2", "11", "12", "30"], "LITH_CODE")
    assert again.rename == {"11": "granite", "12": "basalt", "30": "shale", "31": "shale"}
    second = coded["tmp"] / "second"
    assert _run(coded, second, first / "legend.csv", ["--no-applicability"]) == 0
    assert (second / "legend.csv").read_text() == (first / "legend.csv").read_text()


def test_a_geomap_legend_csv_of_named_observations_does_not_lend_its_map_codes(coded, tmp_path):
    named = tmp_path / "named_legend.csv"
    named.write_text("code,name,colour,training_samples\n0,granite,#ff0000,5\n1,basalt,,4\n")
    with pytest.raises(LabelError, match="This is a geomap legend.csv: its 'code' column holds"):
        Legend.read(named, ["0", "1", "11"], "LITH_CODE")


@pytest.mark.parametrize(
    ("text", "values", "rename", "colours"),
    [
        ("Symbol,Name,Colour\nQal,Alluvium,#ffff00\nKgr,Granite,\n", ["Qal", "Kgr"],
         {"Qal": "Alluvium", "Kgr": "Granite"}, {"Alluvium": (255, 255, 0)}),
        ("unit_no;desc_name;colour\n01;Basalt;008000\n02;Tuff;\n", ["01", "02"],
         {"1": "Basalt", "2": "Tuff"}, {"Basalt": (0, 128, 0)}),  # integer codes, as numbers
        ("code;colour name;unit\n2.10;red;Chert\n2.1;blue;Marl\n", ["2.10", "2.1"],
         {"2.10": "Chert", "2.1": "Marl"}, {"Chert": (255, 0, 0), "Marl": (0, 0, 255)}),
        ("value,name\n3.0,Gneiss\n", ["3"], {"3": "Gneiss"}, {}),
        ("CODE,NAME,RED,GREEN,BLUE\n1,Basalt,40,40,40\n2,Tuff,,,\n", ["1", "2"],
         {"1": "Basalt", "2": "Tuff"}, {"Basalt": (40, 40, 40)}),  # a palette as GIS tools export
        ("code;r;g;b\n7;230.0;0.0;0.0\n", ["7"], {"7": "7"}, {"7": (230, 0, 0)}),
        ("code,name,red,green,blue\n1,Tuff,0.5,0.25,1\n2,Chert,,,\n", ["1", "2"],
         {"1": "Tuff", "2": "Chert"}, {"Tuff": (128, 64, 255)}),  # fractions of 1
    ],
)  # fmt: skip
def test_legend_cells_are_read_as_written(tmp_path, text, values, rename, colours):
    key = Legend.read(_write(tmp_path / "l.csv", text), values)
    assert key.rename == rename and key.colours == colours


def test_integer_codes_match_with_or_without_leading_zeros(tmp_path):
    legend = Legend.read(_write(tmp_path / "l.csv", "code,name\n01,Basalt\n02,Tuff\n"), ["1", "2"])
    labels = gpd.GeoDataFrame({"label": ["1", "2", "02", "7", "01"]}, geometry=[Point(0, 0)] * 5)
    named, notes = legend.apply(labels)
    assert list(named["label"]) == ["Basalt", "Tuff", "Tuff", "7", "Basalt"]
    assert "('7')" in notes[0]
    assert notes[1:] == [  # one note, not one per unit: a legend merging spellings has many
        "The legend 'l.csv' maps several values as one unit: '01', '1' as 'Basalt'; '02', '2' "
        "as 'Tuff'."
    ]


def test_a_colour_in_three_columns_needs_all_three(tmp_path):
    legend = _write(tmp_path / "l.csv", "code,name,R,G,B\n1,Tuff,1,2,3\n2,Chert,1,2,\n")
    with pytest.raises(
        LabelError, match=r"line 3 gives 2 of the colour's three columns \(R, G, B\)"
    ):
        Legend.read(legend, ["1", "2"])


def test_a_legend_with_neither_names_nor_colours_says_so(tmp_path):
    legend = _write(tmp_path / "polish.csv", "Kod;Nazwa;Kolor\n11;granit;czerwony\n")
    with pytest.raises(LabelError, match="no column holds names or colours"):
        Legend.read(legend, ["11"])


def test_the_labelled_som_lists_the_users_codes_too(coded, capsys):
    legend = _write(coded["tmp"] / "l.csv", "code,name\n11,granite\n12,basalt\n30,shale\n")
    out = coded["tmp"] / "som"
    assert _run(coded, out, legend, ["--model", "som", "--no-applicability"]) == 0
    table = pd.read_csv(out / "legend.csv", dtype=str).set_index("name")
    assert table.loc[["granite", "basalt", "shale"], "value"].tolist() == ["11", "12", "30"]


def test_an_unquoted_rgb_colour_is_named_with_its_line_and_the_fix(tmp_path):
    legend = _write(tmp_path / "l.csv", "code,name,colour\n11,Granite,#ff0000\n12,Basalt,0,128,0\n")
    with pytest.raises(LabelError) as info:
        Legend.read(legend, ["11", "12"])
    message = str(info.value)
    assert message.startswith(f"Legend '{legend}': line 3 has 5 fields where the first row has 3")
    assert 'goes in double quotes ("200,20,60")' in message and "\n" not in message
    first = _write(tmp_path / "f.csv", "code,name,colour\n11,Granite,255,0,0\n12,Basalt,#008000\n")
    with pytest.raises(LabelError, match="line 2 has 5 fields where the first row has 3"):
        Legend.read(first, ["11", "12"])  # pandas took the extra fields for an index, silently
    fixed = _write(
        tmp_path / "q.csv", 'code,name,colour\n11,Granite,#ff0000\n12,Basalt,"0,128,0"\n'
    )
    assert Legend.read(fixed, ["11", "12"]).colours["Basalt"] == (0, 128, 0)
