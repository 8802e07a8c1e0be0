"""The differential suite: each scenario runs under RQ's own worker and under ours, on a
real Redis, and what each leaves in Redis is compared (see `snapshot` and `allowed`).

`RQ_VERSION` is the one place that says which RQ release the comparison was written
against; `test_pin.py` fails when another one is installed.
"""

#: The RQ release whose worker these scenarios were compared with.
RQ_VERSION = "3.0.0"
