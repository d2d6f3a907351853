"""Model facts: the architecture numbers the rules and the planner need, and where they come from.

:class:`~.facts.ModelFacts` and the reader of a model's ``config.json`` (:mod:`.facts`), the
built-in catalog of well-known models (:mod:`.catalog`), and the precedence between the stack
config, ``config.json`` and the catalog (:mod:`.resolve`). Pure code at the bottom of the package:
it imports nothing else of it.
"""
