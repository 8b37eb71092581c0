"""Create the ledger table and the events queue (+ DLQ) on the local moto server, as the SAM template does in AWS.

Usage: create_resources.py ENDPOINT TABLE QUEUE_NAME
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
    dlq = sqs.create_queue(QueueName=queue.replace(".fifo", "-dlq.fifo"), Attributes={"FifoQueue": "true"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = sqs.create_queue(
        QueueName=queue,
        Attributes={
            "FifoQueue": "true",
            "VisibilityTimeout": "180",
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    print(url)


if __name__ == "__main__":
    main()
