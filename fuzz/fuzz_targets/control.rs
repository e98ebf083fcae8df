//! The control socket's wire format: `serde_json::from_str::<Request>` on arbitrary input, as
//! the daemon reads a request line (control/server.rs), and the same for `Response`, as the
//! client reads the answer (control/client.rs).
//!
//! Checks: no panic; a request that parses serialises to one line (the protocol is one request
//! per line), and that line parses back to an equal request and serialises to the same text;
//! the same for responses.

#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::{de::DeserializeOwned, Serialize};
use sipwall::control::protocol::{Request, Response};

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(what: &str, text: &str) {
    let Ok(value) = serde_json::from_str::<T>(text) else { return };
    let line = serde_json::to_string(&value).unwrap_or_else(|e| panic!("a parsed {what} does not serialise: {e}"));
    assert!(!line.contains('\n'), "a {what} serialises to more than one line: {line:?}");
    let back: T =
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("a serialised {what} does not parse back: {e}\n{line}"));
    assert_eq!(back, value, "a {what} changes on its way through JSON: {line}");
    let again = serde_json::to_string(&back).expect("serialises");
    assert_eq!(again, line, "a {what} serialises differently the second time");
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    round_trip::<Request>("request", text);
    round_trip::<Response>("response", text);
});
