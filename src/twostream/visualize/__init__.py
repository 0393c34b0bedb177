"""Per-layer activation maximisation of two-stream networks, verified against known causes.

Modules: ``params`` (input parametrisations), ``objectives`` (what to maximise),
``regularizers`` (penalties and measures), ``render`` (``render_vis``: the batched
optimisation loop), ``verify`` (checks against the synthetic dataset's generating
factors), ``montage`` (PNG figures), ``stage`` (the ``twostream visualize`` CLI).
"""
