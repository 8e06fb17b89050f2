"""The HTTP layer every router shares: jobs (:mod:`.jobs`), errors (:mod:`.errors`), auth
(:mod:`.auth`), metrics (:mod:`.metrics`) and the status page (:mod:`.ui`).

Routers (``lightrag.backup.api``, ``lightrag.replication.api``, ``lightrag.recovery.api``)
import these and add their routes; only the app factory, :mod:`lightrag.backup.app`, imports
the routers, to mount them.
"""
