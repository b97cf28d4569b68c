//! Entry points for the fuzz targets (`crates/sciauth-fuzz`, `fuzz/`), behind the cargo
//! feature `fuzzing`; not an API.

use std::path::PathBuf;

use crate::config::{Config, Profile, RucioPath};

/// A `config.toml` (`Config::parse`, what `Config::load` reads), then what commands do with
/// it before reading secrets: pick each profile (and the default), resolve its paths.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = PathBuf::from("/home/fuzz/.config/sciauth/config.toml");
    let config = match Config::parse(text, path) {
        Ok(config) => config,
        Err(failure) => {
            let _ = format!("{failure:?}");
            return;
        }
    };
    let _ = (
        config.has_default(),
        config.select(None).map(|(name, _)| name.len()),
    );
    for (name, profile) in config.profiles() {
        let _ = config.select(Some(name)).is_ok();
        let _ = format!("{profile:?}");
        match profile {
            Profile::Oidc(oidc) => {
                let _ = oidc.store_dir(&config);
            }
            Profile::Rucio(rucio) => {
                let _ = rucio.rucio_cfg(&config);
                for which in [
                    RucioPath::SshPrivateKey,
                    RucioPath::ClientCert,
                    RucioPath::ClientKey,
                    RucioPath::ClientProxy,
                    RucioPath::CaCert,
                    RucioPath::CacheDir,
                ] {
                    let _ = rucio.path(&config, which);
                }
            }
        }
    }
}
