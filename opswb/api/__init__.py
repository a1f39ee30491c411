"""The HTTP API (`opswb serve`): FastAPI routers over the in-server workbench."""

from opswb.api.app import create_app
from opswb.api.server import serve

__all__ = ["create_app", "serve"]
