//! UNICORE user preferences: which of the user's Unix identities a request runs as.

use std::fmt;
use std::str::FromStr;

use http::HeaderValue;

use crate::error::{Error, ErrorKind, Result};

/// The header UNICORE reads preferences from.
pub(crate) const USER_PREFERENCES: &str = "x-unicore-user-preferences";

/// Which login, groups and role a request asks the server for, sent as
/// `X-UNICORE-User-Preferences: uid:alice,group:hpc,supgids:a+b,role:user`.
///
/// UNICORE maps one authenticated user to several Unix logins, groups and roles; these
/// preferences select among them (a value the user may not have gets HTTP 403). Fields left
/// empty are not sent, so the server's defaults apply.
///
/// The server splits the header on `,` and each item on `:`, and supplementary groups on `+`,
/// so values cannot contain those characters. [`header_value`](Self::header_value) refuses
/// them (and whitespace, control characters and non-ASCII) with
/// [`ErrorKind::InvalidPreference`] instead of sending a header the server rejects.
///
/// # Example
///
/// ```
/// use sciauth_transport::Preferences;
///
/// let preferences = Preferences::new()
///     .uid("alice")
///     .group("hpc")
///     .supplementary_group("a")
///     .supplementary_group("b");
/// assert_eq!(preferences.to_string(), "uid:alice,group:hpc,supgids:a+b");
/// assert_eq!("uid:alice, group:hpc, supgids:a+b".parse::<Preferences>()?, preferences);
/// # Ok::<(), sciauth_transport::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Preferences {
    /// The Unix login (`uid`, also called `xlogin`).
    pub uid: Option<String>,
    /// The primary group (`group`, also called `pgid`).
    pub group: Option<String>,
    /// Supplementary groups (`supgids`, also called `supplementaryGroups`).
    pub supplementary_groups: Vec<String>,
    /// The role, e.g. `user` or `admin`.
    pub role: Option<String>,
}

impl Preferences {
    /// No preferences: the server's defaults apply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks for this Unix login.
    pub fn uid(mut self, uid: impl Into<String>) -> Self {
        self.uid = Some(uid.into());
        self
    }

    /// Asks for this primary group.
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Adds a supplementary group.
    pub fn supplementary_group(mut self, group: impl Into<String>) -> Self {
        self.supplementary_groups.push(group.into());
        self
    }

    /// Replaces the supplementary groups.
    pub fn supplementary_groups<I, S>(mut self, groups: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.supplementary_groups = groups.into_iter().map(Into::into).collect();
        self
    }

    /// Asks for this role.
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Whether nothing is asked for (then no header is sent).
    pub fn is_empty(&self) -> bool {
        self.uid.is_none()
            && self.group.is_none()
            && self.supplementary_groups.is_empty()
            && self.role.is_none()
    }

