//! `sciauth logout`: revokes the profile's tokens at the provider, then deletes them; says
//! so when the provider did not confirm the revocation.

use crate::context::{Context, Target};
use crate::failure::{CliResult, Exit, Failure};

pub(crate) async fn run(context: &Context) -> CliResult {
    match context.target()? {
        Target::Oidc {
            name,
            profile,
            client,
        } => {
            let logout = client.logout().await?;
            if !logout.found() {
                eprintln!("Profile {name} had no stored tokens.");
            } else if let Some(error) = logout.revocation_error() {
                eprintln!(
                    "Logged out of {name}: tokens deleted here, but {} did not confirm their \
                     revocation ({error}); they stay valid there until they expire.",
                    profile.issuer
                );
            } else {
                eprintln!(
                    "Logged out of {name}: tokens revoked at {} and deleted.",
                    profile.issuer
                );
            }
            Ok(())
        }
        Target::Rucio { name, client } => {
            // A Rucio token cannot be revoked by its holder; forgetting it is all there is.
            if client.session().cache_file().is_none() {
                eprintln!("Profile {name} keeps no Rucio token.");
                return Ok(());
            }
            // Here and in the Rucio client's token file, which it shares.
            match client.session().forget() {
                Ok(true) => eprintln!("Logged out of {name}: the cached Rucio token is deleted."),
                Ok(false) => eprintln!("Profile {name} had no cached Rucio token."),
                Err(e) => {
                    return Err(Failure::new(
                        Exit::Failure,
                        format!("cannot delete the cached Rucio token: {e}"),
                    ));
                }
            }
            Ok(())
        }
    }
}
