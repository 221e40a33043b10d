"""Tests for the four-rooms gridworld: dynamics, and the exact occupancy against Monte-Carlo rollouts."""

from __future__ import annotations

import numpy as np
import pytest

from contrastkit.rl.envs.four_rooms import FourRooms, discounted_occupancy


def test_layout_and_walls():
    env = FourRooms(slip=0.0)
    assert env.n_states == 104
    T = env.transition_tensor
    assert np.allclose(T.sum(axis=2), 1.0)
    corner = int(env._index[1, 1])  # top-left corner: up and left hit walls
    assert env.next_state[corner, 0] == corner and env.next_state[corner, 3] == corner
    assert env.next_state[corner, 1] == env._index[1, 2]
    d = env.distances
    assert (d >= 0).all() and (d == d.T).all()
    # opposite corners of the top-left and bottom-right rooms: through two doorways
    assert d[corner, env._index[11, 11]] == 20


def test_step_follows_the_tables_and_slip_is_counted():
    env = FourRooms(slip=0.0, max_steps=3)
    env.reset(seed=0, options={"start": 5})
    nxt, reward, terminated, truncated, _ = env.step(2)
    assert nxt == env.next_state[5, 2] and reward == 0.0 and not terminated and not truncated
    env.step(0)
    assert env.step(0)[3]  # third step: time limit
    slippery = FourRooms(slip=0.4)
    expected = 1 - 0.4 + 0.4 / 4
    assert np.isclose(slippery.transition_tensor[5, 2, slippery.next_state[5, 2]], expected)
    with pytest.raises(ValueError, match="action in 0..3"):
        env.step(4)


def test_goal_policy_walks_the_shortest_path():
    env = FourRooms(slip=0.0, goal=70, max_steps=500)
    policy = env.goal_policy(70, epsilon=0.0)
    rng = np.random.default_rng(0)
    for start in (0, 30, 103):
        state, _ = env.reset(seed=1, options={"start": start})
        steps = 0
        while state != 70:
            state = env.step(int(rng.choice(4, p=policy[state])))[0]
            steps += 1
        assert steps == env.distances[start, 70]


@pytest.mark.parametrize("start", [0, 1])
def test_exact_occupancy_matches_monte_carlo(start):
    """Row s of (1 - g)(I - g P)^-1 (start=0; P times it for start=1) against rollouts.

    The rollouts apply the policy, the slip and the move table directly (vectorised over
    rollouts); ``step`` is checked against the same table above.
    """
    gamma, s0, rollouts, horizon, slip = 0.8, 12, 20_000, 50, 0.2
    env = FourRooms(slip=slip)
    policy = env.goal_policy(90, epsilon=0.3)
    exact = discounted_occupancy(env.transition_matrix(policy), gamma, start=start)[s0]
    assert np.isclose(exact.sum(), 1.0)
    rng = np.random.default_rng(0)
    cumulative = np.cumsum(policy, axis=1)
    state = np.full(rollouts, s0)
    estimate = np.zeros(env.n_states)
    for t in range(horizon + start):
        if t >= start:
            np.add.at(estimate, state, (1 - gamma) * gamma ** (t - start) / rollouts)
        action = np.minimum((rng.random(rollouts)[:, None] > cumulative[state]).sum(axis=1), 3)
        slipped = rng.random(rollouts) < slip
        action = np.where(slipped, rng.integers(0, 4, rollouts), action)
        state = env.next_state[state, action]
    assert 0.5 * np.abs(estimate - exact).sum() < 0.03
    # the property could fail: the transpose of P (a wrong convention) is far off
    wrong = discounted_occupancy(env.transition_matrix(policy).T, gamma, start=start)[s0]
    assert 0.5 * np.abs(estimate - wrong / wrong.sum()).sum() > 0.1


def test_bad_arguments():
    with pytest.raises(ValueError, match="slip"):
        FourRooms(slip=1.5)
    with pytest.raises(ValueError, match="goal"):
        FourRooms(goal=104)
    with pytest.raises(ValueError, match="shape \\(104, 4\\)"):
        FourRooms().transition_matrix(np.ones((4, 4)) / 4)
    with pytest.raises(ValueError, match="gamma"):
        discounted_occupancy(np.eye(3), 1.0)
