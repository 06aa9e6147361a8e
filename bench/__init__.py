"""`python -m bench`: the performance benchmark (`make bench`, not part of `make test`).

Seeds the generator's scales into separate databases of a dedicated embedded
server (`.opsbench/bench/pg`), times every named query against its floor, runs
the seeds' own SQL side by side, times rollup series and a streaming CSV
export, and writes `bench/results.json` and `docs/performance.md`.
"""
