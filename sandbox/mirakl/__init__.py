"""A local fake of the Mirakl operator API (product and MMS service endpoints).

* :func:`sandbox.mirakl.app.create_app` builds the Flask app (state in memory).
* :class:`sandbox.mirakl.control.MiraklControl` drives its control API over HTTP.
* :mod:`sandbox.mirakl.demo` builds realistic shops, orders, refunds and invoices.
* ``python -m sandbox.mirakl --host 127.0.0.1 --port 8081 [--demo] [--api-key KEY]`` serves it.
"""

from .app import create_app

__all__ = ["create_app"]
