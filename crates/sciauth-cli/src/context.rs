//! What a command works with: the configuration, the chosen profile, and the clients a
//! profile makes (a `NativeClient` for oidc profiles, a `RucioClient` for rucio profiles).

use std::time::Duration;

use sciauth::NativeClient;
use sciauth::rucio::RucioClient;
use sciauth::tokens::{AudienceParameter, TokenRequest};

use crate::cli::ProfileSelection;
use crate::config::{AudienceStyle, Config, OidcProfile, Profile, RucioProfile};
use crate::failure::{CliResult, Failure};

/// The configuration (if there is a file) and the profile the command line chose.
#[derive(Debug)]
pub(crate) struct Context {
    config: Option<Config>,
    profile: Option<String>,
}

/// A profile, ready to use.
#[derive(Debug)]
pub(crate) enum Target<'a> {
    Oidc {
        name: &'a str,
        profile: &'a OidcProfile,
        client: NativeClient,
    },
    Rucio {
        name: &'a str,
        client: RucioClient,
    },
}

impl Context {
    pub(crate) fn load(selection: ProfileSelection) -> CliResult<Self> {
        let config = Config::load(selection.config.as_deref())?;
        Ok(Self {
            config,
            profile: selection.profile,
        })
    }

    pub(crate) fn config(&self) -> CliResult<&Config> {
        self.config.as_ref().ok_or_else(|| {
            let path = Config::default_path().map_or_else(
                || "~/.config/sciauth/config.toml".to_owned(),
                |p| p.display().to_string(),
            );
            Failure::config(format!("no configuration: {path} does not exist")).hint(
                "create it with a profile, e.g.\n  [profiles.default]\n  issuer = \
                     \"https://iam.example.org/\"\n  client_id = \"my-cli\"\n  scopes = \
                     [\"openid\", \"offline_access\"]\n(or name a file with --config or \
                     SCIAUTH_CONFIG)",
            )
        })
    }

    /// The configuration file, if there is one (`sciauth rucio` works without).
    pub(crate) fn config_file(&self) -> Option<&Config> {
        self.config.as_ref()
    }

    /// The profile `--profile` or `SCIAUTH_PROFILE` names, if any.
    pub(crate) fn profile_named(&self) -> Option<&str> {
        self.profile.as_deref()
    }

    /// Whether the command line or the file chooses a profile (for `request`, which works
    /// without one).
    pub(crate) fn profile_chosen(&self) -> bool {
        self.profile.is_some() || self.config.as_ref().is_some_and(Config::has_default)
    }

    /// The chosen profile, if it is an oidc one, with a client that can only answer from the
    /// store ([`store_client`]).
    pub(crate) fn store_target(&self) -> CliResult<Option<Target<'_>>> {
        let config = self.config()?;
        let (name, profile) = config.select(self.profile.as_deref())?;
        Ok(match profile {
            Profile::Oidc(profile) => Some(Target::Oidc {
                name,
                profile,
                client: store_client(config, name, profile)?,
            }),
            Profile::Rucio(_) => None,
        })
    }

    /// The chosen profile's name and settings, without a client.
    pub(crate) fn selected(&self) -> CliResult<(&str, &Profile)> {
        self.config()?.select(self.profile.as_deref())
    }

    /// The chosen profile, which must be an oidc one: `(name, profile, client)`; a Rucio
    /// profile is a configuration error saying `why` it cannot be used.
    pub(crate) fn oidc_target(&self, why: &str) -> CliResult<(&str, &OidcProfile, NativeClient)> {
        match self.target()? {
            Target::Oidc {
                name,
                profile,
                client,
            } => Ok((name, profile, client)),
            Target::Rucio { .. } => Err(Failure::config(why.to_owned())),
        }
    }

    /// The chosen profile, with its client.
    pub(crate) fn target(&self) -> CliResult<Target<'_>> {
        let config = self.config()?;
        let (name, profile) = config.select(self.profile.as_deref())?;
        self.make(config, name, profile)
    }

    /// `name`'s profile, with its client.
    pub(crate) fn make<'a>(
        &'a self,
        config: &'a Config,
        name: &'a str,
        profile: &'a Profile,
    ) -> CliResult<Target<'a>> {
        Ok(match profile {
            Profile::Oidc(profile) => Target::Oidc {
                name,
                profile,
                client: native_client(config, name, profile)?,
            },
            Profile::Rucio(profile) => Target::Rucio {
                name,
                client: self.rucio_client(config, name, profile)?,
            },
        })
    }

    fn rucio_client(
        &self,
        config: &Config,
        name: &str,
        profile: &RucioProfile,
    ) -> CliResult<RucioClient> {
        crate::commands::rucio::profile_client(config, name, profile)
    }
}

