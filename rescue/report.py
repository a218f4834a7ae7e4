"""How the core tells a person what it is doing without printing: a small reporter interface.

The library only reports (dissect.target's rule: the library logs, the tools print). Every layer
below `rescue.cli` that has something to say while it works (a hive whose logs were replayed, the
plan it is about to apply, a question before writing) calls the `Reporter` it was given; the CLI
passes one that renders to the terminal, tests and library callers get this base class, which
logs and never prompts.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator

from rescue.errors import DeclinedError, UsageError

if TYPE_CHECKING:
    import logging

    from rescue.target import Target


def _log() -> logging.Logger:
    """The `rescue` logger. logging is imported on the first message, not at start-up: the CLI's
    reporter prints instead, and the commands that read a hive file start without it."""
    import logging

    return logging.getLogger("rescue")


class Reporter:
    """The base reporter: messages go to the `rescue` logger, nothing is shown, and a question
    before writing is answered by `assume_yes` alone (there is nobody to ask)."""

    def __init__(self, *, assume_yes: bool = False) -> None:
        self.assume_yes = assume_yes

    def info(self, message: str) -> None:
        _log().info("%s", message)

    def warn(self, message: str) -> None:
        _log().warning("%s", message)

    def show(self, target: Target, item: object) -> None:
        """A typed record a person should see before being asked (a Plan, an undo preview)."""

    @contextlib.contextmanager
    def progress(self, label: str) -> Iterator[None]:
        """Something slow is running (an appliance launch, a long scan)."""
        _log().debug("%s", label)
        yield

    def advance(self, done: int, total: int, label: str) -> None:
        """Work through many items (fleet mode): `done` of `total` finished, `label` is next."""
        _log().debug("%d/%d %s", done, total, label)

    def ask(self, question: str) -> bool:
        """Ask a yes/no question. Nobody can answer here: refuse rather than guess."""
        raise UsageError("Refusing to write without confirmation: there is no terminal to ask; add --yes to "
                         "apply the plan shown (or --dry-run to only show it).")

    def confirm(self, question: str) -> None:
        """Go on only with consent: `assume_yes`, or a yes to `ask`. A no raises DeclinedError."""
        if self.assume_yes:
            return
        if not self.ask(question):
            raise DeclinedError("Declined at the prompt; nothing was changed.")


    def consented(self) -> "Reporter":
        """This reporter after the user agreed to a whole batch at once (fleet mode): messages
        still reach the user, plans are not shown again, and no question is asked again."""
        return _Consented(self)


class _Consented(Reporter):
    def __init__(self, inner: Reporter) -> None:
        super().__init__(assume_yes=True)
        self.inner = inner

    def info(self, message: str) -> None:
        self.inner.info(message)

    def warn(self, message: str) -> None:
        self.inner.warn(message)

    def progress(self, label: str):
        return self.inner.progress(label)


SILENT = Reporter()
