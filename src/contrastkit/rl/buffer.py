"""Trajectory data: a buffer of whole episodes, samplers of positives inside one episode, and ``collect``.

One job: hold episodes as flat numpy arrays and draw the index pairs that temporal and
goal-conditioned contrastive objectives train on, never across an episode boundary.

Layout. ``E`` episodes with ``T_e`` steps each (``N = sum T_e``):

- ``observations`` ``[N + E, ...]``: every episode's ``T_e + 1`` observations, the one after
  its last action included (so a step's next observation is always in the same episode);
- ``actions`` ``[N, ...]``, ``rewards`` ``[N]``, ``terminals`` ``[N]`` (bool, the step ended the
  episode by termination; an episode whose last step is not terminal was truncated);
- ``episode_lengths`` ``[E]`` (``T_e``).

Step ``t`` of episode ``e`` is row ``step_start[e] + t`` of the per-step arrays and its
observation is row ``obs_start[e] + t`` (``obs_start[e] = step_start[e] + e``).

Samplers return observation (and action) row indices, so the caller gathers whatever it
keeps (pixels, states, goals) and tests can check the indices directly:

- :meth:`TrajectoryBuffer.sample_future` -- the goal of contrastive RL: anchor a uniform step
  ``t``, positive the observation ``k >= 1`` steps later with ``P(k) ~ gamma^(k - 1)``,
  i.e. ``k ~ Geometric(1 - gamma)`` on ``{1, 2, ...}``. google-research ``contrastive_rl``
  (``contrastive/builder.py``, ``flatten_fn``) draws ``goal_index`` from
  ``categorical(log(is_future_mask * discount ** (j - i)))`` over the observations ``j > i``
  of the episode: the geometric law *truncated to the episode and renormalised*, which is
  ``truncation="renormalise"`` (the default) here, drawn by inverting the truncated CDF
  instead of a categorical over ``T`` logits. Like theirs, an anchor may be any step
  ``0 .. T_e - 1`` and the goal any later observation ``1 .. T_e`` (the final one included).
  ``truncation="clip"`` is the other common reading, ``min(k, T_e - t)``, which puts the
  whole geometric tail on the episode's last observation. One difference: they sample whole
  episodes uniformly and use all of an episode's steps, so each *episode* weighs the same;
  here each *step* does (the same when all episodes have one length, as theirs do).
- :meth:`TrajectoryBuffer.sample_offset` -- a fixed offset ``k`` (ATC's ``Delta T``,
  a k-step temporal pair); anchors with fewer than ``k`` steps left are never drawn.
- :meth:`TrajectoryBuffer.sample_crops` -- two windows of ``length`` consecutive observations
  of one episode (trajectory-level contrast, CLAM-style), starts independent and uniform.
- :meth:`TrajectoryBuffer.sample_action_windows` -- observation ``t``, actions
  ``t .. t + K - 1`` and observation ``t + K`` (TACO's action sequence and future state).

Files: :meth:`TrajectoryBuffer.save` writes a ``.npz`` atomically (:mod:`contrastkit.utils.atomic`) with
plain arrays only; :meth:`TrajectoryBuffer.load` reads it with ``allow_pickle=False`` and checks every key,
dtype and length, failing with one line that names the file and what is wrong.

``collect(env, policy, n_steps, seed)`` runs any environment with the gymnasium API
(``reset(seed=...) -> (obs, info)``, ``step(a) -> (obs, reward, terminated, truncated, info)``);
gymnasium itself is not imported.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from contrastkit.utils.atomic import atomic_write_bytes

__all__ = ["TrajectoryBuffer", "collect", "truncated_geometric"]

FORMAT = "contrastkit.rl.TrajectoryBuffer/1"
KEYS = ("observations", "actions", "rewards", "terminals", "episode_lengths")
TRUNCATIONS = ("renormalise", "clip")


def truncated_geometric(
    remaining: np.ndarray, gamma: float, rng: np.random.Generator, truncation: str = "renormalise"
) -> np.ndarray:
    """Offsets ``k in {1 .. m}`` with ``P(k) ~ gamma^(k - 1)`` for each ``m`` in ``remaining``.

    ``"renormalise"``: the geometric law conditioned on ``k <= m`` (contrastive_rl), drawn by
    inverting ``F(k) = (1 - gamma^k) / (1 - gamma^m)``. ``"clip"``: ``min(Geometric(1 - gamma), m)``.
    ``gamma = 0`` always gives ``k = 1``.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma: expected a float in [0, 1), got {gamma!r}")
    if truncation not in TRUNCATIONS:
        raise ValueError(f"truncation: expected one of {', '.join(TRUNCATIONS)}, got {truncation!r}")
    remaining = np.asarray(remaining, dtype=np.int64)
    if remaining.size and remaining.min() < 1:
        raise ValueError(f"remaining: expected every entry >= 1, got min {int(remaining.min())}")
    if gamma == 0.0:
        return np.ones_like(remaining)
    if truncation == "clip":
        return np.minimum(rng.geometric(1.0 - gamma, size=remaining.shape), remaining)
    u = rng.random(remaining.shape)
    tail = 1.0 - gamma ** remaining.astype(np.float64)  # F(m) before renormalising
    k = np.ceil(np.log1p(-u * tail) / np.log(gamma)).astype(np.int64)
    return np.clip(k, 1, remaining)  # u == 0 gives k = 0; rounding can give m + 1


