"""Site definitions (one YAML per auction house) and the demo auction site."""
