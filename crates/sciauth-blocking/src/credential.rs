//! [`Credential`]: a credential's header, made on the calling thread when it is ready and
//! on the background runtime when it must be signed, fetched or refreshed.

use std::fmt;
use std::sync::Arc;

use sciauth_credentials::{AuthHeader, Ready, Result};

use crate::runtime::{Runtime, refuse_inside_async};

/// A blocking handle on a [`sciauth_credentials::Credential`] (a password, a token, an
/// SSH-key JWT, a [`NativeClient`](crate::NativeClient)'s authorizer): its header, for a
/// request made by other means than a [`Transport`](crate::Transport).
///
/// [`header`](Self::header) takes the credential's
/// [`ready_header`](sciauth_credentials::Credential::ready_header) (no I/O) when it has
/// one, else waits for [`header`](sciauth_credentials::Credential::header) on the
/// background runtime (which may sign, ask an ssh-agent or refresh a token).
///
/// # Panics
///
/// [`header`](Self::header) panics when called inside an async runtime; await the
/// credential's own `header` there.
#[derive(Clone)]
pub struct Credential {
    inner: Arc<dyn sciauth_credentials::Credential>,
    runtime: Runtime,
}

impl Credential {
    /// A blocking handle on `credential`.
    pub fn new(credential: impl sciauth_credentials::Credential + 'static) -> Credential {
        Credential::from_shared(Arc::new(credential))
    }

    /// A blocking handle on a credential shared with others (a transport, say).
    pub fn from_shared(credential: Arc<dyn sciauth_credentials::Credential>) -> Credential {
        Credential {
            inner: credential,
            runtime: Runtime::shared(),
        }
    }

    /// The credential itself, to hand to a transport
    /// ([`TransportBuilder::shared_credential`](sciauth_transport::TransportBuilder::shared_credential)).
    pub fn shared(&self) -> &Arc<dyn sciauth_credentials::Credential> {
        &self.inner
    }

    /// The header to send (`Authorization: Bearer ...`, `X-Rucio-Auth-Token: ...`, marked
    /// sensitive), or `None` for a credential that sends none; fails as the credential's
    /// [`header`](sciauth_credentials::Credential::header) does.
    pub fn header(&self) -> Result<Option<AuthHeader>> {
        const WHAT: &str = "sciauth::blocking::Credential::header";
        const INSTEAD: &str = "sciauth::Credential::header";
        refuse_inside_async(WHAT, INSTEAD);
        match self.inner.ready_header() {
            Ready::Header(header) => Ok(Some(header)),
            Ready::NoHeader => Ok(None),
            Ready::NotReady => {
                let credential = self.inner.clone();
                self.runtime
                    .block_on(WHAT, INSTEAD, async move { credential.header().await })
            }
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A credential's Debug never shows its secret.
        f.debug_tuple("Credential").field(&self.inner).finish()
    }
}
