import subprocess
import sys


def test_no_geomap_module_imports_streamlit():
    code = (
        "import importlib, pkgutil, sys, geomap\n"
        "for m in pkgutil.walk_packages(geomap.__path__, 'geomap.'):\n"
        "    importlib.import_module(m.name)\n"
        "assert 'geomap.workflow' in sys.modules\n"
        "print('streamlit' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
