"""Deterministic generation of a realistic org from a seed (same seed and sizes -> same org)."""

from __future__ import annotations

import bisect
import itertools
import math
import random
import time

from oktasim.areas.api_tokens import ApiToken
from oktasim.areas.apps import App
from oktasim.areas.groups import Group
from oktasim.areas.roles import (
    APP_TARGET_ROLES,
    GROUP_TARGET_ROLES,
    IAM_ROLES,
    STANDARD_ROLES,
    CustomRole,
    ResourceSet,
)
from oktasim.areas.users import USER_STATUSES, User
from oktasim.orderedset import OrderedIds
from oktasim.org import Org

FIRST = ("James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard "
         "Susan Joseph Jessica Thomas Sarah Charles Karen Chen Wei Aiko Hiroshi Olga Ivan Fatima Omar "
         "Priya Arjun Lucia Mateo Sofia Liam Emma Noah Ava Zoe Ines Jonas Lena Kofi Amara Yusuf Leila "
         "Mei Sven Astrid Diego Camila").split()
LAST = ("Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez "
        "Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris "
        "Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill "
        "Flores Green Adams Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Tanaka Muller "
        "Kowalski Okafor Haddad Johansson Rossi Dubois Silva").split()
DOMAINS = ("example.com", "corp.example.com", "acme.io", "globex.example", "initech.test")
SECOND_DOMAINS = ("gmail.example", "outlook.example", "proton.example", "personal.example")
DEPARTMENTS = ("Engineering", "Sales", "Marketing", "Finance", "HR", "Legal", "Support", "IT", "Operations")
TITLES = ("Engineer", "Manager", "Analyst", "Director", "Specialist", "Associate", "Lead", "Consultant")
# (status, weight): mostly ACTIVE, every status present.
STATUS_WEIGHTS = (("ACTIVE", 78), ("STAGED", 4), ("PROVISIONED", 4), ("SUSPENDED", 3),
                  ("DEPROVISIONED", 5), ("LOCKED_OUT", 2), ("PASSWORD_EXPIRED", 2), ("RECOVERY", 2))
GROUP_WORDS = ("Sales Engineering Marketing Finance HR Legal Support IT Ops Security Platform Data "
               "Design Product Mobile Web Cloud Infra Payroll Recruiting Contractors Interns Admins "
               "EMEA APAC AMER Berlin Tokyo London Austin Remote").split()
APP_CATALOG = (  # (name, label, signOnMode)
    ("salesforce", "Salesforce", "SAML_2_0"), ("workday", "Workday", "SAML_2_0"),
    ("zoomus", "Zoom", "SAML_2_0"), ("slack", "Slack", "SAML_2_0"), ("github", "GitHub", "SAML_2_0"),
    ("box", "Box", "SAML_2_0"), ("atlassian", "Atlassian Cloud", "SAML_2_0"),
    ("google", "Google Workspace", "SAML_2_0"), ("aws_console", "AWS Console", "SAML_2_0"),
    ("servicenow", "ServiceNow", "SAML_1_1"), ("office365", "Microsoft Office 365", "WS_FEDERATION"),
    ("oidc_client", "Internal Portal", "OPENID_CONNECT"), ("bookmark", "Benefits Bookmark", "BOOKMARK"),
    ("template_basic_auth", "Legacy Wiki", "BASIC_AUTH"), ("template_swa", "Expense Tool", "BROWSER_PLUGIN"),
    ("template_sps", "Vendor Portal", "SECURE_PASSWORD_STORE"), ("template_swa3field", "Bank Portal",
                                                                 "AUTO_LOGIN"),
)
BUILT_IN_APPS = (("saasure", "Okta Admin Console", "OPENID_CONNECT"),
                 ("okta_enduser", "Okta Dashboard", "OPENID_CONNECT"),
                 ("okta_browser_plugin", "Okta Browser Plugin", "OPENID_CONNECT"))
# OAuth service apps (client credentials): the app slots before the last one in an org with at least
# SERVICE_APPS_FROM apps; they hold admin roles (non-human admins) and no user assignments.
SERVICE_APP_LABELS = ("Terraform Automation", "SIEM Log Collector", "HR Sync Service", "Backup Exporter")
SERVICE_APPS_FROM = 8
BASE_EPOCH = 1577836800  # 2020-01-01


