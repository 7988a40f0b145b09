"""The data-loader controller: PVCs annotated for preload -> loader Jobs -> ``DataLoaded`` conditions.

Rule: decisions are pure functions of plain dicts (:mod:`.reconcile` for a PVC, :mod:`.gates` for a
Pod held by the ``kaip.dev/data-preload`` gate, :mod:`.conditions` and :mod:`.events` for what is
written); :mod:`.loop` reads fresh state, calls them and applies their actions; :mod:`.main` adds
flags, leader election (:mod:`kaip_incluster.leader`) and the health/metrics endpoints. It never
reads a Secret: credentials reach the Job by reference.
"""
