//! Least privilege, checked against what the code does: the handlers' SDK clients record the IAM actions of every
//! call they make (a `TransactWriteItems` needs the action of each item), and tests compare that with the actions
//! `infra/template.yaml` grants the function. A call the template does not grant would be `AccessDenied` in AWS,
//! which moto never reports.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// The IAM actions the handlers' clients used, e.g. `dynamodb:PutItem`, `sqs:SendMessage`.
#[derive(Debug, Clone, Default)]
pub struct AwsCalls(
    Arc<Mutex<BTreeSet<String>>>,
    Arc<Mutex<BTreeMap<String, usize>>>,
);

impl AwsCalls {
    pub fn take(&self) -> BTreeSet<String> {
        self.0
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    /// How many requests of each operation (`DynamoDB_20120810.Query`, …) were sent since the last call.
    pub fn take_requests(&self) -> BTreeMap<String, usize> {
        self.1
            .lock()
            .map(|mut s| std::mem::take(&mut *s))
            .unwrap_or_default()
    }

    fn add(&self, action: String) {
        if let Ok(mut s) = self.0.lock() {
            s.insert(action);
        }
    }

    fn count(&self, target: &str) {
        if let Ok(mut s) = self.1.lock() {
            *s.entry(target.to_owned()).or_default() += 1;
        }
    }

    /// An HTTP client for the SDK that records, then sends with the SDK's own plain-HTTP client (moto is HTTP).
    pub fn http_client(&self) -> SharedHttpClient {
        SharedHttpClient::new(Recording {
            inner: aws_smithy_http_client::Builder::new().build_http(),
            calls: self.clone(),
        })
    }
}

/// The IAM actions one request needs: its `X-Amz-Target` operation, or for a transaction, its items' actions.
pub fn actions_of(target: &str, body: &[u8]) -> Vec<String> {
    let (service, op) = match target.split_once('.') {
        Some(("DynamoDB_20120810", op)) => ("dynamodb", op),
        Some(("AmazonSQS", op)) => ("sqs", op),
        _ => return vec![format!("unknown:{target}")],
    };
    let items = |list: &str| -> Vec<String> {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get(list).and_then(|l| l.as_array()).cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|item| item.as_object())
            .flat_map(|item| item.keys().cloned().collect::<Vec<_>>())
            .map(|kind| match kind.as_str() {
                "ConditionCheck" => "dynamodb:ConditionCheckItem".to_owned(),
                k => format!("dynamodb:{k}Item"),
            })
            .collect()
    };
    match (service, op) {
        ("dynamodb", "TransactWriteItems") => items("TransactItems"),
        ("dynamodb", "TransactGetItems") => vec!["dynamodb:GetItem".to_owned()],
        // SQS's batch actions are authorized as their single ones.
        ("sqs", "DeleteMessageBatch") => vec!["sqs:DeleteMessage".to_owned()],
        ("sqs", "SendMessageBatch") => vec!["sqs:SendMessage".to_owned()],
        _ => vec![format!("{service}:{op}")],
    }
}

#[derive(Debug)]
struct Recording {
    inner: SharedHttpClient,
    calls: AwsCalls,
}

impl HttpClient for Recording {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(RecordingConnector {
            inner: self.inner.http_connector(settings, components),
            calls: self.calls.clone(),
        })
    }
}

#[derive(Debug)]
struct RecordingConnector {
    inner: SharedHttpConnector,
    calls: AwsCalls,
}

impl HttpConnector for RecordingConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let target = request.headers().get("x-amz-target").unwrap_or_default();
        self.calls.count(target);
        for action in actions_of(target, request.body().bytes().unwrap_or_default()) {
            self.calls.add(action);
        }
        self.inner.call(request)
    }
}

/// The actions `infra/template.yaml` grants a function (`Action: [...]` lines of its `Policies`), and whether an
/// SQS event source feeds it (the event source mapping polls with the function's role).
pub fn granted(function: &str) -> (BTreeSet<String>, bool) {
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"),
    )
    .expect("read infra/template.yaml");
    let header = format!("  {function}:");
    let mut lines = template.lines().skip_while(|l| *l != header);
    assert!(lines.next().is_some(), "{function} is not in the template");
    let block: Vec<&str> = lines
        .take_while(|l| l.is_empty() || l.starts_with("   "))
        .collect();
    let mut actions = BTreeSet::new();
    for line in &block {
        if let Some(list) = line.trim().strip_prefix("Action: [") {
            for a in list.trim_end_matches(']').split(',') {
                actions.insert(a.trim().to_owned());
            }
        } else {
            assert!(
                !line.trim().starts_with("Action:"),
                "{function}: write Action as a [list]: {line}"
            );
        }
    }
    let sqs_event = block.iter().any(|l| l.trim() == "Type: SQS");
    (actions, sqs_event)
}

/// What the Lambda service itself calls with the function's role to poll an SQS event source.
pub const EVENT_SOURCE_MAPPING: [&str; 4] = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ChangeMessageVisibility",
];

/// Every action the run used is granted to `function`; returns the granted actions the run did not use.
pub fn assert_granted(function: &str, used: &BTreeSet<String>) -> BTreeSet<String> {
    assert!(!used.is_empty(), "{function}: no AWS call was recorded");
    let (granted, sqs_event) = granted(function);
    let missing: Vec<&String> = used.difference(&granted).collect();
    assert!(
        missing.is_empty(),
        "{function} calls {missing:?}, which infra/template.yaml does not grant (AccessDenied in AWS)"
    );
    let mut unused: BTreeSet<String> = granted.difference(used).cloned().collect();
    if sqs_event {
        for a in EVENT_SOURCE_MAPPING {
            unused.remove(a);
        }
    }
    unused
}
