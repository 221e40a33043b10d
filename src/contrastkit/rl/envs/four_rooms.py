"""The four-rooms gridworld in numpy, with the exact dynamics and discounted occupancy of any tabular policy.

One job: a small environment whose ground truth is known in closed form, so that learned
critics and goal-reaching policies can be scored against it.

The layout is Sutton, Precup & Singh's (1999) 13 x 13 grid: four rooms, four one-cell
doorways, 104 free cells (the states, numbered row by row). Actions 0..3 move up, right,
down, left; a move into a wall stays put. With probability ``slip`` the action is replaced
by one drawn uniformly from the four (so the intended move happens with probability
``1 - slip + slip / 4``). The gymnasium API without importing gymnasium:
``reset(seed=None, options=None) -> (state, info)``, ``step(action) -> (state, reward,
terminated, truncated, info)``; observations are state indices (``np.int64``), and
:attr:`FourRooms.cells` maps them to ``(row, col)``. With a ``goal`` the episode terminates on
reaching it with reward 1, else the reward is 0 and only the time limit ends an episode.

Ground truth (the dynamics without termination, i.e. the chain a goal-conditioned critic models):

- :meth:`FourRooms.transition_matrix` ``P[s, s'] = sum_a pi(a | s) T[s, a, s']`` for a
  tabular policy ``pi`` ``[S, A]``;
- :func:`discounted_occupancy` ``M = (1 - gamma) (I - gamma P)^{-1}``, row ``s`` the
  discounted distribution of ``s_t`` (``t >= 0``) from ``s_0 = s``; with ``start=1`` it is
  ``(1 - gamma) P (I - gamma P)^{-1}``, the law of ``s_{t + k}`` with ``k ~ Geometric(1 - gamma)``
  on ``{1, 2, ...}`` -- the goals :meth:`contrastkit.rl.buffer.TrajectoryBuffer.sample_future`
  draws (up to episode truncation).

Data: :class:`WaypointPolicy`, a noisy waypoint controller (walk the shortest path to a
random cell, a random action with probability ``epsilon``, a new waypoint on arrival), and
:meth:`FourRooms.goal_policy`, its Markov (tabular) form for one fixed goal.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

__all__ = ["LAYOUT", "FourRooms", "TabularPolicy", "WaypointPolicy", "discounted_occupancy"]

#: ``#`` wall, ``.`` free (Sutton, Precup & Singh 1999).
LAYOUT = (
    "#############",
    "#.....#.....#",
    "#.....#.....#",
    "#...........#",
    "#.....#.....#",
    "#.....#.....#",
    "##.####.....#",
    "#.....###.###",
    "#.....#.....#",
    "#.....#.....#",
    "#...........#",
    "#.....#.....#",
    "#############",
)
#: (row, col) displacement of actions up, right, down, left.
MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]], dtype=np.int64)


class FourRooms:
    """The four-rooms gridworld (gymnasium-style API, numpy only).

    Args:
        slip: probability that the action is replaced by a uniformly random one (default 0.1).
        max_steps: time limit; ``step`` reports ``truncated`` when it is reached (default 200).
        goal: optional goal state index; reaching it gives reward 1 and ends the episode.
        start: optional start state index; default a uniformly random free cell.

    Example:
        >>> env = FourRooms(slip=0.0)
        >>> state, _ = env.reset(seed=0)
        >>> next_state, reward, terminated, truncated, _ = env.step(1)
    """

    n_actions = 4

    def __init__(self, slip: float = 0.1, max_steps: int = 200, goal: int | None = None, start: int | None = None):
        if not isinstance(slip, (int, float)) or not 0.0 <= slip <= 1.0:
            raise ValueError(f"FourRooms: expected slip in [0, 1], got {slip!r}")
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ValueError(f"FourRooms: expected an int max_steps >= 1, got {max_steps!r}")
        grid = np.array([[c == "." for c in row] for row in LAYOUT])
        self.free = grid
        self.cells = np.argwhere(grid).astype(np.int64)  # [S, 2] (row, col), row-major
        self.n_states = len(self.cells)
        index = -np.ones(grid.shape, dtype=np.int64)
        index[grid] = np.arange(self.n_states)
        self._index = index
        for name, value in (("goal", goal), ("start", start)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                                      or not 0 <= value < self.n_states):
                raise ValueError(f"FourRooms: expected {name} as a state index in [0, {self.n_states}), got {value!r}")
        self.slip, self.max_steps, self.goal, self.start = float(slip), max_steps, goal, start
        # next_state[s, a]: the deterministic effect of action a in state s (walls: stay).
        targets = self.cells[:, None, :] + MOVES[None]
        landed = index[targets[..., 0], targets[..., 1]]
        self.next_state = np.where(landed >= 0, landed, np.arange(self.n_states)[:, None])
        self._rng = np.random.default_rng()
        self._state = 0
        self._steps = 0
        self._distances: np.ndarray | None = None

    # ----------------------------------------------------------------- gymnasium-style API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.int64, dict[str, Any]]:
        """Start an episode at ``start`` (or a uniform free cell); ``seed`` reseeds the environment's RNG."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        start = (options or {}).get("start", self.start)
        self._state = int(self._rng.integers(self.n_states)) if start is None else int(start)
        self._steps = 0
        return np.int64(self._state), {}

    def step(self, action: int) -> tuple[np.int64, float, bool, bool, dict[str, Any]]:
        """Apply ``action`` (0 up, 1 right, 2 down, 3 left), with slip; gymnasium's 5-tuple."""
        action = int(action)
        if not 0 <= action < self.n_actions:
            raise ValueError(f"FourRooms.step: expected an action in 0..3, got {action}")
        if self.slip and self._rng.random() < self.slip:
            action = int(self._rng.integers(self.n_actions))
        self._state = int(self.next_state[self._state, action])
        self._steps += 1
        reached = self.goal is not None and self._state == self.goal
        return np.int64(self._state), float(reached), bool(reached), self._steps >= self.max_steps, {}

    # ----------------------------------------------------------------- ground truth
    @property
    def transition_tensor(self) -> np.ndarray:
        """``T[s, a, s']`` ``[S, 4, S]``, slip included (each row sums to 1)."""
        S, A = self.n_states, self.n_actions
        deterministic = np.zeros((S, A, S))
        deterministic[np.arange(S)[:, None], np.arange(A)[None], self.next_state] = 1.0
        return (1.0 - self.slip) * deterministic + self.slip * deterministic.mean(axis=1, keepdims=True)

    def transition_matrix(self, policy: np.ndarray) -> np.ndarray:
        """``P[s, s'] = sum_a policy[s, a] T[s, a, s']`` for a tabular policy ``[S, 4]`` (rows sum to 1)."""
        policy = check_tabular_policy(policy, self.n_states, self.n_actions)
        return np.einsum("sa,sat->st", policy, self.transition_tensor)

    @property
    def distances(self) -> np.ndarray:
        """Shortest-path lengths in moves ``[S, S]`` (breadth-first search from every state)."""
        if self._distances is None:
            S = self.n_states
            dist = np.full((S, S), -1, dtype=np.int64)
            for source in range(S):
                dist[source, source] = 0
                queue = deque([source])
                while queue:
                    s = queue.popleft()
                    for t in self.next_state[s]:
                        if dist[source, t] < 0:
                            dist[source, t] = dist[source, s] + 1
                            queue.append(t)
            self._distances = dist
        return self._distances

    def greedy_actions(self, goal: int) -> np.ndarray:
        """``[S, 4]`` bool: the actions that shorten the path to ``goal`` (none at the goal itself)."""
        to_goal = self.distances[:, goal]
        return to_goal[self.next_state] < to_goal[:, None]

    def goal_policy(self, goal: int, epsilon: float = 0.2) -> np.ndarray:
        """The Markov policy ``[S, 4]`` that walks to ``goal``: uniform over shortening actions w.p. ``1 - epsilon``.

        At the goal (no shortening action) it acts uniformly.
        """
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"goal_policy: expected epsilon in [0, 1], got {epsilon!r}")
        greedy = self.greedy_actions(goal).astype(np.float64)
        greedy[greedy.sum(axis=1) == 0] = 1.0
        greedy /= greedy.sum(axis=1, keepdims=True)
        return (1.0 - epsilon) * greedy + epsilon / self.n_actions


