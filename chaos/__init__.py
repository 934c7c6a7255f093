"""`make chaos`: Bazaar's fault-injection run (docs/chaos.md).

services.py    private PostgreSQL and Redis for the run
processes.py   the process manager (start, restart on exit, stop) and the process table
anatomy.py     which process of a Django-Q2 cluster is which
data.py        migrate and seed a fresh database through the services
shoppers.py    the load: shoppers and a vendor over HTTP
faults.py      the faults and how long each took to recover from
probes.py      the probe task (run by the workers)
invariants.py  the checks
report.py      the table and the JSON
run.py         one run, start to finish
"""
