"""The web console: pages for the officers who keep the catalogue, decide sharing and read the audit log."""
