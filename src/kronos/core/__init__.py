"""The ground floor: what every layer may use and that knows nothing of models or bars.

Error types (:mod:`~kronos.core.errors`), argument checks (:mod:`~kronos.core.validation`), optional
extras (:mod:`~kronos.core.extras`), atomic file writes (:mod:`~kronos.core.files`), device choice
(:mod:`~kronos.core.device`), progress bars (:mod:`~kronos.core.progress`) and joining a ``torchrun`` job
(:mod:`~kronos.core.distributed`).
"""
