"""One router per resource of the /v1 API; ``app.create_app`` includes them all."""
