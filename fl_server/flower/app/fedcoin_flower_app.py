"""The components `flwr run` loads: FedCoin's ServerApp and ClientApp (code in fl_server.flower)."""

from fl_server.flower.client_app import app as client_app
from fl_server.flower.server_app import app as server_app

__all__ = ["client_app", "server_app"]
