"""The GitHub stand-in lives in the test bed (``kaip_testbed.github_standin``, documented there as the
one stand-in allowed); this name stays for the remediation tests that import it."""

from kaip_testbed.github_standin import GitHubState, serve

__all__ = ["GitHubState", "serve"]
