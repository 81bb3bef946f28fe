"""Which sections of the home page a member of staff sees, and whose rows each counts.

A section belongs to a desk: it is shown to a role that may work that desk's records (the grants
in ``app.security.roles``) and whose row scope it counts for. Counts are per user or per branch
(an agent's own leads, a manager's branch, a BDM's applications), never over a whole table; the
roles that see every row (Compliance, Auditor) get the sections that are theirs by nature (KYC
cases waiting for the officer, documents expiring across the company). Admin's home is their own
tasks and the health of the system.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.security.roles import (
    ADMIN_ROLE,
    APPROVE,
    DECIDE,
    READ,
    REPAY,
    ROLES,
    SCOPE_ALL,
    SCOPE_BDM,
    SCOPE_BRANCH,
    SCOPE_BROKER,
    SCOPE_OWN,
    WRITE,
    allowed,
)
from app.security.scoping import Actor

EVERY_SCOPE = frozenset({SCOPE_ALL, SCOPE_BRANCH, SCOPE_OWN, SCOPE_BDM, SCOPE_BROKER})


@dataclass(frozen=True)
class SectionRule:
    key: str
    grants: tuple[tuple[str, str], ...]
    """(resource, action) pairs the role needs."""
    scopes: frozenset[str]
    """Row scopes the section is counted for."""


RULES: tuple[SectionRule, ...] = (
    SectionRule("tasks", (("Task", READ),), EVERY_SCOPE),
    SectionRule("follow_ups", (("Lead", WRITE),), frozenset({SCOPE_OWN, SCOPE_BRANCH})),
    SectionRule("leads", (("Lead", WRITE),), frozenset({SCOPE_OWN, SCOPE_BRANCH})),
    SectionRule("kyc", (("KycCase", APPROVE),), frozenset({SCOPE_ALL})),
    SectionRule(
        "applications", (("LoanApplication", DECIDE),), frozenset({SCOPE_BDM, SCOPE_BRANCH})
    ),
    SectionRule("instalments", (("LoanApplication", REPAY),), frozenset({SCOPE_BDM, SCOPE_BRANCH})),
    SectionRule("invoices", (("Invoice", READ),), frozenset({SCOPE_OWN, SCOPE_BRANCH})),
    SectionRule(
        "documents", (("Document", WRITE),), frozenset({SCOPE_OWN, SCOPE_BRANCH, SCOPE_ALL})
    ),
)
ADMIN_SECTIONS = ("tasks", "health")
SECTION_ORDER = (
    "tasks",
    "follow_ups",
    "leads",
    "kyc",
    "applications",
    "instalments",
    "invoices",
    "documents",
    "health",
)
SCOPE_BREADTH = (SCOPE_ALL, SCOPE_BRANCH, SCOPE_OWN, SCOPE_BDM, SCOPE_BROKER)
"""When two roles of one user grant a section, the broader scope counts it."""


def sections_for_role(role: str) -> dict[str, str]:
    """Section key -> the row scope it is counted in, for one role."""
    if role == ADMIN_ROLE:
        return dict.fromkeys(ADMIN_SECTIONS, SCOPE_ALL)
    spec = ROLES.get(role)
    if spec is None:
        return {}
    return {
        rule.key: spec.scope
        for rule in RULES
        if spec.scope in rule.scopes
        and all(allowed(role, resource, action) for resource, action in rule.grants)
    }


def sections_for(actor: Actor) -> dict[str, str]:
    """Section key -> row scope for the actor's roles, in page order."""
    found: dict[str, str] = {}
    for role in actor.roles:
        for key, scope in sections_for_role(role).items():
            current = found.get(key)
            if current is None or SCOPE_BREADTH.index(scope) < SCOPE_BREADTH.index(current):
                found[key] = scope
    return {key: found[key] for key in SECTION_ORDER if key in found}