/// The `NativeClient` of an oidc profile: its store, lazy client (no discovery, and no
/// secret or key file read, until a grant runs), account, scopes and audience; a robot
/// profile's client runs the client credentials grant.
pub(crate) fn native_client(
    config: &Config,
    name: &str,
    profile: &OidcProfile,
) -> CliResult<NativeClient> {
    make_native_client(config, name, profile, true)
}

/// The `NativeClient` of an oidc profile for answering from its store only: no client
/// authentication at all (no grant will run), so a cached `sciauth token` neither opens a
/// secret or key file nor looks at a secret's variable.
pub(crate) fn store_client(
    config: &Config,
    name: &str,
    profile: &OidcProfile,
) -> CliResult<NativeClient> {
    make_native_client(config, name, profile, false)
}

fn make_native_client(
    config: &Config,
    name: &str,
    profile: &OidcProfile,
    with_secret: bool,
) -> CliResult<NativeClient> {
    warn_if_cleartext(name, &profile.issuer);
    let mut builder = NativeClient::builder(&profile.issuer, &profile.client_id)
        .app_name("sciauth")
        .account(profile.account.as_deref().unwrap_or(name))
        .audience_parameter(match profile.audience_parameter {
            AudienceStyle::Audience => AudienceParameter::Audience,
            AudienceStyle::Resource => AudienceParameter::Resource,
            AudienceStyle::Omit => AudienceParameter::Omit,
        });
    if !profile.scopes.is_empty() {
        builder = builder.default_scopes(profile.scopes.iter());
    }
    if let Some(audience) = &profile.audience {
        builder = builder.audience(audience);
    }
    if !with_secret {
        // No grant runs: no client authentication needed.
    } else if let Some(plan) = profile.client_auth_plan(config, name)? {
        // Read when the first grant runs, not now.
        builder = builder
            .client_auth_with(move || plan.make())
            .client_credentials(profile.is_robot());
    }
    if let Some(store) = crate::unlock::open_store(config, profile)? {
        builder = builder.store(store);
    }
    Ok(builder.build()?)
}

/// Warns on stderr, once per issuer and run, when a profile's issuer is plain `http://` to
/// another host (the library logs the same, and the token endpoint, but logs are off by
/// default).
fn warn_if_cleartext(profile: &str, issuer: &str) {
    static WARNED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let Ok(url) = sciauth::tokens::url::Url::parse(issuer) else {
        return;
    };
    if !sciauth::tokens::is_cleartext_remote(&url) {
        return;
    }
    let mut warned = WARNED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if warned.iter().any(|w| w == issuer) {
        return;
    }
    warned.push(issuer.to_owned());
    eprintln!(
        "sciauth: warning: profile {profile}: the issuer {} is plain http:// on a host other \
         than this machine; tokens and secrets sent to it can be read on the way (use https://)",
        &url[..sciauth::tokens::url::Position::AfterPath]
    );
}

/// Scopes given as `--scope a --scope "b c"`.
pub(crate) fn split_scopes(given: &[String]) -> Vec<String> {
    given
        .iter()
        .flat_map(|s| s.split_whitespace())
        .map(str::to_owned)
        .collect()
}

/// The request for a token of `client`'s account with these scopes, audience (else the
/// profile's) and minimum time left. A robot profile asks for its `scopes` when no scopes
/// are given (what its client credentials grant requests); a login profile takes any token
/// of its grant then.
pub(crate) fn token_request(
    client: &NativeClient,
    profile: &OidcProfile,
    scopes: &[String],
    audience: Option<&str>,
    min_valid: Duration,
) -> TokenRequest {
    let mut request = match audience {
        Some(audience) => TokenRequest::new(client.request().account()).audience(audience),
        None => client.request(),
    };
    let scopes = if scopes.is_empty() && profile.is_robot() {
        &profile.scopes
    } else {
        scopes
    };
    request = request.scopes(split_scopes(scopes)).min_valid(min_valid);
    request
}
