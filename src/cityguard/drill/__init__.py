"""Disaster recovery: restic backups of information systems and restore drills (dr/README.md)."""
