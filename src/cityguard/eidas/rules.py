"""The eIDAS profile rules, evaluated on a realm's live objects (pure).

One rule per catalog control (policies/controls/eidas.yml, scope realm, verifier eidas-rules);
each gives one check result with the value observed in Keycloak and the value expected, about
the realm or the identity provider. Rules that no configuration of stock Keycloak can meet
(its known gaps) fail with the reason: they are level-2 controls, reported, never hidden.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cityguard.core.records import CheckResult, Outcome, SubjectKind
from cityguard.eidas.desired import (
    BUILTIN_USER_ATTRIBUTES,
    FIRST_BROKER_FLOW,
    LINKING_AUTHENTICATORS,
    Fields,
)
from cityguard.eidas.profiles import (
    ALLOWED_SIGNATURE_ALGORITHMS,
    LOA_ORDER,
    LOA_PREFIX,
    MANDATORY_ATTRIBUTES,
    PROFILES,
    Profile,
)


@dataclass(frozen=True)
class Context:
    """What the rules look at: the live objects, which realm and provider, the profile."""

    realm: str
    idp_alias: str
    profile: Profile
    live: Mapping[str, Fields]
    parameters: Mapping[str, Mapping[str, Any]]
    now: datetime
    #: the validUntil of the node's metadata the realm file names (None: no metadata, or
    #: metadata without one); Keycloak does not keep it, so it comes from the realm file
    metadata_valid_until: datetime | None = None

    @property
    def idp(self) -> Fields | None:
        return self.live.get(f"idp:{self.idp_alias}")

    def cfg(self, key: str) -> Any:
        idp = self.idp or {}
        return idp.get(f"config.{key}")

    def param(self, control: str, name: str, default: Any) -> Any:
        return self.parameters.get(control, {}).get(name, default)

    def mappers(self) -> list[Fields]:
        prefix = f"idp-mapper:{self.idp_alias}/"
        return [fields for key, fields in self.live.items() if key.startswith(prefix)]


@dataclass(frozen=True)
class Verdict:
    ok: bool
    observed: str
    expected: str

    @classmethod
    def from_problems(cls, problems: list[str], observed: str, expected: str) -> Verdict:
        """The verdict of a rule that lists what is wrong: it holds when nothing is, and the
        problems follow what was observed, so the auditor sees both."""
        return cls(not problems, "; ".join([observed, *problems]), expected)


@dataclass(frozen=True)
class Rule:
    control: str
    name: str
    subject_kind: SubjectKind
    evaluate: Callable[[Context], Verdict]


def _true(value: Any) -> bool:
    return str(value).lower() == "true"


def loa_requested(ctx: Context) -> Verdict:
    minimum = str(ctx.param("CG-EIDAS-001", "min_loa", "substantial"))
    raw = ctx.cfg("authnContextClassRefs")
    try:
        refs = json.loads(raw) if raw else []
    except ValueError:
        refs = [raw]
    comparison = ctx.cfg("authnContextComparisonType") or "exact"
    levels = [r[len(LOA_PREFIX) :] for r in refs if isinstance(r, str) and r.startswith(LOA_PREFIX)]
    ok = (
        bool(refs)
        and len(levels) == len(refs)
        and all(level in LOA_ORDER for level in levels)
        and min(LOA_ORDER.index(level) for level in levels) >= LOA_ORDER.index(minimum)
        and comparison == "minimum"
    )
    return Verdict(
        ok,
        f"class refs {refs or '(none)'}, comparison {comparison}",
        f"{LOA_PREFIX}{minimum} or higher, comparison minimum",
    )


def signature_algorithm(ctx: Context) -> Verdict:
    algorithm = ctx.cfg("signatureAlgorithm") or "(default RSA_SHA256)"
    return Verdict(
        algorithm in ALLOWED_SIGNATURE_ALGORITHMS,
        str(algorithm),
        " or ".join(ALLOWED_SIGNATURE_ALGORITHMS),
    )


def assertions_signed(ctx: Context) -> Verdict:
    value = ctx.cfg("wantAssertionsSigned")
    return Verdict(_true(value), f"wantAssertionsSigned={value}", "wantAssertionsSigned=true")


def assertions_encrypted(ctx: Context) -> Verdict:
    value = ctx.cfg("wantAssertionsEncrypted")
    return Verdict(_true(value), f"wantAssertionsEncrypted={value}", "wantAssertionsEncrypted=true")


def response_signature(ctx: Context) -> Verdict:
    value = ctx.cfg("validateSignature")
    has_cert = bool(ctx.cfg("signingCertificate"))
    return Verdict(
        _true(value) and has_cert,
        f"validateSignature={value}, signing certificate {'set' if has_cert else 'missing'}",
        "validateSignature=true with the node's signing certificate",
    )


def attributes_mapped(ctx: Context) -> Verdict:
    found: dict[str, str] = {}
    for mapper in ctx.mappers():
        if mapper.get("identityProviderMapper") != "saml-user-attribute-idp-mapper":
            continue
        name = mapper.get("config.attribute.name")
        if name in MANDATORY_ATTRIBUTES.values() and mapper.get("config.user.attribute"):
            found[str(name)] = str(mapper.get("config.user.attribute"))
    missing = [f for f, uri in MANDATORY_ATTRIBUTES.items() if uri not in found]
    observed = ", ".join(
        f"{f}->{found[uri]}" for f, uri in MANDATORY_ATTRIBUTES.items() if uri in found
    )
    if missing:
        observed += f"; not mapped: {', '.join(missing)}"
    return Verdict(
        not missing,
        observed or "no attribute importer",
        "PersonIdentifier, CurrentFamilyName, CurrentGivenName, DateOfBirth imported by URI",
    )


def principal(ctx: Context) -> Verdict:
    kind = ctx.cfg("principalType") or "SUBJECT"
    attribute = ctx.cfg("principalAttribute") or ""
    name_id = ctx.cfg("nameIDPolicyFormat") or ""
    if ctx.profile.principal_attribute is not None:
        uri = ctx.profile.principal_attribute
        ok = (kind == "ATTRIBUTE" and attribute == uri) or (
            kind == "FRIENDLY_ATTRIBUTE" and attribute == "PersonIdentifier"
        )
        expected = f"principalType ATTRIBUTE, principalAttribute {uri}"
    else:
        ok = kind == "SUBJECT" and name_id == ctx.profile.name_id_format
        expected = f"principalType SUBJECT with NameID format {ctx.profile.name_id_format}"
    return Verdict(
        ok, f"principalType {kind}, attribute {attribute or '(none)'}, NameID {name_id}", expected
    )


def no_email_linking(ctx: Context) -> Verdict:
    idp = ctx.idp or {}
    flow_alias = idp.get("firstBrokerLoginFlowAlias") or "first broker login"
    flow = ctx.live.get(f"flow:{flow_alias}")
    realm = ctx.live.get("realm", {})
    problems = []
    if flow is None:
        problems.append(f"first-broker-login flow {flow_alias!r} not the managed one")
        linking = []
    else:
        linking = sorted(set(flow.get("all_providers") or []) & LINKING_AUTHENTICATORS)
        if linking:
            problems.append(f"flow links accounts ({', '.join(linking)})")
    if _true(idp.get("trustEmail")):
        problems.append("trustEmail on")
    if not realm.get("duplicateEmailsAllowed"):
        problems.append("users looked up by email (duplicateEmailsAllowed off)")
    observed = (
        f"flow {flow_alias!r}, trustEmail={idp.get('trustEmail')}, "
        f"duplicateEmailsAllowed={realm.get('duplicateEmailsAllowed')}"
    )
    return Verdict.from_problems(
        problems,
        observed,
        f"flow {FIRST_BROKER_FLOW!r} without linking, trustEmail=false, duplicate emails allowed",
    )


def certificate_valid(ctx: Context) -> Verdict:
    """The node's signing certificate, and its metadata when that has a validUntil: whichever
    ends first ends the node's trust, so both must last min_days_left."""
    from cryptography import x509

    min_days = int(ctx.param("CG-EIDAS-009", "min_days_left", 30))
    body = ctx.cfg("signingCertificate") or ""
    until = ctx.metadata_valid_until
    what = "signing certificate" + (" and metadata" if until is not None else "")
    expected = f"the node's {what} valid for at least {min_days} more days"
    if not body:
        return Verdict(False, "no signing certificate", expected)
    try:
        first = str(body).split(",")[0]
        cert = x509.load_der_x509_certificate(base64.b64decode(first))
    except ValueError:
        return Verdict(False, "signing certificate does not parse", expected)
    not_after = cert.not_valid_after_utc
    days = (not_after - ctx.now).days
    ok = cert.not_valid_before_utc <= ctx.now and days >= min_days
    observed = f"valid until {not_after:%Y-%m-%d} ({days} days left)"
    if until is not None:
        metadata_days = (until - ctx.now).days
        ok = ok and metadata_days >= min_days
        observed = (
            f"certificate {observed}; metadata valid until {until:%Y-%m-%d} "
            f"({metadata_days} days left)"
        )
    return Verdict(ok, observed, expected)


