"""The eIDAS identity broker on Keycloak: realm as code, plan/apply/verify/export.

See eidas/README.md for the design."""
