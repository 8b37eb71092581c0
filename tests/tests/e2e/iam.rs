//! The template's IAM policies: no wildcard, and the recorder that checks them against the code's real calls
//! (each function's end-to-end tests call `paysync_e2e::iam::assert_granted`).

use paysync_e2e::iam::{actions_of, assert_granted, granted};

const FUNCTIONS: [&str; 8] = [
    "AcquiringCallbackFunction",
    "Exchange1cFunction",
    "StatementPullFunction",
    "RefundChargebackFunction",
    "StoreSyncFunction",
    "OutboxSweeperFunction",
    "StatusSyncFunction",
    "ConsoleFunction",
];

#[test]
fn every_function_has_a_policy_without_wildcards() {
    let template = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml"),
    )
    .expect("template");
    let functions = template
        .lines()
        .filter(|l| l.trim() == "Type: AWS::Serverless::Function")
        .count();
    assert_eq!(
        functions,
        FUNCTIONS.len(),
        "a new function needs a row here"
    );
    for f in FUNCTIONS {
        let (actions, _) = granted(f);
        assert!(!actions.is_empty(), "{f} has no policy");
        for a in &actions {
            assert!(
                !a.contains('*') && (a.starts_with("dynamodb:") || a.starts_with("sqs:")),
                "{f}: {a}"
            );
        }
    }
    for line in template.lines().map(str::trim) {
        if let Some(resource) = line.strip_prefix("Resource:") {
            assert!(
                !resource.contains('*'),
                "a policy on every resource: {line}"
            );
            assert!(
                resource.contains("!GetAtt") || resource.contains("!Ref"),
                "resources are the stack's own: {line}"
            );
        }
    }
}

#[test]
fn a_transaction_needs_the_action_of_each_item() {
    let body = br#"{"TransactItems":[{"Put":{"TableName":"t"}},{"Delete":{"TableName":"t"}},
        {"ConditionCheck":{"TableName":"t"}},{"Update":{"TableName":"t"}}]}"#;
    let mut got = actions_of("DynamoDB_20120810.TransactWriteItems", body);
    got.sort();
    assert_eq!(
        got,
        [
            "dynamodb:ConditionCheckItem",
            "dynamodb:DeleteItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem"
        ]
    );
    assert_eq!(
        actions_of("AmazonSQS.SendMessage", b"{}"),
        ["sqs:SendMessage"]
    );
    assert_eq!(
        actions_of("DynamoDB_20120810.Query", b"{}"),
        ["dynamodb:Query"]
    );
}

#[test]
#[should_panic(expected = "does not grant")]
fn a_call_the_template_does_not_grant_fails_the_check() {
    // acquiring-callback never queries; if its code started to, AWS would answer AccessDenied.
    let used = ["dynamodb:GetItem".to_owned(), "dynamodb:Query".to_owned()].into();
    assert_granted("AcquiringCallbackFunction", &used);
}
