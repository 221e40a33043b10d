"""Sequential decision-making (issue 17): trajectory data, shipped environments and preference bandits.

- :mod:`contrastkit.rl.buffer` -- :class:`TrajectoryBuffer` (episodes as arrays, ``.npz`` without
  pickle) with positive samplers that stay inside an episode, and :func:`collect` for any
  gymnasium-style environment;
- :mod:`contrastkit.rl.envs` -- the four-rooms gridworld with the exact discounted occupancy of
  any tabular policy, and a noisy waypoint controller for data;
- :mod:`contrastkit.rl.bandit` -- the 100-arm bandit of Tajwar et al. (ICML 2024) with the
  closed-form optima of DPO, IPO and SFT, tabular training by each loss, offline and on-policy.

The objectives themselves live in :mod:`contrastkit.functional.preference`. See docs/rl.md.
"""

from contrastkit.rl.buffer import TrajectoryBuffer, collect, truncated_geometric
from contrastkit.rl.envs import (
           FourRooms,
           TabularPolicy,
           WaypointPolicy,
           discounted_occupancy,
)

__all__ = ["FourRooms", "TabularPolicy", "TrajectoryBuffer", "WaypointPolicy", "collect", "discounted_occupancy",
           "truncated_geometric"]
