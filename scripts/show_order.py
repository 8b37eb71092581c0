"""Print what the local ledger knows about an order and the events waiting on the queue (for `make run`).

Usage: show_order.py ORDER_ID   (reads the moto endpoint from .local/moto.port, and the table and queue from the env
file the running `make run` uses, named in .local/run-env-file; .env when none runs)
"""

import json
import pathlib
import sys

import boto3

root = pathlib.Path(__file__).resolve().parent.parent
port = (root / ".local" / "moto.port").read_text().strip()
run_env = root / ".local" / "run-env-file"
env_file = pathlib.Path(run_env.read_text().strip()) if run_env.exists() else root / ".env"
# dotenv syntax as `cargo lambda watch` reads it: single or double quotes around a value are not part of it.
env = {
    k.strip(): v.strip().strip("'\"")
    for k, v in (line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line and not line.lstrip().startswith("#"))
}
kw = dict(endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
ddb = boto3.client("dynamodb", **kw)
items = ddb.query(
    TableName=env["LEDGER_TABLE"],
    KeyConditionExpression="pk = :pk",
    ExpressionAttributeValues={":pk": {"S": f"ORDER#{sys.argv[1]}"}},
)["Items"]
for item in items:
    kind = item["type"]["S"]
    data = json.loads(item["data"]["S"])
    if kind == "order":
        print(f"order {sys.argv[1]}: state={item['state']['S']} paid={item['paid']['N']} refunded={item['refunded']['N']} "
              f"held={item['held']['N']} total={item.get('total', {}).get('N', '?')} version={item['version']['N']}")
        for rid, r in data.get("refund_requests", {}).items():
            print(f"  refund request {rid}: {r['amount']} {r['status']} {r.get('detail') or ''}")
    elif kind == "fact":  # (the order's history of events is in the same partition; the queue is below)
        print(f"  fact {data['id']}: {data['kind']} {json.dumps({k: v for k, v in data.items() if k in ('amount', 'remaining_hold', 'reason')})}")
sqs = boto3.client("sqs", **kw)
msgs = sqs.receive_message(QueueUrl=env["EVENTS_QUEUE_URL"], MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
print(f"{len(msgs)} event(s) on the queue (peeked, not consumed):")
for m in msgs:
    e = json.loads(m["Body"])
    print(f"  {e['event_id']}: order {e['order_id']} v{e['version']} {e['state']} paid={e['paid']} refunded={e['refunded']}")
