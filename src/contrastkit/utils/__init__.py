"""The ground floor: helpers every layer may use and that import nothing above them.

Atomic writes, progress bars, argument checks, the one registry helper and seeded RNG
helpers live here; nothing in ``utils`` imports another ``contrastkit`` package.
"""
