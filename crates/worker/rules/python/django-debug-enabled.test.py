# Not a Django settings module: it may use the name DEBUG for its own flag.
# semgrep --test fails on any finding in this file (no line here is annotated).
import logging

DEBUG = True

logging.basicConfig(level=logging.DEBUG if DEBUG else logging.INFO)
