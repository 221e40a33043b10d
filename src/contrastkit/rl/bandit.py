"""The 100-arm preference bandit of Tajwar et al. (ICML 2024, seed #30): closed-form optima and tabular training.

One job: a bandit whose reward, reference policy and preference labels are known exactly,
so that a policy trained by DPO, IPO or SFT can be compared with the optimum of its own
objective and with the others by expected reward.

Set-up (from the official ``Asap7772/understanding-rlhf`` ``bandit_experiment``):

- arms ``a = 0 .. 99``; reward ``r(a) = exp(-((a - c) / 10)^2)`` with ``c = 70``
  (``reward_4``, "not aligned": the peak sits where ``pi_ref`` has little mass) or ``c = 20``
  (``reward_5``, aligned);
- ``pi_ref``: a Cauchy(-0.7, 0.4) squashed by ``tanh`` and binned into 100 equal bins of
  ``[-1, 1]`` (``ContinuousSampledCategorical(SquashedCauchy(-0.7, 0.4))``). The official code
  estimates the bins from 10 000 samples (some bins may be empty); here the bin masses are
  exact, ``F(atanh(e_{i+1})) - F(atanh(e_i))`` with the Cauchy CDF ``F``. The heavy tails put
  7.8 % on arm 0 and 4.2 % on arm 99; the interior mode is arm 16 (the Cauchy's
  peak maps to arm 19.8, tanh's Jacobian shifts the binned mode).
- preference labels: Bradley-Terry, ``P(a > b) = sigmoid(s (r(a) - r(b)))`` with scale ``s``.
  The official code labels deterministically (the higher reward wins, ``s -> inf``), under
  which DPO has no finite optimum; a finite ``s`` gives each objective a closed form.

Closed forms for pairs ``(y, y')`` drawn i.i.d. from ``mu`` (``mu = pi_ref`` offline),
``h = log pi / pi_ref``, on the arms ``mu`` covers (``mu > 0``; elsewhere the losses do not
constrain ``pi`` and the closed form puts 0):

- DPO: per pair ``beta (h(y) - h(y')) = logit P(y > y') = s (r(y) - r(y'))`` is optimal,
  so ``pi* = pi_ref exp(s r / beta) / Z`` (:func:`dpo_optimum`);
- IPO: the squared loss is minimised in the least-squares sense over ``mu x mu`` by
  ``h(y) = p(y > mu) / tau + c``, ``p(y > mu) = sum_y' mu(y') P(y > y')`` (Azar et al. 2024,
  Prop. 3), so ``pi* = pi_ref exp(p(y > mu) / tau) / Z`` (:func:`ipo_optimum`);
- SFT on the winners: ``pi* = P(y_w = y) = 2 mu(y) p(y > mu)`` (:func:`sft_optimum`).

Training (:func:`train_tabular`): a tabular softmax policy (logits initialised to
``log pi_ref``, as the official code first fits its policy to ``pi_data`` by SFT), Adam, each
loss from :mod:`contrastkit.functional.preference`. Pair sources:

- ``"population"``: fresh pairs from ``mu`` every step (stochastic gradient on the population
  loss: converges to the closed form);
- ``"offline"``: one fixed data set of ``n_pairs`` pairs from ``pi_ref``, labelled once,
  minibatches from it;
- ``"on_policy"``: ``rounds`` rounds; each samples ``n_pairs / rounds`` pairs from the current
  policy, labels them and trains ``steps / rounds`` steps on them (the official on-policy DPO:
  epoch 0 from ``pi_data``, later epochs from the agent, ``pi_ref`` kept fixed).

Deviations from the official bandit: one context instead of 100 random 100-d contexts with an
MLP policy (the claim concerns the action distribution); exact ``pi_ref``; Bradley-Terry
instead of deterministic labels; one pair per draw instead of all pairs among ``N`` samples;
a fixed number of steps instead of their stop-on-small-change rule; their IPO target is
``beta``, here ``1 / (2 tau)`` as the IPO paper and TRL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch

from contrastkit.functional.preference import dpo_loss, ipo_loss, sft_loss

__all__ = [
    "OBJECTIVES",
    "PreferenceBandit",
    "dpo_optimum",
    "ipo_optimum",
    "reference_policy",
    "sft_optimum",
    "total_variation",
    "train_tabular",
]

OBJECTIVES = ("dpo", "ipo", "sft")
SOURCES = ("population", "offline", "on_policy")


def reference_policy(n_arms: int = 100, loc: float = -0.7, scale: float = 0.4) -> np.ndarray:
    """Exact bin masses of ``tanh(Cauchy(loc, scale))`` on ``n_arms`` equal bins of ``[-1, 1]``."""
    if isinstance(n_arms, bool) or not isinstance(n_arms, int) or n_arms < 2:
        raise ValueError(f"reference_policy: expected an int n_arms >= 2, got {n_arms!r}")
    if not scale > 0:
        raise ValueError(f"reference_policy: expected scale > 0, got {scale!r}")
    edges = np.linspace(-1.0, 1.0, n_arms + 1)
    with np.errstate(divide="ignore"):
        z = np.arctanh(edges)  # -inf and +inf at the ends
    cdf = 0.5 + np.arctan((z - loc) / scale) / math.pi
    return np.diff(cdf)


def gaussian_reward(n_arms: int = 100, center: float = 70.0, width: float = 10.0) -> np.ndarray:
    """``r(a) = exp(-((a - center) / width)^2)`` for ``a = 0 .. n_arms - 1`` (official ``reward_4`` / ``reward_5``)."""
    return np.exp(-(((np.arange(n_arms) - center) / width) ** 2))


@dataclass(frozen=True)
class PreferenceBandit:
    """A bandit with a known reward, reference policy and Bradley-Terry preference labels.

    Args:
        reward: ``[K]`` reward per arm.
        reference: ``[K]`` ``pi_ref`` (positive, sums to 1).
        scale: Bradley-Terry scale ``s``: ``P(a > b) = sigmoid(s (r(a) - r(b)))``.

    Example:
        >>> bandit = PreferenceBandit.tajwar(aligned=False)
        >>> round(bandit.expected_reward(bandit.reference), 3)
        0.039
    """

    reward: np.ndarray
    reference: np.ndarray
    scale: float = 10.0

    def __post_init__(self) -> None:
        reward, reference = np.asarray(self.reward, float), np.asarray(self.reference, float)
        if reward.ndim != 1 or reference.shape != reward.shape:
            raise ValueError(f"PreferenceBandit: expected reward and reference of one shape [K], "
                             f"got {reward.shape} and {reference.shape}")
        if (reference <= 0).any() or not np.isclose(reference.sum(), 1.0):
            raise ValueError("PreferenceBandit: expected a reference policy with positive entries summing to 1")
        if not self.scale > 0:
            raise ValueError(f"PreferenceBandit: expected scale > 0, got {self.scale!r}")
        object.__setattr__(self, "reward", reward)
        object.__setattr__(self, "reference", reference)

    @classmethod
    def tajwar(cls, aligned: bool = False, scale: float = 10.0, n_arms: int = 100) -> PreferenceBandit:
        """The paper's bandit: reward centred at 70 (misaligned) or 20 (aligned), squashed-Cauchy ``pi_ref``."""
        return cls(gaussian_reward(n_arms, 20.0 if aligned else 70.0), reference_policy(n_arms), scale)

    @property
    def n_arms(self) -> int:
        return len(self.reward)

    @cached_property
    def preference_matrix(self) -> np.ndarray:
        """``P[a, b] = P(a > b) = sigmoid(s (r(a) - r(b)))`` ``[K, K]`` (``P + P.T = 1``)."""
        return 1.0 / (1.0 + np.exp(-self.scale * (self.reward[:, None] - self.reward[None, :])))

    def expected_reward(self, policy: np.ndarray) -> float:
        return float(np.dot(_check_distribution("policy", policy, self.n_arms), self.reward))

    def sample_pairs(self, policy: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` labelled pairs ``(chosen, rejected)``: two arms i.i.d. from ``policy``, Bradley-Terry winner."""
        cumulative = np.cumsum(_check_distribution("policy", policy, self.n_arms))
        first, second = np.minimum(np.searchsorted(cumulative, rng.random((2, n)) * cumulative[-1], side="right"),
                                   self.n_arms - 1)
        first_wins = rng.random(n) < self.preference_matrix[first, second]
        return np.where(first_wins, first, second), np.where(first_wins, second, first)


def _check_distribution(name: str, p: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(p, dtype=np.float64)
    if p.shape != (n,) or (p < 0).any() or not np.isclose(p.sum(), 1.0, atol=1e-6):
        raise ValueError(f"{name}: expected a distribution over {n} arms (non-negative, sums to 1), got shape {p.shape}")
    return p / p.sum()


def _normalise_log(log_weights: np.ndarray, covered: np.ndarray) -> np.ndarray:
    log_weights = np.where(covered, log_weights, -np.inf)
    weights = np.exp(log_weights - log_weights[covered].max())
    return weights / weights.sum()


def dpo_optimum(bandit: PreferenceBandit, beta: float, pair_policy: np.ndarray | None = None) -> np.ndarray:
    """DPO's population optimum ``pi_ref exp(s r / beta) / Z`` on the arms ``pair_policy`` covers."""
    mu = bandit.reference if pair_policy is None else _check_distribution("pair_policy", pair_policy, bandit.n_arms)
    return _normalise_log(np.log(bandit.reference) + bandit.scale * bandit.reward / beta, mu > 0)


def ipo_optimum(bandit: PreferenceBandit, tau: float, pair_policy: np.ndarray | None = None) -> np.ndarray:
    """IPO's population optimum ``pi_ref exp(p(y > mu) / tau) / Z`` on the arms ``mu`` covers."""
    mu = bandit.reference if pair_policy is None else _check_distribution("pair_policy", pair_policy, bandit.n_arms)
    win_rate = bandit.preference_matrix @ mu
    return _normalise_log(np.log(bandit.reference) + win_rate / tau, mu > 0)


def sft_optimum(bandit: PreferenceBandit, pair_policy: np.ndarray | None = None) -> np.ndarray:
    """SFT on the winners: the winners' distribution ``2 mu(y) p(y > mu)``."""
    mu = bandit.reference if pair_policy is None else _check_distribution("pair_policy", pair_policy, bandit.n_arms)
    winners = 2.0 * mu * (bandit.preference_matrix @ mu)
    return winners / winners.sum()


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """``TV(p, q) = sum |p - q| / 2``."""
    return 0.5 * float(np.abs(np.asarray(p, float) - np.asarray(q, float)).sum())


def _loss(objective: str, log_policy: torch.Tensor, log_reference: torch.Tensor, chosen: torch.Tensor,
          rejected: torch.Tensor, beta: float, tau: float) -> torch.Tensor:
    if objective == "sft":
        return sft_loss(log_policy[chosen])
    args = (log_policy[chosen], log_policy[rejected], log_reference[chosen], log_reference[rejected])
    return dpo_loss(*args, beta=beta) if objective == "dpo" else ipo_loss(*args, tau=tau)


def train_tabular(
    bandit: PreferenceBandit,
    objective: str,
    *,
    source: str = "population",
    steps: int = 2000,
    batch_size: int = 512,
    lr: float = 0.05,
    beta: float = 0.1,
    tau: float = 0.1,
    n_pairs: int = 10_000,
    rounds: int = 10,
    seed: int = 0,
    record_every: int = 0,
) -> dict[str, object]:
    """Train a tabular softmax policy (logits start at ``log pi_ref``) by one preference objective.

    Args:
        bandit: the :class:`PreferenceBandit`.
        objective: ``"dpo"``, ``"ipo"`` or ``"sft"``.
        source: ``"population"`` (fresh pairs from ``pi_ref`` each step), ``"offline"`` (one
            fixed set of ``n_pairs`` pairs from ``pi_ref``) or ``"on_policy"`` (``rounds``
            rounds of ``n_pairs / rounds`` pairs from the current policy).
        steps: Adam steps in all (split evenly over the rounds on-policy).
        batch_size: pairs per step (drawn with replacement from the data set when there is one).
        lr: Adam learning rate.
        beta: DPO's ``beta``; tau: IPO's ``tau``.
        n_pairs: labelled pairs in all (the preference-label budget) for ``offline`` / ``on_policy``.
        rounds: on-policy rounds.
        seed: seeds the pair sampling (numpy) and nothing else (the optimisation is deterministic).
        record_every: if > 0, record the expected reward every that many steps.

    Returns:
        ``{"policy": [K] numpy, "expected_reward": float, "labels": pairs labelled,
        "history": [(step, expected reward)]}``.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"train_tabular: expected objective in {', '.join(OBJECTIVES)}, got {objective!r}")
    if source not in SOURCES:
        raise ValueError(f"train_tabular: expected source in {', '.join(SOURCES)}, got {source!r}")
    for name, value, minimum in (("steps", steps, 1), ("batch_size", batch_size, 1), ("n_pairs", n_pairs, 1),
                                 ("rounds", rounds, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"train_tabular: expected an int {name} >= {minimum}, got {value!r}")
    rng = np.random.default_rng(seed)
    log_reference = torch.tensor(np.log(bandit.reference), dtype=torch.float64)
    logits = log_reference.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    # Linear decay to 0: a constant step leaves Adam in a noise ball around the optimum.
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: max(0.0, 1.0 - i / steps))
    history: list[tuple[int, float]] = []

    def policy_now() -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(logits, 0).numpy().copy()

    n_rounds = rounds if source == "on_policy" else 1
    labels = 0
    step = 0
    for r in range(n_rounds):
        round_steps = steps // n_rounds + (1 if r < steps % n_rounds else 0)
        data = None
        if source != "population":
            count = n_pairs // n_rounds + (1 if r < n_pairs % n_rounds else 0)
            sampler = bandit.reference if source == "offline" else policy_now()
            data = bandit.sample_pairs(sampler, count, rng)
            labels += count
        for _ in range(round_steps):
            if data is None:
                chosen, rejected = bandit.sample_pairs(bandit.reference, batch_size, rng)
                labels += batch_size
            else:
                rows = rng.integers(0, len(data[0]), size=batch_size)
                chosen, rejected = data[0][rows], data[1][rows]
            log_policy = torch.log_softmax(logits, 0)
            loss = _loss(objective, log_policy, log_reference, torch.from_numpy(chosen), torch.from_numpy(rejected),
                         beta, tau)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            step += 1
            if record_every and step % record_every == 0:
                history.append((step, bandit.expected_reward(policy_now())))
    policy = policy_now()
    return {"policy": policy, "expected_reward": bandit.expected_reward(policy), "labels": labels, "history": history}