def clock_skew(ctx: Context) -> Verdict:
    maximum = int(ctx.param("CG-EIDAS-010", "max_clock_skew_s", 60))
    raw = ctx.cfg("allowedClockSkew")
    try:
        skew = int(raw) if raw not in (None, "") else 0
    except ValueError:
        return Verdict(False, f"allowedClockSkew={raw!r} is not a number", f"0-{maximum} s")
    return Verdict(0 <= skew <= maximum, f"{skew} s", f"at most {maximum} s")


def realm_security(ctx: Context) -> Verdict:
    realm = ctx.live.get("realm", {})
    problems = []
    if not realm.get("bruteForceProtected"):
        problems.append("brute-force detection off")
    if realm.get("sslRequired") not in ("external", "all"):
        problems.append(f"sslRequired {realm.get('sslRequired')}")
    if not realm.get("eventsEnabled"):
        problems.append("login events off")
    if not realm.get("adminEventsEnabled"):
        problems.append("admin events off")
    observed = (
        f"bruteForceProtected={realm.get('bruteForceProtected')}, "
        f"sslRequired={realm.get('sslRequired')}, eventsEnabled={realm.get('eventsEnabled')}, "
        f"adminEventsEnabled={realm.get('adminEventsEnabled')}"
    )
    return Verdict.from_problems(
        problems,
        observed,
        "brute-force detection, SSL for external requests, login and admin events on",
    )


