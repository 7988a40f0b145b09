"""The PVC data loader as a library: the source contract, the copier (the loader Job's engine, also
``kubectl pvc-preload copy``), the status contract, and the claims the plugin creates and shows.

The whole contract between the plugin and the in-cluster side lives here: the annotations a PVC is
read by (:mod:`~kaip.preload.contract`, with the one ``is_preload``), and its ``DataLoaded`` condition,
progress message and the loader's outcome (:mod:`~kaip.preload.status`).

Rule: decisions are pure data functions (:mod:`~kaip.preload.contract`, :mod:`~kaip.preload.status`,
:mod:`~kaip.preload.plan`, :mod:`~kaip.preload.progress`, :mod:`~kaip.preload.claims`); the I/O is
the copier's short loops over :mod:`kaip.storage` and the target directory. Nothing here prints,
exits or talks to Kubernetes.
"""
