//! Injectable sleeping, so that polling loops can be tested without waiting.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// How a polling loop waits: by default `tokio::time::sleep`.
#[derive(Clone)]
pub(crate) struct Sleeper(Arc<SleepFn>);

type SleepFn = dyn Fn(Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync;

impl Sleeper {
    pub(crate) fn new<F, Fut>(sleep: F) -> Self
    where
        F: Fn(Duration) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self(Arc::new(move |d| Box::pin(sleep(d))))
    }

    pub(crate) async fn sleep(&self, duration: Duration) {
        (self.0)(duration).await;
    }
}

impl Default for Sleeper {
    fn default() -> Self {
        Self::new(tokio::time::sleep)
    }
}

impl fmt::Debug for Sleeper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sleeper")
    }
}
