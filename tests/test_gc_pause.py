"""The collector pause around a walk: nests, survives errors and overlapping
threads, and always leaves the collector as it found it."""

from __future__ import annotations

import gc
import threading

import pytest

from unified_params._core import gc_pause


@pytest.fixture(autouse=True)
def collector_on():
    gc.enable()
    yield
    gc.enable()


def test_the_collector_is_off_inside_and_on_after():
    with gc_pause.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_nested_pauses_resume_only_at_the_outermost():
    with gc_pause.paused():
        with gc_pause.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner pause ended, the outer one has not
    assert gc.isenabled()


def test_an_error_inside_still_resumes_the_collector():
    with pytest.raises(KeyError), gc_pause.paused():
        raise KeyError("x")
    assert gc.isenabled()


def test_a_collector_the_caller_turned_off_stays_off():
    gc.disable()
    with gc_pause.paused():
        pass
    assert not gc.isenabled()


def test_overlapping_pauses_on_two_threads_resume_once_both_end():
    inside, release = threading.Event(), threading.Event()

    def other() -> None:
        with gc_pause.paused():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=other)
    with gc_pause.paused():
        worker.start()
        assert inside.wait(10)
    assert not gc.isenabled()  # this thread's pause ended first: the other still holds it
    release.set()
    worker.join(10)
    assert gc.isenabled()
