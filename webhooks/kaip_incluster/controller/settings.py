"""The data-loader controller's settings (its flags, :mod:`.main`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from kaip.preload import jobs
from kaip_incluster.requeue import RequeuePolicy


@dataclass
class Settings:
    config: jobs.LoaderConfig = field(default_factory=jobs.LoaderConfig)
    namespace: str | None = None  # None: every namespace
    identity: str = "kaip-controller"
    resync_seconds: float = 60.0
    retry_seconds: float = 2.0  # how often a replica that does not lead looks at a key again
    requeue: RequeuePolicy = field(default_factory=RequeuePolicy)  # after an error
    workers: int = 32  # keys worked on at once (never the same key twice); the client keeps 32 connections
