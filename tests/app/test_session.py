"""The per-session workspace: private, safe file names, removed with the session."""

from __future__ import annotations

import gc
import zipfile

import session


def test_each_session_gets_its_own_folder_and_it_is_removed():
    a, b = session.Workspace(), session.Workspace()
    assert a.root != b.root and a.root.is_dir() and b.root.is_dir()
    path = a.save("rasters", "dem.tif", b"x")
    assert path.parent.parent == a.root and not list(b.root.iterdir())
    root = a.root
    a.close()
    assert not root.exists() and b.root.exists()
    root_b = b.root
    del b
    gc.collect()
    assert not root_b.exists()


def test_uploaded_names_cannot_escape_the_workspace():
    ws = session.Workspace()
    try:
        for name in ("../../etc/passwd.tif", "..\\..\\evil.tif", "  spaced name (1).tif", ".."):
            path = ws.save("rasters", name, b"x")
            assert path.parent == ws.root / "rasters"
            assert not path.name.startswith(".")
    finally:
        ws.close()
    assert session.safe_name("field sheet #3.gpkg") == "field_sheet_3.gpkg"


def test_zip_of_a_run_holds_every_file_and_is_made_once(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "lithology.tif").write_bytes(b"tif")
    (out / "report.json").write_text("{}")
    ws = session.Workspace()
    try:
        path = ws.zip_run(out, "abc")
        assert sorted(zipfile.ZipFile(path).namelist()) == ["lithology.tif", "report.json"]
        stamp = path.stat().st_mtime_ns
        assert ws.zip_run(out, "abc").stat().st_mtime_ns == stamp
    finally:
        ws.close()


def test_messages_name_uploaded_files_without_the_private_folder(tmp_path):
    root = tmp_path / "geomap-session-x"
    text = f"Raster '{root}/rasters/notes.tif': GDAL cannot read it ('{root}/rasters/notes.tif')."
    assert session.user_message(text, root) == (
        "Raster 'notes.tif': GDAL cannot read it ('notes.tif')."
    )
    assert session.user_message(text, None) == text
