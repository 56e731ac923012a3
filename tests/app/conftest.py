"""AppTest fixtures: the app's own modules are importable as the app imports them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP_DIR = Path(__file__).resolve().parents[2] / "app"
sys.path.insert(0, str(APP_DIR))


@pytest.fixture
def app() -> AppTest:
    """A fresh app session (training and mapping the demo take a few seconds each)."""
    return AppTest.from_file(str(APP_DIR / "streamlit_app.py"), default_timeout=300)
