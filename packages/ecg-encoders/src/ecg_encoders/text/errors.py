"""The one error a user sees when a text model is missing: what is missing and how to provide it."""

from __future__ import annotations


class ModelNotAvailableError(RuntimeError):
    """A text model (hub name or directory) cannot be loaded from local files.

    CLIs catch this and print ``str(err)`` only: the message is the whole story, no traceback needed.
    """

    def __init__(self, name: str, reason: str = "", hint: str | None = None) -> None:
        self.name = name
        self.reason = reason
        if hint is None:
            hint = (
                f"To provide it, on a machine with network access run\n"
                f"    huggingface-cli download {name} --local-dir DIR\n"
                f"then copy DIR to this machine and pass its path instead of the name "
                f"(e.g. HFTextEncoder('DIR') or build_text_preset(<preset>, path='DIR')); "
                f"or allow downloads (network access and HF_HUB_OFFLINE unset)."
            )
        because = f" ({reason})" if reason else ""
        super().__init__(f"text model {name!r} is not available{because}.\n{hint}")
