"""`python -m waimai.web.i18n messages` (what `make messages` runs): pybabel extract + update."""

from __future__ import annotations

import sys

from waimai.web.i18n.extract import update_catalogs

if __name__ == "__main__":
    if sys.argv[1:] != ["messages"]:
        sys.exit("usage: python -m waimai.web.i18n messages")
    update_catalogs()
