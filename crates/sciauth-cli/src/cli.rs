//! The command line: subcommands and their options.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  other failure
  2  usage error
  3  bad configuration or input (profile, key file, preference)
  4  login required (no stored token, or it expired and cannot be refreshed)
  5  refused by the identity provider or the server (bad credentials, revoked token)
  6  network failure (connection, DNS, TLS, timeout, a connection reset mid-answer)

Profiles live in $XDG_CONFIG_HOME/sciauth/config.toml (~/.config/sciauth/config.toml),
or the file --config or SCIAUTH_CONFIG names.";

/// Authentication for research computing: log in to OAuth 2.0 / OIDC providers, print a
/// valid token, sign UNICORE JWTs with SSH keys, make authenticated requests.
#[derive(Debug, Parser)]
#[command(name = "sciauth", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    /// More output on stderr: -v for sciauth's debug log, -vv for everything.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,

    #[command(flatten)]
    pub(crate) selection: ProfileSelection,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// `sciauth token ...` alone, parsed before [`Cli`]: building the whole command line (every
/// subcommand's options) costs more than answering a cached token does. The options are the
/// same definitions ([`ProfileSelection`], [`TokenArgs`]); anything this does not accept
/// (another subcommand, `--help`, a mistake) is left to [`Cli`], which says it properly.
#[derive(Debug, Parser)]
#[command(
    name = "sciauth",
    disable_help_flag = true,
    disable_help_subcommand = true
)]
pub(crate) struct TokenCommandLine {
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(flatten)]
    selection: ProfileSelection,

    #[command(subcommand)]
    command: TokenOnly,
}

#[derive(Debug, Subcommand)]
enum TokenOnly {
    #[command(disable_help_flag = true)]
    Token(TokenArgs),
}

impl From<TokenCommandLine> for Cli {
    fn from(line: TokenCommandLine) -> Self {
        let TokenOnly::Token(args) = line.command;
        Cli {
            verbose: line.verbose,
            selection: line.selection,
            command: Command::Token(args),
        }
    }
}

/// Which configuration file and profile a command uses.
#[derive(Clone, Debug, Args)]
pub(crate) struct ProfileSelection {
    /// The configuration file (default: $XDG_CONFIG_HOME/sciauth/config.toml).
    #[arg(long, global = true, env = "SCIAUTH_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// The profile to use (default: the file's default_profile, or its only profile).
    #[arg(
        long,
        short = 'p',
        global = true,
        env = "SCIAUTH_PROFILE",
        value_name = "NAME"
    )]
    pub(crate) profile: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Log in to the profile's identity provider and keep the tokens.
    Login(LoginArgs),
    /// Print a valid access token (refreshed if needed) on stdout, and nothing else.
    Token(TokenArgs),
    /// Exchange the profile's token for one with fewer scopes or another audience, or for a
    /// refresh token (FTS-style delegation; RFC 8693).
    Exchange(ExchangeArgs),
    /// Decode a JWT (header, claims, times, lifetime left); with --verify, check it against
    /// the profile's issuer. Every value is shown escaped: a token is untrusted input.
    Inspect(InspectArgs),
    /// Check the profile's identity provider: discovery, keys, grants, PKCE, tokens,
    /// rotation, exchange, revocation, introspection (pass/warn/fail; exit 1 on a failure).
    Check(CheckArgs),
    /// Revoke the profile's tokens at the provider and delete them.
    Logout,
    /// Drop the unlocked keys of the encrypted token stores from the kernel keyring: the
    /// next command asks for the passphrase again.
    Lock,
    /// Convert the profile's token store in place: `encrypt` seals every file with the key
    /// of a passphrase (made on first use), `decrypt` writes them plain again.
    #[command(subcommand)]
    Store(StoreCommand),
    /// List the profiles and their tokens (never the tokens themselves).
    List(ListArgs),
    /// Print a JWT signed with an SSH key, as UNICORE and the UFTP Authserver accept it.
    Jwt(JwtArgs),
    /// Make an HTTP request with a credential, like curl.
    Request(RequestArgs),
    /// Rucio's authentication as the Rucio client does it, from rucio.cfg alone (a rucio
    /// profile, if chosen, overrides it): whoami, ping, token, request.
    Rucio(crate::commands::rucio::RucioArgs),
    /// Run the token service (a DIRAC-style TokenManager) with the server configuration
    /// that --config names (see docs/sciauth-server.md).
    Serve,
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// Use the device flow: open a URL on any device and enter a code (default without a
    /// display or over SSH).
    #[arg(long, conflicts_with = "browser")]
    pub(crate) device: bool,

    /// Use the browser flow with a loopback redirect (a pasted address over SSH).
    #[arg(long)]
    pub(crate) browser: bool,

    /// Print the login URL instead of opening a browser.
    #[arg(long)]
    pub(crate) no_browser: bool,

    /// Scopes to ask for instead of the profile's (repeatable, or space-separated).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub(crate) scopes: Vec<String>,

    /// Log in even if stored tokens cover the scopes.
    #[arg(long)]
    pub(crate) force: bool,

    /// An extra parameter for the authorization request, e.g. `idphint=https://idp.example.org`
    /// for CILogon (repeatable; overrides the profile's login_params of the same name).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = name_value)]
    pub(crate) params: Vec<(String, String)>,
}

