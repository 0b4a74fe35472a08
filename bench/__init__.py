"""The deploykit benchmark (issue 6): the generated stack against the stacks the docs describe.

Not part of the test suite. Run it from the repository root::

    .venv/bin/python -m bench            # full run (3 rounds, 10 s loads)
    .venv/bin/python -m bench --quick    # smoke run (1 round, 2 s loads)

It needs nginx, redis-server and wrk from Debian (README's setup installs them)
and writes bench/results/latest.{json,md} and bench/results/chart.png.
"""
