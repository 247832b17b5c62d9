"""flux-review: reviews GitOps pull requests for what would break on a Flux cluster."""

__version__ = "0.1.0"
