"""Tests for TrajectoryBuffer: layout, .npz round trip, samplers that stay inside episodes, collect."""

from __future__ import annotations

import numpy as np
import pytest

from contrastkit.rl.buffer import TrajectoryBuffer, collect, truncated_geometric
from contrastkit.rl.envs.four_rooms import FourRooms, TabularPolicy, WaypointPolicy


def _buffer(lengths=(3, 7, 1, 12)) -> TrajectoryBuffer:
    """Observation value = 1000 * episode + t, so any row tells its episode and time."""
    buffer = TrajectoryBuffer()
    for e, length in enumerate(lengths):
        obs = 1000 * e + np.arange(length + 1)
        buffer.add_episode(obs, obs[:-1] * 10, np.ones(length), terminated=e % 2 == 0)
    return buffer


def test_layout_keeps_the_final_observation_of_each_episode():
    buffer = _buffer()
    assert buffer.num_episodes == 4 and buffer.num_steps == 23 and len(buffer.observations) == 27
    assert list(buffer.episode_lengths) == [3, 7, 1, 12]
    assert list(np.flatnonzero(buffer.terminals)) == [2, 10]  # last steps of episodes 0 and 2
    assert buffer.episode(1)["observations"][-1] == 1007


def test_npz_round_trip_is_exact_and_has_no_pickle(tmp_path):
    buffer = _buffer()
    path = buffer.save(tmp_path / "data.npz")
    with np.load(path, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
    loaded = TrajectoryBuffer.load(path)
    for key, value in buffer.arrays.items():
        np.testing.assert_array_equal(loaded.arrays[key], value)
    assert not list(tmp_path.glob(".*.tmp"))


def test_bad_files_fail_with_one_line(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file"):
        TrajectoryBuffer.load(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="unreadable") as error:
        TrajectoryBuffer.load(tmp_path / "junk.npz")
    assert "\n" not in str(error.value)
    np.savez(tmp_path / "other.npz", observations=np.zeros(3))
    with pytest.raises(ValueError, match="missing format, actions"):
        TrajectoryBuffer.load(tmp_path / "other.npz")
    arrays = dict(_buffer().arrays, format=np.array("contrastkit.rl.TrajectoryBuffer/1"))
    arrays["rewards"] = arrays["rewards"][:-1]
    np.savez(tmp_path / "short.npz", **arrays)
    with pytest.raises(ValueError, match="23 rows in rewards"):
        TrajectoryBuffer.load(tmp_path / "short.npz")
    arrays = dict(_buffer().arrays, format=np.array("contrastkit.rl.TrajectoryBuffer/1"))
    arrays["observations"] = np.array([object()] * 27, dtype=object)
    np.savez(tmp_path / "pickled.npz", **arrays)
    with pytest.raises(ValueError, match="unreadable"):  # allow_pickle=False refuses object arrays
        TrajectoryBuffer.load(tmp_path / "pickled.npz")
    with pytest.raises(ValueError, match="T \\+ 1"):
        TrajectoryBuffer().add_episode(np.arange(3), np.arange(3), np.zeros(3))


@pytest.mark.parametrize("truncation", ["renormalise", "clip"])
def test_future_sampler_stays_in_the_episode(truncation):
    buffer = _buffer()
    pairs = buffer.sample_future(5000, 0.9, np.random.default_rng(0), truncation=truncation)
    anchor, positive = buffer.observations[pairs["anchor"]], buffer.observations[pairs["positive"]]
    assert (anchor // 1000 == positive // 1000).all()  # same episode
    assert (positive - anchor == pairs["offset"]).all() and (pairs["offset"] >= 1).all()
    assert (buffer.actions[pairs["action"]] == anchor * 10).all()  # the anchor step's own action
    # every step is an anchor with equal probability (23 steps)
    counts = np.bincount(pairs["action"], minlength=23)
    assert counts.min() > 5000 / 23 * 0.7


def test_truncated_geometric_matches_contrastive_rl_categorical():
    """google-research contrastive_rl: P(goal j | i) = gamma^(j-i) / sum over j in (i, T]."""
    gamma, m = 0.8, 6
    draws = truncated_geometric(np.full(200_000, m), gamma, np.random.default_rng(1))
    probs = gamma ** np.arange(1, m + 1)
    probs /= probs.sum()
    empirical = np.bincount(draws, minlength=m + 1)[1:] / len(draws)
    assert np.abs(empirical - probs).max() < 0.005
    clipped = truncated_geometric(np.full(200_000, m), gamma, np.random.default_rng(1), truncation="clip")
    # clipping piles the tail on the last observation: P(k = m) = gamma^(m-1)
    assert abs((clipped == m).mean() - gamma ** (m - 1)) < 0.005
    assert (truncated_geometric(np.array([1, 5]), 0.0, np.random.default_rng(0)) == 1).all()


def test_offset_crops_and_action_windows_stay_in_the_episode():
    buffer, rng = _buffer(), np.random.default_rng(2)
    k = buffer.sample_offset(2000, 5, rng)
    anchor, positive = buffer.observations[k["anchor"]], buffer.observations[k["positive"]]
    assert (positive - anchor == 5).all() and (anchor // 1000 == positive // 1000).all()
    assert set(np.unique(anchor // 1000)) == {1, 3}  # episodes of 3 and 1 steps have no 5-step pair
    crops = buffer.sample_crops(2000, 4, rng)
    a, b = buffer.observations[crops["anchor"]], buffer.observations[crops["positive"]]
    assert (np.diff(a, axis=1) == 1).all() and (np.diff(b, axis=1) == 1).all()
    assert (a[:, 0] // 1000 == b[:, 0] // 1000).all() and (a[:, -1] // 1000 == a[:, 0] // 1000).all()
    assert (a[:, 0] != b[:, 0]).any()
    windows = buffer.sample_action_windows(2000, 3, rng)
    obs, acts = buffer.observations[windows["anchor"]], buffer.actions[windows["actions"]]
    assert (acts == (obs[:, None] + np.arange(3)) * 10).all()
    assert (buffer.observations[windows["positive"]] == obs + 3).all()
    with pytest.raises(ValueError, match="at least 13 steps"):
        buffer.sample_offset(4, 13, rng)


def test_collect_is_reproducible_and_splits_episodes():
    env = FourRooms(max_steps=50, goal=10)
    policy = TabularPolicy(env.goal_policy(10, epsilon=0.1))
    first, second = collect(env, policy, 500, seed=3), collect(env, policy, 500, seed=3)
    np.testing.assert_array_equal(first.observations, second.observations)
    assert first.num_steps == 500
    ends = np.cumsum(first.episode_lengths) - 1
    reached = first.terminals[ends]
    assert reached[:-1].any()
    finals = first.observations[np.cumsum(first.episode_lengths + 1) - 1]
    assert (finals[:-1][reached[:-1]] == 10).all()  # terminal episodes end at the goal
    assert (first.episode_lengths[:-1][~reached[:-1]] == 50).all()  # the others hit the time limit
    with pytest.raises(ValueError, match="reset\\(\\) and step\\(\\)"):
        collect(object(), policy, 5)


def test_collect_with_gymnasium_cartpole():
    gymnasium = pytest.importorskip("gymnasium", reason="gymnasium is the optional 'rl' extra; not installed")
    env = gymnasium.make("CartPole-v1")
    buffer = collect(env, lambda obs, rng: int(rng.integers(2)), 300, seed=0)
    assert buffer.observations.shape == (300 + buffer.num_episodes, 4) and buffer.terminals.any()


def test_waypoint_data_is_fast():
    import time

    env = FourRooms()
    start = time.perf_counter()
    buffer = collect(env, WaypointPolicy(env), 5000, seed=0)
    assert time.perf_counter() - start < 2.5  # thousands of steps per second
    rooms = {(r > 6, c > 6) for r, c in env.cells[buffer.observations]}
    assert len(rooms) == 4
