"""The connections HTTP surface: connections, OAuth, OAuth apps, providers, the proxy route."""
