"""The Keycloak objects a realm file means (pure): what plan compares and apply writes.

Each object has a key (``realm``, ``user-profile``, ``flow:<alias>``, ``idp:<alias>``,
``idp-mapper:<alias>/<name>``, ``client:<clientId>``, ``client-mapper:<clientId>/<name>``)
and flat fields: top-level keys, ``config.<key>`` for an identity provider's or mapper's config
(strings, as Keycloak stores them), ``attributes.<key>`` for a client's attributes, and
``attributes.<name>`` for a user-profile attribute (a normalized mapping). Only the fields
cityguard manages are desired; ``flatten_*`` read the live objects into the same shape.

What the eIDAS profile fixes is not left to the file: the principal, the first-broker-login flow
that never links accounts by email, the user profile declaring the imported attributes, and a
username validator that accepts the '/' of a PersonIdentifier.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cityguard.eidas.profiles import (
    ATTRIBUTE_FORMAT_URI,
    ATTRIBUTES,
    PROFILES,
    loa_uri,
)
from cityguard.eidas.realm import RealmSpec

FIRST_BROKER_FLOW = "eidas first broker login"
#: The one execution of the first-broker-login flow: create the user if no user has its
#: username (the PersonIdentifier). No review, no linking, no email lookup.
FIRST_BROKER_EXECUTIONS: list[list[str]] = [["idp-create-user-if-unique", "REQUIRED"]]
#: Authenticators that link a brokered identity to an existing account: never in the flow.
LINKING_AUTHENTICATORS = frozenset(
    {"idp-auto-link", "idp-confirm-link", "idp-email-verification", "idp-username-password-form"}
)
EVENT_TYPES = sorted(
    {
        "LOGIN",
        "LOGIN_ERROR",
        "LOGOUT",
        "CODE_TO_TOKEN",
        "CODE_TO_TOKEN_ERROR",
        "IDENTITY_PROVIDER_LOGIN",
        "IDENTITY_PROVIDER_LOGIN_ERROR",
        "IDENTITY_PROVIDER_FIRST_LOGIN",
        "IDENTITY_PROVIDER_FIRST_LOGIN_ERROR",
        "IDENTITY_PROVIDER_RESPONSE_ERROR",
        "REGISTER",
        "UPDATE_PROFILE",
    }
)
#: Usernames are PersonIdentifiers lower-cased (de/lv/123456789): '/' must pass.
USERNAME_PATTERN = r"^[a-z0-9._@/+-]+$"
USERNAME_VALIDATIONS: dict[str, Any] = {
    "length": {"min": 3, "max": 255},
    "pattern": {"pattern": USERNAME_PATTERN, "error-message": "invalid username"},
    "up-username-not-idn-homograph": {},
}
#: Claim names in the e-services' tokens for the imported attributes Keycloak has no claim for.
CLAIMS = {"personIdentifier": "person_identifier", "dateOfBirth": "birthdate"}
BUILTIN_USER_ATTRIBUTES = frozenset({"username", "email", "firstName", "lastName"})

Fields = dict[str, Any]


class Secret:
    """A desired secret: compared by value, shown never (plan renders it as (secret))."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Secret):
            return self._value == other._value
        return isinstance(other, str) and other == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "(secret)"


@dataclass(frozen=True)
class Desired:
    """The objects of one realm, in the order they must be created."""

    realm: str
    objects: dict[str, Fields] = field(default_factory=dict)

    def keys(self) -> list[str]:
        return list(self.objects)


