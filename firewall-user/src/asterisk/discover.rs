//! [`discover`]: reads an Asterisk configuration directory and reports what sipwall must
//! know, each item with the file and line it came from.

use std::{collections::HashMap, net::IpAddr, path::Path};

use ipnet::IpNet;

use super::{
    addr::Target,
    chan_sip,
    conf::{ConfError, Config, Level, Note, Origin},
    found::{Discovered, Listener, Trunk, TrunkKind},
    iax,
    modules::Modules,
    pjsip, rtp, wizard,
};

/// A resolver: a host name to its addresses, or why there are none.
type Resolve<'r> = &'r dyn Fn(&str) -> Result<Vec<IpAddr>, String>;

/// Reads the configuration in `dir` (Asterisk's `astetcdir`, `/etc/asterisk` by default)
/// the way Asterisk does: modules.conf for which modules load, then pjsip.conf,
/// pjsip_wizard.conf, sip.conf, iax.conf, rtp.conf and, for WebSocket transports, http.conf.
/// Each file is optional; without modules.conf every module counts as loaded.
///
/// Host names go through `resolve` (lowercased), once each; one that does not
/// resolve gives no address and a warning: an address is never guessed. SRV records are not
/// followed (Asterisk follows them for an identify `match` without a port, and for chan_sip
/// and chan_iax2 hosts with `srvlookup=yes`): a name whose servers are elsewhere needs its
/// addresses written in sipwall's own allow list.
pub fn discover(dir: &Path, resolve: &dyn Fn(&str) -> Result<Vec<IpAddr>, String>) -> Discovered {
    let mut ctx = Ctx::new(dir, resolve);
    if !dir.is_dir() {
        let msg = format!(
            "{} is not a directory; give Asterisk's configuration directory (astetcdir in asterisk.conf, \
             /etc/asterisk by default)",
            dir.display()
        );
        ctx.note(Level::Error, None, msg);
        return ctx.out;
    }
    ctx.modules = match ctx.load("modules.conf") {
        Some(cfg) => Modules::from_config(&cfg),
        None => {
            ctx.note(Level::Info, None, "no modules.conf: every module is taken as loaded".into());
            Modules::all()
        }
    };
    pjsip::read(&mut ctx);
    wizard::read(&mut ctx);
    chan_sip::read(&mut ctx);
    iax::read(&mut ctx);
    rtp::read(&mut ctx);
    ctx.check_clashes();
    ctx.out
}

/// Discovery under way: the directory, the resolver and its answers, and the report.
pub(super) struct Ctx<'a> {
    pub dir: &'a Path,
    resolve: Resolve<'a>,
    answers: HashMap<String, Result<Vec<IpAddr>, String>>,
    pub modules: Modules,
    pub out: Discovered,
}

impl<'a> Ctx<'a> {
    fn new(dir: &'a Path, resolve: Resolve<'a>) -> Self {
        let out = Discovered { dir: dir.to_path_buf(), ..Discovered::default() };
        Self { dir, resolve, answers: HashMap::new(), modules: Modules::all(), out }
    }

    pub fn note(&mut self, level: Level, origin: Option<&Origin>, message: String) {
        self.out.notes.push(Note { level, origin: origin.cloned(), message });
    }

    /// `name` from the directory with its notes taken into the report; `None` when it does
    /// not exist or cannot be read (a note then says why).
    pub fn load(&mut self, name: &str) -> Option<Config> {
        match Config::load(self.dir, name) {
            Ok(cfg) => {
                self.out.files.extend(cfg.files.iter().cloned());
                self.out.notes.extend(cfg.notes.iter().cloned());
                Some(cfg)
            }
            Err(ConfError::Missing { .. }) => None,
            Err(e) => {
                self.note(Level::Error, None, e.to_string());
                None
            }
        }
    }

