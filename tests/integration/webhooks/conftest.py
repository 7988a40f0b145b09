"""Fixtures of the webhook integration tests: the webhooks deployed into the real kube-apiserver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kaip.kube.client import Kube
from kaip_testbed.controlplane import ControlPlane
from kaip_testbed.webhooks import Webhook, deploy, undeploy


@pytest.fixture(scope="session")
def webhook(
    control_plane: ControlPlane, admin_kube: Kube, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Webhook]:
    hook = deploy(control_plane, admin_kube, tmp_path_factory.mktemp("webhook"))
    try:
        yield hook
    finally:
        undeploy(admin_kube, hook)
