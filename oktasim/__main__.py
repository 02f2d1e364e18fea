"""`python -m oktasim` / `oktasim`: the Okta org simulator (the command line is in oktasim.cli)."""

from __future__ import annotations


def main() -> None:
    from oktasim.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
