"""Release an application to Codesphere from a GitHub workflow (a container action)."""
