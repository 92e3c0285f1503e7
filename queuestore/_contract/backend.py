"""``QueueBackend``: the small contracts composed into one backend.

A backend serves one queue (``BackendConfig.queue_name()``) on one store: its
lifecycle (:mod:`.lifecycle`), the job path (:mod:`.jobs`), read-only views
(:mod:`.inspection`) and the operator's calls (:mod:`.operator`). What it adds
itself is where a storing call goes once the store says a migration moved the queue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from queuestore._contract.inspection import QueueInspection
from queuestore._contract.jobs import JobOperations
from queuestore._contract.lifecycle import BackendLifecycle
from queuestore._contract.operator import OperatorOperations
from queuestore._models import BackendConfig
from queuestore.errors import QueueMovedError

__all__ = ["QueueBackend"]


class QueueBackend(BackendLifecycle, JobOperations, OperatorOperations, QueueInspection):
    """A queue store. Subclasses implement the abstract coroutines.

    Attributes:
        name: the backend's configured name (for errors and stats).
        queue: the queue this backend serves.
    """

    def __init__(self, config: BackendConfig) -> None:
        super().__init__(config)
        #: set by a BackendManager: ``await follow_moved(err)`` is where a storing call goes
        #: when the store answers that a migration moved the queue (see :meth:`_moved`)
        self.follow_moved: Callable[[QueueMovedError], Awaitable[QueueBackend]] | None = None

    async def _moved(self, err: QueueMovedError) -> QueueBackend:
        """The backend a storing call goes to now that the store said the queue moved.

        Raises:
            QueueMovedError: ``err``, when no BackendManager follows moves for this backend.
            BackendError, ConfigurationError: the new home cannot be reached or is unknown.
        """
        if self.follow_moved is None:
            raise err
        return await self.follow_moved(err)
