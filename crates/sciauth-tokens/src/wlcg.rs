//! Path scopes (WLCG Common JWT Profiles 3.3, SciTokens): `storage.read:/` grants
//! `storage.read:/sub/dir`, and every other scope grants only itself.
//!
//! A path scope is `<authz>:<path>` with an authorization the profiles give paths to
//! ([`PATH_AUTHZ`]) and a path starting with `/`. `<authz>:/a` grants `<authz>:/a` and
//! `<authz>:/a/b/c`, never `<authz>:/ab` nor another authorization's paths. A path that
//! could mean something else to a storage system than to a string comparison (`.` or `..`
//! segments, `//`, `%`, `\`, `?`, `#`, control characters) grants and is granted only
//! itself, character for character.

/// The authorizations whose scopes carry a path: the WLCG storage scopes and SciTokens'
/// `read` and `write`.
pub(crate) const PATH_AUTHZ: &[&str] = &[
    "storage.read",
    "storage.create",
    "storage.modify",
    "storage.stage",
    "read",
    "write",
];

/// `scope` split into authorization and normalized path (no trailing `/` except for the
/// root), if it is a path scope with a path that can be compared safely.
pub(crate) fn path_scope(scope: &str) -> Option<(&str, &str)> {
    let (authz, path) = scope.split_once(':')?;
    if !PATH_AUTHZ.contains(&authz) || !path.starts_with('/') {
        return None;
    }
    if path
        .chars()
        .any(|c| matches!(c, '%' | '\\' | '?' | '#') || c.is_control())
    {
        return None;
    }
    let trimmed = match path.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    };
    if trimmed != "/"
        && trimmed[1..]
            .split('/')
            .any(|segment| matches!(segment, "" | "." | ".."))
    {
        return None;
    }
    Some((authz, trimmed))
}

/// Whether holding `held` grants `wanted`: the same scope, or a path scope of the same
/// authorization at or above `wanted`'s path.
pub(crate) fn grants(held: &str, wanted: &str) -> bool {
    if held == wanted {
        return true;
    }
    let (Some((held_authz, held_path)), Some((wanted_authz, wanted_path))) =
        (path_scope(held), path_scope(wanted))
    else {
        return false;
    };
    held_authz == wanted_authz
        && (held_path == "/"
            || wanted_path == held_path
            || wanted_path
                .strip_prefix(held_path)
                .is_some_and(|rest| rest.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Scopes;

    #[test]
    fn a_path_grants_itself_and_everything_below_it() {
        assert!(grants("storage.read:/", "storage.read:/"));
        assert!(grants("storage.read:/", "storage.read:/sub/dir"));
        assert!(grants("storage.read:/data", "storage.read:/data"));
        assert!(grants("storage.read:/data", "storage.read:/data/"));
        assert!(grants("storage.read:/data/", "storage.read:/data/x"));
        assert!(grants(
            "storage.read:/data",
            "storage.read:/data/run1/f.root"
        ));
        assert!(grants("read:/store", "read:/store/mc"));
        assert!(grants("storage.create:/", "storage.create:/home/alice"));
    }

    #[test]
    fn a_path_grants_no_sibling_no_parent_and_no_other_authorization() {
        assert!(!grants("storage.read:/data", "storage.read:/database"));
        assert!(!grants("storage.read:/data", "storage.read:/"));
        assert!(!grants("storage.read:/data/run1", "storage.read:/data"));
        assert!(!grants("storage.read:/", "storage.create:/data"));
        assert!(!grants("storage.modify:/", "storage.create:/data"));
        assert!(!grants("storage.read:/", "storage.read:data"));
        assert!(!grants("storage.read:/", "storage.read"));
    }

    #[test]
    fn paths_that_could_escape_match_only_themselves() {
        for wanted in [
            "storage.read:/data/../etc",
            "storage.read:/data/./x",
            "storage.read:/data//x",
            "storage.read:/data/%2e%2e/etc",
            "storage.read:/data\\..\\etc",
            "storage.read:/data/x?y",
            "storage.read:/data/x#y",
            "storage.read:/data/\u{1b}x",
        ] {
            assert!(!grants("storage.read:/data", wanted), "{wanted}");
            assert!(!grants("storage.read:/", wanted), "{wanted}");
            assert!(grants(wanted, wanted), "{wanted}");
        }
        assert!(!grants("storage.read:/data/..", "storage.read:/data/../x"));
    }

    #[test]
    fn plain_scopes_match_exactly() {
        assert!(grants("openid", "openid"));
        assert!(!grants("openid", "openid:/x"));
        assert!(!grants("compute.read", "compute.read:/x"));
        // A colon alone makes no path scope: URIs and other providers' scopes stay exact.
        assert!(!grants(
            "https://api.example.org/",
            "https://api.example.org/x"
        ));
        assert!(!grants("eduperson:/a", "eduperson:/a/b"));
        assert!(!grants("write:packages", "write:packages/x"));
    }

    #[test]
    fn scope_sets_grant_and_name_what_is_missing() {
        let held: Scopes = "openid offline_access storage.read:/ storage.create:/home/alice"
            .parse()
            .unwrap();
        let wanted: Scopes = "storage.read:/data storage.create:/home/alice/out openid"
            .parse()
            .unwrap();
        assert!(held.grants_all(&wanted));
        assert!(held.missing(&wanted).is_empty());
        let wider: Scopes = "storage.create:/home storage.read:/x profile"
            .parse()
            .unwrap();
        assert!(!held.grants_all(&wider));
        assert_eq!(
            held.missing(&wider).to_string(),
            "profile storage.create:/home"
        );
        assert!(held.grants("storage.read:/anything/below"));
        assert!(!held.grants("storage.modify:/"));
    }
}
