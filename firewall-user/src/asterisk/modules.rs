//! Which modules Asterisk loads, from modules.conf as `load_modules` (main/loader.c) reads
//! it: those named by `load`, `require` or `preload`, plus every module when `autoload` is
//! on, less those named by `noload`.

use super::conf::{is_true, Config};

#[derive(Clone, Debug, Default)]
pub(super) struct Modules {
    /// No modules.conf was read: every module is taken as loaded.
    unknown: bool,
    autoload: bool,
    named: Vec<String>,
    noload: Vec<String>,
}

impl Modules {
    /// Every module loads (no modules.conf to say otherwise).
    pub fn all() -> Self {
        Self { unknown: true, ..Self::default() }
    }

    /// From modules.conf's `[modules]`.
    pub fn from_config(cfg: &Config) -> Self {
        let mut m = Self::default();
        let Some(section) = cfg.section("modules") else { return m };
        m.autoload = section.first("autoload").is_some_and(|e| is_true(&e.value));
        for e in &section.entries {
            let key = e.key.to_ascii_lowercase();
            match key.as_str() {
                "load" | "require" | "preload" | "preload-require" => m.named.push(base(&e.value)),
                "noload" => m.noload.push(base(&e.value)),
                _ => {}
            }
        }
        m
    }

    /// Whether `module` (`chan_sip`, with or without `.so`) is loaded.
    pub fn loads(&self, module: &str) -> bool {
        if self.unknown {
            return true;
        }
        let name = base(module);
        !self.noload.contains(&name) && (self.autoload || self.named.contains(&name))
    }
}

/// A module name as the loader compares it: case aside, `.so` aside.
fn base(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    lower.strip_suffix(".so").map(str::to_owned).unwrap_or(lower)
}