def check_tabular_policy(policy: np.ndarray, n_states: int, n_actions: int) -> np.ndarray:
    """``policy`` as float ``[S, A]`` with non-negative rows summing to 1, else a clear error."""
    policy = np.asarray(policy, dtype=np.float64)
    if policy.shape != (n_states, n_actions):
        raise ValueError(f"policy: expected a tabular policy of shape ({n_states}, {n_actions}), got {policy.shape}")
    if (policy < 0).any() or not np.allclose(policy.sum(axis=1), 1.0, atol=1e-6):
        raise ValueError("policy: expected non-negative rows that sum to 1")
    return policy


def discounted_occupancy(transition: np.ndarray, gamma: float, *, start: int = 0) -> np.ndarray:
    """``(1 - gamma) sum_{t >= start} gamma^(t - start) P^t``: ``start=0`` gives ``(1 - gamma)(I - gamma P)^{-1}``.

    Args:
        transition: ``[S, S]`` row-stochastic ``P``.
        gamma: discount in ``[0, 1)``.
        start: 0 (the state itself counts, ``t >= 0``) or 1 (future states only, ``t >= 1``:
            contrastive RL's goal distribution).

    Returns:
        ``[S, S]``; row ``s`` is a distribution over states.
    """
    transition = np.asarray(transition, dtype=np.float64)
    if transition.ndim != 2 or transition.shape[0] != transition.shape[1]:
        raise ValueError(f"transition: expected a square [S, S] matrix, got {transition.shape}")
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma: expected a float in [0, 1), got {gamma!r}")
    if start not in (0, 1):
        raise ValueError(f"start: expected 0 or 1, got {start!r}")
    S = transition.shape[0]
    occupancy = (1.0 - gamma) * np.linalg.solve(np.eye(S) - gamma * transition, np.eye(S))
    return transition @ occupancy if start == 1 else occupancy


