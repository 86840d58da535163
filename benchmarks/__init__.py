"""Reproducible performance benchmarks of dstrack (not timed tests).

Every benchmark compares dstrack with a baseline measured in the same run on the same machine
(absolute times on shared machines are noise) and prints one line::

    RESULT <name>: <ratio> (target ...) PASS|BELOW TARGET

Run them all with ``python -m benchmarks`` (``make bench``); ``--quick`` for small sizes,
``--only a,c`` for a selection. Nothing here touches the internet: every server is a local
one on 127.0.0.1, started by the benchmark itself.
"""
