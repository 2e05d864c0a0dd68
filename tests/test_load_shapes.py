"""The load shapes the locustfile runs: users at each second, and when each run ends."""

from __future__ import annotations

import pytest

from tooling.loadgen.load_shapes import (
    FileShape,
    StepShape,
    load_variables,
    shape_from_spec,
    think_seconds,
)
from tooling.runs.run_spec import LoadSpec


def test_step_is_the_labs_stepload_2_to_22_users():
    shape = shape_from_spec("step", environ={})
    users = [shape.users_at(t) for t in range(0, 660, 60)]
    assert users == list(range(2, 23, 2))
    assert shape.users_at(59.9) == 2
    assert shape.users_at(660) is None


def test_step_takes_overrides_from_the_environment():
    shape = shape_from_spec("step", environ={"STEP_USERS": "3", "STEP_SECONDS": "10", "STEPS": "2"})
    assert shape == StepShape(3, 10.0, 2)
    assert [shape.users_at(t) for t in (0, 10, 20)] == [3, 6, None]


def test_ramp_and_spike_end_when_their_time_is_up():
    ramp = shape_from_spec("ramp", environ={"RAMP_SECONDS": "100", "RAMP_PEAK_USERS": "11"})
    assert [ramp.users_at(t) for t in (0, 50, 99, 100)] == [1, 6, 11, None]
    spike = shape_from_spec(
        "spike",
        environ={"SPIKE_START": "10", "SPIKE_SECONDS": "5", "SPIKE_TOTAL_SECONDS": "30"},
    )
    assert [spike.users_at(t) for t in (0, 10, 14, 15, 30)] == [2, 20, 20, 2, None]
    assert spike.spawn_rate == 10  # the jump within seconds, whatever SPAWN_RATE says


def test_a_spikes_spawn_rate_reaches_the_locust_chart():
    variables = {"SPIKE_USERS": "75", "SPIKE_SPAWN_RATE": "25"}
    settings = LoadSpec("spike", variables=variables).locust_settings()
    assert settings.shape == "spike" and settings.environment["SPIKE_SPAWN_RATE"] == "25"
    spike = shape_from_spec("spike", environ=variables)
    assert shape_from_spec(settings.shape, environ=settings.environment) == spike


def test_file_shape_sets_users_from_each_row_and_ends_at_the_last(tmp_path):
    csv = tmp_path / "shape.csv"
    csv.write_text("seconds,users\n0,2\n30,8\n90,1\n120,0\n")
    shape = shape_from_spec(f"file:{csv}", environ={})
    assert [shape.users_at(t) for t in (0, 29, 30, 89, 90, 119, 120)] == [2, 2, 8, 8, 1, 1, None]


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("time,users\n0,1\n", "header must be 'seconds,users'"),
        ("seconds,users\n", "no rows"),
        ("seconds,users\n0,1\n0,2\n", "seconds must increase"),
        ("seconds,users\n0,two\n", ":2: expected seconds,users numbers"),
        ("seconds,users\n0,-1\n", "must not be negative"),
    ],
)
def test_bad_shape_files_say_what_is_wrong(tmp_path, text, error):
    csv = tmp_path / "shape.csv"
    csv.write_text(text)
    with pytest.raises(ValueError, match=error):
        FileShape.read(csv)


def test_unknown_shape_lists_the_known_ones():
    with pytest.raises(ValueError, match="step, ramp, spike, file:PATH"):
        shape_from_spec("wave", environ={})
    with pytest.raises(ValueError, match="STEPS='many' is not a number"):
        shape_from_spec("step", environ={"STEPS": "many"})


def test_the_users_wait_is_the_locustfiles_and_bad_values_say_which():
    assert think_seconds({}) == pytest.approx(0.85)  # the lab's between(0.8, 0.9)
    assert think_seconds({"WAIT_MIN": "20", "WAIT_MAX": "40"}) == 30
    assert load_variables({"WAIT_MIN": "20", "STEPS": "3", "HOME": "/", "WAIT_MAX": ""}) == {
        "WAIT_MIN": "20",
        "STEPS": "3",
    }
    with pytest.raises(ValueError, match="WAIT_MAX='x'"):
        think_seconds({"WAIT_MAX": "x"})
    with pytest.raises(ValueError, match="MIN ≤ MAX"):
        think_seconds({"WAIT_MIN": "5", "WAIT_MAX": "1"})
