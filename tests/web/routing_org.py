"""The web UI's routing fixture: the conftest organisation plus voice messages, a calendar on
"Växeln" whose Lunch entry is hidden below office hours (a lint warning), and a main menu."""

from __future__ import annotations

import pytest

from conftest import import_org
from web.conftest import ORG, Browser, base_url

ROUTING = ORG.split("groups:")[0] + """messages:
  - {name: lunch, text: "Vi har lunchstängt, välkommen åter klockan 13."}
  - {name: natt, text: "Vi har stängt för dagen."}
  - {name: meny, text: "Välkommen. Tryck 1 för växeln."}
  - {name: kö, text: "Alla handläggare är upptagna."}
groups:
  - name: Växeln
    number: "+46854689920"
    strategy: linear
    members: ["+46854689901", "+46854689902", "+46854689903"]
    schedule:
      - {name: Kontorstid, weekdays: [mon, tue, wed, thu, fri], from: "08:00", to: "17:00", action: open}
      - {name: Lunch, weekdays: [mon, tue, wed, thu, fri], from: "12:00", to: "13:00", action: closed, message: lunch}
      - {name: default, action: closed, message: natt}
  - name: Support
    members: ["+46854689901", "+46854689902"]
menus:
  - name: Huvudmeny
    number: "+46854689900"
    message: meny
    options: {"1": {group: Växeln}, "9": repeat}
"""


@pytest.fixture
async def routing_server(make_server):
    server = await make_server()
    await import_org(server, ROUTING)
    return server


@pytest.fixture
async def routing_browser(routing_server):
    made: list[Browser] = []

    def factory() -> Browser:
        b = Browser(base_url(routing_server))
        made.append(b)
        return b

    yield factory
    for b in made:
        await b.close()
