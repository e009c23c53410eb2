//! Host tests of the pure parts: body cap, headers, URL checks, encoding.

use super::*;

#[test]
fn body_cap_keeps_what_fits_and_reports_the_rest() {
    let mut body = Vec::new();
    assert!(!append_capped(&mut body, b"abc", 5));
    assert!(!append_capped(&mut body, b"de", 5));
    assert_eq!(body, b"abcde");
    // Exactly full is not truncated; one more byte is.
    assert!(append_capped(&mut body, b"f", 5));
    assert_eq!(body, b"abcde");

    let mut body = Vec::new();
    assert!(append_capped(&mut body, b"abcdef", 4));
    assert_eq!(body, b"abcd");
}

#[test]
fn content_length_follows_the_body_option() {
    let none = header_entries(&[("Accept", "application/json")], None);
    assert_eq!(
        none,
        vec![("accept".to_owned(), b"application/json".to_vec())]
    );

    let empty = header_entries(&[], Some(b""));
    assert_eq!(empty, vec![("content-length".to_owned(), b"0".to_vec())]);

    let some = header_entries(&[("content-type", "application/json")], Some(b"{}"));
    assert_eq!(some[1], ("content-length".to_owned(), b"2".to_vec()));
}

#[test]
fn url_target_splits_scheme_authority_and_path() {
    let (scheme, authority, path) = target("HTTPS://unleash.internal:4242/api/x?y=1").unwrap();
    assert!(matches!(scheme, Scheme::Https));
    assert_eq!(authority, "unleash.internal:4242");
    assert_eq!(path, "/api/x?y=1");

    let (scheme, _, path) = target("http://127.0.0.1:9090").unwrap();
    assert!(matches!(scheme, Scheme::Http));
    assert_eq!(path, "/");
}

#[test]
fn url_errors_never_repeat_the_url() {
    // A webhook URL is a credential: the key must not reach an error message.
    for url in [
        "https://hooks.example.com/services/T0/B0/SECRETKEY 1",
        "/services/T0/B0/SECRETKEY",
        "ftp://hooks.example.com/SECRETKEY",
    ] {
        let Err(SendError::Invalid(message)) = target(url) else {
            panic!("{url:?} should be refused");
        };
        assert!(!message.contains("SECRETKEY"), "{message}");
    }
}

#[test]
fn method_names_map_to_wasi_methods() {
    assert!(matches!(method("GET"), Method::Get));
    assert!(matches!(method("PATCH"), Method::Patch));
    assert!(matches!(method("DELETE"), Method::Delete));
    assert!(matches!(method("PROPFIND"), Method::Other(m) if m == "PROPFIND"));
}

#[test]
fn encode_keeps_unreserved_and_escapes_the_rest() {
    assert_eq!(encode("my-flag_1.0~x"), "my-flag_1.0~x");
    assert_eq!(encode("a/b c?d"), "a%2Fb%20c%3Fd");
    assert_eq!(encode("é"), "%C3%A9");
}

#[test]
fn overload_and_server_errors_are_retryable_refusals_are_not() {
    for (status, retryable) in [
        (429, true),
        (500, true),
        (503, true),
        (400, false),
        (401, false),
        (404, false),
    ] {
        let f = crate::Failure::remote(status, "x");
        assert_eq!(f.retryable, retryable, "{status}");
    }
    assert_eq!(crate::retry_after_ms(Some(" 2 ")), Some(2000));
    assert_eq!(
        crate::retry_after_ms(Some("Wed, 21 Oct 2026 07:28:00 GMT")),
        None
    );
    assert_eq!(crate::retry_after_ms(None), None);
}
