"""Environments that ship with contrastkit, in numpy (gymnasium-style API, gymnasium not needed)."""

from contrastkit.rl.envs.four_rooms import (
    FourRooms,
    TabularPolicy,
    WaypointPolicy,
    discounted_occupancy,
)

__all__ = ["FourRooms", "TabularPolicy", "WaypointPolicy", "discounted_occupancy"]
