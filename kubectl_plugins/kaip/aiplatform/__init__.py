"""`kubectl ai-platform`: gcloud ai-platform's training commands on Kubeflow.

Rule: decisions are pure functions from data to data (:mod:`training` checks gcloud's flags and
``--config``, :mod:`catalog` maps machine types, :mod:`manifests` builds the Kubeflow job,
:mod:`katib` the Experiment, :mod:`states` and :mod:`views` read jobs back); the few modules that
talk to the cluster (:mod:`submit`, :mod:`jobs`, :mod:`logs`) are short loops around them and go
through :mod:`kaip.kube` only. Nothing here prints or exits.
"""
