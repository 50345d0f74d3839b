"""Waiting out an outage: backoff that doubles to a cap, one warning per outage, and its end said."""

import logging

from consumer.outage import Outage


def test_backoff_doubles_to_its_cap_and_warns_once_per_outage(caplog):
    outage = Outage("consumer c1", first_s=0.5, cap_s=4.0, jitter=lambda: 1.0)
    with caplog.at_level(logging.DEBUG, logger="consumer.outage"):
        delays = [outage.failed(ConnectionError("refused")) for _ in range(6)]
        outage.succeeded()
        outage.succeeded()  # nothing to say: no outage
        again = outage.failed(ConnectionError("refused"))
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0] and again == 0.5  # a new outage starts over
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "consumer c1: ConnectionError: refused; retrying with backoff until it answers",
        "consumer c1 works again after 6 failed tries",
        "consumer c1: ConnectionError: refused; retrying with backoff until it answers",
    ]


def test_jitter_spreads_the_waits_below_the_nominal_delay():
    outage = Outage("reconciler", first_s=2.0, cap_s=30.0)
    waits = [Outage("x", first_s=2.0).failed(OSError("down")) for _ in range(50)]
    assert all(1.0 <= w <= 2.0 for w in waits) and len(set(waits)) > 1
    assert outage.failures == 0
