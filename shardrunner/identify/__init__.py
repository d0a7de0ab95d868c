"""Who may start (identify) a connection when: one queue per bot, whatever the process or host.

:mod:`.protocol` declares the calls every queue has; :mod:`.local` is the in-process queue the
supervisor owns; :mod:`.relay` is that queue seen from a worker, over the worker link.
:mod:`.redis_queue` and :mod:`.redis_budget` are the queue and the budgets over Redis, for a bot on
several hosts: they replace the construction of the local ones and nothing else.
"""
