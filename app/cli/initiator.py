"""The demo bar's initiator credentials: the built-in simulator's initiator and certificate, so
"Verify an M-Pesa code" asks M-Pesa (the simulator) out of the box in `make run`."""

from __future__ import annotations

from flask import current_app

from app.models import Bar


def demo_initiator(bar: Bar) -> None:
    """Give the demo bar the simulator's initiator, once (again if its certificate no longer
    matches the simulator's key, e.g. after instance/ was partly cleared). Commits."""
    from app.settings import initiator
    from app.simulator import STATE_EXTENSION
    from app.simulator import status as sim_status

    state = current_app.extensions.get(STATE_EXTENSION)
    if state is None:  # the simulator is not mounted: nothing to point the demo at
        return
    pem = sim_status.certificate_pem(state).strip()  # stored as saved: stripped
    found = initiator.initiator_for(bar.id)
    if found is not None and found.certificate_pem == pem:
        return
    initiator.save(
        bar,
        initiator.InitiatorInput(
            name=sim_status.SIM_INITIATOR,
            password=sim_status.SIM_INITIATOR_PASSWORD,
            certificate_pem=pem,
        ),
    )
