"""The OAuth scopes of Okta's management API the simulator knows (okta-api.md §2.5): what each route
needs, and the default grant of the simulated service app."""

from __future__ import annotations

USERS_READ, USERS_MANAGE = "okta.users.read", "okta.users.manage"
GROUPS_READ, GROUPS_MANAGE = "okta.groups.read", "okta.groups.manage"
APPS_READ, APPS_MANAGE = "okta.apps.read", "okta.apps.manage"
ROLES_READ, ROLES_MANAGE = "okta.roles.read", "okta.roles.manage"
API_TOKENS_READ, API_TOKENS_MANAGE = "okta.apiTokens.read", "okta.apiTokens.manage"
ORGS_READ = "okta.orgs.read"
LOGS_READ = "okta.logs.read"

ALL_SCOPES = frozenset({
    USERS_READ, USERS_MANAGE, GROUPS_READ, GROUPS_MANAGE, APPS_READ, APPS_MANAGE, ROLES_READ, ROLES_MANAGE,
    API_TOKENS_READ, API_TOKENS_MANAGE, LOGS_READ, "okta.rateLimits.read",
    "okta.principalRateLimits.read", ORGS_READ,
})