class TrajectoryBuffer:
    """Whole episodes as flat arrays, with samplers that stay inside an episode.

    Build with :meth:`add_episode` (or :func:`collect`), or from arrays with the
    constructor. Observations and actions may have any trailing shape and dtype.

    Example:
        >>> buffer = TrajectoryBuffer()
        >>> buffer.add_episode(np.arange(4), np.zeros(3, dtype=np.int64), np.zeros(3), terminated=True)
        >>> pairs = buffer.sample_future(8, gamma=0.9, rng=np.random.default_rng(0))
        >>> bool((pairs["positive"] > pairs["anchor"]).all())
        True
    """

    def __init__(
        self,
        observations: np.ndarray | None = None,
        actions: np.ndarray | None = None,
        rewards: np.ndarray | None = None,
        terminals: np.ndarray | None = None,
        episode_lengths: np.ndarray | None = None,
    ) -> None:
        self._episodes: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self._flat: dict[str, np.ndarray] | None = None
        given = [observations, actions, rewards, terminals, episode_lengths]
        if all(a is None for a in given):
            return
        if any(a is None for a in given):
            raise ValueError("TrajectoryBuffer: expected all of observations, actions, rewards, terminals, "
                             "episode_lengths or none of them")
        flat = dict(zip(KEYS, (np.asarray(a) for a in given)))
        _check_flat(flat, "TrajectoryBuffer")
        lengths = flat["episode_lengths"]
        steps = np.concatenate([[0], np.cumsum(lengths)])
        for e, length in enumerate(lengths):
            s, o = steps[e], steps[e] + e
            self._episodes.append((flat["observations"][o:o + length + 1], flat["actions"][s:s + length],
                                   flat["rewards"][s:s + length], flat["terminals"][s:s + length]))

    # ----------------------------------------------------------------- building
    def add_episode(
        self,
        observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        *,
        terminated: bool = False,
        terminals: np.ndarray | None = None,
    ) -> None:
        """Append one episode: ``T + 1`` observations, ``T`` actions and rewards (``T >= 1``).

        ``terminals`` (``[T]`` bool) defaults to all False with the last one ``terminated``.
        """
        observations, actions = np.asarray(observations), np.asarray(actions)
        rewards = np.asarray(rewards, dtype=np.float32)
        steps = len(actions)
        if steps < 1:
            raise ValueError("add_episode: expected at least one step (T >= 1 actions), got 0")
        if len(observations) != steps + 1:
            raise ValueError(f"add_episode: expected T + 1 = {steps + 1} observations for {steps} actions "
                             f"(the one after the last action included), got {len(observations)}")
        if rewards.shape != (steps,):
            raise ValueError(f"add_episode: expected rewards of shape ({steps},), got {rewards.shape}")
        if terminals is None:
            terminals = np.zeros(steps, dtype=bool)
            terminals[-1] = bool(terminated)
        terminals = np.asarray(terminals, dtype=bool)
        if terminals.shape != (steps,):
            raise ValueError(f"add_episode: expected terminals of shape ({steps},), got {terminals.shape}")
        if terminals[:-1].any():
            raise ValueError("add_episode: a terminal step before the last one; split the episode there")
        if self._episodes:
            first_obs, first_act = self._episodes[0][0], self._episodes[0][1]
            if observations.shape[1:] != first_obs.shape[1:] or actions.shape[1:] != first_act.shape[1:]:
                raise ValueError(f"add_episode: expected observations [T+1, {first_obs.shape[1:]}] and actions "
                                 f"[T, {first_act.shape[1:]}] like the first episode, got "
                                 f"{observations.shape} and {actions.shape}")
        self._episodes.append((observations, actions, rewards, terminals))
        self._flat = None

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """The flat arrays (``observations``, ``actions``, ``rewards``, ``terminals``, ``episode_lengths``)."""
        if self._flat is None:
            if not self._episodes:
                raise ValueError("TrajectoryBuffer: expected at least one episode, got an empty buffer")
            obs, act, rew, term = zip(*self._episodes)
            self._flat = {
                "observations": np.concatenate(obs), "actions": np.concatenate(act),
                "rewards": np.concatenate(rew).astype(np.float32), "terminals": np.concatenate(term),
                "episode_lengths": np.array([len(a) for a in act], dtype=np.int64),
            }
        return self._flat

    @property
    def observations(self) -> np.ndarray:
        return self.arrays["observations"]

    @property
    def actions(self) -> np.ndarray:
        return self.arrays["actions"]

    @property
    def rewards(self) -> np.ndarray:
        return self.arrays["rewards"]

    @property
    def terminals(self) -> np.ndarray:
        return self.arrays["terminals"]

    @property
    def episode_lengths(self) -> np.ndarray:
        return self.arrays["episode_lengths"]

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    @property
    def num_steps(self) -> int:
        return int(sum(len(e[1]) for e in self._episodes))

    def __len__(self) -> int:
        return self.num_steps

    def episode(self, index: int) -> dict[str, np.ndarray]:
        """Episode ``index`` as arrays (``observations`` ``[T+1, ...]``, ``actions``, ``rewards``, ``terminals``)."""
        obs, act, rew, term = self._episodes[index]
        return {"observations": obs, "actions": act, "rewards": rew, "terminals": term}

    # ----------------------------------------------------------------- indexing
    def _starts(self) -> tuple[np.ndarray, np.ndarray]:
        lengths = self.episode_lengths
        step_start = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        return step_start, step_start + np.arange(len(lengths))

    def _anchors(self, count: int, need: int, rng: np.random.Generator, owner: str) -> tuple[np.ndarray, np.ndarray]:
        """``count`` uniform ``(episode, t)`` with at least ``need`` steps after ``t`` (``t + need <= T_e``)."""
        if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
            raise ValueError(f"{owner}: expected an int batch size >= 1, got {count!r}")
        valid = np.maximum(self.episode_lengths - need + 1, 0)  # anchors t = 0 .. T_e - need
        total = int(valid.sum())
        if total == 0:
            raise ValueError(f"{owner}: expected an episode with at least {need} steps, "
                             f"got longest {int(self.episode_lengths.max())}")
        flat = rng.integers(0, total, size=count)
        bounds = np.cumsum(valid)
        episode = np.searchsorted(bounds, flat, side="right")
        t = flat - (bounds[episode] - valid[episode])
        return episode, t

    def sample_future(
        self, batch_size: int, gamma: float, rng: np.random.Generator, *, truncation: str = "renormalise"
    ) -> dict[str, np.ndarray]:
        """Anchor observation ``t`` and positive ``t + k``, ``k ~ Geometric(1 - gamma)`` within the episode.

        Returns ``{"anchor", "positive", "action", "offset", "episode"}``: observation rows,
        the anchor step's action row, ``k`` and the episode index (all ``[B]`` int64).
        """
        rng = np.random.default_rng(rng)
        episode, t = self._anchors(batch_size, 1, rng, "sample_future")
        k = truncated_geometric(self.episode_lengths[episode] - t, gamma, rng, truncation)
        step_start, obs_start = self._starts()
        return {"anchor": obs_start[episode] + t, "positive": obs_start[episode] + t + k,
                "action": step_start[episode] + t, "offset": k, "episode": episode}

    def sample_offset(self, batch_size: int, k: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Anchor observation ``t`` and positive ``t + k`` of the same episode (fixed ``k >= 1``)."""
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"sample_offset: expected an int k >= 1, got {k!r}")
        episode, t = self._anchors(batch_size, k, np.random.default_rng(rng), "sample_offset")
        step_start, obs_start = self._starts()
        return {"anchor": obs_start[episode] + t, "positive": obs_start[episode] + t + k,
                "action": step_start[episode] + t, "offset": np.full_like(t, k), "episode": episode}

    def sample_crops(self, batch_size: int, length: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Two windows of ``length`` consecutive observations from one episode: ``[B, length]`` rows each.

        The episode is drawn with probability proportional to its number of windows; the two
        starts are independent and uniform over ``0 .. T_e + 1 - length`` (they may overlap).
        """
        if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 1:
            raise ValueError(f"sample_crops: expected an int length >= 1, got {length!r}")
        rng = np.random.default_rng(rng)
        # A window of `length` observations fits T_e + 2 - length times into T_e + 1 observations.
        episode, first = self._anchors(batch_size, length - 1, rng, "sample_crops")
        windows = self.episode_lengths[episode] + 2 - length
        second = rng.integers(0, windows)
        _, obs_start = self._starts()
        offsets = np.arange(length)
        return {"anchor": (obs_start[episode] + first)[:, None] + offsets,
                "positive": (obs_start[episode] + second)[:, None] + offsets, "episode": episode}

    def sample_action_windows(self, batch_size: int, horizon: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Observation ``t``, action rows ``t .. t + K - 1`` (``[B, K]``) and observation ``t + K``."""
        if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)) or horizon < 1:
            raise ValueError(f"sample_action_windows: expected an int horizon K >= 1, got {horizon!r}")
        episode, t = self._anchors(batch_size, horizon, np.random.default_rng(rng), "sample_action_windows")
        step_start, obs_start = self._starts()
        return {"anchor": obs_start[episode] + t, "actions": (step_start[episode] + t)[:, None] + np.arange(horizon),
                "positive": obs_start[episode] + t + horizon, "episode": episode}

    # ----------------------------------------------------------------- files
    def save(self, path: str | Path) -> Path:
        """Write the buffer to ``path`` (``.npz``, no pickled objects) atomically; return the path."""
        path = Path(path)
        if path.suffix != ".npz":
            raise ValueError(f"TrajectoryBuffer.save: expected a path ending in .npz, got {str(path)!r}")
        arrays = self.arrays
        for key in ("observations", "actions"):
            if arrays[key].dtype == object:
                raise ValueError(f"TrajectoryBuffer.save: {key} has dtype object, which .npz cannot hold "
                                 "without pickle; store numeric arrays")
        payload = io.BytesIO()
        np.savez_compressed(payload, format=np.array(FORMAT), **arrays)
        atomic_write_bytes(path, payload.getvalue())
        return path

    @classmethod
    def load(cls, path: str | Path) -> TrajectoryBuffer:
        """Read a buffer written by :meth:`save`; a missing, corrupt or foreign file fails with one line."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"TrajectoryBuffer.load: no file at {path}")
        owner = f"TrajectoryBuffer.load: {path}"
        try:
            with np.load(path, allow_pickle=False) as data:
                found = {key: data[key] for key in data.files}
        except (zipfile.BadZipFile, OSError, EOFError, ValueError) as error:
            raise ValueError(f"{owner}: expected a .npz written by TrajectoryBuffer.save, "
                             f"got an unreadable file ({type(error).__name__}: {error})") from None
        missing = [key for key in ("format", *KEYS) if key not in found]
        if missing:
            raise ValueError(f"{owner}: expected keys format, {', '.join(KEYS)}; missing {', '.join(missing)}")
        if str(found["format"]) != FORMAT:
            raise ValueError(f"{owner}: expected format {FORMAT!r}, got {str(found['format'])!r}")
        flat = {key: found[key] for key in KEYS}
        _check_flat(flat, owner)
        return cls(**flat)


def _check_flat(flat: dict[str, np.ndarray], owner: str) -> None:
    lengths = flat["episode_lengths"]
    if lengths.ndim != 1 or lengths.size == 0 or not np.issubdtype(lengths.dtype, np.integer) or lengths.min() < 1:
        raise ValueError(f"{owner}: expected episode_lengths as a non-empty 1-D int array of values >= 1, "
                         f"got shape {lengths.shape}, dtype {lengths.dtype}")
    steps, episodes = int(lengths.sum()), len(lengths)
    expected = {"observations": steps + episodes, "actions": steps, "rewards": steps, "terminals": steps}
    for key, rows in expected.items():
        if flat[key].ndim == 0 or len(flat[key]) != rows:
            raise ValueError(f"{owner}: expected {rows} rows in {key} for episode lengths summing to {steps}, "
                             f"got shape {flat[key].shape}")
    if flat["rewards"].ndim != 1 or flat["terminals"].ndim != 1 or flat["terminals"].dtype != bool:
        raise ValueError(f"{owner}: expected rewards [N] and bool terminals [N], got {flat['rewards'].shape} "
                         f"and {flat['terminals'].shape} {flat['terminals'].dtype}")
    ends = np.cumsum(lengths) - 1
    inner = np.ones(steps, dtype=bool)
    inner[ends] = False
    if flat["terminals"][inner].any():
        raise ValueError(f"{owner}: a terminal step inside an episode (row {int(np.flatnonzero(flat['terminals'] & inner)[0])})")


Policy = Callable[[Any, np.random.Generator], Any]


def collect(env: Any, policy: Policy, n_steps: int, seed: int = 0) -> TrajectoryBuffer:
    """Run ``policy`` in ``env`` for ``n_steps`` steps; return the episodes as a :class:`TrajectoryBuffer`.

    ``env`` has the gymnasium API; the first ``reset`` gets ``seed``, later resets continue
    the environment's own RNG (gymnasium's convention). ``policy(observation, rng)`` returns
    an action; ``rng`` is ``np.random.default_rng(seed)``, so a run is reproducible. The last
    episode is cut at ``n_steps`` and stored as truncated.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, (int, np.integer)) or n_steps < 1:
        raise ValueError(f"collect: expected an int n_steps >= 1, got {n_steps!r}")
    for method in ("reset", "step"):
        if not callable(getattr(env, method, None)):
            raise ValueError(  # noqa: TRY004 - bad input is a ValueError throughout the library
                f"collect: expected an environment with reset() and step() (gymnasium API), "
                f"got {type(env).__name__} without {method}()")
    rng = np.random.default_rng(seed)
    buffer = TrajectoryBuffer()
    observation, _ = env.reset(seed=int(seed))
    obs, act, rew = [np.asarray(observation)], [], []
    for step in range(n_steps):
        action = policy(observation, rng)
        observation, reward, terminated, truncated, _ = env.step(action)
        act.append(np.asarray(action))
        rew.append(float(reward))
        obs.append(np.asarray(observation))
        if terminated or truncated or step == n_steps - 1:
            buffer.add_episode(np.stack(obs), np.stack(act), np.asarray(rew, dtype=np.float32),
                               terminated=bool(terminated))
            if step < n_steps - 1:
                observation, _ = env.reset()
                obs, act, rew = [np.asarray(observation)], [], []
    return buffer
