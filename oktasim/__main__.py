"""`python -m oktasim` / `oktasim`: the Okta org simulator (the server is built in oktasim.server)."""

from __future__ import annotations


def main() -> None:
    from oktasim.server import main as server_main

    server_main()


if __name__ == "__main__":
    main()
