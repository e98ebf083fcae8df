//! `[sip]`: what the SIP inspector in the kernel drops (see docs/rules.md).

use std::{ops::Range, time::Duration};

use firewall_common::sip::{
    signature::{Field, SignatureError, MAX_SIGNATURES},
    Method, MethodSet, SignatureTable, DEFAULT_SCANNER_USER_AGENTS, NMAP_PROBE_URI,
};

use super::{
    reader::{Durations, Reader, Section},
    services::{Limit, Service, MAX_RATE},
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SipRules {
    /// Inspect the traffic the `sip` service accepts at all.
    pub inspect: bool,
    /// `inspect = true` written in the rules: a kernel that refuses the inspector is an error at
    /// start, not a degradation.
    pub inspect_required: bool,
    /// Signatures looked for at word starts of the `User-Agent` value.
    pub scanner_user_agents: Vec<String>,
    /// Signatures looked for at word starts of the `From` value and the Request-URI.
    pub scanner_uris: Vec<String>,
    /// Requests with other methods are dropped.
    pub allowed_methods: MethodSet,
    /// OPTIONS from sources no allow list covers are dropped.
    pub stealth_options: bool,
    /// Per-source limits of single methods, on top of the service's.
    pub method_limits: Vec<(Method, Limit)>,
    /// How long a source whose request passed the full inspection has its next requests read
    /// only as far as the method; zero inspects every request in full.
    pub reinspect: Duration,
    /// How long a source that authenticated (a challenged REGISTER or INVITE answered 2xx)
    /// stays known good: unproven evidence never counts against it and no rate limit drops its
    /// packets. Zero: no source is ever known good.
    pub known_good: Duration,
}

impl Default for SipRules {
    fn default() -> Self {
        SipRules {
            inspect: true,
            inspect_required: false,
            scanner_user_agents: DEFAULT_SCANNER_USER_AGENTS.iter().map(|s| s.to_string()).collect(),
            scanner_uris: vec![NMAP_PROBE_URI.to_owned()],
            allowed_methods: MethodSet::STANDARD,
            stealth_options: false,
            method_limits: Vec::new(),
            reinspect: DEFAULT_REINSPECT,
            known_good: DEFAULT_KNOWN_GOOD,
        }
    }
}

impl SipRules {
    /// The signature table the kernel matches: the User-Agent signatures first, then the URI
    /// ones, so an index names its text in [`SipRules::signature`].
    pub fn signatures(&self) -> Result<SignatureTable, SignatureError> {
        let ua = Field::UserAgent.bit();
        let uri = Field::From.bit() | Field::RequestUri.bit();
        let entries: Vec<(&str, u8)> = self
            .scanner_user_agents
            .iter()
            .map(|s| (s.as_str(), ua))
            .chain(self.scanner_uris.iter().map(|s| (s.as_str(), uri)))
            .collect();
        SignatureTable::build(&entries)
    }

    /// The text of signature `index` of [`SipRules::signatures`].
    pub fn signature(&self, index: usize) -> Option<&str> {
        self.scanner_user_agents.iter().chain(&self.scanner_uris).nth(index).map(String::as_str)
    }
}

/// `reinspect` unless the rules say otherwise.
pub const DEFAULT_REINSPECT: Duration = Duration::from_secs(300);
/// `known_good` unless the rules say otherwise: phones re-register well within it.
pub const DEFAULT_KNOWN_GOOD: Duration = Duration::from_secs(86_400);

const KEYS: &[&str] = &[
    "inspect",
    "scanner_user_agents",
    "scanner_uris",
    "allowed_methods",
    "stealth_options",
    "method_limits",
    "reinspect",
    "known_good",
];
const LIMIT_KEYS: &[&str] = &["rate", "burst"];

/// Reads `[sip]`; keys left out keep their defaults.
pub fn read(r: &mut Reader, s: &Section) -> SipRules {
    s.check_keys(r, KEYS);
    let mut out = SipRules::default();
    if let Some(b) = s.bool(r, "inspect") {
        out.inspect = b;
        out.inspect_required = b;
    }
    read_signatures(r, s, &mut out);
    if let Some(set) = allowed_methods(r, s) {
        out.allowed_methods = set;
    }
    if let Some(b) = s.bool(r, "stealth_options") {
        out.stealth_options = b;
        if b && !out.allowed_methods.contains(Method::Options) {
            r.warn(
                s.value_span("stealth_options"),
                "`stealth_options` has no effect: OPTIONS is not in `allowed_methods`, so it is dropped from every \
                 source",
            );
        }
    }
    out.method_limits = method_limits(r, s, out.allowed_methods);
    if let Some(Some(d)) = s.duration(r, "reinspect", Durations::OrZero) {
        out.reinspect = d;
    }
    if let Some(Some(d)) = s.duration(r, "known_good", Durations::OrZero) {
        out.known_good = d;
    }
    out
}

/// Warns when `[sip]` is written but no service named `sip` exists for it to apply to.
pub fn check_service(r: &mut Reader, s: &Section, services: &[Service]) {
    if !services.iter().any(|svc| svc.name == firewall_common::service::SIP_SERVICE) {
        r.warn(
            s.span.clone(),
            "the [sip] section applies to the service named `sip`; there is none: add [services.sip] with the \
             SIP ports",
        );
    }
}

/// `scanner_user_agents` and `scanner_uris`: each list given replaces its default; together
/// they must fit the kernel's table.
fn read_signatures(r: &mut Reader, s: &Section, out: &mut SipRules) {
    let ua = s.strings(r, "scanner_user_agents");
    let uri = s.strings(r, "scanner_uris");
    let mut ok = ua.is_some() || !s.has("scanner_user_agents");
    ok &= uri.is_some() || !s.has("scanner_uris");
    if let Some(list) = &ua {
        ok &= unique(r, "scanner_user_agents", list);
        out.scanner_user_agents = list.iter().map(|(t, _)| t.clone()).collect();
    }
    if let Some(list) = &uri {
        ok &= unique(r, "scanner_uris", list);
        out.scanner_uris = list.iter().map(|(t, _)| t.clone()).collect();
    }
    // where signature `index` of `out.signatures()` is written; a default one is blamed on the
    // list that was given with it
    let ua_len = out.scanner_user_agents.len();
    let span_of = |index: usize| {
        let (mine, other, i) = if index < ua_len {
            ((&ua, "scanner_user_agents"), "scanner_uris", index)
        } else {
            ((&uri, "scanner_uris"), "scanner_user_agents", index - ua_len)
        };
        match mine.0 {
            Some(list) => list.get(i).map(|(_, sp)| sp.clone()),
            None => s.value_span(other),
        }
        .or_else(|| s.value_span(mine.1))
        .or_else(|| s.span.clone())
    };
    // each signature on its own first, so every bad one is reported, not just the first
    for (index, text) in out.scanner_user_agents.iter().chain(&out.scanner_uris).enumerate() {
        let fields = if index < ua_len { Field::UserAgent.bit() } else { Field::From.bit() };
        if let Err(e) = SignatureTable::build(&[(text.as_str(), fields)]) {
            r.error(span_of(index), format!("`{text}`: {}", renumber(e, index)));
            ok = false;
        } else if !text.as_bytes()[0].is_ascii_alphanumeric() {
            r.error(
                span_of(index),
                format!(
                    "`{text}` never matches: signatures are looked for where a word starts, so the first \
                     character must be a letter or a digit"
                ),
            );
            ok = false;
        }
    }
    if !ok {
        return;
    }
    if let Err(e) = out.signatures() {
        let span = match e {
            // the first that does not fit
            SignatureError::TooMany { .. } => span_of(MAX_SIGNATURES),
            SignatureError::TooShort { index, .. }
            | SignatureError::TooLong { index, .. }
            | SignatureError::NotPrintable { index }
            | SignatureError::NoField { index }
            | SignatureError::Crowded { index } => span_of(index),
        };
        r.error(span, e.to_string());
    }
}

/// `e`, about the signature at `index` of the whole table.
fn renumber(e: SignatureError, index: usize) -> SignatureError {
    match e {
        SignatureError::TooShort { len, .. } => SignatureError::TooShort { index, len },
        SignatureError::TooLong { len, .. } => SignatureError::TooLong { index, len },
        SignatureError::NotPrintable { .. } => SignatureError::NotPrintable { index },
        SignatureError::NoField { .. } => SignatureError::NoField { index },
        SignatureError::Crowded { .. } => SignatureError::Crowded { index },
        other => other,
    }
}

/// Reports every entry that repeats an earlier one, ignoring case as matching does.
fn unique(r: &mut Reader, key: &str, list: &[(String, Range<usize>)]) -> bool {
    let mut ok = true;
    for (i, (text, span)) in list.iter().enumerate() {
        if let Some((first, _)) = list[..i].iter().find(|(t, _)| t.eq_ignore_ascii_case(text)) {
            r.error(
                Some(span.clone()),
                format!("`{text}` is already in `{key}` as `{first}` (signatures ignore case); remove one"),
            );
            ok = false;
        }
    }
    ok
}

/// A method name as written on the wire, or an error at `span` that says what is known.
fn method(r: &mut Reader, name: &str, span: Option<Range<usize>>) -> Option<Method> {
    let known = &Method::ALL[1..];
    if let Some(m) = known.iter().find(|m| m.name() == name) {
        return Some(*m);
    }
    let msg = match known.iter().find(|m| m.name().eq_ignore_ascii_case(name)) {
        Some(m) => format!("unknown method `{name}`: method names are upper case on the wire: {}", m.name()),
        None => {
            let names: Vec<&str> = known.iter().map(|m| m.name()).collect();
            format!("unknown method `{name}`; known methods: {}", names.join(", "))
        }
    };
    r.error(span, msg);
    None
}

/// `allowed_methods`: `None` when absent or wrong.
fn allowed_methods(r: &mut Reader, s: &Section) -> Option<MethodSet> {
    let list = s.strings(r, "allowed_methods")?;
    if list.is_empty() {
        r.error(
            s.value_span("allowed_methods"),
            "`allowed_methods` is empty: that drops every request; leave the key out for the standard methods",
        );
        return None;
    }
    let mut set = MethodSet(0);
    let mut ok = true;
    for (name, span) in list {
        match method(r, &name, Some(span.clone())) {
            Some(m) if set.contains(m) => r.warn(Some(span), format!("`{name}` is listed twice")),
            Some(m) => set.0 |= m.bit(),
            None => ok = false,
        }
    }
    ok.then_some(set)
}

/// `method_limits`, ordered by method id.
fn method_limits(r: &mut Reader, s: &Section, allowed: MethodSet) -> Vec<(Method, Limit)> {
    let Some(sec) = s.table(r, "method_limits", "sip.method_limits") else { return Vec::new() };
    let mut out = Vec::new();
    for (name, table, span) in sec.tables(r) {
        let Some(m) = method(r, name, span.clone()) else { continue };
        let path = format!("sip.method_limits.{name}");
        let t = Section { table, path: &path, span: span.clone() };
        t.check_keys(r, LIMIT_KEYS);
        let rate = t.uint(r, "rate", 1, MAX_RATE);
        let burst = t.uint(r, "burst", 1, MAX_RATE);
        if !t.has("rate") {
            r.error(
                span.clone(),
                format!("the limit of {name} needs `rate`, like {name} = {{ rate = 5, burst = 20 }}"),
            );
        }
        if !allowed.contains(m) {
            r.warn(
                span,
                format!("the limit of {name} is never reached: {name} is not in `allowed_methods`, so it is dropped"),
            );
        }
        if let Some(rate) = rate {
            out.push((m, Limit { rate: rate as u32, burst: burst.unwrap_or(rate) as u32 }));
        }
    }
    out.sort_by_key(|(m, _)| *m as u8);
    out
}