def desired_state(spec: RealmSpec, secrets: dict[str, str] | None = None) -> Desired:
    """The objects the realm file means; ``secrets`` are the clients' revealed secrets."""
    model = spec.model
    profile = PROFILES[model.profile]
    idp = model.identity_provider
    security = model.security
    objects: dict[str, Fields] = {}
    objects["realm"] = {
        "enabled": True,
        "displayName": model.display_name,
        "sslRequired": security.ssl_required,
        "bruteForceProtected": security.brute_force_protected,
        "eventsEnabled": security.login_events,
        "eventsExpiration": security.events_expiration_s,
        "enabledEventTypes": EVENT_TYPES,
        "adminEventsEnabled": security.admin_events,
        "adminEventsDetailsEnabled": security.admin_events,
        "registrationAllowed": False,
        "duplicateEmailsAllowed": True,  # two citizens may share an email: never a key
        "loginWithEmailAllowed": False,  # required by duplicateEmailsAllowed
        "editUsernameAllowed": False,
    }
    objects["user-profile"] = user_profile_fields(idp.attributes)
    objects[f"flow:{FIRST_BROKER_FLOW}"] = {
        "description": "eIDAS: create the user keyed by the PersonIdentifier; never link",
        "executions": FIRST_BROKER_EXECUTIONS,
    }
    config: Fields = {
        "entityId": idp.sp_entity_id,
        "idpEntityId": spec.node.entity_id,
        "singleSignOnServiceUrl": spec.node.sso_url,
        # a node whose metadata offers only HTTP-Redirect gets its AuthnRequests that way
        "postBindingAuthnRequest": _flag(spec.node.sso_binding == "HTTP-POST"),
        "postBindingResponse": "true",
        "nameIDPolicyFormat": profile.name_id_format,
        "principalType": profile.principal_type,
        "principalAttribute": profile.principal_attribute or "",
        "wantAssertionsSigned": _flag(idp.want_assertions_signed),
        "wantAssertionsEncrypted": _flag(idp.want_assertions_encrypted),
        "validateSignature": _flag(idp.validate_signature),
        "wantAuthnRequestsSigned": _flag(idp.want_authn_requests_signed),
        "signingCertificate": spec.node.signing_certificate,
        "signatureAlgorithm": idp.signature_algorithm,
        "allowedClockSkew": str(idp.allowed_clock_skew_s),
        "authnContextClassRefs": json.dumps([loa_uri(idp.requested_loa)]),
        "authnContextComparisonType": "minimum",
        "syncMode": "FORCE",
    }
    objects[f"idp:{idp.alias}"] = {
        "providerId": "saml",
        "enabled": True,
        "displayName": idp.display_name,
        "trustEmail": False,
        "storeToken": False,
        "linkOnly": False,
        "firstBrokerLoginFlowAlias": FIRST_BROKER_FLOW,
        **{f"config.{key}": value for key, value in config.items()},
    }
    for friendly, user_attribute in idp.attributes.items():
        objects[f"idp-mapper:{idp.alias}/{friendly}"] = {
            "identityProviderMapper": "saml-user-attribute-idp-mapper",
            "config.attribute.name": ATTRIBUTES[friendly],
            "config.attribute.friendly.name": friendly,
            "config.attribute.name.format": ATTRIBUTE_FORMAT_URI,
            "config.user.attribute": user_attribute,
            "config.syncMode": "FORCE",
        }
    for client in model.clients:
        fields: Fields = {
            "protocol": "openid-connect",
            "enabled": True,
            "name": client.name,
            "publicClient": client.public,
            "redirectUris": sorted(client.redirect_uris),
            "standardFlowEnabled": True,
            "implicitFlowEnabled": False,
            "directAccessGrantsEnabled": False,
            "serviceAccountsEnabled": False,
            "attributes.pkce.code.challenge.method": "S256",
        }
        secret = (secrets or {}).get(client.client_id)
        if secret is not None and not client.public:
            fields["secret"] = Secret(secret)
        objects[f"client:{client.client_id}"] = fields
        for user_attribute, claim in claim_attributes(idp.attributes).items():
            objects[f"client-mapper:{client.client_id}/{claim}"] = {
                "protocol": "openid-connect",
                "protocolMapper": "oidc-usermodel-attribute-mapper",
                "config.user.attribute": user_attribute,
                "config.claim.name": claim,
                "config.jsonType.label": "String",
                "config.id.token.claim": "true",
                "config.access.token.claim": "true",
                "config.userinfo.token.claim": "true",
            }
    return Desired(model.realm, objects)


def claim_attributes(attributes: dict[str, str]) -> dict[str, str]:
    """User attribute -> token claim, for the imported attributes OIDC has no claim for."""
    return {
        target: CLAIMS.get(target, target)
        for target in attributes.values()
        if target not in BUILTIN_USER_ATTRIBUTES
    }


def user_profile_fields(attributes: dict[str, str]) -> Fields:
    """The user-profile attributes cityguard manages, normalized (see normalize_attribute)."""
    fields: Fields = {
        "unmanagedAttributePolicy": None,
        "attributes.username": {
            "validations": USERNAME_VALIDATIONS,
            "required": None,
        },
        "attributes.email": {
            "validations": {"email": {}, "length": {"max": 255}},
            "required": None,  # eIDAS gives no email: never ask for one at first login
        },
    }
    for friendly, target in attributes.items():
        if target in BUILTIN_USER_ATTRIBUTES:
            continue
        fields[f"attributes.{target}"] = {
            "displayName": friendly,
            "permissions": {"edit": ["admin"], "view": ["admin", "user"]},
            "validations": {},
            "required": None,
            "multivalued": False,
        }
    return fields


def normalize_attribute(attribute: dict[str, Any], managed: dict[str, Any]) -> dict[str, Any]:
    """A live user-profile attribute reduced to the keys of the managed one."""
    result: dict[str, Any] = {}
    for key in managed:
        value = attribute.get(key)
        if key == "permissions" and isinstance(value, dict):
            value = {k: sorted(v) for k, v in sorted(value.items()) if v}
        if key == "validations" and value is None:
            value = {}
        if key == "multivalued" and value is None:
            value = False
        result[key] = value
    return result


def flatten_user_profile(config: dict[str, Any]) -> Fields:
    """The live user profile as fields: every attribute whole, plus the unmanaged policy."""
    fields: Fields = {"unmanagedAttributePolicy": config.get("unmanagedAttributePolicy")}
    for attribute in config.get("attributes") or []:
        fields[f"attributes.{attribute.get('name')}"] = attribute
    return fields


def flatten(obj: dict[str, Any], nested: str) -> Fields:
    """A live object as fields: top-level keys plus ``<nested>.<key>`` for its nested map."""
    fields: Fields = {key: value for key, value in obj.items() if key != nested}
    for key, value in (obj.get(nested) or {}).items():
        fields[f"{nested}.{key}"] = value
    return fields


def _flag(value: bool) -> str:
    return "true" if value else "false"
