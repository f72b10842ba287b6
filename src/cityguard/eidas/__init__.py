"""The eIDAS identity broker on Keycloak: realm as code, plan/apply/verify/export (eidas/README.md)."""
