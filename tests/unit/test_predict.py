import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest
import rasterio
from threadpoolctl import threadpool_info, threadpool_limits

from geomap.export import load_model
from geomap.features import FeatureRecipe
from geomap.predict import (
    iter_windows,
    predict_stack,
    single_threaded_blas,
    window_proba,
    window_side,
)
from geomap.stack import RasterStack
from geomap.trust import TrustLayers


def _blas_threads() -> set[int]:
    return {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"}


def test_blas_is_single_threaded_until_the_last_overlapping_stream_ends():
    with threadpool_limits(2, user_api="blas"):
        assert _blas_threads() == {2}
        first, second = single_threaded_blas(), single_threaded_blas()
        first.__enter__()
        second.__enter__()
        assert _blas_threads() == {1}
        first.__exit__(None, None, None)  # the other stream still runs
        assert _blas_threads() == {1}
        second.__exit__(None, None, None)
        assert _blas_threads() == {2}


class _Recorder:
    """A hook that records the windows it sees, in which thread, with how many BLAS threads."""

    def __init__(self, fail_at: int | None = None, pause: float = 0.0) -> None:
        self.windows, self.threads, self.blas = [], set(), set()
        self.fail_at, self.pause = fail_at, pause

    @contextmanager
    def writing(self, out_dir, grid):
        yield self

    def window(self, job, proba, pad):
        if len(self.windows) == self.fail_at:
            raise RuntimeError("hook failed")
        time.sleep(self.pause)
        self.windows.append((job.win.row_off, job.win.col_off))
        self.threads.add(threading.get_ident())
        self.blas |= _blas_threads()


class _FailingModel:
    """The bundle's model, failing on its second window."""

    def __init__(self, model) -> None:
        self.model, self.screens_, self.calls = model, model.screens_, 0

    def screened_proba(self, X):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("model failed")
        return self.model.screened_proba(X)


@pytest.fixture
def streamed(demo_run, demo_scene):
    out, _ = demo_run
    bundle = load_model(out / "model.skops")
    recipe = FeatureRecipe.from_dict(bundle["recipe"])

    def stream(out_dir, hooks, progress=None, model=None):
        with RasterStack.open(list(demo_scene.rasters)) as stack:
            predict_stack(
                stack,
                recipe,
                model or bundle["estimator"],
                bundle["class_names"],
                bundle["colours"],
                out_dir,
                block_size=64,
                smooth=bundle["smooth"],
                progress=progress,
                hooks=[h(stack.grid) if callable(h) else h for h in hooks],
            )

    def serial(pad=0):
        """Each window predicted and its layers computed in this thread, one after the other."""
        with RasterStack.open(list(demo_scene.rasters)) as stack:
            for _, _, job in iter_windows(stack, recipe, 64, pad):
                proba = window_proba(bundle["estimator"], job, len(bundle["class_names"]))
                P = proba.reshape(len(bundle["class_names"]), -1).T
                yield job.win, proba, bundle["applicability"].transform(job.X, P)

    return bundle, stream, serial


def test_streamed_maps_and_layers_equal_those_computed_window_by_window_in_one_thread(
    streamed, tmp_path
):
    bundle, stream, serial = streamed
    assert bundle["smooth"] == 1
    hook, calls = _Recorder(), []

    def progress(done, total):
        calls.append((done, total, threading.get_ident()))

    trust = lambda grid: TrustLayers(bundle["applicability"], bundle["class_names"], grid)  # noqa: E731
    stream(tmp_path, [hook, trust], progress)
    expected = list(serial())
    assert hook.windows == [(w.row_off, w.col_off) for w, _, _ in expected]  # once each, in order
    assert hook.threads and threading.get_ident() not in hook.threads  # the writer thread
    n = len(expected)
    assert [(d, t) for d, t, _ in calls] == [(i, n) for i in range(1, n + 1)]
    assert {thread for *_, thread in calls} == {threading.get_ident()}  # Streamlit needs this
    with (
        rasterio.open(tmp_path / "lithology.stream.tif") as lith,
        rasterio.open(tmp_path / "applicability.tif") as app,
        rasterio.open(tmp_path / "expected_accuracy.tif") as acc,
    ):
        for win, proba, (di, _, accuracy) in expected:
            shape = proba.shape[1:]
            codes = np.argmax(proba, axis=0)
            assert np.array_equal(lith.read(1, window=win), codes)
            assert np.array_equal(app.read(1, window=win), di.reshape(shape), equal_nan=True)
            assert np.array_equal(acc.read(1, window=win), accuracy.reshape(shape), equal_nan=True)


def test_a_failing_hook_stops_the_stream_with_its_error(streamed, tmp_path):
    _, stream, _ = streamed
    hook, calls = _Recorder(fail_at=2), []
    with pytest.raises(RuntimeError, match="hook failed"):
        stream(tmp_path, [hook], lambda done, total: calls.append(done))
    assert len(hook.windows) == 2
    assert calls == [1, 2]  # nothing reported beyond the last window written


def test_blas_stays_single_threaded_until_the_window_being_written_is_done(streamed, tmp_path):
    bundle, stream, _ = streamed
    hook = _Recorder(pause=0.5)  # still writing the first window when the model fails
    with threadpool_limits(2, user_api="blas"):
        with pytest.raises(RuntimeError, match="model failed"):
            stream(tmp_path, [hook], model=_FailingModel(bundle["estimator"]))
        assert hook.windows and hook.blas == {1}
        assert _blas_threads() == {2}


def test_a_writer_failure_is_logged_when_the_forest_fails_too(streamed, tmp_path, caplog):
    bundle, stream, _ = streamed
    with pytest.raises(RuntimeError, match="model failed"):
        stream(tmp_path, [_Recorder(fail_at=0)], model=_FailingModel(bundle["estimator"]))
    assert "Writing a window failed too: RuntimeError: hook failed" in caplog.text


def test_windows_shrink_for_many_classes_or_many_features_only():
    assert window_side(256, 6) == 256 and window_side(256, 16) == 256
    assert window_side(256, 100) == 96  # 256 * sqrt(16 / 100), in multiples of 16
    assert window_side(256, 255) == 64
    assert window_side(32, 100) == 32  # a smaller window asked for stays
    assert window_side(256, 6, 120) == 256  # a 12-band survey
    assert window_side(256, 6, 1400) == 80  # a hyperspectral cube: 256 * sqrt(160 / 1400)
    assert window_side(256, 100, 1400) == 80  # the larger ratio


def test_a_negative_offset_is_written_with_its_sign():
    """Sentinel-2's -1000 read 'x 1 + -1000' in the note on scales and offsets."""
    from geomap.bundles import _pairs

    assert _pairs([[1.0, -1000.0], [1e-4, 0.0]]) == "x 1 - 1000, x 0.0001 + 0"
