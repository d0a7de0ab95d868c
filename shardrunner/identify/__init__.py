"""Who may start (identify) a connection when: one queue per bot, whatever the process or host.

:mod:`.protocol` declares the calls every queue has; :mod:`.local` is the in-process queue the
supervisor owns; :mod:`.relay` is that queue seen from a worker, over the worker link. A networked
queue (Redis, for several hosts) replaces the construction of the local one and nothing else.
"""
