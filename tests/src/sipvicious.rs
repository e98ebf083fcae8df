//! Attackers with addresses of their own in the lab's peer namespace, running sipvicious
//! (svmap, svwar, svcrack) against the lab's host.

use std::{path::PathBuf, process::Command};

use crate::netns::Lab;

/// One attacking source: `10.200.N.octet`, added to the peer end of the lab's link.
pub struct Attacker {
    pub addr: String,
    peer: String,
    peer_if: String,
    target: String,
    /// sipvicious keeps session state under $HOME/.sipvicious; one directory per attacker
    /// keeps it out of the caller's home and apart from the others.
    home: PathBuf,
}

/// What a sipvicious run printed.
pub struct Run {
    pub stdout: String,
    pub stderr: String,
}

impl Attacker {
    /// Adds the address `10.200.N.octet` to the lab's peer interface; `dir` holds its files.
    pub fn new(lab: &Lab, octet: u8, dir: &std::path::Path) -> Attacker {
        let addr = format!("10.200.{}.{octet}", lab.n);
        let out = Command::new("ip")
            .args(["-n", &lab.peer, "addr", "add", &format!("{addr}/24"), "dev", &lab.peer_if])
            .output()
            .expect("run ip");
        assert!(out.status.success(), "adding {addr} to {}: {}", lab.peer_if, String::from_utf8_lossy(&out.stderr));
        let home = dir.join(format!("attacker-{octet}"));
        std::fs::create_dir_all(&home).unwrap();
        Attacker { addr, peer: lab.peer.clone(), peer_if: lab.peer_if.clone(), target: lab.host_ip4(), home }
    }

    /// Makes this attacker's address the source of the peer namespace's route to the host.
    fn route_from_here(&self) {
        let route = Command::new("ip")
            .args(["-n", &self.peer, "route", "replace", &format!("{}/32", self.target), "dev", &self.peer_if])
            .args(["src", &self.addr])
            .output()
            .expect("run ip");
        assert!(
            route.status.success(),
            "route to {} from {}: {}",
            self.target,
            self.addr,
            String::from_utf8_lossy(&route.stderr)
        );
    }

    /// Runs sipvicious tool `tool` with `args`, bound to this attacker's address, against the
    /// host; `timeout(1)` ends it after `secs` seconds.
    fn run(&self, tool: &str, secs: u32, args: &[&str]) -> Run {
        // svwar and svcrack 0.3.3 read -b but never pass it on (TakeASip and ASipOfRedWine are
        // built without `bindingip`), so their unbound sockets take the source of the route to
        // the host: make it this attacker's. Sockets bound to an address (SIPp's) keep theirs.
        self.route_from_here();
        crate::netns::require_tool(tool, "sipvicious");
        let out = Command::new("ip")
            .args(["netns", "exec", &self.peer, "timeout", &secs.to_string(), tool, "-b", &self.addr])
            .args(args)
            .arg(&self.target)
            .env("HOME", &self.home)
            .output()
            .unwrap_or_else(|e| panic!("run {tool} (Debian's sipvicious; scripts/setup --test installs it): {e}"));
        Run {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `svmap`: an OPTIONS to the host; whether it found a SIP server there, and what it printed.
    pub fn svmap(&self) -> (bool, Run) {
        let run = self.run("svmap", 20, &["-t", "1"]);
        (run.stdout.contains(&format!("{}:5060", self.target)), run)
    }

    /// `svwar -m METHOD -e EXTENSIONS`: the extensions it reports as existing, and what it
    /// printed. With INVITE, svwar acknowledges each final answer (an ACK with the answer's
    /// To-tag), as a SIP client must.
    pub fn svwar(&self, method: &str, extensions: &str) -> (Vec<String>, Run) {
        let run = self.run("svwar", 60, &["-m", method, "-t", "0.2", &format!("-e{extensions}")]);
        (found_rows(&run.stdout), run)
    }

    /// `svcrack -u USER -d FILE` with `passwords`, one guess each: the cracked rows it reports,
    /// and what it printed.
    pub fn svcrack(&self, user: &str, passwords: &[&str]) -> (Vec<String>, Run) {
        let dict = self.home.join("passwords.txt");
        std::fs::write(&dict, passwords.join("\n") + "\n").unwrap();
        let run = self.run("svcrack", 60, &["-t", "0.2", &format!("-u{user}"), "-d", dict.to_str().unwrap()]);
        (found_rows(&run.stdout), run)
    }
}

/// The first cells of the data rows of the table sipvicious prints when it found something
/// (`| 1000      | reqauth        |`); none when it printed no table.
fn found_rows(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("+==="))
        .skip(1)
        .filter(|l| l.starts_with('|'))
        .filter_map(|l| l.split('|').nth(1).map(|c| c.trim().to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::found_rows;

    #[test]
    fn rows_of_a_sipvicious_table() {
        let out = "+-----------+----------------+\n| Extension | Authentication |\n+===========+================+\n\
                   | 1000      | reqauth        |\n+-----------+----------------+\n";
        assert_eq!(found_rows(out), ["1000"]);
        assert!(found_rows("WARNING:root:found nothing\n").is_empty());
    }
}
