"""The public status page, component status, scheduled maintenance, and notices to users."""
