"""The pre-specified analysis plan: endpoints and hypotheses as data, decisions, lock and sample size.

- :mod:`study.plan.metrics`: the registry of metrics an endpoint may name;
- :mod:`study.plan.model`: the ``analysis_plan:`` block of a protocol (pydantic);
- :mod:`study.plan.tests`: the statistical tests that decide an endpoint;
- :mod:`study.plan.multiplicity`: fixed-sequence, Holm, Bonferroni and graphical procedures;
- :mod:`study.plan.decide`: every endpoint's decision from a run's step outputs;
- :mod:`study.plan.lock`: the lock record written before unblinding, and its check;
- :mod:`study.plan.power`: sample size and power (``study plan``).
"""