/// `NAME=VALUE`, with a name.
fn name_value(given: &str) -> Result<(String, String), String> {
    match given.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err("expected NAME=VALUE".to_owned()),
    }
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    /// Scopes the token must have (repeatable, or space-separated; default: any the login
    /// gave).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub(crate) scopes: Vec<String>,

    /// The audience the token is for (default: the profile's).
    #[arg(long, value_name = "AUDIENCE")]
    pub(crate) audience: Option<String>,

    /// The token must stay valid at least this long; a shorter-lived one is refreshed.
    #[arg(long, default_value_t = 60, value_name = "SECONDS")]
    pub(crate) min_valid: u64,

    /// Print the token with its expiry, scopes and audience as JSON.
    #[arg(long)]
    pub(crate) json: bool,

    /// Write the token to the WLCG discovery file ($BEARER_TOKEN_FILE, else
    /// $XDG_RUNTIME_DIR/bt_u$UID, else /tmp/bt_u$UID; 0600) instead of printing it.
    #[arg(long)]
    pub(crate) write_discovery: bool,

    /// With --write-discovery: keep the file fresh until killed, for long jobs (HTCondor,
    /// xrootd, gfal, davix, notebooks). The token is renewed ahead of expiry and the file
    /// rewritten atomically, one line on stderr per renewal; a provider that is down is
    /// retried with backoff; a grant that is gone ends it with the login-required or refused
    /// exit code.
    #[arg(long, requires = "write_discovery", conflicts_with = "service")]
    pub(crate) watch: bool,

    /// Get the token from the sciauth token service at this URL (`sciauth serve`) instead
    /// of the profile's provider. The call is authenticated with $SCIAUTH_SERVICE_BEARER, or
    /// else with the profile's token.
    #[arg(long, value_name = "URL")]
    pub(crate) service: Option<String>,

    /// With --service: the user whose token is wanted (default: the group's own token).
    #[arg(long, value_name = "NAME", requires = "service")]
    pub(crate) user: Option<String>,

    /// With --service: the group whose scopes and provider apply.
    #[arg(long, value_name = "NAME", requires = "service")]
    pub(crate) group: Option<String>,

    /// With --service: the provider, by its name in the service's configuration.
    #[arg(long, value_name = "NAME", requires = "service")]
    pub(crate) provider: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ExchangeArgs {
    /// Scopes to ask for (repeatable, or space-separated).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub(crate) scopes: Vec<String>,

    /// The audience of the new token.
    #[arg(long, value_name = "AUDIENCE")]
    pub(crate) audience: Option<String>,

    /// The kind of token wanted: an access token (the default), or a refresh token that the
    /// exchanging client keeps using on the user's behalf (FTS). A refresh token is printed
    /// instead of the access token.
    #[arg(long, value_enum, value_name = "TYPE")]
    pub(crate) requested_token_type: Option<RequestedTokenType>,

    /// Exchange the access token read from stdin (`-`) instead of the profile's own. Only
    /// `-`: a token on the command line is visible to every user of the machine.
    #[arg(long, value_name = "-")]
    pub(crate) subject_token: Option<String>,

    /// Print the new token(s) with expiry, scopes, audience and token type as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// RFC 8693's `requested_token_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub(crate) enum RequestedTokenType {
    AccessToken,
    RefreshToken,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// The token: a JWT, or `-` to read it from stdin (default: the profile's access token,
    /// as `sciauth token` gives it).
    #[arg(value_name = "TOKEN | -")]
    pub(crate) token: Option<String>,

    /// Verify the signature against the profile's issuer (its JWKS), and iss, aud and the
    /// times; exits 5 when the token does not verify.
    #[arg(long)]
    pub(crate) verify: bool,

    /// With --verify: the audience the token must be for (default: the profile's).
    #[arg(long, value_name = "AUDIENCE", requires = "verify")]
    pub(crate) audience: Option<String>,

    /// With --verify: accept access tokens typed `JWT` or untyped (INDIGO IAM, Keycloak)
    /// instead of `at+jwt` (RFC 9068).
    #[arg(long, requires = "verify")]
    pub(crate) plain_jwt: bool,

    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// Print JSON (one object per check) instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// What `sciauth store` does.
#[derive(Debug, Clone, Copy, Subcommand)]
pub(crate) enum StoreCommand {
    /// Seal every file of the store (idempotent; a second run completes an interrupted one);
    /// then set `encrypted = true` in the profile.
    Encrypt,
    /// Write every file of the encrypted store plain and remove its key file; then remove
    /// `encrypted = true` from the profile.
    Decrypt,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Where an SSH-key JWT comes from.
#[derive(Debug, Args)]
pub(crate) struct SshKeyArgs {
    /// The SSH private key (with --agent: the key's public key file, or its private key file
    /// with a `.pub` next to it). A bare name means ~/.uftp/NAME, as in pyunicore.
    #[arg(long, short = 'i', value_name = "KEY")]
    pub(crate) identity: Option<PathBuf>,

    /// The username the JWT is for (`sub` and `iss`).
    #[arg(long, short = 'u', value_name = "NAME", requires = "identity")]
    pub(crate) user: Option<String>,

    /// Sign with the key held by ssh-agent (SSH_AUTH_SOCK) instead of reading the key file.
    #[arg(long)]
    pub(crate) agent: bool,

    /// Read the key's passphrase from this environment variable.
    #[arg(long, value_name = "VAR", env = "SCIAUTH_PASSPHRASE_ENV")]
    pub(crate) passphrase_env: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct JwtArgs {
    #[command(flatten)]
    pub(crate) key: SshKeyArgs,

    /// Lifetime of the token in seconds.
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub(crate) lifetime: u64,
}

#[derive(Debug, Args)]
pub(crate) struct RequestArgs {
    /// HTTP method (GET if omitted; POST when --data is given).
    #[arg(value_name = "METHOD_OR_URL")]
    pub(crate) method_or_url: String,

    /// The URL, when a method comes first.
    #[arg(value_name = "URL")]
    pub(crate) url: Option<String>,

    /// UNICORE user preferences, e.g. `group:myproject,uid:me`.
    #[arg(long, value_name = "PREFS")]
    pub(crate) preferences: Option<String>,

    /// Request body: a string, or @FILE to read it from a file (@- for stdin).
    #[arg(long, short = 'd', value_name = "DATA")]
    pub(crate) data: Option<String>,

    /// Extra header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_name = "HEADER")]
    pub(crate) headers: Vec<String>,

    /// Authenticate with an SSH-key JWT (UNICORE).
    #[command(flatten)]
    pub(crate) key: SshKeyArgs,

    /// Authenticate with the bearer token found by WLCG token discovery (BEARER_TOKEN,
    /// BEARER_TOKEN_FILE, $XDG_RUNTIME_DIR/bt_u$UID, /tmp/bt_u$UID).
    #[arg(long, conflicts_with = "identity")]
    pub(crate) discovery: bool,

    /// Scopes the profile's token must have (oidc profiles).
    #[arg(long = "scope", value_name = "SCOPE")]
    pub(crate) scopes: Vec<String>,

    /// The audience of the profile's token (oidc profiles; default: the profile's).
    #[arg(long, value_name = "AUDIENCE")]
    pub(crate) audience: Option<String>,

    /// Extra CA certificates (a PEM file, or a directory such as
    /// /etc/grid-security/certificates).
    #[arg(long, value_name = "PATH")]
    pub(crate) ca: Option<PathBuf>,

    /// Print the response status and headers on stderr.
    #[arg(long, short = 'I')]
    pub(crate) include: bool,
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{Cli, TokenCommandLine};

    /// The quick parse of `sciauth token ...` reads exactly what the whole command line reads,
    /// and leaves everything else (help, other commands, mistakes) to it.
    #[test]
    fn the_token_command_line_reads_what_the_whole_one_reads() {
        for args in [
            &["sciauth", "token"][..],
            &["sciauth", "-v", "token", "--json"],
            &[
                "sciauth", "token", "-p", "iam", "--scope", "a b", "--scope", "c",
            ],
            &[
                "sciauth",
                "--config",
                "/x.toml",
                "token",
                "--audience",
                "https://a",
            ],
            &[
                "sciauth",
                "token",
                "--min-valid",
                "600",
                "--write-discovery",
            ],
            &["sciauth", "token", "--profile=iam", "-vv"],
        ] {
            let whole = Cli::try_parse_from(args).unwrap();
            let quick: Cli = TokenCommandLine::try_parse_from(args).unwrap().into();
            assert_eq!(format!("{quick:?}"), format!("{whole:?}"), "{args:?}");
        }
        for args in [
            &["sciauth", "token", "--help"][..],
            &["sciauth", "token", "-h"],
            &["sciauth", "--version"],
            &["sciauth", "help", "token"],
            &["sciauth", "list"],
            &["sciauth", "token", "--min-valid", "soon"],
            &["sciauth"],
        ] {
            assert!(TokenCommandLine::try_parse_from(args).is_err(), "{args:?}");
        }
    }
}
