import threading
from contextlib import contextmanager

import numpy as np
import pytest
import rasterio
from threadpoolctl import threadpool_info, threadpool_limits

from geomap.export import load_model
from geomap.features import FeatureRecipe
from geomap.predict import predict_stack, single_threaded_blas
from geomap.stack import RasterStack


def _blas_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]


def test_blas_is_single_threaded_until_the_last_overlapping_stream_ends():
    with threadpool_limits(2, user_api="blas"):
        assert _blas_threads() and set(_blas_threads()) == {2}
        first, second = single_threaded_blas(), single_threaded_blas()
        first.__enter__()
        second.__enter__()
        assert set(_blas_threads()) == {1}
        first.__exit__(None, None, None)  # the other stream still runs
        assert set(_blas_threads()) == {1}
        second.__exit__(None, None, None)
        assert set(_blas_threads()) == {2}


class _Recorder:
    """A hook that records the windows it sees, in which thread, and can fail on one."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.windows, self.threads, self.fail_at = [], set(), fail_at

    @contextmanager
    def writing(self, out_dir, grid):
        yield self

    def window(self, job, proba, pad):
        if len(self.windows) == self.fail_at:
            raise RuntimeError("hook failed")
        self.windows.append((job.win.row_off, job.win.col_off))
        self.threads.add(threading.get_ident())


@pytest.fixture
def streamed(demo_run, demo_scene):
    out, _ = demo_run
    bundle = load_model(out / "model.skops")
    recipe = FeatureRecipe.from_dict(bundle["recipe"])

    def stream(out_dir, hook, progress=None):
        with RasterStack.open(list(demo_scene.rasters)) as stack:
            windows = [(w.row_off, w.col_off) for w in stack.grid.windows(64)]
            predict_stack(
                stack,
                recipe,
                bundle["estimator"],
                bundle["class_names"],
                bundle["colours"],
                out_dir,
                block_size=64,
                smooth=bundle["smooth"],
                progress=progress,
                hooks=[hook],
            )
        return windows

    return out, stream


def test_windows_are_written_in_order_beside_the_forest_and_progress_comes_from_the_caller(
    streamed, tmp_path
):
    run_out, stream = streamed
    hook, calls = _Recorder(), []

    def progress(done, total):
        calls.append((done, total, threading.get_ident()))

    windows = stream(tmp_path, hook, progress)
    assert hook.windows == windows  # every window once, in the grid's order
    assert hook.threads and threading.get_ident() not in hook.threads  # the writer thread
    n = len(windows)
    assert [(d, t) for d, t, _ in calls] == [(i, n) for i in range(1, n + 1)]
    assert {thread for *_, thread in calls} == {threading.get_ident()}  # Streamlit needs this
    with (
        rasterio.open(tmp_path / "lithology.stream.tif") as new,
        rasterio.open(run_out / "lithology.tif") as old,
    ):
        assert np.array_equal(new.read(1), old.read(1))


def test_a_failing_hook_stops_the_stream_with_its_error(streamed, tmp_path):
    _, stream = streamed
    hook, calls = _Recorder(fail_at=2), []
    with pytest.raises(RuntimeError, match="hook failed"):
        stream(tmp_path, hook, lambda done, total: calls.append(done))
    assert len(hook.windows) == 2
    assert calls == [1, 2]  # nothing reported beyond the last window written
