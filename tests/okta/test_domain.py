import pytest

from worker.okta.domain import InvalidDomain, normalize_domain


@pytest.mark.parametrize("given, base", [
    ("acme.okta.com", "https://acme.okta.com"),
    ("https://acme.okta.com/", "https://acme.okta.com"),
    ("  ACME.Okta.com  ", "https://acme.okta.com"),
    ("acme.oktapreview.com", "https://acme.oktapreview.com"),
    ("login.acme-corp.example", "https://login.acme-corp.example"),  # custom domain
    ("https://login.acme.com:8443", "https://login.acme.com:8443"),
    ("https://acme.okta.com:443/", "https://acme.okta.com"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),  # the simulator
    ("http://localhost:9000/", "http://localhost:9000"),
    ("http://[::1]:9000", "http://[::1]:9000"),
])
def test_accepted_domains(given, base):
    assert normalize_domain(given) == base


@pytest.mark.parametrize("given, says", [
    ("acme.okta.com/api/v1", "has a path '/api/v1'"),
    ("https://acme.okta.com/oauth2/default", "has a path"),
    ("https://acme.okta.com/?x=1", "query string"),
    ("acme.okta.com?", "query string"),
    ("https://acme.okta.com/#frag", "fragment"),
    ("http://acme.okta.com", "plain http"),
    ("http://10.0.0.5:8080", "plain http"),
    ("ftp://acme.okta.com", "scheme 'ftp'"),
    ("", "empty"),
    ("   ", "empty"),
    ("https://", "no host"),
    ("acme..okta.com", "invalid host name"),
    ("acme_corp.okta.com", "invalid host name"),
    ("acme okta.com", "whitespace"),
    ("acme.okta.com:99999", "not a valid host[:port]"),
    ("acme-admin.okta.com", "Admin Console host; use the org domain 'acme.okta.com'"),
])
def test_refused_domains_name_the_problem(given, says):
    with pytest.raises(InvalidDomain) as exc:
        normalize_domain(given)
    assert says in str(exc.value)
    assert isinstance(exc.value, ValueError)


def test_userinfo_refused_without_echoing_it():
    with pytest.raises(InvalidDomain) as exc:
        normalize_domain("https://admin:hunter2@acme.okta.com")
    assert "user information" in str(exc.value)
    assert "hunter2" not in str(exc.value)


def test_non_string_domain():
    with pytest.raises(InvalidDomain, match="must be a string"):
        normalize_domain(None)  # type: ignore[arg-type]
