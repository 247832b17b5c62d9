"""Rendering charts with Helm: the optional `flux-review[helm]` extra.

`renderer()` gives the analysis a `Renderer` (`bot.analysis.rendering`) backed by the Helm
SDK in child processes (`pool.py`), or `RendererUnavailable` when the extra is not
installed: then the review says once that HelmReleases were not rendered. Importing this
package never loads the SDK, and loads nothing of the analysis either: the child process
(`child.py`, `sdk.py`) starts from here, and should start fast.
"""

from __future__ import annotations

import importlib.util
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.analysis.rendering import CachingRenderer, Renderer, RendererUnavailable

__all__ = ["installed", "renderer"]

_shared: CachingRenderer | None = None
_lock = threading.Lock()


def installed() -> bool:
    """Whether the Helm SDK can be imported (without importing it here)."""
    try:
        return importlib.util.find_spec("helm_python") is not None
    except (ImportError, ValueError):
        return False


def renderer() -> Renderer | RendererUnavailable:
    """The process's renderer (one pool of children, one cache, shared by every review
    of this process), or why there is none."""
    from bot.analysis.rendering import CachingRenderer, RendererUnavailable

    global _shared
    if not installed():
        return RendererUnavailable("helm-python-sdk is not installed")
    with _lock:
        if _shared is None:
            from bot.analysis.parallel import default_workers
            from bot.helm.pool import ChildRenderer

            _shared = CachingRenderer(ChildRenderer(workers=min(2, default_workers())))
        return _shared
