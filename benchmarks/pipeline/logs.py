"""One readable log: each message once, through Hydra's handlers, without third-party advertising.

Why: the ``lightning`` package installs its own console handler at import and also lets its records reach the root
logger, which Hydra configures; every Lightning INFO line was printed twice. Lightning also prints a "Tip" that
advertises a cloud service on every Trainer. And Lightning 2.6.6 (the newest release) calls torch's deprecated
``LeafSpec()`` inside its own data-loader flattening, a warning no code of ours causes or can avoid; it is silenced by
its exact message only (any other deprecation still shows).
"""

from __future__ import annotations

import logging
import warnings

#: Lightning's loggers that may carry a handler of their own (lightning/__init__.py, lightning/pytorch/__init__.py)
LIBRARY_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric")
#: third-party warnings we cannot fix, by exact message (see the module docstring)
THIRD_PARTY_WARNINGS = (r"`isinstance\(treespec, LeafSpec\)` is deprecated",)


class _DropAdverts(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "Tip: For seamless" not in record.getMessage()


def tidy_library_logging() -> None:
    """Route Lightning's records through the root handlers only (once), drop its adverts, silence the one warning that
    Lightning's own code raises against this torch. Idempotent; call after the root logger is configured."""
    import lightning  # noqa: F401 -- its import installs the handler removed here

    root_has_handlers = logging.getLogger().hasHandlers()
    for name in LIBRARY_LOGGERS:
        lg = logging.getLogger(name)
        if root_has_handlers:
            for h in list(lg.handlers):
                if type(h) is logging.StreamHandler:  # Lightning's console handlers (not a user's file handler)
                    lg.removeHandler(h)
            lg.propagate = True
    # the advert is logged through rank_zero_info's logger; a logger's filters see only its own records
    rank_zero = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropAdverts) for f in rank_zero.filters):
        rank_zero.addFilter(_DropAdverts())
    # rouge-score (report generation) logs "Using default tokenizer." through absl at INFO on every scorer it builds
    logging.getLogger("absl").setLevel(logging.WARNING)
    for message in THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message)
