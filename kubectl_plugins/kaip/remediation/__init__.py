"""Node remediation as pure decisions: known failures repaired within a disruption budget.

What is decided here, from plain data to plain data, without a network:

* :mod:`~kaip.remediation.spec`: the ``remediation.kaip.dev`` objects read into frozen dataclasses
  (durations, a number or a percent, label selectors);
* :mod:`~kaip.remediation.matching`: which rule a node's conditions match, and for how long;
* :mod:`~kaip.remediation.budget`: NodeDisruptionBudget arithmetic and admission;
* :mod:`~kaip.remediation.breaker`: the cluster-wide circuit breaker's window;
* :mod:`~kaip.remediation.state`: a node's status and the actions the step machine returns (the
  machine itself, only run by the controller, is :mod:`kaip_incluster.remediation.machine`);
* :mod:`~kaip.remediation.jobs`: the Job pinned to the node for an operation;
* :mod:`~kaip.remediation.views`: tables of remediations and their history.

Rule: nothing here talks to the API server or reads the clock; the controller
(``kaip_incluster.remediation``) and the CLI pass ``now`` and the objects in, and carry the actions out.
"""
