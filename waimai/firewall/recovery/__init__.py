"""Recovery: verified, multi-target backups of the whole database and rollback to one of them.

`backup.py` makes, verifies and prunes backups; `restore.py` rolls the live database back;
`engines.py` holds what differs between SQLite and PostgreSQL; `artefact.py` the compression,
encryption and checksum pipeline; `targets.py` where artefacts are kept; `catalog.py` the manifests.
"""
