//! UNICORE security sessions: the server authenticates once and hands out a session ID that
//! stands in for the credential on later requests.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use sciauth_credentials::time::later;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use url::{Origin, Url};

/// The header carrying the session ID, both ways.
pub(crate) const SECURITY_SESSION: HeaderName =
    HeaderName::from_static("x-unicore-securitysession");
/// How long the session lives, in milliseconds (response only).
const SECURITY_SESSION_LIFETIME: HeaderName =
    HeaderName::from_static("x-unicore-securitysession-lifetime");
/// UNICORE's status for "unknown or expired security session".
pub(crate) const SESSION_EXPIRED: u16 = 432;

/// A session is not sent in its last seconds: it could expire on the way.
const EXPIRY_MARGIN: Duration = Duration::from_secs(5);

/// The sessions one transport (and its clones) holds, one per server origin.
#[derive(Debug, Default)]
pub(crate) struct SessionStore {
    /// Set once any session was stored, so that transports talking to servers without
    /// sessions (everything but UNICORE) never take the lock.
    used: AtomicBool,
    sessions: Mutex<HashMap<Origin, Session>>,
}

#[derive(Debug)]
struct Session {
    id: HeaderValue,
    /// Wall-clock time, so that a laptop waking from sleep does not send a dead session.
    expires: Option<SystemTime>,
}

impl SessionStore {
    /// The session to send to `url`, if one is known and not about to expire.
    pub(crate) fn get(&self, url: &Url) -> Option<HeaderValue> {
        if !self.used.load(Ordering::Relaxed) {
            return None;
        }
        let origin = url.origin();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let session = sessions.get(&origin)?;
        if session
            .expires
            .is_some_and(|expires| later(SystemTime::now(), EXPIRY_MARGIN) >= expires)
        {
            sessions.remove(&origin);
            return None;
        }
        Some(session.id.clone())
    }

    /// Remembers the session a response from `url` handed out.
    pub(crate) fn remember(&self, url: &Url, headers: &HeaderMap) {
        let Some(id) = headers.get(&SECURITY_SESSION) else {
            return;
        };
        let mut id = id.clone();
        id.set_sensitive(true);
        let expires = headers
            .get(&SECURITY_SESSION_LIFETIME)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            // The server's number: saturating, never a panic.
            .map(|millis| later(SystemTime::now(), Duration::from_millis(millis)));
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.insert(url.origin(), Session { id, expires });
        self.used.store(true, Ordering::Relaxed);
    }

    /// Forgets the session for `url` (the server said it expired).
    pub(crate) fn forget(&self, url: &Url) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(&url.origin());
    }
}

/// Whether `status` says the security session is unknown or expired.
pub(crate) fn is_session_expired(status: StatusCode) -> bool {
    status.as_u16() == SESSION_EXPIRED
}
