"""Admission decisions, pure: AdmissionReview in, AdmissionReview answer out, no I/O.

Rule: nothing here talks to the network, reads files or logs; the server (:mod:`kaip_incluster.server`)
looks up what a decision needs (ServiceAccounts, Secrets' metadata) from its caches and passes it in
as plain data. Modules:

``review``      parsing an AdmissionReview v1 envelope and building the answer (uid echoed, JSONPatch
                base64, warnings).
``secrets``     the validation rules of ``kaip.dev/aws-credentials`` and ``kaip.dev/gcp-credentials``
                Secrets (``gcpkey`` holds the key-file rules).
``pods``        the Pod mutation as a list of independent mutators; ``inject`` is the credentials one.
``jsonpatch``   add-only JSONPatch operations: building and applying them.

A message, a warning or a patch never holds a secret value: rules name keys and rules only, and
the Pod patch holds ``secretKeyRef`` and volume references.
"""
