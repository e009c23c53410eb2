use super::*;

fn redactor(pairs: &[(&str, &str)]) -> Redactor {
    Redactor::new(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())))
}

#[test]
fn redacts_longest_first_and_in_json() {
    let r = redactor(&[("A", "hunter2"), ("B", "hunter2-extra")]);
    assert_eq!(
        r.text("x hunter2-extra y hunter2"),
        "x [redacted:B] y [redacted:A]"
    );
    let v = serde_json::json!({"k": ["token hunter2"], "hunter2": 1});
    assert_eq!(
        r.json(&v),
        serde_json::json!({"k": ["token [redacted:A]"], "[redacted:A]": 1})
    );
}

#[test]
fn encoded_forms_are_redacted_at_any_base64_offset() {
    let secret = "s3cr3t/with space+plus";
    let r = redactor(&[("S", secret)]);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let url64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    for prefix in ["", "a", "ab", "abc", "user:"] {
        let framed = format!("{prefix}{secret}!");
        for encoded in [b64(framed.as_bytes()), url64(framed.as_bytes())] {
            let out = r.text(&format!("Basic {encoded}"));
            assert!(out.contains("[redacted:S]"), "{prefix:?}: {out}");
            // What is left decodes to no more than the frame around the secret.
            assert!(out.len() < 6 + encoded.len(), "{out}");
        }
    }
    let cases = [
        hex::encode(secret),
        hex::encode_upper(secret),
        "s3cr3t%2Fwith%20space%2Bplus".to_string(),
        "s3cr3t%2fwith%20space%2bplus".to_string(),
        "s3cr3t%2Fwith+space%2Bplus".to_string(),
    ];
    for form in cases {
        assert_eq!(r.text(&format!("<{form}>")), "<[redacted:S]>", "{form}");
    }
}

#[test]
fn binary_bodies_are_redacted_as_bytes() {
    let r = redactor(&[("S", "hunter22")]);
    let mut bytes = vec![0xff, 0x00, 0xfe];
    bytes.extend_from_slice(b"hunter22");
    bytes.extend_from_slice(&[0x80, 0x81]);
    let body = Body::from_bytes(&bytes);
    assert!(matches!(body, Body::Base64(_)));
    let redacted = r.body(&body);
    let out = redacted.to_bytes();
    assert_eq!(&out[..3], &[0xff, 0x00, 0xfe]);
    assert_eq!(&out[3..out.len() - 2], b"[redacted:S]");
    let journalled = serde_json::to_string(&redacted).unwrap();
    let encoded = base64::engine::general_purpose::STANDARD.encode(b"hunter22");
    assert!(!journalled.contains(&encoded[..8]), "{journalled}");
}

#[test]
fn a_secret_url_is_redacted_by_its_parts() {
    let url =
        "https://bot:pa55word-x@hooks.example.com/services/T0001/B0002/XXsecretXX?sig=abcdef123456";
    let r = redactor(&[("HOOK", url)]);
    assert_eq!(
        r.text(&format!("POST {url} failed")),
        "POST [redacted:HOOK] failed"
    );
    for quoted in [
        "404: no such hook /services/T0001/B0002/XXsecretXX",
        "unknown path services/T0001/B0002/XXsecretXX",
        "bad signature abcdef123456",
        "login pa55word-x refused",
        "%2Fservices%2FT0001%2FB0002%2FXXsecretXX",
    ] {
        let out = r.text(quoted);
        assert!(out.contains("[redacted:HOOK]"), "{quoted} -> {out}");
        assert!(
            !out.contains("XXsecretXX")
                && !out.contains("abcdef123456")
                && !out.contains("pa55word"),
            "{out}"
        );
    }
    // Ordinary text around it is left alone.
    assert_eq!(r.text("hooks.example.com is up"), "hooks.example.com is up");
}

#[test]
fn short_secrets_are_refused_at_load() {
    for short in ["a", "ab", "abc", "é1"] {
        let err = check_secret("TOKEN", short).unwrap_err();
        assert!(err.to_string().contains("secret TOKEN is"), "{err}");
    }
    // The value itself is never in the message.
    assert!(
        !check_secret("T", "qz9")
            .unwrap_err()
            .to_string()
            .contains("qz9")
    );
    check_secret("TOKEN", "abcd").unwrap();
    check_secret("TOKEN", "").unwrap();
    let map = BTreeMap::from([("A".to_string(), "xy".to_string())]);
    assert!(matches!(
        StaticSecrets::checked(map),
        Err(SecretError::TooShort { chars: 2, .. })
    ));
}
