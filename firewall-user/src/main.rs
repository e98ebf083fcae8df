//! The `sipwall` binary: parse the command line and dispatch.

use std::io::Write;

use clap::Parser;
use sipwall::{
    cli::{self, Cli, Command},
    daemon::{self, RunError, RunOptions},
};

fn init_logging() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, rec| {
            // Ban events are JSON lines of their own, ready for a log shipper.
            if rec.target() == "sipwall::bans" {
                return writeln!(buf, "{}", rec.args());
            }
            let ts = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
            writeln!(buf, "{ts} {:<5} {}", rec.level(), rec.args())
        })
        .init();
}

fn main() {
    let cli = Cli::parse();
    let code = match &cli.command {
        Command::Run(a) => {
            init_logging();
            let opts = RunOptions {
                ifaces: a.iface.clone(),
                config: a.config.clone(),
                xdp_mode: a.xdp_mode,
                metrics_addr: a.metrics_addr,
                state_dir: a.state_dir.clone(),
                socket: cli.socket.clone(),
                trace_drops: a.trace_drops,
                from_start: a.from_start,
                pin_dir: a.pin_dir.clone(),
                detach_on_exit: a.detach_on_exit,
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(daemon::run(opts)) {
                Ok(()) => 0,
                Err(RunError::Rules(r)) => {
                    eprintln!("{r}");
                    cli::EXIT_CONFIG
                }
                Err(e) => {
                    log::error!("{e}");
                    1
                }
            }
        }
        Command::Check(a) => cli::check::check(a),
        Command::Ban(a) => cli::bans::ban(&cli.socket, a),
        Command::Unban(a) => cli::bans::unban(&cli.socket, a),
        Command::List(a) => cli::bans::list(&cli.socket, a),
        Command::Why(a) => cli::inspect::why(&cli.socket, a),
        Command::Status(a) => cli::inspect::status(&cli.socket, a),
        Command::TestLog(a) => cli::testlog::test_log(a),
        Command::ImportFail2ban(a) => cli::import::import_fail2ban(a),
        Command::Detach(a) => cli::detach::detach(&cli.socket, a),
        Command::Completions(a) => cli::manual::completions(a),
        Command::Man(a) => cli::manual::man(a),
    };
    std::process::exit(code);
}
