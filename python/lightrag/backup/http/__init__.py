"""The HTTP layer every router shares: jobs (:mod:`.jobs`), errors (:mod:`.errors`), auth
(:mod:`.auth`) and the app factory (:mod:`.app`).

Routers (``lightrag.backup.api`` today; replication and recovery next) import the first three
and add their routes; only :mod:`.app` imports the routers, to mount them.
"""
