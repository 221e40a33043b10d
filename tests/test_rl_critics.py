"""Contrastive-RL critics on four-rooms: exact ground truth, scores and short training runs."""

from __future__ import annotations

import numpy as np
import pytest

from contrastkit.rl import FourRooms, TabularPolicy, collect
from contrastkit.rl.critics import (
    anchor_distribution,
    critic_actions,
    occupancy_ratio,
    oracle_actions,
    reach_probability,
    spearman,
    success_rate,
    train_contrastive_critic,
)
from contrastkit.rl.offline_gcrl import (
    sample_goal_transitions,
    sample_uniform_future,
    train_gcbc,
    train_offline_gc,
)

UNIFORM = np.full((104, 4), 0.25)


@pytest.fixture(scope="module")
def data():
    env = FourRooms(slip=0.1, max_steps=500)
    return env, collect(env, TabularPolicy(UNIFORM), n_steps=20_000, seed=0)


def test_occupancy_ratio_against_a_truncated_series():
    env, gamma = FourRooms(slip=0.2), 0.8
    rng = np.random.default_rng(0)
    policy = rng.dirichlet(np.ones(4), size=104)
    anchors = rng.dirichlet(np.ones(416)).reshape(104, 4)
    exact = occupancy_ratio(env, policy, gamma, anchors)
    T, P = env.transition_tensor, env.transition_matrix(policy)
    # p(g | s, a) = (1 - gamma) sum_{k >= 1} gamma^(k-1) P(s_{t+k} = g | s_t = s, a_t = a)
    series, step = np.zeros_like(T), T.copy()
    for k in range(1, 200):
        series += (1 - gamma) * gamma ** (k - 1) * step
        step = step @ P
    assert np.allclose(exact["conditional"], series, atol=1e-10)
    assert np.allclose(exact["marginal"], np.einsum("sa,sag->g", anchors, series))
    assert exact["marginal"].sum() == pytest.approx(1.0)


def test_anchor_distribution_counts_every_step(data):
    env, buffer = data
    rho = anchor_distribution(buffer, env.n_states, 4)
    assert rho.sum() == pytest.approx(1.0)
    first = buffer.episode(0)
    assert rho[int(first["observations"][0]), int(first["actions"][0])] > 0


def test_spearman_with_ties_and_monotone_maps():
    x = np.array([1.0, 2.0, 2.0, 3.0, 5.0])
    assert spearman(x, np.exp(x)) == pytest.approx(1.0)
    assert spearman(x, -x) == pytest.approx(-1.0)
    # scipy.stats.spearmanr gives 0.7631578947368421 here (average ranks)
    assert spearman(x, np.array([1.0, 3.0, 2.0, 2.0, 4.0])) == pytest.approx(0.7631578947368421)


def test_reach_probability_against_matrix_powers():
    env = FourRooms(slip=0.3)
    rng = np.random.default_rng(1)
    actions = rng.integers(0, 4, size=(104, 104))
    reach = reach_probability(env, actions, horizon=6)
    T = env.transition_tensor
    for g in (0, 50, 103):
        chain = T[np.arange(104), actions[g]].copy()
        chain[g] = np.eye(104)[g]  # absorbing goal
        assert np.allclose(reach[:, g], np.linalg.matrix_power(chain, 6)[:, g])


def test_oracle_reaches_every_goal_and_beats_random_actions():
    env = FourRooms(slip=0.0)
    assert success_rate(env, oracle_actions(env), horizon=int(env.distances.max())) == pytest.approx(1.0)
    random_actions = np.random.default_rng(0).integers(0, 4, size=(104, 104))
    assert success_rate(env, random_actions, 30) < 0.5


def test_infonce_critic_ranks_the_exact_occupancy_ratio(data):
    env, buffer = data
    gamma = 0.9
    critic = train_contrastive_critic(buffer, 104, 4, loss="infonce", gamma=gamma, steps=150, batch_size=256,
                                      lr=3e-2, hidden=(), seed=0)
    table = critic.table()
    rho = anchor_distribution(buffer, 104, 4)
    ratio = occupancy_ratio(env, UNIFORM, gamma, rho)["ratio"]
    mask = rho > 0
    assert spearman(table[mask], ratio[mask]) > 0.8
    assert critic_actions(table).shape == (104, 104)


def test_hindsight_samplers_stay_in_the_episode(data):
    _, buffer = data
    rng = np.random.default_rng(0)
    ends = np.cumsum(buffer.episode_lengths) + np.arange(buffer.num_episodes)  # last obs row of each episode
    for batch in (sample_uniform_future(buffer, 500, rng), sample_goal_transitions(buffer, 500, rng)):
        episode_of_obs = np.searchsorted(ends, batch["obs"])
        assert (np.searchsorted(ends, batch["goal"]) == episode_of_obs).all()
        assert (batch["goal"] > batch["obs"]).all()
        assert (buffer.observations[batch["next_obs"] - 1] == buffer.observations[batch["obs"]]).all()


@pytest.mark.parametrize("method", ["smore", "iql", "gcbc"])
def test_offline_methods_train_and_return_greedy_actions(data, method):
    env, buffer = data
    out = train_offline_gc(buffer, 104, 4, method, steps=30, batch_size=64, seed=0)
    assert out["actions"].shape == (104, 104) and out["score"].shape == (104, 4, 104)
    assert 0.0 <= success_rate(env, out["actions"], 20) <= 1.0


def test_gcbc_beats_random_actions(data):
    env, buffer = data
    actions = train_gcbc(buffer, 104, 4, gamma=0.9, steps=150, batch_size=256, lr=3e-3, hidden=(64,), seed=0)
    random_actions = np.random.default_rng(0).integers(0, 4, size=(104, 104))
    assert success_rate(env, actions, 50) > success_rate(env, random_actions, 50) + 0.05
