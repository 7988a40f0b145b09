"""The loader: what runs inside a data-loader Job (``kaip-loader``) and fills the mounted volume.

Rule: a thin shell around :func:`kaip.preload.copier.copy`. It reports progress by patching the
``DataLoaded`` condition of its one PVC (the only thing its token may do) and its outcome as a JSON
termination message (:class:`kaip.preload.status.Outcome`) with an exit code the Job's
podFailurePolicy understands (:data:`kaip.preload.jobs.EXIT_PERMANENT` fails the Job at once).
"""
