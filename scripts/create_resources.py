"""Create the ledger table and the events queue (+ DLQ) on the local moto server, as the SAM template does in AWS.
With a fourth argument, also the refunds queue (+ DLQ); both URLs are printed, one per line.

Usage: create_resources.py ENDPOINT TABLE QUEUE_NAME [REFUNDS_QUEUE_NAME]
"""

import json
import sys

import boto3


def main() -> None:
    endpoint, table, queue = sys.argv[1:4]
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    ddb = boto3.client("dynamodb", **kw)
    if table not in ddb.list_tables()["TableNames"]:
        ddb.create_table(
            TableName=table,
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"})
    sqs = boto3.client("sqs", **kw)

    def fifo_with_dlq(name: str, visibility: str) -> str:
        dlq = sqs.create_queue(QueueName=name.replace(".fifo", "-dlq.fifo"), Attributes={"FifoQueue": "true"})["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return sqs.create_queue(
            QueueName=name,
            Attributes={
                "FifoQueue": "true",
                "VisibilityTimeout": visibility,
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
            },
        )["QueueUrl"]

    print(fifo_with_dlq(queue, "360"))
    if len(sys.argv) > 4:
        print(fifo_with_dlq(sys.argv[4], "360"))


if __name__ == "__main__":
    main()