class _Clock:
    """Fast ISO-8601 with milliseconds for generated timestamps."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self._days: dict[int, str] = {}

    def at(self, epoch: float) -> str:
        day, sec = divmod(int(epoch), 86400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = time.strftime("%Y-%m-%dT", time.gmtime(day * 86400))
        h, rest = divmod(sec, 3600)
        return f"{prefix}{h:02d}:{rest // 60:02d}:{rest % 60:02d}.000Z"

    def between(self, lo: float, hi: float) -> float:
        return lo + self.rng.random() * max(0.0, hi - lo)


def generate(seed: int = 0, users: int = 200, groups: int = 30, apps: int = 12) -> Org:
    if users < 0 or groups < 0 or apps < 0:
        raise ValueError("--users, --groups and --apps must be >= 0")
    rng = random.Random(f"org:{seed}")
    clock = _Clock(rng)
    org = Org(seed)
    now = time.time()
    horizon = min(now, BASE_EPOCH + 5 * 365 * 86400)

    # -- groups first: Everyone receives every user as it is added.
    everyone = Group(org.ids.new("00g"), "BUILT_IN", clock.at(BASE_EPOCH),
                     {"name": "Everyone", "description": "All users in your organization"})
    org.add_group(everyone)

    # -- users
    statuses = [s for s, _ in STATUS_WEIGHTS]
    cum = list(itertools.accumulate(w for _, w in STATUS_WEIGHTS))
    forced = {i * users // len(USER_STATUSES): s for i, s in enumerate(USER_STATUSES)} if users >= 8 else {}
    user_ids: list[str] = []
    for i in range(users):
        status = forced.get(i) or statuses[bisect.bisect(cum, rng.random() * cum[-1])]
        first, last = rng.choice(FIRST), rng.choice(LAST)
        domain = DOMAINS[min(int(rng.expovariate(0.9)), len(DOMAINS) - 1)]
        local = f"{first}.{last}{i}".lower()
        email = f"{local}@{domain}"
        second = f"{first[0]}{last}{i}@{rng.choice(SECOND_DOMAINS)}".lower() if rng.random() < 0.4 else None
        created = clock.between(BASE_EPOCH, horizon - 86400)
        updated = clock.between(created, horizon)
        activated = None if status in ("STAGED",) else clock.at(created + 60)
        last_login = clock.at(clock.between(created, horizon)) if status in (
            "ACTIVE", "LOCKED_OUT", "PASSWORD_EXPIRED", "SUSPENDED", "RECOVERY") else None
        profile = {
            "firstName": first, "lastName": last, "mobilePhone": None, "secondEmail": second,
            "login": email if rng.random() < 0.9 else f"{local}",
            "email": email,
            "department": rng.choice(DEPARTMENTS), "title": rng.choice(TITLES),
        }
        if "@" not in profile["login"]:
            profile["login"] = f"{local}@{DOMAINS[0]}" if domain != DOMAINS[0] else f"{local}.alt@{domain}"
        u = User(org.ids.new("00u"), status, clock.at(created), activated,
                 clock.at(updated) if status != "STAGED" else None, last_login, clock.at(updated),
                 clock.at(created) if status not in ("STAGED", "PROVISIONED") else None, profile,
                 has_password=status != "PROVISIONED" and (status != "STAGED" or i % 2 == 0))
        org.add_user(u)
        user_ids.append(u.id)

    # -- apps (built-in ones first, as in every Okta org; OAuth service apps last)
    app_ids: list[str] = []
    services = 2 + apps // 200 if apps >= SERVICE_APPS_FROM else 0
    for i in range(apps):
        app_type = None
        if i < len(BUILT_IN_APPS):
            name, label, mode = BUILT_IN_APPS[i]
            status = "ACTIVE"
        else:
            name, label, mode = APP_CATALOG[(i - len(BUILT_IN_APPS)) % len(APP_CATALOG)]
            n = (i - len(BUILT_IN_APPS)) // len(APP_CATALOG)
            label = f"{label} {n + 1}" if n else label
            status = "INACTIVE" if rng.random() < 0.2 else "ACTIVE"
            app_type = "web" if name == "oidc_client" else None
        if apps - 1 - services <= i < apps - 1:   # before the last app (which is made inactive below)
            k = i - (apps - 1 - services)
            name, mode, app_type = "oidc_client", "OPENID_CONNECT", "service"
            label = SERVICE_APP_LABELS[k % len(SERVICE_APP_LABELS)] + (f" {k // len(SERVICE_APP_LABELS) + 1}"
                                                                        if k >= len(SERVICE_APP_LABELS) else "")
        a = App(org.ids.new("0oa"), name, label, status, mode, clock.at(clock.between(BASE_EPOCH, horizon)),
                app_type)
        org.add_app(a)
        app_ids.append(a.id)
    # every app shape appears when there are enough apps
    if apps > len(BUILT_IN_APPS) + 1:
        org.apps[app_ids[-1]].status = "INACTIVE"
        org.apps[app_ids[len(BUILT_IN_APPS)]].status = "ACTIVE"

    # -- groups: skewed sizes, a few huge, many small, some empty; some imported (APP_GROUP)
    n_user = len(user_ids)
    group_ids: list[str] = []
    for i in range(max(0, groups - 1)):
        app_group = app_ids and i >= 3 and rng.random() < 0.15
        if i < 3:
            size = int(n_user * (0.5, 0.3, 0.15)[i])
        elif rng.random() < 0.1:
            size = 0
        else:
            size = min(n_user, int(math.exp(rng.gauss(2.3, 1.3))))
        words = rng.sample(GROUP_WORDS, 2)
        name = f"{words[0]} {words[1]} {i}"
        if app_group:
            src = rng.choice(app_ids[len(BUILT_IN_APPS):] or app_ids)
            profile = {"name": f"{name} (AD)", "description": f"Imported from directory: {name}",
                       "samAccountName": name.replace(" ", "_"),
                       "dn": f"CN={name},OU=Groups,DC=corp,DC=example,DC=com",
                       "windowsDomainQualifiedName": f"CORP\\{name.replace(' ', '_')}",
                       "externalId": org.ids.new("ext")}
            g = Group(org.ids.new("00g"), "APP_GROUP", clock.at(clock.between(BASE_EPOCH, horizon)),
                      profile, source=src)
        else:
            g = Group(org.ids.new("00g"), "OKTA_GROUP", clock.at(clock.between(BASE_EPOCH, horizon)),
                      {"name": name, "description": f"{words[0]} team" if rng.random() < 0.7 else None})
        idx = rng.sample(range(n_user), size) if size else []
        idx.sort()
        g.members = OrderedIds([user_ids[j] for j in idx])
        g.last_membership_updated = g.last_updated
        org.add_group(g)
        group_ids.append(g.id)

    # -- app assignments: direct users, and groups (their members get scope GROUP)
    small_groups = [gid for gid in group_ids if 0 < len(org.groups[gid].members) <= 2000] or group_ids
    for k, aid in enumerate(app_ids):
        service = org.apps[aid].application_type == "service"   # draws as other apps do, assigns nobody
        if n_user:
            size = min(n_user, int(math.exp(rng.gauss(2.0, 1.2))))
            for j in sorted(rng.sample(range(n_user), size)):
                uid = user_ids[j]
                u = org.users[uid]
                if u.status == "DEPROVISIONED" or service:
                    continue
                org.assign_app_user(aid, {"id": uid, "scope": "USER",
                                          "credentials": {"userName": u.profile["login"]}})
        if group_ids and rng.random() < 0.5:
            chosen = rng.sample(small_groups, min(len(small_groups), rng.randint(1, 3)))
            if k in (len(BUILT_IN_APPS), len(BUILT_IN_APPS) + 1) and len(group_ids) >= 2:
                chosen = [group_ids[k - len(BUILT_IN_APPS)]]   # a couple of apps hold a huge group
            for gid in chosen if not service else ():
                org.assign_app_group(aid, gid, {})

    # -- standard admin roles to users and groups
    now_s = clock.at(horizon)
    active = [uid for uid in user_ids if org.users[uid].status == "ACTIVE"]
    role_types = list(STANDARD_ROLES)
    if active:
        org.assign_role("user", active[0], {"type": "SUPER_ADMIN"})
        for uid in rng.sample(active, min(len(active), max(2, n_user // 500))):
            for t in rng.sample(role_types, rng.randint(1, 2)):
                if t not in org.roles.get(("user", uid), {}):
                    org.assign_role("user", uid, {"type": t})
    okta_groups = [gid for gid in group_ids if org.groups[gid].type == "OKTA_GROUP"
                   and len(org.groups[gid].members) <= 5000]
    for gid in rng.sample(okta_groups, min(len(okta_groups), max(1, len(group_ids) // 200))):
        for t in rng.sample(("USER_ADMIN", "APP_ADMIN", "HELP_DESK_ADMIN", "READ_ONLY_ADMIN",
                             "GROUP_MEMBERSHIP_ADMIN", "REPORT_ADMIN"), rng.randint(1, 2)):
            org.assign_role("group", gid, {"type": t})

    # -- targets: every other role Okta scopes is scoped (from the first), the rest are org-wide
    app_list = list(org.apps.values())
    scopable = [ra for ras in org.roles.values() for ra in ras.values()
                if ra.type in GROUP_TARGET_ROLES | APP_TARGET_ROLES]
    for ra in scopable[::2]:
        if ra.type in GROUP_TARGET_ROLES and okta_groups:
            for gid in rng.sample(okta_groups, min(len(okta_groups), rng.randint(1, 2))):
                ra.group_targets.add(gid)
        elif ra.type in APP_TARGET_ROLES and app_list:
            a = rng.choice(app_list)
            (ra.app_targets.add(a.name) if rng.random() < 0.5 else ra.instance_targets.add(a.id))

    # -- the IAM-based standard roles: listed with the custom roles, assigned by type (to small groups:
    # few people hold them)
    small_okta_groups = sorted(okta_groups, key=lambda gid: len(org.groups[gid].members))[:len(okta_groups) // 2]
    for t, label in IAM_ROLES.items():
        org.add_custom_role(CustomRole(org.ids.new("cr0"), label, f"{label} (IAM-based standard role)", now_s,
                                       iam_type=t))
        if active:
            org.assign_role("user", rng.choice(active), {"type": t})
        if small_okta_groups and rng.random() < 0.5:
            org.assign_role("group", rng.choice(small_okta_groups), {"type": t})

    # -- custom roles and resource sets
    roles: list[CustomRole] = []
    for i in range(max(2, apps // 50)):
        label = f"{rng.choice(GROUP_WORDS)} Custom Role {i}"
        roles.append(CustomRole(org.ids.new("cr0"), label, f"Custom admin role {i}", now_s,
                                permissions=rng.sample(["okta.users.read", "okta.groups.read",
                                                        "okta.apps.read", "okta.groups.manage",
                                                        "okta.users.manage"], 2)))
    for cr in roles:
        org.add_custom_role(cr)
    sets: list[ResourceSet] = []
    for i in range(max(2, apps // 100)):
        rs = ResourceSet(org.ids.new("iam"), f"Resource Set {i}", f"Resources of team {i}", now_s)
        org.add_resource_set(rs)
        sets.append(rs)
    if active or okta_groups:
        for i, cr in enumerate(roles):
            rs = sets[i % len(sets)]
            for _ in range(rng.randint(1, 3)):
                if okta_groups and rng.random() < 0.3:
                    org.add_binding_member(rs, cr, "group", rng.choice(okta_groups))
                elif active:
                    org.add_binding_member(rs, cr, "user", rng.choice(active))

    # -- assignment timestamps from the seed too (the Org stamps changes with the wall clock)
    for a in org.apps.values():
        for au in a.direct.values():
            au.created = clock.at(clock.between(BASE_EPOCH, horizon))
        for ag in a.group_assign.values():
            ag.last_updated = clock.at(clock.between(BASE_EPOCH, horizon))
    for ras in org.roles.values():
        for ra in ras.values():
            ra.created = ra.last_updated = clock.at(clock.between(BASE_EPOCH, horizon))
    for rs in org.resource_sets.values():
        for b in rs.bindings.values():
            b.created = clock.at(clock.between(BASE_EPOCH, horizon))
            for m in b.members.values():
                m.created = b.created

    # -- API tokens, owned by admins
    owners = list(org.admins) or active
    for i in range(max(2, n_user // 200) if owners else 0):
        created = clock.between(BASE_EPOCH, horizon)
        used = clock.between(created, horizon)
        org.add_api_token(ApiToken(org.ids.new("00T"), rng.choice(("API access token", "Okta API",
                                                                    "Terraform", "ConductorOne",
                                                                    "SCIM bridge")) + f" {i}",
                                    rng.choice(owners), clock.at(created), clock.at(used),
                                    clock.at(used + 30 * 86400)))
    _client_roles(org, seed, okta_groups, roles, sets, horizon)
    org.log.recording = True   # the log starts empty: only changes made while the simulator runs
    return org


def _client_roles(org: Org, seed: int, okta_groups: list[str], custom: list[CustomRole], sets: list[ResourceSet],
                  horizon: float) -> None:
    """Admin roles of the OAuth service apps, from their own random stream (the rest of the org is
    as without them): the first holds Read-Only Administrator and a group-scoped USER_ADMIN, the
    second App Administrator scoped to one app, Workflows Administrator and a custom role through a
    resource set, any further one a random standard role."""
    rng = random.Random(f"clients:{seed}")
    clock = _Clock(rng)
    clients = [a for a in org.apps.values() if a.application_type == "service"]
    for k, a in enumerate(clients):
        if k == 0:
            org.assign_role("client", a.id, {"type": "READ_ONLY_ADMIN"})
            ra = org.assign_role("client", a.id, {"type": "USER_ADMIN"})
            for gid in rng.sample(okta_groups, min(len(okta_groups), 2)):
                ra.group_targets.add(gid)
        elif k == 1:
            ra = org.assign_role("client", a.id, {"type": "APP_ADMIN"})
            ra.instance_targets.add(rng.choice([x.id for x in org.apps.values() if x.application_type is None]))
            org.assign_role("client", a.id, {"type": "WORKFLOWS_ADMIN"})
            if custom and sets:
                org.add_binding_member(sets[0], custom[0], "client", a.id)
        else:
            org.assign_role("client", a.id, {"type": rng.choice(list(STANDARD_ROLES))})
        for ra in org.roles.get(("client", a.id), {}).values():
            ra.created = ra.last_updated = clock.at(clock.between(BASE_EPOCH, horizon))