class TabularPolicy:
    """A tabular policy ``[S, A]`` as a ``policy(observation, rng) -> action`` callable for :func:`collect`."""

    def __init__(self, probabilities: np.ndarray):
        probabilities = np.asarray(probabilities, dtype=np.float64)
        if probabilities.ndim != 2:
            raise ValueError(f"TabularPolicy: expected probabilities [S, A], got {probabilities.shape}")
        self.probabilities = check_tabular_policy(probabilities, *probabilities.shape)
        self._cumulative = np.cumsum(self.probabilities, axis=1)

    def __call__(self, observation: Any, rng: np.random.Generator) -> int:
        row = self._cumulative[int(observation)]
        return int(min(np.searchsorted(row, rng.random() * row[-1], side="right"), len(row) - 1))


class WaypointPolicy:
    """A noisy waypoint controller for data: shortest path to a random cell, random action w.p. ``epsilon``.

    On reaching its waypoint (or at the first call) it draws a new one uniformly among the
    free cells. Stateful, so not Markov in the state alone; its trajectories visit every room.
    Thousands of steps per second: one table look-up and one or two random numbers a step.

    Example:
        >>> from contrastkit.rl.buffer import collect
        >>> buffer = collect(FourRooms(), WaypointPolicy(FourRooms()), n_steps=1000, seed=0)
    """

    def __init__(self, env: FourRooms, epsilon: float = 0.2):
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"WaypointPolicy: expected epsilon in [0, 1], got {epsilon!r}")
        self.env, self.epsilon = env, float(epsilon)
        to = env.distances  # [S, S]
        # shortening[s, g, a]: action a moves s closer to g.
        self._shortening = to[env.next_state, :].transpose(0, 2, 1) < to[:, :, None]
        self.waypoint: int | None = None

    def __call__(self, observation: Any, rng: np.random.Generator) -> int:
        state = int(observation)
        if self.waypoint is None or state == self.waypoint:
            self.waypoint = int(rng.integers(self.env.n_states))
            while self.waypoint == state:
                self.waypoint = int(rng.integers(self.env.n_states))
        if rng.random() < self.epsilon:
            return int(rng.integers(self.env.n_actions))
        choices = np.flatnonzero(self._shortening[state, self.waypoint])
        return int(choices[rng.integers(len(choices))])
