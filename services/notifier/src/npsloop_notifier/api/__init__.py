"""The notifier's HTTP API: webhook subscriptions, the delivery log, replay, the suppression list
(admin keys), and the public unsubscribe and reply pages (signed links)."""

from .deliveries import router as deliveries_router
from .public import router as public_router
from .webhooks import router as webhooks_router

routers = [webhooks_router, deliveries_router, public_router]

__all__ = ["routers"]
