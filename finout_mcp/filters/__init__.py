"""The filter model, one job per module.

- :mod:`.vocabulary`: Finout's operators, their aliases, negations and readable words; the
  spellings an intent may use for its fields and groups.
- :mod:`.tree`: the internal tree (conditions, AND/OR groups, NOT), NOT pushed to the leaves,
  and the Finout wire form (to it, and the leaves of a raw filter).
- :mod:`.canonical`: the canonical forms: a tree flattened and de-duplicated, a raw filter
  for comparison, and a filter as written back (no ``displayName``).
- :mod:`.implication`: does one canonical filter imply another (sound, bounded).

Nothing here fetches anything or keeps a cache.
"""
