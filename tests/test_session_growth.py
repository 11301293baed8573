"""A session that stays open does not grow with each request (issue 23, item 6).  In Gradio 6.31 an output that
gets an update (gr.skip() is one) and then a plain value leaves one more copy of its component, holding that value,
in the session's state until the session closes (see components/wiring.py).  The streaming endpoints send values
only, so after a first call the session holds as many components after more calls as before them.  The count is
read from Gradio's per-session state (the only place it shows)."""

import pytest
from gradio_client import Client

from tests.test_app_api import app  # noqa: F401  (the module's fixture: one live app)

# endpoint -> the arguments of call i (each call distinct: a new seed, so no cached answer)
CALLS = {
    "/generate": lambda i: ("moons", "ddim", 10, 0.0, i, 50, "any", 1.0),
    "/guided_generate": lambda i: ("moons", "x_coordinate", "", "", 1.0, "dps", 1, "any", 1.0, "ddim", 5, i, 30),
    "/compare": lambda i: ("moons", "ddim", 5, "moons", "ddpm", 5, i, 50, "any"),
    # 30 steps: longer than the heavy figures' interval, so some updates carry the curves alone
    "/adapt": lambda i: ("moons", "x_coordinate", "", "", 30, 1e-3, 16, 32, 0.5, False, 1.0, 0),
    # 800 steps: messages with the loss alone come between the previews
    "/train": lambda i: ("moons", "linear", 100, "tiny", False, 800, 32, 2e-3, i),
}


@pytest.mark.parametrize("api_name", list(CALLS))
def test_repeated_requests_leave_no_component_copies_in_the_session(app, api_name):  # noqa: F811
    demo, url = app
    client = Client(url, verbose=False)
    try:

        def components() -> int:
            return len(demo.state_holder.session_data[client.session_hash].config_values)

        client.submit(*CALLS[api_name](0), api_name=api_name).result()
        before = components()
        for i in (1, 2):
            client.submit(*CALLS[api_name](i), api_name=api_name).result()
        assert components() == before
    finally:
        client.close()
