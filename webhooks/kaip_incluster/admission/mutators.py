"""The Pod mutators the webhook runs, in order (see :mod:`kaip_incluster.admission.pods`)."""

from __future__ import annotations

from kaip_incluster.admission.inject import inject_credentials
from kaip_incluster.admission.pods import Mutator

MUTATORS: tuple[Mutator, ...] = (inject_credentials,)
