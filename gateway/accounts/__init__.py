"""Private account streams (issue 7): one :class:`~gateway.accounts.stream.AccountStream` per
configured account, spot over the WebSocket API, futures over listen keys; see docs/accounts.md.

Empty on purpose: :mod:`gateway.settings` imports :mod:`gateway.accounts.settings`, so this
package must not import the stream (which imports the settings) when it loads.
"""
