"""Baseline for the CommerceML reader benchmark: xml.etree.ElementTree parse + the same extraction as
`formats::commerceml::synthetic::extract` (per document: id, amount, paid per 1C, return flag).

Usage: cml_etree.py FILE [RUNS]   prints one JSON line
"""

import json
import resource
import sys
import time
import xml.etree.ElementTree as ET


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def child_text(el, name):
    for c in el:
        if local(c.tag) == name:
            return (c.text or "").strip()
    return None


def amount(text):
    if not text:
        return 0
    t = text.replace(" ", "").replace("\u00a0", "").replace(",", ".")
    whole, _, frac = t.partition(".")
    frac = (frac + "00")[:2]
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole or "0")) * 100 + int(frac))


def extract(root):
    docs = paid = returns = total = 0
    for doc in root.iter():
        if local(doc.tag) != "Документ":
            continue
        docs += 1
        req = {}
        for c in doc:
            if local(c.tag) == "ЗначенияРеквизитов":
                for r in c:
                    name = child_text(r, "Наименование")
                    if name is not None and name not in req:
                        req[name] = child_text(r, "Значение") or ""
        date = req.get("Дата оплаты по 1С", "")
        if len(date) > 1 or req.get("Оплачен") in ("true", "Да", "да"):
            paid += 1
        if req.get("ПризнакВозврата") == "true":
            returns += 1
        total += amount(child_text(doc, "Сумма"))
    return docs, paid, returns, total


def main():
    path = sys.argv[1]
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    size = len(open(path, "rb").read())
    times = []
    result = None
    for _ in range(runs):
        start = time.perf_counter()
        root = ET.parse(path).getroot()
        result = extract(root)
        times.append(time.perf_counter() - start)
        del root
    best = min(times)
    print(json.dumps({
        "seconds": best,
        "mb_per_s": size / best / 1e6,
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "documents": result[0], "paid": result[1], "returns": result[2], "sum": result[3],
    }))


if __name__ == "__main__":
    main()
