"""What QGIS itself makes of geomap's outputs; run by Debian's python3 with python3-qgis.

    /usr/bin/python3 tests/qgis/qgis_inspect.py REQUEST.json

REQUEST.json lists files: ``{"files": [{"path": ..., "kind": "raster" | "vector",
"render": PNG or null}]}``. For each raster the answer gives what a user sees after dragging the
file into QGIS: whether it opens, its CRS, size, band names, nodata, and the renderer with its
classes once QGIS has applied the style beside the file (``<name>.qml``, loaded by QGIS on its
own). With ``render``, the layer is drawn at one screen pixel per raster pixel into that PNG.
For a vector: whether it opens, its features and fields. The answer is JSON on stdout.

This file imports QGIS, which is not in geomap's virtual environment: tests/qgis/test_qgis.py
runs it in a subprocess.
"""

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from qgis.core import (  # noqa: E402
    Qgis,
    QgsApplication,
    QgsMapRendererSequentialJob,
    QgsMapSettings,
    QgsRasterLayer,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize  # noqa: E402
from qgis.PyQt.QtGui import QColor  # noqa: E402


def raster(path, render):
    layer = QgsRasterLayer(path, os.path.basename(path))
    if not layer.isValid():
        return {"valid": False}
    message, styled = layer.loadDefaultStyle()  # what QGIS does when the file is added
    provider = layer.dataProvider()
    renderer = layer.renderer()
    out = {
        "valid": True,
        "crs": layer.crs().authid(),
        "size": [layer.width(), layer.height()],
        "band_names": [layer.bandName(i) for i in range(1, layer.bandCount() + 1)],
        "nodata": provider.sourceNoDataValue(1) if provider.sourceHasNoDataValue(1) else None,
        "style_loaded": bool(styled),
        "renderer": renderer.type(),
    }
    if renderer.type() == "paletted":
        out["classes"] = [
            {"value": int(c.value), "label": c.label, "colour": c.color.name()}
            for c in renderer.classes()
        ]
    if render:
        settings = QgsMapSettings()
        settings.setLayers([layer])
        settings.setDestinationCrs(layer.crs())
        settings.setExtent(layer.extent())
        settings.setOutputSize(QSize(layer.width(), layer.height()))
        settings.setBackgroundColor(QColor(0, 0, 0, 0))
        job = QgsMapRendererSequentialJob(settings)
        job.start()
        job.waitForFinished()
        out["rendered"] = bool(job.renderedImage().save(render, "PNG"))
    return out


def vector(path):
    layer = QgsVectorLayer(path, os.path.basename(path), "ogr")
    if not layer.isValid():
        return {"valid": False}
    return {
        "valid": True,
        "crs": layer.crs().authid(),
        "features": layer.featureCount(),
        "fields": [f.name() for f in layer.fields()],
    }


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        request = json.load(f)
    app = QgsApplication([], False)
    app.initQgis()
    answer = {"qgis_version": Qgis.QGIS_VERSION}
    answer["files"] = {
        item["path"]: raster(item["path"], item.get("render"))
        if item["kind"] == "raster"
        else vector(item["path"])
        for item in request["files"]
    }
    app.exitQgis()
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