    /// `name`, when `module` (which reads it) is loaded; a note when the file is there but
    /// the module is not.
    pub fn load_for(&mut self, module: &str, name: &str) -> Option<Config> {
        if self.modules.loads(module) {
            return self.load(name);
        }
        if self.dir.join(name).exists() {
            let msg = format!("{name} is not read: modules.conf keeps {module} from loading");
            self.note(Level::Info, Some(&Origin::new("modules.conf", 0)), msg);
        }
        None
    }

    /// The addresses of `name`, resolved once per discovery.
    pub fn resolve(&mut self, name: &str) -> Result<Vec<IpAddr>, String> {
        let key = name.to_ascii_lowercase();
        if let Some(a) = self.answers.get(&key) {
            return a.clone();
        }
        let answer = (self.resolve)(name);
        self.answers.insert(key, answer.clone());
        answer
    }

    /// Adds a trunk; a name is resolved, and one that gives no address is a warning.
    pub fn trunk(&mut self, name: &str, kind: TrunkKind, text: &str, target: Target, origin: &Origin) {
        let nets = match target {
            Target::Net(n) => vec![n],
            Target::Name(host) => match self.resolve(&host) {
                Ok(addrs) if !addrs.is_empty() => addrs.into_iter().map(IpNet::from).collect(),
                answer => {
                    let why = answer.err().unwrap_or_else(|| "no address".into());
                    let msg = format!(
                        "trunk {name} ({kind}): `{host}` does not resolve ({why}); it gets no address (never a guess): \
                         fix the name or write the address"
                    );
                    self.note(Level::Warning, Some(origin), msg);
                    Vec::new()
                }
            },
        };
        // A trunk is never banned: a network this wide exempts much of the Internet.
        if let Some(wide) = nets.iter().find(|n| n.prefix_len() < if n.addr().is_ipv4() { 8 } else { 16 }) {
            let msg = format!(
                "trunk {name} ({kind}) covers {wide}: sipwall would never ban an address in it; narrow it to the \
                 provider's own addresses"
            );
            self.note(Level::Warning, Some(origin), msg);
        }
        let trunk = Trunk { name: name.to_owned(), kind, text: without_userinfo(text), nets, origin: origin.clone() };
        self.out.trunks.push(trunk);
    }

    pub fn listen(&mut self, listener: Listener) {
        self.out.listeners.push(listener);
    }

    /// Two listeners on the same port and transport, with overlapping addresses: only one
    /// of them can bind.
    fn check_clashes(&mut self) {
        let ls = &self.out.listeners;
        let mut clashes = Vec::new();
        for (i, a) in ls.iter().enumerate() {
            for b in &ls[i + 1..] {
                let overlap = a.bind.is_ipv4() == b.bind.is_ipv4()
                    && (a.bind == b.bind || a.bind.is_unspecified() || b.bind.is_unspecified());
                // WebSocket transports share the HTTP server's port by design.
                let shared_http = a.source.ends_with("(http.conf)") && b.source.ends_with("(http.conf)");
                if a.port == b.port && a.transport() == b.transport() && overlap && !shared_http {
                    let msg = format!(
                        "{} and {} both listen on {}/{}: Asterisk cannot bind both, one of them does not start",
                        a.source,
                        b.source,
                        a.port,
                        a.transport()
                    );
                    clashes.push((b.origin.clone(), msg));
                }
            }
        }
        for (origin, msg) in clashes {
            self.note(Level::Warning, origin.as_ref(), msg);
        }
    }
}

/// `text` without the `user:password@` of a URI (`sip:itsp-user:secret@sip.itsp.example`), so
/// that `check` and `status` never show a secret.
pub fn without_userinfo(text: &str) -> String {
    let Some(at) = text.rfind('@') else { return text.to_owned() };
    let start = ["sips:", "sip:"]
        .iter()
        .find_map(|s| text.get(..s.len()).filter(|p| p.eq_ignore_ascii_case(s)).map(|_| s.len()))
        .unwrap_or(0);
    if at < start {
        return text.to_owned();
    }
    format!("{}{}", &text[..start], &text[at + 1..])
}
