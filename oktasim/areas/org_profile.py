"""The org itself: GET /api/v1/org."""

from __future__ import annotations

from oktasim.routing import Request, Response, json_response, route
from oktasim.scopes import ORGS_READ


def org_dict(org, base: str) -> dict:
    return {
        "id": org.id, "companyName": "oktasim", "website": "https://example.com", "status": "ACTIVE",
        "subdomain": org.name, "address1": None, "address2": None, "city": None, "state": None,
        "phoneNumber": None, "postalCode": None, "country": None, "supportPhoneNumber": None,
        "endUserSupportHelpURL": None, "created": org.created, "lastUpdated": org.created,
        "expiresAt": None,
        "_links": {"preferences": {"href": f"{base}/api/v1/org/preferences"},
                   "uploadLogo": {"href": f"{base}/api/v1/org/logo", "hints": {"allow": ["POST"]}},
                   "oktaCommunication": {"href": f"{base}/api/v1/org/privacy/oktaCommunication"},
                   "logo": {"href": "https://ok12static.oktacdn.com/fs/bco/1/oktasim"},
                   "oktaSupport": {"href": f"{base}/api/v1/org/privacy/oktaSupport"},
                   "contacts": {"href": f"{base}/api/v1/org/contacts"}},
    }


def get_org(req: Request) -> Response:
    return json_response(org_dict(req.org, req.base))


ROUTES = [route("GET", "/api/v1/org", get_org, ORGS_READ)]
