"""Human-readable summaries of a run (embedded mode, `oktasync sync --wait`, `oktasync demo`)."""

from __future__ import annotations

from typing import Any


def hint_for(error: str | None, tenant: str | None = None) -> str:
    """What to do about a failed run, from its error text; `tenant` names the stored tenant whose
    settings to change (distributed mode) instead of the command's own flags."""
    text = (error or "").lower()
    fix = f"`oktasync tenant update {tenant}` with " if tenant else ""
    if "authentication" in text or "401" in text or "invalid_client" in text or "e0000011" in text:
        return f"check the credentials ({fix}--api-token, or the OAuth client id, private key and key id)"
    if "connection" in text or "timed out" in text or "name or service" in text:
        return f"check {fix}--domain and that this machine can reach it"
    if "secret_key" in text or "cannot be decrypted" in text:
        return "check OKTASYNC_SECRET_KEY (or the key file next to the database)"
    if "oktanotfound" in text or "okta 404" in text:  # a list every org has was not found
        return f"check {fix}--domain: that host does not answer like an Okta org (e.g. acme.okta.com)"
    if "permission" in text or "403" in text:
        return "give the credentials a read-only admin role (or the okta.*.read scopes)"
    return "see the error above; run again to retry (the previous complete sync stays in place)"


def kind_line(kind: str, reason: str | None, counts: dict[str, Any]) -> str:
    """`sync:         incremental (why), 12 requests`: which sync it was, why, what it cost."""
    line = f"sync:         {kind}"
    if reason:
        line += f" ({reason})"
    if "requests" in counts:
        line += f", {counts['requests']} requests"
    return line


def summary_lines(counts: dict[str, Any], warnings: list[str], *, elapsed: float | None = None) -> list[str]:
    lines: list[str] = []
    res = counts.get("resources_by_type") or {}
    ents = counts.get("entitlements_by_type") or {}
    grants = counts.get("grants_by_type") or {}
    if res:
        lines.append("resources:    " + ", ".join(f"{k} {v}" for k, v in sorted(res.items())))
    if ents:
        lines.append("entitlements: " + ", ".join(f"{k} {v}" for k, v in sorted(ents.items())))
    if grants:
        lines.append("grants:       " + ", ".join(f"{k} {v}" for k, v in sorted(grants.items())))
    totals = [f"{counts[k]} {k}" for k in ("resources", "entitlements", "grants") if k in counts]
    if totals:
        extra = [f"{counts[k]} {k}" for k in ("expanded", "added", "removed") if counts.get(k)]
        lines.append("total:        " + ", ".join(totals + extra))
    if "pages" in counts:
        line = f"requests:     {counts['pages']} pages, {counts.get('items', 0)} objects, {counts.get('streams', 0)} lists"
        if elapsed is not None:
            line += f" in {elapsed:.1f}s"
        lines.append(line)
    for w in warnings:
        lines.append(f"warning:      {w}")
    return lines
