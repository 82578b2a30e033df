"""The two plugin generations' chat protocols, behind one signature.

``chat(client, credentials, prompt, read_timeout=…)`` sends on a
:class:`scraper.http.Client` borrowed from the pool, yields text chunks and
raises the project's errors; :class:`StaleCredentials` (a rejected nonce, an
unknown action) and :class:`Challenged` tell the provider to refresh the
credentials once and resend the message once.
"""

from provider.protocols import aipkit, legacy
from provider.protocols._common import ActionUnknown, Challenged, NonceRejected, StaleCredentials

__all__ = ["ActionUnknown", "Challenged", "NonceRejected", "StaleCredentials", "aipkit", "legacy"]
