"""The web dashboard served at ``/ui``: server-rendered pages over the provider's services.

Pages are Jinja2 templates (autoescaped) with one small script file of our own; every asset
ships in the package, so the dashboard works offline. A page reads and changes only what the
signed API would let the signed-in address read and change: it calls the same services with
the session's address where the API calls them with a request's signer.
"""
