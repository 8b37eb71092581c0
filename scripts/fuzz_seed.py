"""Seed each fuzz target's corpus from the project's fixtures (../shared/fixtures), as `make fuzz` runs them, and
write a libFuzzer dictionary per target (DICT_DIR/<target>.dict) of the names the seeds use: XML element and
attribute names, JSON keys, `key=` names of form and 1CClientBankExchange lines, in the seeds' own bytes.

Usage: fuzz_seed.py FIXTURES_DIR CORPUS_DIR [DICT_DIR]
"""

import json
import pathlib
import re
import sys
from urllib.parse import urlsplit


def main() -> None:
    fixtures, corpus = map(pathlib.Path, sys.argv[1:3])
    seeds: dict[str, list[bytes]] = {t: [] for t in (
        "commerceml", "client_bank_exchange", "tbank_notification", "sber_callback",
        "yookassa_notification", "tbank_statement", "bitrix")}
    seeds["commerceml"] = [p.read_bytes() for p in sorted((fixtures / "commerceml").glob("*.xml"))]
    statements = fixtures / "statements"
    seeds["client_bank_exchange"] = [p.read_bytes() for p in sorted(statements.glob("*.txt")) if p.name != "purposes.txt"]
    seeds["tbank_statement"] = [p.read_bytes() for p in sorted(statements.glob("tbank-api__*.json"))]
    for p in sorted((fixtures / "acquiring").glob("*.json")):
        case = json.loads(p.read_text(encoding="utf-8"))
        request = case.get("request", {})
        body = request.get("body") or request.get("query") or urlsplit(request.get("url", "")).query
        if not body:
            continue
        target = {"tbank": "tbank_notification", "sber": "sber_callback", "yookassa": "yookassa_notification"}.get(case.get("provider"))
        if target:
            seeds[target].append(body.encode("utf-8"))
    # Bitrix: the documented response shapes (there are no public captures).
    seeds["bitrix"] = [
        b'{"result":{"orders":[{"id":236,"accountNumber":"392","price":1480,"currency":"USD","payed":"N","dateUpdate":"2024-02-28T17:36:55+02:00"}]},"total":1}',
        b'{"result":{"payments":[{"id":144,"orderId":200,"paid":"Y","sum":100,"paySystemId":1,"isReturn":"N"}]}}',
        b'{"result":{"propertyValues":[{"orderPropsId":20,"code":"PAID_AMOUNT","value":"1500.00"}]}}',
        b'{"result":{"result":{"o1":{"order":{"id":1,"basketItems":[{"name":"x","price":"1.5","quantity":"2"}],"shipments":[{"priceDelivery":500}]}}},"result_error":[]}}',
        b'{"error":200640400001,"error_description":"payment does not exist"}',
    ]
    for target, items in seeds.items():
        out = corpus / target
        out.mkdir(parents=True, exist_ok=True)
        for i, data in enumerate(items):
            (out / f"seed-{i:02d}").write_bytes(data)
        print(f"{target}: {len(items)} seeds")
    if len(sys.argv) > 3:
        dicts = pathlib.Path(sys.argv[3])
        dicts.mkdir(parents=True, exist_ok=True)
        for target, items in seeds.items():
            tokens = sorted({t for data in items for t in tokens_of(data)})[:MAX_TOKENS]
            (dicts / f"{target}.dict").write_text("".join(f'"{escape(t)}"\n' for t in tokens))
            print(f"{target}: {len(tokens)} dictionary tokens")


MAX_TOKENS = 1000
# Names in the bytes of any encoding the seeds use (UTF-8, windows-1251): runs of letters, digits, `_`, `-`, `.`.
NAME = rb"[A-Za-z0-9_\-.\x80-\xff]{1,40}"


def tokens_of(data: bytes) -> set[bytes]:
    found: set[bytes] = set()
    for m in re.finditer(rb"<(/?)(" + NAME + rb")", data):  # XML elements
        found.add(b"<" + m[1] + m[2] + b">")
    found.update(m[1] + b'="' for m in re.finditer(rb"\s(" + NAME + rb')="', data))  # XML attributes
    found.update(b'"' + m[1] + b'":' for m in re.finditer(rb'"(' + NAME + rb')"\s*:', data))  # JSON keys
    found.update(m[1] + b"=" for m in re.finditer(rb"(?:^|[\n&?])(" + NAME + rb")=", data))  # key=value lines
    found.update(m[1] for m in re.finditer(rb"(?:^|\n)(" + NAME + rb")\r?(?:\n|$)", data))  # bare marker lines
    return found


def escape(token: bytes) -> str:
    return "".join(chr(b) if 0x20 <= b < 0x7F and b not in b'"\\' else f"\\x{b:02X}" for b in token)


if __name__ == "__main__":
    main()
