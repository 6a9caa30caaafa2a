"""The filter model, one job per module.

- :mod:`.vocabulary`: Finout's operators, their aliases, negations and readable words; the
  spellings an intent may use for its fields and groups.
- :mod:`.limits`: our limits on filters, tags and raw input.
- :mod:`.tree`: the internal tree (conditions, AND/OR groups, NOT), NOT pushed to the leaves,
  and the Finout wire form (to it, and the leaves of a raw filter).
- :mod:`.canonical`: the canonical forms: a tree flattened and de-duplicated, a raw filter
  for comparison, and a filter as written back (no ``displayName``).
- :mod:`.implication`: does one canonical filter imply another (sound, bounded).
- :mod:`.findings`: a problem found in a filter or a tag.
- :mod:`.parse`: an intent or a raw filter → the tree and findings (keys resolved by a
  resolver passed in).
- :mod:`.render`: a filter as one readable line.

Nothing here fetches anything or keeps a cache: the catalogue and key resolution live in
:mod:`finout_mcp.services`, which compose these modules.
"""