def attributes_kept(ctx: Context) -> Verdict:
    profile = ctx.live.get("user-profile", {})
    targets = [
        str(m.get("config.user.attribute"))
        for m in ctx.mappers()
        if m.get("config.attribute.name") in MANDATORY_ATTRIBUTES.values()
    ]
    custom = [t for t in targets if t not in BUILTIN_USER_ATTRIBUTES]
    undeclared = [t for t in custom if f"attributes.{t}" not in profile]
    policy = profile.get("unmanagedAttributePolicy")
    username = profile.get("attributes.username") or {}
    validations = username.get("validations") or {}
    slash_refused = "username-prohibited-characters" in validations
    problems = []
    if undeclared and policy not in ("ENABLED", "ADMIN_EDIT", "ADMIN_VIEW"):
        problems.append(f"undeclared (dropped): {', '.join(undeclared)}")
    if slash_refused:
        problems.append("username validator refuses the '/' of a PersonIdentifier")
    observed = f"declared: {', '.join(t for t in custom if t not in undeclared) or '(none)'}"
    return Verdict.from_problems(
        problems,
        observed,
        "user profile declares every imported attribute; usernames may hold '/'",
    )


def clients_exact(ctx: Context) -> Verdict:
    problems = []
    names = []
    for key, client in ctx.live.items():
        if not key.startswith("client:"):
            continue
        name = key.partition(":")[2]
        names.append(name)
        uris = client.get("redirectUris") or []
        if any("*" in uri for uri in uris):
            problems.append(f"{name}: wildcard redirect URI")
        if client.get("implicitFlowEnabled"):
            problems.append(f"{name}: implicit flow on")
        if client.get("directAccessGrantsEnabled"):
            problems.append(f"{name}: password grant on")
    observed = f"clients {', '.join(sorted(names)) or '(none)'}"
    return Verdict.from_problems(
        problems,
        observed,
        "exact redirect URIs, no implicit flow, no password grant",
    )


