"""The ``geomap`` command's options: one parser with a subcommand per task."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from geomap import __version__
from geomap.errors import InputDataError
from geomap.features import PRESETS
from geomap.models.som_clusters import MAX_CLUSTERS
from geomap.sites import parse_distance
from geomap.stack import BLOCK_SIZE
from geomap.validate import MAX_FOLDS
from geomap.workflow import MODELS

_EPILOG = """examples:
  geomap run --raster landsat.tif --raster radiometrics.tif --labels field.gpkg \\
      --label-column lithology --out map1
  geomap predict --model map1/model.skops --raster landsat.tif --raster radiometrics.tif --out map2
  geomap run --raster landsat.tif --raster radiometrics.tif --model som-clusters --out units
  geomap suggest --model map1/model.skops --raster landsat.tif --raster radiometrics.tif \\
      --n 20 --access roads.gpkg --max-walk 2km --out season2.gpkg
  geomap subunits --map map1/lithology.tif --unit basalt --raster landsat.tif \\
      --raster radiometrics.tif --out basalt_units
"""


def _whole(text: str) -> int:
    """A whole number as typed, or argparse's error saying so (not "invalid parse value")."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"has to be a whole number; got {text!r}") from None


def _positive_int(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"has to be at least 1; got {value}")
    return value


def _at_least(minimum: int, most: int | None = None):
    def parse(text: str) -> int:
        value = _whole(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"has to be at least {minimum}; got {value}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"has to be at most {most}; got {value}")
        return value

    return parse


def _distance(text: str) -> str:
    """A walking distance as given (``2km``), refused now rather than after training."""
    try:
        parse_distance(text)
    except InputDataError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _number(text: str) -> float:
    """A number as typed, or argparse's error saying so."""
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"has to be a number; got {text!r}") from None


def _positive_float(text: str) -> float:
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"has to be greater than 0; got {text}")
    return value


def _som_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        rows, cols = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (0, 0)
    except ValueError:
        rows = cols = 0
    if rows < 1 or cols < 1 or rows * cols < 2:
        raise argparse.ArgumentTypeError(
            f"has to be ROWSxCOLS (e.g. 20x30) or N for N x N nodes, at least 2 nodes; got {text!r}"
        )
    return rows, cols


