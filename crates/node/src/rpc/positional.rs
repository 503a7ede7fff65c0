//! Parameters are positional: a call whose parameters are an object is refused with -32602.
//!
//! The methods are declared with named parameters (`wetee-rpc-api`), and jsonrpsee would accept
//! an object too, but it ignores names it does not know: `chain_getHeader({"height": 5})` would
//! answer the latest header and `events_subscribe({"account": ..})` every event. A caller is told
//! rather than silently answered something else.

use jsonrpsee::server::middleware::rpc::{
    Batch, BatchEntry, BatchEntryErr, MethodResponse, RpcServiceT,
};
use jsonrpsee::types::{ErrorObjectOwned, Request};

/// The RPC service, refusing calls whose parameters are an object.
#[derive(Debug, Clone)]
pub struct Positional<S> {
    service: S,
}

impl<S> Positional<S> {
    /// `service`, behind the check.
    pub fn new(service: S) -> Positional<S> {
        Positional { service }
    }
}

fn named(params: Option<&serde_json::value::RawValue>) -> bool {
    params.is_some_and(|raw| raw.get().trim_start().starts_with('{'))
}

fn refusal() -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        jsonrpsee::types::error::INVALID_PARAMS_CODE,
        "parameters are positional: pass an array",
        None::<()>,
    )
}

impl<S: super::InnerService> RpcServiceT for Positional<S> {
    type MethodResponse = MethodResponse;
    type NotificationResponse = MethodResponse;
    type BatchResponse = MethodResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let service = self.service.clone();
        async move {
            if named(request.params.as_deref()) {
                return MethodResponse::error(request.id, refusal());
            }
            service.call(request).await
        }
    }

    fn batch<'a>(&self, mut batch: Batch<'a>) -> impl Future<Output = MethodResponse> + Send + 'a {
        let service = self.service.clone();
        let extensions = batch.extensions().clone();
        let checked: Vec<_> = batch
            .into_iter()
            .map(|entry| match entry {
                Ok(BatchEntry::Call(request)) if named(request.params.as_deref()) => {
                    Err(BatchEntryErr::new(request.id, refusal()))
                }
                other => other,
            })
            .collect();
        let mut checked = Batch::from(checked);
        *checked.extensions_mut() = extensions;
        async move { service.batch(checked).await }
    }

    fn notification<'a>(
        &self,
        notification: jsonrpsee::server::middleware::rpc::Notification<'a>,
    ) -> impl Future<Output = MethodResponse> + Send + 'a {
        let service = self.service.clone();
        async move {
            if named(notification.params.as_deref()) {
                return MethodResponse::notification();
            }
            service.notification(notification).await
        }
    }
}
