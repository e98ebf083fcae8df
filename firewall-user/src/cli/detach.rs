//! `sipwall detach`: remove what a stopped daemon left enforcing (its pinned links and maps).

use std::path::{Path, PathBuf};

use clap::Args;

use crate::{
    control::{client, protocol::Request},
    datapath::pins::{Pins, DEFAULT_PIN_DIR},
};

#[derive(Debug, Args)]
pub struct DetachArgs {
    /// The daemon's pin directory.
    #[arg(long, env = "SIPWALL_PIN_DIR", default_value = DEFAULT_PIN_DIR)]
    pub pin_dir: PathBuf,
}

pub fn detach(socket: &Path, a: &DetachArgs) -> i32 {
    if client::call(socket, &Request::Status).is_ok() {
        eprintln!(
            "sipwall: the daemon is running ({}): stop it first, or run it with --detach-on-exit",
            socket.display()
        );
        return 1;
    }
    let pins = Pins::new(&a.pin_dir);
    if !a.pin_dir.exists() {
        println!("nothing pinned in {}", a.pin_dir.display());
        return 0;
    }
    let links = pins.pinned_links();
    match pins.remove_all() {
        Ok(()) => {
            for l in &links {
                println!("detached from {l}");
            }
            println!("removed the pinned tables in {}; bans stay in the store", a.pin_dir.display());
            0
        }
        Err(e) => {
            eprintln!("sipwall: {e}");
            1
        }
    }
}
