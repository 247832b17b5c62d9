"""The pure analysis: file contents in, findings out.

Nothing in this package may import aiohttp, gidgethub or touch the network; the CLI and
the GitHub App both call `analyze`.
"""

from bot.analysis.config import CONFIG_PATH, Config, ConfigError, parse_config
from bot.analysis.engine import AnalysisResult, analyze
from bot.analysis.findings import Finding, Location, Severity, Side
from bot.analysis.model import AnalysisCancelled
from bot.analysis.reads import is_read
from bot.analysis.tree import ChangedFile, ChangeStatus, DictTree, Tree

__all__ = [
    "CONFIG_PATH",
    "AnalysisCancelled",
    "AnalysisResult",
    "ChangeStatus",
    "ChangedFile",
    "Config",
    "ConfigError",
    "DictTree",
    "Finding",
    "Location",
    "Severity",
    "Side",
    "Tree",
    "analyze",
    "is_read",
    "parse_config",
]
