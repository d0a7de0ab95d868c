"""The Redis side of a bot that runs on several hosts: the layout of blocks every host agrees on
(``layout.py``), the leases that say which host runs which block (``leases.py``), the directory of
live hosts (``directory.py``), the sessions handed over between hosts (``sessions.py``), and the
placement rules deciding what a host claims or releases (``placement.py``, pure). Imports nothing of
the supervisor or the worker: the supervisor drives it."""
