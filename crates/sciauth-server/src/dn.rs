//! Distinguished names in the slash form grid tools print (`/C=CH/O=CERN/CN=alice`), made
//! unambiguous: a certificate's subject and a configured DN are both turned into one
//! canonical string, and two DNs are the same caller only if their strings are equal.
//!
//! Plain slash form is ambiguous: a certificate whose one `O` attribute is `Grid/CN=alice`
//! would print as `/O=Grid/CN=alice`, the DN of someone else. So, inside values, `\`, `/`,
//! `=` and `+` are escaped with a backslash (`\\`, `\/`, `\=`, `\+`), control characters
//! are written `\xHH` and other characters that reorder or hide text (bidi overrides,
//! zero-width characters) `\u{HEX}`; the attributes of a multi-valued RDN are joined by an unescaped `+`
//! (as OpenSSL's RFC 2253-style output does). With every separator escaped inside values,
//! each string names exactly one sequence of RDNs.

use std::fmt::Write as _;

use sciauth_credentials::text::is_printable;

/// One attribute of an RDN: its short name (`CN`, `O`, `DC`, `Email`, or a dotted OID) and
/// its value.
struct Attribute {
    name: String,
    value: String,
}

/// The canonical form of a sequence of RDNs.
fn encode(rdns: &[Vec<Attribute>]) -> String {
    let mut out = String::new();
    for rdn in rdns {
        out.push('/');
        for (i, attribute) in rdn.iter().enumerate() {
            if i > 0 {
                out.push('+');
            }
            out.push_str(&attribute.name);
            out.push('=');
            for c in attribute.value.chars() {
                match c {
                    '\\' | '/' | '=' | '+' => {
                        out.push('\\');
                        out.push(c);
                    }
                    // Control characters (all below U+00A0) in two hex digits; characters
                    // that reorder or hide text (bidi overrides, zero-width) by code point.
                    c if !is_printable(c) => {
                        let _ = match u32::from(c) {
                            code @ ..0x100 => write!(out, "\\x{code:02x}"),
                            code => write!(out, "\\u{{{code:x}}}"),
                        };
                    }
                    c => out.push(c),
                }
            }
        }
    }
    out
}

/// The name grid tools use for an attribute type.
fn attribute_name(name: &str) -> String {
    match name {
        "emailAddress" | "E" => "Email".to_owned(),
        _ => name.to_owned(),
    }
}

/// The subject DN of a DER certificate, in canonical slash form; `None` when the certificate
/// does not parse or a value is not a string.
pub(crate) fn subject_of_certificate(der: &[u8]) -> Option<String> {
    let (_, certificate) = x509_parser::parse_x509_certificate(der).ok()?;
    let mut rdns = Vec::new();
    for rdn in certificate.subject().iter() {
        let mut attributes = Vec::new();
        for attribute in rdn.iter() {
            let oid = attribute.attr_type();
            let name = x509_parser::objects::oid2abbrev(oid, x509_parser::objects::oid_registry())
                .map(str::to_owned)
                .unwrap_or_else(|_| oid.to_id_string());
            attributes.push(Attribute {
                name: attribute_name(&name),
                value: attribute.as_str().ok()?.to_owned(),
            });
        }
        rdns.push(attributes);
    }
    Some(encode(&rdns))
}

