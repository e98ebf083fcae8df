//! `sipwall completions SHELL` and `sipwall man DIR`: shell completions and manual pages, both
//! generated from the command-line definition, so they never disagree with it.

use std::path::{Path, PathBuf};

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// The manual section of every page: system administration commands.
pub const MAN_SECTION: &str = "8";

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Directory to write `sipwall.8` and one `sipwall-COMMAND.8` per subcommand into.
    pub dir: PathBuf,
}

/// Prints the completion script for `shell` on stdout.
pub fn completions(a: &CompletionsArgs) -> i32 {
    let mut cmd = Cli::command();
    clap_complete::generate(a.shell, &mut cmd, "sipwall", &mut std::io::stdout());
    0
}

pub fn man(a: &ManArgs) -> i32 {
    match write_pages(&a.dir) {
        Ok(pages) => {
            for p in pages {
                println!("{}", p.display());
            }
            0
        }
        Err(e) => {
            eprintln!("sipwall: writing the manual pages into {}: {e}", a.dir.display());
            1
        }
    }
}

/// Writes the page of `sipwall` and of each visible subcommand into `dir`; returns their paths.
pub fn write_pages(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let top = Cli::command().version(env!("CARGO_PKG_VERSION"));
    let mut pages = vec![page(dir, "sipwall", top.clone())?];
    for sub in top.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("sipwall-{}", sub.get_name());
        let sub = sub
            .clone()
            .display_name(&name)
            .bin_name(format!("sipwall {}", sub.get_name()))
            .version(env!("CARGO_PKG_VERSION"));
        pages.push(page(dir, &name, sub)?);
    }
    Ok(pages)
}

fn page(dir: &Path, name: &str, cmd: clap::Command) -> std::io::Result<PathBuf> {
    let path = dir.join(format!("{name}.{MAN_SECTION}"));
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .section(MAN_SECTION)
        .manual("sipwall")
        .source(concat!("sipwall ", env!("CARGO_PKG_VERSION")))
        .render(&mut out)?;
    std::fs::write(&path, out)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_per_visible_subcommand_naming_its_options() {
        let dir = std::env::temp_dir().join(format!("sipwall-man-{}", std::process::id()));
        let pages = write_pages(&dir).unwrap();
        let names: Vec<String> = pages.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert!(names.contains(&"sipwall.8".to_owned()), "{names:?}");
        assert!(names.contains(&"sipwall-run.8".to_owned()), "{names:?}");
        assert!(!names.contains(&"sipwall-man.8".to_owned()), "the generator itself is hidden: {names:?}");
        let run = std::fs::read_to_string(dir.join("sipwall-run.8")).unwrap();
        assert!(run.starts_with(".ie"), "roff: {}", &run[..40.min(run.len())]);
        assert!(run.contains("SIPWALL_CONFIG") && run.contains("detach\\-on\\-exit"), "{run}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn completions_offer_the_subcommands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "sipwall", &mut out);
            let text = String::from_utf8(out).unwrap();
            for sub in ["run", "check", "ban", "unban", "why", "test-log", "detach"] {
                assert!(text.contains(sub), "{shell}: {sub} missing");
            }
            assert!(text.contains("xdp-mode"), "{shell}: run's options");
        }
    }
}
