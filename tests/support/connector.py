"""The connector tests' simulator: its size and the token of each admin level."""

TOKENS = {
    "read-only": "00sim-read-only-token-000000000000000000000",
    "app-group-admin": "00sim-app-group-admin-token-00000000000000",
    "super-admin": "00sim-super-admin-token-0000000000000000000",
}
# Rate limits scaled up: these tests check what is synced, not pacing (several syncs per minute).
SIZES = ["--users", "60", "--groups", "15", "--apps", "8", "--seed", "7", "--rate-limit-scale", "50"]
