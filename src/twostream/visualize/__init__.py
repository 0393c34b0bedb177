"""Per-layer activation maximisation of two-stream networks, verified against known causes.

Modules: ``params`` (input parametrisations), ``objectives`` (what to maximise),
``regularizers`` (penalties and measures), ``render`` (``render_vis``: the batched
optimisation loop), the checks against the synthetic dataset's generating factors:
``causes`` (what each class should show), ``judges`` (measures with thresholds and nulls),
``verify_runs`` (planning and driving the runs), ``verdicts`` (rows of verification.csv);
``montage`` (PNG figures), ``stage`` (the ``twostream visualize`` CLI).
"""
