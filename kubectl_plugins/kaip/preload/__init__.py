"""The PVC data loader as a library: the source contract, the copier (the loader Job's engine, also
``kubectl pvc-preload copy``), the progress message, and the claims the plugin creates and shows.

Rule: decisions are pure data functions (:mod:`~kaip.preload.contract`, :mod:`~kaip.preload.plan`,
:mod:`~kaip.preload.progress`, :mod:`~kaip.preload.claims`); the I/O is the copier's short loops over
:mod:`kaip.storage` and the target directory. Nothing here prints, exits or talks to Kubernetes.
"""
