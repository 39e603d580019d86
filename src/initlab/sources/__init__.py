"""Model-spec sources of other libraries, registered as ``prefix:...`` by :mod:`initlab.specs`.

* :mod:`.hf`: ``hf:gpt2?n_layer=2&n_embd=64``, a transformers model built from its config
  class, never downloaded.
"""