    /// Parses the header syntax: `key:value` items separated by `,`, supplementary groups
    /// joined by `+`. Keys are case-insensitive and may be `uid` or `xlogin`, `group` or
    /// `pgid`, `supgids` or `supplementaryGroups`, and `role`; whitespace around items is
    /// ignored. An empty string means no preferences.
    ///
    /// Fails with [`ErrorKind::InvalidPreference`] on an unknown or repeated key, an item
    /// without exactly one `:`, or a value [`header_value`](Self::header_value) would refuse.
    pub fn parse(s: &str) -> Result<Preferences> {
        let mut preferences = Preferences::default();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let mut parts = item.split(':');
            let (Some(key), Some(value), None) = (parts.next(), parts.next(), parts.next()) else {
                return Err(invalid(format!(
                    "user preference {item:?} is not of the form key:value"
                )));
            };
            let (key, value) = (key.trim(), value.trim());
            let slot = match key.to_ascii_lowercase().as_str() {
                "uid" | "xlogin" => Slot::One(&mut preferences.uid),
                "group" | "pgid" => Slot::One(&mut preferences.group),
                "role" => Slot::One(&mut preferences.role),
                "supgids" | "supplementarygroups" => {
                    Slot::Many(&mut preferences.supplementary_groups)
                }
                _ => {
                    return Err(invalid(format!(
                        "unknown user preference {key:?}; UNICORE knows uid (xlogin), group \
                         (pgid), supgids (supplementaryGroups) and role"
                    )));
                }
            };
            let repeated = || invalid(format!("user preference {key:?} is given twice"));
            match slot {
                Slot::One(field) => {
                    if field.replace(value.to_owned()).is_some() {
                        return Err(repeated());
                    }
                }
                Slot::Many(groups) => {
                    if !groups.is_empty() {
                        return Err(repeated());
                    }
                    groups.extend(value.split('+').map(|g| g.trim().to_owned()));
                }
            }
        }
        preferences.validate()?;
        Ok(preferences)
    }

    /// The `X-UNICORE-User-Preferences` header value (`uid:x,group:g,supgids:a+b,role:r`), or
    /// `None` when nothing is asked for.
    ///
    /// Fails with [`ErrorKind::InvalidPreference`] when a value is empty or contains `,`, `:`,
    /// whitespace, a control character or a non-ASCII character, or a supplementary group
    /// contains `+`: the server would refuse the whole request with HTTP 403.
    pub fn header_value(&self) -> Result<Option<HeaderValue>> {
        if self.is_empty() {
            return Ok(None);
        }
        self.validate()?;
        let value = HeaderValue::try_from(self.to_string()).map_err(|_| {
            invalid("the user preferences cannot be sent in an HTTP header".to_owned())
        })?;
        Ok(Some(value))
    }

    fn validate(&self) -> Result<()> {
        let single = [
            ("uid", &self.uid),
            ("group", &self.group),
            ("role", &self.role),
        ];
        for (key, value) in single {
            if let Some(value) = value {
                check_value(key, value, "")?;
            }
        }
        for group in &self.supplementary_groups {
            check_value("supgids", group, "+")?;
        }
        Ok(())
    }
}

enum Slot<'a> {
    One(&'a mut Option<String>),
    Many(&'a mut Vec<String>),
}

fn check_value(key: &str, value: &str, also_forbidden: &str) -> Result<()> {
    if value.is_empty() {
        return Err(invalid(format!(
            "user preference {key} is empty; leave it out to get the server's default"
        )));
    }
    let bad = value.chars().find(|&c| {
        c == ','
            || c == ':'
            || also_forbidden.contains(c)
            || c.is_whitespace()
            || c.is_control()
            || !c.is_ascii()
    });
    match bad {
        None => Ok(()),
        Some(c) => Err(invalid(format!(
            "user preference {key}={value:?} contains {c:?}, which UNICORE cannot parse in \
             X-UNICORE-User-Preferences (it splits items on ',', keys from values on ':' and \
             supplementary groups on '+'; whitespace and non-ASCII are not accepted either)"
        ))),
    }
}

fn invalid(message: String) -> Error {
    Error::new(ErrorKind::InvalidPreference, message)
}

/// The header syntax, in the order UNICORE's Java client writes it: `uid`, `group`,
/// `supgids`, `role`. It does not check the values; [`Preferences::header_value`] does.
impl fmt::Display for Preferences {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut separator = "";
        let mut item = |f: &mut fmt::Formatter<'_>, key: &str, value: &str| {
            let result = write!(f, "{separator}{key}:{value}");
            separator = ",";
            result
        };
        if let Some(uid) = &self.uid {
            item(f, "uid", uid)?;
        }
        if let Some(group) = &self.group {
            item(f, "group", group)?;
        }
        if !self.supplementary_groups.is_empty() {
            item(f, "supgids", &self.supplementary_groups.join("+"))?;
        }
        if let Some(role) = &self.role {
            item(f, "role", role)?;
        }
        Ok(())
    }
}

impl FromStr for Preferences {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}
