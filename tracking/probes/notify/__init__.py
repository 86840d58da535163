"""Outbound notifications: e-mail (SMTP), signed webhooks and Apprise. No database here."""

from tracking.probes.notify.apprise_send import ALLOWED_SCHEMES, HOSTED_SCHEMES, check_apprise_url
from tracking.probes.notify.dispatch import ChannelTarget, Notifier, RealNotifier
from tracking.probes.notify.errors import NotifyError
from tracking.probes.notify.http import checked_addresses
from tracking.probes.notify.webhook import check_secret, new_secret, signed_headers

__all__ = [
    "ALLOWED_SCHEMES",
    "HOSTED_SCHEMES",
    "ChannelTarget",
    "Notifier",
    "NotifyError",
    "RealNotifier",
    "check_apprise_url",
    "check_secret",
    "checked_addresses",
    "new_secret",
    "signed_headers",
]
