//! How a function's handler is served by the Lambda runtime, one helper per trigger, so every `main` has the same
//! shape: tracing, configuration, `wiring`, then one of these with the use case's handler.

use std::future::Future;

use lambda_http::aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::request::LambdaRequest;
use lambda_http::{Body, Request, Response};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::http_response::to_function_url_response;

pub use lambda_http::Error;

/// An HTTP handler behind a Function URL (or an HTTP API), through `lambda_http`.
pub async fn serve_http<F, Fut, E>(handler: F) -> Result<(), Error>
where
    F: Fn(Request) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Response<Body>, E>> + Send,
    E: Into<lambda_runtime::Diagnostic> + std::fmt::Debug,
{
    lambda_http::run(lambda_http::service_fn(&handler)).await
}

/// An HTTP handler whose bodies must reach the client byte for byte (1C expects windows-1251 bodies; see
/// [`to_function_url_response`]).
pub async fn serve_byte_exact<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(Request) -> Fut + Send + Sync,
    Fut: Future<Output = Response<Body>> + Send,
{
    let handler = &handler;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<ApiGatewayV2httpRequest>| async move {
            let req: Request = LambdaRequest::ApiGatewayV2(event.payload).into();
            Ok::<_, Error>(to_function_url_response(handler(req).await))
        },
    ))
    .await
}

/// A handler of a JSON event (an SQS batch, an EventBridge schedule, …) whose answer is JSON (keys sorted).
pub async fn serve_event<In, Out, F, Fut, E>(handler: F) -> Result<(), Error>
where
    In: DeserializeOwned + Send,
    Out: Serialize,
    F: Fn(In) -> Fut + Send + Sync,
    Fut: Future<Output = Result<Out, E>> + Send,
    E: Into<Error>,
{
    let handler = &handler;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<In>| async move {
            let out = handler(event.payload).await.map_err(Into::into)?;
            // As a JSON value: its keys sorted, the same answer whatever the struct's field order.
            Ok::<_, Error>(serde_json::to_value(out)?)
        },
    ))
    .await
}
