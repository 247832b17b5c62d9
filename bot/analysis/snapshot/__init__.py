"""A `Snapshot`: one commit as the cluster sees it, built lazily from small indexes
(files, charts, kustomize, Flux objects, sources, consumers), each in its own module and
each building on the ones before it."""

from __future__ import annotations

from bot.analysis.snapshot.consumers import ConsumersIndex


class Snapshot(ConsumersIndex):
    """Everything the rules need to know about one commit, computed lazily."""


__all__ = ["Snapshot"]