/// A DN as configured (`users.<name>.dns`), read with the escapes above and written back in
/// canonical form; an error says what is wrong with it.
// tidy: long, one parser of the escaped DN syntax, whose states read best in one loop
pub(crate) fn canonical(configured: &str) -> Result<String, String> {
    let Some(rest) = configured.strip_prefix('/') else {
        return Err("a DN in slash form starts with / (like /C=CH/O=CERN/CN=alice)".to_owned());
    };
    // Split on unescaped separators, unescaping values as we go.
    let mut rdns: Vec<Vec<Attribute>> = Vec::new();
    let mut attributes: Vec<Attribute> = Vec::new();
    let mut name = String::new();
    let mut value: Option<String> = None;
    let mut chars = rest.chars();
    let finish = |name: &mut String,
                  value: &mut Option<String>,
                  attributes: &mut Vec<Attribute>|
     -> Result<(), String> {
        let Some(value) = value.take() else {
            return Err(format!(
                "{name:?} is not NAME=value; inside a value, write / as \\/, + as \\+ and \
                 = as \\="
            ));
        };
        if name.is_empty() {
            return Err("an attribute has no name before its =".to_owned());
        }
        attributes.push(Attribute {
            name: attribute_name(&std::mem::take(name)),
            value,
        });
        Ok(())
    };
    while let Some(c) = chars.next() {
        match (c, &mut value) {
            ('\\', _) => {
                let escaped = match chars.next() {
                    Some(c @ ('\\' | '/' | '=' | '+')) => c,
                    Some('u') => {
                        let code: String = chars.by_ref().take_while(|c| *c != '}').collect();
                        code.strip_prefix('{')
                            .filter(|hex| (1..=6).contains(&hex.len()))
                            .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                            .and_then(char::from_u32)
                            .ok_or_else(|| format!("\\u{code}}} is not \\u{{HEX}}"))?
                    }
                    Some('x') => {
                        let hex: String = chars.by_ref().take(2).collect();
                        u8::from_str_radix(&hex, 16)
                            .ok()
                            .filter(|_| hex.len() == 2)
                            .map(char::from)
                            .ok_or_else(|| format!("\\x{hex} is not \\x and two hex digits"))?
                    }
                    other => {
                        return Err(format!(
                            "\\{} is not an escape; use \\\\, \\/, \\=, \\+, \\xHH or \\u{{HEX}}",
                            other.map(String::from).unwrap_or_default()
                        ));
                    }
                };
                match &mut value {
                    Some(value) => value.push(escaped),
                    None => name.push(escaped),
                }
            }
            ('/', _) => {
                finish(&mut name, &mut value, &mut attributes)?;
                rdns.push(std::mem::take(&mut attributes));
            }
            ('+', _) => finish(&mut name, &mut value, &mut attributes)?,
            ('=', None) => value = Some(String::new()),
            (c, Some(value)) => value.push(c),
            (c, None) => name.push(c),
        }
    }
    finish(&mut name, &mut value, &mut attributes)?;
    rdns.push(attributes);
    if rdns.iter().flatten().any(|a| {
        !a.name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.')
    }) {
        return Err("attribute names hold only letters, digits and dots (CN, DC, 2.5.4.3)".into());
    }
    Ok(encode(&rdns))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(subject: &[(rcgen::DnType, &str)]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        for (kind, value) in subject {
            dn.push(kind.clone(), *value);
        }
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    #[test]
    fn a_certificate_subject_in_grid_form() {
        use rcgen::DnType;
        let plain = certificate(&[
            (DnType::CountryName, "CH"),
            (DnType::OrganizationName, "CERN"),
            (DnType::CommonName, "alice"),
        ]);
        assert_eq!(
            subject_of_certificate(&plain).as_deref(),
            Some("/C=CH/O=CERN/CN=alice")
        );
        assert_eq!(subject_of_certificate(b"not a certificate"), None);
    }

    #[test]
    fn separators_inside_values_cannot_forge_another_dn() {
        use rcgen::DnType;
        let alice = certificate(&[
            (DnType::OrganizationName, "Grid"),
            (DnType::CommonName, "alice"),
        ]);
        let forged = certificate(&[(DnType::OrganizationName, "Grid/CN=alice")]);
        let forged_plus = certificate(&[(DnType::CommonName, "alice+CN=x\\")]);
        let control = certificate(&[(DnType::CommonName, "a\u{1b}[2Jb")]);
        let alice = subject_of_certificate(&alice).unwrap();
        let forged = subject_of_certificate(&forged).unwrap();
        assert_eq!(alice, "/O=Grid/CN=alice");
        assert_eq!(forged, "/O=Grid\\/CN\\=alice");
        assert_ne!(alice, forged);
        assert_eq!(
            subject_of_certificate(&forged_plus).unwrap(),
            "/CN=alice\\+CN\\=x\\\\"
        );
        assert_eq!(subject_of_certificate(&control).unwrap(), "/CN=a\\x1b[2Jb");
        let bidi = certificate(&[(DnType::CommonName, "ecila\u{202e}")]);
        assert_eq!(subject_of_certificate(&bidi).unwrap(), "/CN=ecila\\u{202e}");
        assert_eq!(
            canonical("/CN=ecila\\u{202e}").unwrap(),
            "/CN=ecila\\u{202e}"
        );
        // The configured forms of these read back to the same strings.
        assert_eq!(canonical(&alice).unwrap(), alice);
        assert_eq!(canonical(&forged).unwrap(), forged);
        assert_eq!(canonical("/CN=a\\x1b[2Jb").unwrap(), "/CN=a\\x1b[2Jb");
    }

    #[test]
    fn configured_dns_are_read_strictly_and_canonically() {
        assert_eq!(
            canonical("/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=alice/CN=123456/CN=Alice Smith")
                .unwrap(),
            "/DC=ch/DC=cern/OU=Organic Units/OU=Users/CN=alice/CN=123456/CN=Alice Smith"
        );
        assert_eq!(
            canonical("/emailAddress=a@b/CN=x").unwrap(),
            "/Email=a@b/CN=x"
        );
        assert_eq!(canonical("/CN=a+CN=b").unwrap(), "/CN=a+CN=b");
        assert_eq!(
            canonical("/CN=host\\/x.example.org").unwrap(),
            "/CN=host\\/x.example.org"
        );
        assert_eq!(canonical("/CN=\\x41b").unwrap(), "/CN=Ab");
        assert_eq!(canonical("/CN=").unwrap(), "/CN=");
        // A slash, plus or equals sign in a value must be escaped; the error says how.
        for bad in [
            "CN=alice",
            "/CN=host/x.example.org",
            "/CN=John+Smith",
            "/=x",
            "/CN=a\\q",
            "/CN=a\\x4",
            "/CN=a\\u{110000}",
            "/CN=a\\u202e",
            "/C N=x",
            "/CN=a/",
        ] {
            let error = canonical(bad).unwrap_err();
            assert!(!error.is_empty(), "{bad}");
        }
        assert!(canonical("/CN=host/x").unwrap_err().contains("\\/"));
    }
}
