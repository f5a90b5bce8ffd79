"""The `lorl` command line (under construction)."""


def main() -> None:
    raise SystemExit("lorl CLI: under construction")
