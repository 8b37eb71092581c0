"""The local side of `make run`: examples/ as static files, and a small 1C-Bitrix store behind an inbound-webhook
URL, so the README's examples run offline.

Usage: demo_store.py PORT STORE_JSON

- `GET /<file>`: a file of examples/ (the sample bank statement).
- `POST /rest/1/demo/<method>.json`: the store's REST answers, the shapes of Bitrix's `sale` module as
  shared/reference/bitrix-rest.md records them, for what store-sync reads: `sale.order.list` (filter
  `>=dateUpdate`, `id`, `accountNumber`; 50 per page with `next`), `batch` of `sale.order.get?id=N`, and
  `sale.payment.list` (filter `id`, `orderId`, `accountNumber`, `psInvoiceId`). Orders come from STORE_JSON;
  each order's `dateUpdate` is an hour before the server started (Moscow time), so the first pull sees them.
  Anything else answers `ERROR_METHOD_NOT_FOUND`, as Bitrix does for a method it does not have.

Not a store: it keeps no state and accepts no writes. Point BITRIX_WEBHOOK_URL at your own store for those.
"""

import datetime
import http.server
import json
import pathlib
import sys
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
MSK = datetime.timezone(datetime.timedelta(hours=3))


def load(path: str) -> list[dict]:
    orders = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))["orders"]
    updated = (datetime.datetime.now(MSK) - datetime.timedelta(hours=1)).replace(microsecond=0).isoformat()
    for o in orders:
        o.setdefault("dateInsert", updated)
        o.setdefault("dateUpdate", updated)
    return orders


def matches(item: dict, flt: dict) -> bool:
    for key, want in flt.items():
        if key == ">=dateUpdate":
            if item.get("dateUpdate", "") < str(want):
                return False
        elif str(item.get(key, "")) != str(want):
            return False
    return True


class Store(http.server.SimpleHTTPRequestHandler):
    orders: list[dict] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(EXAMPLES), **kwargs)

    def log_message(self, fmt, *args):  # quiet: make run's terminal belongs to cargo lambda watch
        pass

    def answer(self, status: int, body: dict) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def order_view(self, o: dict) -> dict:
        return {k: v for k, v in o.items() if k != "payments"}

    def payments(self) -> list[dict]:
        return [dict(p, orderId=o["id"]) for o in self.orders for p in o.get("payments", [])]

    def call(self, method: str, params: dict):
        if method == "sale.order.list":
            found = [self.order_view(o) for o in self.orders if matches(o, params.get("filter", {}))]
            start = int(params.get("start", 0) or 0)
            page = {"result": {"orders": found[start : start + 50]}, "total": len(found)}
            if start + 50 < len(found):
                page["next"] = start + 50
            return page
        if method == "sale.order.get":
            order = next((o for o in self.orders if str(o["id"]) == str(params.get("id"))), None)
            if order is None:
                return None
            full = dict(order, basketItems=order.get("basketItems", []), payments=[dict(p, orderId=order["id"]) for p in order.get("payments", [])])
            return {"result": {"order": full}}
        if method == "sale.payment.list":
            return {"result": {"payments": [p for p in self.payments() if matches(p, params.get("filter", {}))]}}
        return None

    def do_POST(self):  # noqa: N802 (http.server's name)
        prefix = "/rest/1/demo/"
        path = urllib.parse.urlparse(self.path).path
        if not path.startswith(prefix) or not path.endswith(".json"):
            return self.answer(401, {"error": "NO_AUTH_FOUND", "error_description": "Wrong authorization data"})
        method = path[len(prefix) : -len(".json")]
        length = int(self.headers.get("Content-Length", 0) or 0)
        try:
            params = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            return self.answer(400, {"error": "INVALID_REQUEST", "error_description": "body is not JSON"})
        if method == "batch":
            results, errors = {}, {}
            for key, command in params.get("cmd", {}).items():
                name, _, query = command.partition("?")
                sub = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
                got = self.call(name, sub)
                if got is None:
                    errors[key] = {"error": "NOT_FOUND", "error_description": f"{command}: not found"}
                else:
                    results[key] = got["result"]
            return self.answer(200, {"result": {"result": results, "result_error": errors}})
        got = self.call(method, params)
        if got is None:
            return self.answer(404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": f"Method not found! {method}"})
        return self.answer(200, dict(got, time={}))


def main() -> None:
    port, store_json = int(sys.argv[1]), sys.argv[2]
    Store.orders = load(store_json)
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Store).serve_forever()


if __name__ == "__main__":
    main()