def _add_som(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("self-organizing map (--model som, som-clusters and subunits)")
    g.add_argument(
        "--som-size",
        type=_som_size,
        metavar="ROWSxCOLS",
        help="nodes of the map, e.g. 20x30 or 25 (default: about 5 sqrt(N) nodes for N training "
        "pixels, shaped by the data's two main principal components)",
    )
    g.add_argument(
        "--iterations",
        type=_positive_int,
        metavar="N",
        help="training updates (default 20 per node, at least 2000)",
    )
    g.add_argument(
        "--sigma",
        type=_positive_float,
        help="initial neighbourhood radius in nodes, shrinking to 1 (default: a quarter of the "
        "map's longer side)",
    )
    g.add_argument(
        "--learning-rate",
        type=_positive_float,
        default=0.5,
        help="initial learning rate, shrinking to 0 (default 0.5)",
    )
    g.add_argument(
        "--clusters",
        type=_at_least(2, MAX_CLUSTERS),
        metavar="K",
        help="clusters of the codebook (default: the count of 2..12 with the lowest "
        "Davies-Bouldin index)",
    )
    g.add_argument(
        "--cluster-method",
        choices=["kmeans", "agglomerative"],
        default="kmeans",
        help="k-means on node vectors, or Ward clustering of neighbouring nodes (default kmeans)",
    )
    g.add_argument(
        "--som-samples",
        type=_at_least(100),
        default=100_000,
        metavar="N",
        help="most stack pixels the map is trained on (default 100000)",
    )


class _Once(argparse.Action):
    """An option that may be given once: a second one is an error, not silently the winner."""

    def __call__(self, parser, namespace, values, option_string=None):
        first = getattr(namespace, self.dest, None)
        if first is not None:
            hint = (
                " geomap reads one file of observations: put the points and polygons in one file "
                "(a GeoPackage layer or GeoJSON may hold both)."
                if self.dest == "labels"
                else ""
            )
            parser.error(f"{option_string} given twice ({first} and {values}); give it once.{hint}")
        setattr(namespace, self.dest, values)


def _odd_int(text: str) -> int:
    value = _positive_int(text)
    if value % 2 == 0:
        raise argparse.ArgumentTypeError(f"has to be odd (1, 3, 5, ...); got {value}")
    return value


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--raster",
        action="append",
        required=True,
        type=Path,
        metavar="FILE",
        help="an input raster (GeoTIFF, JPEG2000, VRT, any format GDAL reads; one or many bands), "
        "or a Landsat Collection 2 scene or Sentinel-2 SAFE product as delivered (folder, .tar "
        "or .zip: its band files and cloud mask are taken); repeat for each file",
    )
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        metavar="DIR",
        help="output folder; must not exist or be empty unless --overwrite",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="replace the files in a non-empty --out"
    )
    p.add_argument(
        "--block-size",
        type=_at_least(16),
        default=BLOCK_SIZE,
        metavar="PX",
        help=f"side of the square windows streamed through the model (default {BLOCK_SIZE})",
    )
    p.add_argument("--quiet", action="store_true", help="print only warnings and errors")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``geomap`` command."""
    parser = argparse.ArgumentParser(
        prog="geomap",
        description="Lithology maps and honest uncertainty from survey rasters and sparse field "
        "observations.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"geomap {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="train on field observations, validate and map the rasters",
        description="Train a model on the observations, cross-validate it (random and spatial "
        "blocks), map every pixel of the rasters' common footprint and write lithology.tif, "
        "uncertainty.tif, probabilities.tif, legend.csv, lithology.qml, report.json and "
        "model.skops into --out.",
    )
    _add_common(p)
    p.add_argument(
        "--labels",
        type=Path,
        action=_Once,
        metavar="FILE",
        help="observations: points or polygons in GeoPackage, GeoJSON, Shapefile "
        "(.shp or zipped), KML, or a CSV, Excel workbook (.xlsx, .xlsm, .xls) or LibreOffice "
        "spreadsheet (.ods) with x/y, lon/lat, longitude/latitude or easting/northing columns "
        "(required except with --model som-clusters, which then says where each unit's "
        "observations lie among its clusters)",
    )
    p.add_argument(
        "--label-column",
        action=_Once,
        metavar="NAME",
        help="the column holding each observation's class (text or integers)",
    )
    p.add_argument(
        "--label-layer",
        action=_Once,
        metavar="NAME",
        help="the layer of a GeoPackage of several layers, or the sheet of a workbook, that "
        "holds the observations (default: the only one with --label-column; a KML's folders "
        "are read together)",
    )
    p.add_argument(
        "--legend",
        type=Path,
        action=_Once,
        metavar="FILE",
        help="CSV or workbook (.xlsx, .xls, .ods; its sheet named 'Legend', else its first) "
        "naming and "
        "colouring the classes: a column of the values in --label-column "
        "(e.g. integer codes), a 'name' column and an optional 'colour' column (#rrggbb, r,g,b "
        "or a colour name); the maps list the units in its row order, values with the same "
        "name become one unit; an earlier run's legend.csv works for observations holding "
        "unit names",
    )
    p.add_argument(
        "--label-crs",
        metavar="CRS",
        help="CRS of the observations' coordinates where the file does not say it: a table's "
        "(default EPSG:4326 for lon/lat columns), or a vector file without one",
    )
    p.add_argument(
        "--model",
        default="rf",
        choices=list(MODELS),
        help="rf: random forest (default); som: self-organizing map labelled from the "
        "observations; som-clusters: SOM clusters, no labels needed",
    )
    p.add_argument(
        "--trees", type=_positive_int, default=200, help="trees in the forest (default 200)"
    )
    p.add_argument(
        "--random-state", type=_whole, default=0, help="seed of every random step (default 0)"
    )
    p.add_argument(
        "--crs",
        metavar="CRS",
        help="CRS of the output grid (default: the first raster's), and of rasters that state "
        "none (a Surfer or XYZ grid)",
    )
    p.add_argument(
        "--resolution",
        type=_positive_float,
        metavar="UNITS",
        help="pixel size of the output grid in its CRS units (default: the finest input)",
    )
    p.add_argument(
        "--cv-folds",
        type=_at_least(2, MAX_FOLDS),
        default=5,
        help=f"folds of the random and spatial cross-validation, 2 to {MAX_FOLDS} (default 5)",
    )
    p.add_argument(
        "--features",
        default="default",
        choices=list(PRESETS),
        help="feature preset: raw (bands only); default (focal mean and std over 3 and 7 px, "
        "edge-preserving Kuwahara means over 3 and 5 px, ratios, terrain); rich (focal 3, 7 "
        "and 15 px)",
    )
    p.add_argument(
        "--max-per-class",
        type=_positive_int,
        default=None,
        metavar="N",
        help="most polygon pixels sampled per class (default 2000 for rf; for som 25000, "
        "fewer with many units: 200000 in all)",
    )
    p.add_argument(
        "--nodata",
        action="append",
        metavar="[FILE=]VALUE",
        help="value taken as no data in rasters that declare none (e.g. 0 for Sentinel-2 "
        "JPEG2000); FILE=VALUE for one raster, by its file name (repeat: --nodata 0 --nodata "
        "dem.tif=-32768); a raster whose data type cannot hold the value does not take it; "
        "`geomap predict` reuses them",
    )
    p.add_argument(
        "--smooth",
        type=_odd_int,
        default=1,
        metavar="PX",
        help="side of the window over which class probabilities are averaged, e.g. 3; off by "
        "default (1) because it erased thin units in benchmarks/quality.py",
    )
    p.add_argument(
        "--no-spectral-screen",
        dest="spectral_screen",
        action="store_false",
        help="keep the optical bands at pixels whose spectrum is unlike every observation's "
        "(by default they are mapped from the other rasters, like pixels under a cloud: haze "
        "and cloud shadow the nodata mask missed)",
    )
    _add_som(p)
    _add_sites(p.add_argument_group("where to sample next"), "--suggest")

    q = sub.add_parser(
        "predict",
        help="apply a saved model to rasters",
        description="Map rasters with the model.skops of an earlier run. The rasters must be of "
        "the same kinds, in the same order, as those the model was trained on; rasters whose "
        "band names match the training ones are put in that order, and a training raster left "
        "out (a survey that does not cover the new area) is treated as no data everywhere. "
        "The map takes the model's CRS, resolution and pixel lattice (as at training) over the "
        "rasters' common footprint.",
    )
    q.add_argument("--model", required=True, type=Path, metavar="FILE", help="model.skops of a run")
    _add_common(q)
    _add_nodata(q)
    _add_same_order(q)
    _add_subunits(sub)
    _add_suggest(sub)
    return parser


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line's arguments; an option of another command is named as such.

    ``geomap predict --resolution 30`` got argparse's "unrecognized arguments" under the usage of
    ``geomap`` itself: now the usage of ``predict``, and where the option belongs.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if not extra:
        return args
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    own = commands.choices[args.command]
    words, unknown, placed, elsewhere = [], [], False, set()
    for token in extra:
        if not token.startswith("-"):  # a value: of the option before it
            if not placed:
                unknown.append(token)
            continue
        option = token.split("=", 1)[0]
        names = [n for n, p in commands.choices.items() if option in p._option_string_actions]
        placed = bool(names)
        if placed:
            where = " and ".join(f"geomap {n}" for n in names)
            words.append(f"{option} is an option of {where}, not of geomap {args.command}.")
            elsewhere.add(option)
        else:
            unknown.append(token)
    if args.command == "predict" and elsewhere & {"--resolution", "--crs"}:
        words.append(
            "predict maps on the model's grid, its CRS and pixel size from training: to map at "
            "another, train again with geomap run and that option."
        )
    if unknown:
        words.append(f"unrecognized arguments: {' '.join(unknown)}")
    own.error(" ".join(words))


def _add_same_order(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--same-order",
        action="store_true",
        help="take each --raster for the training raster at its place in the list, whatever "
        "its band names (only band counts are checked): for files whose bands carry no names",
    )


def _add_nodata(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--nodata",
        action="append",
        metavar="[FILE=]VALUE",
        help="value taken as no data in rasters that declare none; FILE=VALUE for one raster, "
        "by its file name or its training input's (default: the values the training run gave "
        "each input)",
    )


def _add_sites(group, count_flag: str) -> None:
    if count_flag == "--suggest":
        group.add_argument(
            "--no-applicability",
            dest="applicability",
            action="store_false",
            help="skip applicability.tif, expected_accuracy.tif and the suggested sites (25 to "
            "40%% of the prediction time in benchmarks); the model keeps what `geomap suggest` "
            "needs",
        )
    group.add_argument(
        count_flag,
        type=_positive_int,
        default=30,
        metavar="N",
        help="field sites to suggest, ranked by how much an observation there would improve the "
        "map (default 30)",
    )
    group.add_argument(
        "--access",
        type=Path,
        metavar="FILE",
        help="roads or tracks (any vector file); keep only sites within --max-walk of them",
    )
    group.add_argument(
        "--max-walk",
        type=_distance,
        default="2km",
        metavar="DIST",
        help="walking distance from --access, e.g. 2km or 500m (default 2km)",
    )


def _add_suggest(sub) -> None:
    s = sub.add_parser(
        "suggest",
        help="suggest field sites from a saved forest model",
        description="Stream the rasters through a model.skops of `geomap run` and write the N "
        "field sites where an observation would improve the map most, spread across the map "
        "and the feature space: --out (GeoPackage) and the same name with .csv (lon/lat).",
    )
    s.add_argument("--model", required=True, type=Path, metavar="FILE", help="model.skops of a run")
    s.add_argument(
        "--raster", action="append", required=True, type=Path, metavar="FILE",
        help="an input raster or product, as for the run; repeat for each file",
    )  # fmt: skip
    s.add_argument(
        "--out", required=True, type=Path, metavar="FILE", help="the sites' GeoPackage (.gpkg)"
    )
    _add_sites(s, "--n")
    s.add_argument("--overwrite", action="store_true", help="replace --out and its .csv")
    s.add_argument(
        "--block-size", type=_at_least(16), default=BLOCK_SIZE, metavar="PX", help="window side"
    )
    _add_nodata(s)
    _add_same_order(s)
    s.add_argument("--quiet", action="store_true", help="print only warnings and errors")


def _add_subunits(sub) -> None:
    s = sub.add_parser(
        "subunits",
        help="map the sub-units of one unit of a map with a self-organizing map",
        description="Train a SOM on the pixels of one unit of a geomap class map and cluster its "
        "codebook; write subunits.tif (other pixels nodata), subunits_legend.csv, "
        "subunits.qml, quantization_error.tif, SOM plots, report.json and model.skops.",
    )
    s.add_argument(
        "--map", required=True, type=Path, metavar="FILE", help="lithology.tif of a geomap run"
    )
    s.add_argument(
        "--unit",
        required=True,
        metavar="NAME",
        help="the unit to divide, e.g. basalt, or its code in the observations (the run's "
        "legend.csv beside the map gives it)",
    )
    _add_common(s)
    s.add_argument("--features", default="default", choices=list(PRESETS), help="feature preset")
    s.add_argument(
        "--random-state", type=_whole, default=0, help="seed of every random step (default 0)"
    )
    s.add_argument(
        "--nodata",
        action="append",
        metavar="[FILE=]VALUE",
        help="value taken as no data in rasters that declare none; FILE=VALUE for one raster, "
        "by its file name (repeat: --nodata 0 --nodata dem.tif=-32768)",
    )
    _add_som(s)
