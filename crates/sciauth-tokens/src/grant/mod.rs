//! One module per grant; each adds its methods to [`OAuthClient`](crate::OAuthClient).

pub(crate) mod client_credentials;
pub(crate) mod code;
pub(crate) mod device;
pub(crate) mod exchange;
pub(crate) mod refresh;
pub(crate) mod revocation;
