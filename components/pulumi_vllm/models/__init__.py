"""Model facts: the architecture numbers the rules and the planner need, and where they come from.

:class:`~.facts.ModelFacts` and the reader of a model's ``config.json`` (:mod:`.facts`), the
built-in catalog of well-known models (:mod:`.catalog`), the tensors of a checkpoint as its
safetensors headers list them (:mod:`.checkpoint`), a model's files read from the Hugging Face Hub
and cached (:mod:`.hub`, for models the catalog lacks), and the precedence between the stack config,
``config.json``, the catalog and the Hub (:mod:`.resolve`). Code at the bottom of the package: it
imports nothing else of it.
"""
