"""Talking to Okta: domain validation (domain.py), auth: SSWS, private_key_jwt, DPoP (auth.py), the
HTTP client with retries and pagination (client.py), typed errors (errors.py), and the rate limiter
(ratelimit/). Import from those modules; this package re-exports nothing."""