def returned_loa_checked(ctx: Context) -> Verdict:
    return Verdict(
        False,
        "stock Keycloak does not compare the returned AuthnContextClassRef with the requested "
        "LoA (an assertion at LoA low is accepted when substantial is asked)",
        "assertions below the requested LoA refused",
    )


def eidas_extensions(ctx: Context) -> Verdict:
    return Verdict(
        False,
        "stock Keycloak sends no eidas:SPType nor eidas:RequestedAttributes extension",
        "AuthnRequest carries SPType (public) and RequestedAttributes",
    )


IDP = SubjectKind.IDENTITY_PROVIDER
REALM = SubjectKind.REALM
RULES: tuple[Rule, ...] = (
    Rule("CG-EIDAS-001", "loa_requested", IDP, loa_requested),
    Rule("CG-EIDAS-002", "signature_algorithm", IDP, signature_algorithm),
    Rule("CG-EIDAS-003", "assertions_signed", IDP, assertions_signed),
    Rule("CG-EIDAS-004", "assertions_encrypted", IDP, assertions_encrypted),
    Rule("CG-EIDAS-005", "response_signature", IDP, response_signature),
    Rule("CG-EIDAS-006", "attributes_mapped", IDP, attributes_mapped),
    Rule("CG-EIDAS-007", "principal", IDP, principal),
    Rule("CG-EIDAS-008", "no_email_linking", IDP, no_email_linking),
    Rule("CG-EIDAS-009", "certificate_valid", IDP, certificate_valid),
    Rule("CG-EIDAS-010", "clock_skew", IDP, clock_skew),
    Rule("CG-EIDAS-011", "realm_security", REALM, realm_security),
    Rule("CG-EIDAS-012", "attributes_kept", REALM, attributes_kept),
    Rule("CG-EIDAS-013", "clients_exact", REALM, clients_exact),
    Rule("CG-EIDAS-014", "returned_loa_checked", IDP, returned_loa_checked),
    Rule("CG-EIDAS-015", "eidas_extensions", IDP, eidas_extensions),
)


def evaluate(
    realm: str,
    idp_alias: str,
    profile: str,
    live: Mapping[str, Fields],
    parameters: Mapping[str, Mapping[str, Any]],
    controls: list[str],
    now: datetime | None = None,
    metadata_valid_until: datetime | None = None,
) -> list[CheckResult]:
    """One check result per rule whose control is in ``controls``."""
    ctx = Context(
        realm,
        idp_alias,
        PROFILES[profile],
        live,
        parameters,
        now or datetime.now(UTC),
        metadata_valid_until,
    )
    results = []
    for rule in RULES:
        if rule.control not in controls:
            continue
        subject = realm if rule.subject_kind is REALM else f"{realm}/{idp_alias}"
        if not live:
            verdict = Verdict(False, f"realm {realm} does not exist", "the realm, applied")
        elif rule.subject_kind is IDP and ctx.idp is None:
            verdict = Verdict(False, f"identity provider {idp_alias} missing", "configured")
        else:
            verdict = rule.evaluate(ctx)
        results.append(
            CheckResult(
                check_id=f"eidas::{rule.name}",
                host=subject,
                controls=(rule.control,),
                outcome=Outcome.PASS if verdict.ok else Outcome.FAIL,
                observed=verdict.observed,
                expected=verdict.expected,
                subject_kind=rule.subject_kind,
            )
        )
    return results
