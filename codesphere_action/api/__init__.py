"""The HTTP side of the action: the transport, the Codesphere API, its log streams."""
