"""The HTTP API (`opswb serve`): FastAPI routes over the in-server workbench."""

from opswb.api.app import create_app, serve

__all__ = ["create_app", "serve"]
