"""The edge to Keycloak: read a realm's live objects, apply a plan, export the realm.

The only module that talks to Keycloak, through python-keycloak's admin connection (it fetches
and refreshes the admin token) and its raw calls on the admin REST paths, so every answer's
status is checked here and every failure is one line (exit 3) with secrets redacted. Objects are
written one at a time (identity-provider mappers one by one: a partial import would drop them)
and read in the same flat shape as ``desired`` (desired.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cityguard.core.errors import CityguardError
from cityguard.core.secrets import redact
from cityguard.eidas.desired import (
    FIRST_BROKER_FLOW,
    Desired,
    Fields,
    Secret,
    flatten,
    flatten_user_profile,
)
from cityguard.eidas.plan import Action, ObjectChange


class KeycloakError(CityguardError):
    """Keycloak could not be reached, or refused or failed a call (exit 3)."""


@dataclass(frozen=True)
class Connection:
    url: str
    admin_realm: str
    admin_user: str
    admin_password: str
    timeout_s: float = 30.0

    def __repr__(self) -> str:
        return f"Connection({self.url!r}, {self.admin_user!r}, password=(secret))"


def _seg(value: str) -> str:
    return quote(value, safe="")


class Keycloak:
    """One admin session on one Keycloak."""

    def __init__(self, connection: Connection) -> None:
        from keycloak import KeycloakOpenIDConnection

        self.url = connection.url
        self._conn = KeycloakOpenIDConnection(
            server_url=connection.url + "/",
            username=connection.admin_user,
            password=connection.admin_password,
            realm_name=connection.admin_realm,
            user_realm_name=connection.admin_realm,
            client_id="admin-cli",
            timeout=int(connection.timeout_s),
            verify=True,
        )

    # --- raw calls ---------------------------------------------------------------------------

    def _call(self, method: str, path: str, data: Any = None, *, ok404: bool = False) -> Any:
        from keycloak.exceptions import KeycloakError as ClientError

        try:
            if method == "GET":
                response = self._conn.raw_get(path)  # type: ignore[arg-type]
            elif method == "POST":
                response = self._conn.raw_post(path, data=json.dumps(data))  # type: ignore[arg-type]
            elif method == "PUT":
                response = self._conn.raw_put(path, data=json.dumps(data))  # type: ignore[arg-type]
            else:
                response = self._conn.raw_delete(path)  # type: ignore[arg-type]
        except ClientError as error:
            raise KeycloakError(
                redact(f"Keycloak at {self.url}: {type(error).__name__}: {_short(error)}")
            ) from None
        except OSError as error:
            raise KeycloakError(redact(f"Keycloak at {self.url}: {error}")) from None
        if ok404 and response.status_code == 404:
            return None
        if response.status_code >= 400:
            detail = _short(response.text)
            raise KeycloakError(
                redact(f"Keycloak refused {method} /{path}: HTTP {response.status_code} {detail}")
            )
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            return {}

    def get(self, path: str, *, ok404: bool = False) -> Any:
        return self._call("GET", path, ok404=ok404)

    def post(self, path: str, data: Any) -> Any:
        return self._call("POST", path, data)

    def put(self, path: str, data: Any) -> Any:
        return self._call("PUT", path, data)

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path)

    # --- reading -----------------------------------------------------------------------------

    def realm_exists(self, realm: str) -> bool:
        return self.get(f"admin/realms/{_seg(realm)}", ok404=True) is not None

    def live_state(self, desired: Desired) -> dict[str, Fields]:
        """The live objects of the realm, keyed and flattened like ``desired``.

        Every identity provider and its mappers are read (verify judges what is there, plan
        deletes stray mappers); clients only those the realm file names.
        """
        realm = desired.realm
        base = f"admin/realms/{_seg(realm)}"
        rep = self.get(base, ok404=True)
        if rep is None:
            return {}
        live: dict[str, Fields] = {"realm": rep}
        live["user-profile"] = flatten_user_profile(self.get(f"{base}/users/profile"))
        for flow in self.get(f"{base}/authentication/flows"):
            if flow.get("alias") == FIRST_BROKER_FLOW or any(
                key == f"flow:{flow.get('alias')}" for key in desired.objects
            ):
                live[f"flow:{flow['alias']}"] = self._flow(base, flow)
        for idp in self.get(f"{base}/identity-provider/instances"):
            alias = idp["alias"]
            live[f"idp:{alias}"] = flatten(idp, "config")
            mappers = self.get(f"{base}/identity-provider/instances/{_seg(alias)}/mappers")
            for mapper in mappers:
                live[f"idp-mapper:{alias}/{mapper['name']}"] = flatten(mapper, "config")
        wanted_clients = {k.partition(":")[2] for k in desired.objects if k.startswith("client:")}
        for client in self.get(f"{base}/clients"):
            client_id = client.get("clientId")
            if client_id not in wanted_clients:
                continue
            fields = flatten(client, "attributes")
            if not client.get("publicClient"):
                secret = self.get(f"{base}/clients/{client['id']}/client-secret", ok404=True)
                fields["secret"] = (secret or {}).get("value")
            live[f"client:{client_id}"] = fields
            for mapper in client.get("protocolMappers") or []:
                live[f"client-mapper:{client_id}/{mapper['name']}"] = flatten(mapper, "config")
        return live

    def _flow(self, base: str, flow: dict[str, Any]) -> Fields:
        executions = self.get(f"{base}/authentication/flows/{_seg(flow['alias'])}/executions")
        return {
            "description": flow.get("description"),
            "executions": [
                [e.get("providerId") or e.get("displayName"), e.get("requirement")]
                for e in executions
                if e.get("level", 0) == 0
            ],
            "all_providers": sorted(
                {str(e.get("providerId")) for e in executions if e.get("providerId")}
            ),
        }

    # --- writing -----------------------------------------------------------------------------

    def apply(self, realm: str, change: ObjectChange, desired: Desired) -> None:
        """Make one object as desired (create, update or delete)."""
        base = f"admin/realms/{_seg(realm)}"
        kind, _, name = change.key.partition(":")
        fields = desired.objects.get(change.key, {})
        if kind == "realm":
            if change.action is Action.CREATE:
                self.post("admin/realms", {"realm": realm, "enabled": True})
            rep = self.get(base)
            rep.update(_unflatten(fields, "attributes"))
            self.put(base, rep)
        elif kind == "user-profile":
            self._user_profile(base, fields)
        elif kind == "flow":
            self._flow_apply(base, name, fields, create=change.action is Action.CREATE)
        elif kind == "idp":
            path = f"{base}/identity-provider/instances"
            if change.action is Action.CREATE:
                self.post(path, {"alias": name, **_unflatten(fields, "config")})
            else:
                rep = self.get(f"{path}/{_seg(name)}")
                self.put(f"{path}/{_seg(name)}", _merge(rep, fields, "config"))
        elif kind == "idp-mapper":
            self._idp_mapper(base, name, change.action, fields)
        elif kind == "client":
            self._client(base, name, change.action, fields)
        elif kind == "client-mapper":
            self._client_mapper(base, name, change.action, fields)
        else:  # pragma: no cover - desired.py makes only the kinds above
            raise KeycloakError(f"cannot apply {change.key}")

    def _user_profile(self, base: str, fields: Fields) -> None:
        config = self.get(f"{base}/users/profile")
        attributes = {a["name"]: a for a in config.get("attributes") or []}
        for key, value in fields.items():
            if key == "unmanagedAttributePolicy":
                if value is None:
                    config.pop(key, None)
                else:
                    config[key] = value
                continue
            attr_name = key.partition(".")[2]
            current = attributes.get(attr_name, {"name": attr_name})
            for field_name, field_value in value.items():
                if field_value is None:
                    current.pop(field_name, None)
                else:
                    current[field_name] = field_value
            attributes[attr_name] = current
        config["attributes"] = list(attributes.values())
        self.put(f"{base}/users/profile", config)

    def _flow_apply(self, base: str, alias: str, fields: Fields, *, create: bool) -> None:
        flows = f"{base}/authentication/flows"
        if create:
            self.post(
                flows,
                {
                    "alias": alias,
                    "description": fields.get("description", ""),
                    "providerId": "basic-flow",
                    "topLevel": True,
                    "builtIn": False,
                },
            )
        for execution in self.get(f"{flows}/{_seg(alias)}/executions"):
            if execution.get("level", 0) == 0:
                self.delete(f"{base}/authentication/executions/{execution['id']}")
        for provider, _ in fields["executions"]:
            self.post(f"{flows}/{_seg(alias)}/executions/execution", {"provider": provider})
        added = self.get(f"{flows}/{_seg(alias)}/executions")
        for execution, (_, requirement) in zip(added, fields["executions"], strict=False):
            execution["requirement"] = requirement
            self.put(f"{flows}/{_seg(alias)}/executions", execution)

    def _idp_mapper(self, base: str, name: str, action: Action, fields: Fields) -> None:
        alias, _, mapper_name = name.partition("/")
        path = f"{base}/identity-provider/instances/{_seg(alias)}/mappers"
        existing = {m["name"]: m for m in self.get(path)}
        if action is Action.DELETE:
            self.delete(f"{path}/{existing[mapper_name]['id']}")
        elif mapper_name in existing:
            rep = _merge(existing[mapper_name], fields, "config")
            self.put(f"{path}/{rep['id']}", rep)
        else:
            rep = {"name": mapper_name, "identityProviderAlias": alias}
            self.post(path, {**rep, **_unflatten(fields, "config")})

    def _client_uuid(self, base: str, client_id: str) -> str | None:
        found = self.get(f"{base}/clients?clientId={_seg(client_id)}")
        return str(found[0]["id"]) if found else None

    def _client(self, base: str, client_id: str, action: Action, fields: Fields) -> None:
        uuid = self._client_uuid(base, client_id)
        if uuid is None:
            rep = {"clientId": client_id, **_unflatten(fields, "attributes")}
            self.post(f"{base}/clients", rep)
            return
        rep = self.get(f"{base}/clients/{uuid}")
        self.put(f"{base}/clients/{uuid}", _merge(rep, fields, "attributes"))

    def _client_mapper(self, base: str, name: str, action: Action, fields: Fields) -> None:
        client_id, _, mapper_name = name.partition("/")
        uuid = self._client_uuid(base, client_id)
        if uuid is None:
            raise KeycloakError(f"client {client_id} missing in realm: cannot add its mapper")
        path = f"{base}/clients/{uuid}/protocol-mappers/models"
        existing = {m["name"]: m for m in self.get(path)}
        if mapper_name in existing:
            rep = _merge(existing[mapper_name], fields, "config")
            self.put(f"{path}/{rep['id']}", rep)
        else:
            self.post(path, {"name": mapper_name, **_unflatten(fields, "config")})

    # --- export ------------------------------------------------------------------------------

    def export(self, realm: str) -> dict[str, Any]:
        """A partial export of the realm with its clients, groups and roles (secrets masked)."""
        query = "exportClients=true&exportGroupsAndRoles=true"
        path = f"admin/realms/{_seg(realm)}/partial-export?{query}"
        result: dict[str, Any] = self.post(path, {})
        return result


def _unflatten(fields: Fields, nested: str) -> dict[str, Any]:
    rep: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, Secret):
            value = value.reveal()
        if key.startswith(nested + "."):
            rep.setdefault(nested, {})[key[len(nested) + 1 :]] = value
        else:
            rep[key] = value
    return rep


def _merge(rep: dict[str, Any], fields: Fields, nested: str) -> dict[str, Any]:
    """The live representation with the desired fields written over it."""
    result = dict(rep)
    inner = dict(result.get(nested) or {})
    for key, value in _unflatten(fields, nested).items():
        if key == nested:
            inner.update(value)
        else:
            result[key] = value
    result[nested] = inner
    return result


def _short(text: object) -> str:
    line = " ".join(str(text).split())
    return line[:300]
