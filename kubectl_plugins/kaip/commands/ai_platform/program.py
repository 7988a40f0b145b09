"""What every command of `kubectl ai-platform` shares: the program's name and click's settings."""

from __future__ import annotations

PROG = "kubectl ai-platform"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
