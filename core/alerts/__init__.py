"""Alerts: budget thresholds crossed, hard limits hit, low balances and spend anomalies, each recorded once and
delivered in the app (banners, finance's list), by signed webhook and by email.

`AlertHook` runs right after a settle (one read when nothing is due); `AlertRunner.run` (the `alerts run` command,
for cron) evaluates everything and delivers the queue; `AutoAlerts` runs that evaluation on its own, at most once every
ALERTS_EVERY_SECONDS, from pages' services and a timer thread (the spend anomalies on the app's timer only);
`AlertDelivery` sends and logs every attempt; `AlertLog` reads alerts back. Middle layer: it takes its database and
settings explicitly and checks no access.
"""

from core.alerts.auto import AutoAlerts
from core.alerts.delivery import AlertDelivery, BackgroundDelivery, DeliveryReport
from core.alerts.hook import AlertHook
from core.alerts.records import AlertLog, AlertView, DeliveryView, NewAlert
from core.alerts.runner import AlertRunner, RunReport
from core.alerts.webhooks import SIGNATURE_HEADER, WebhookRegistry, WebhookView, sign, verify_signature

__all__ = [
    "SIGNATURE_HEADER",
    "AlertDelivery",
    "AlertHook",
    "AlertLog",
    "AlertRunner",
    "AlertView",
    "AutoAlerts",
    "BackgroundDelivery",
    "DeliveryReport",
    "DeliveryView",
    "NewAlert",
    "RunReport",
    "WebhookRegistry",
    "WebhookView",
    "sign",
    "verify_signature",
]
