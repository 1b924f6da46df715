//! `podset-controller [demo|run|bench] [options]`: the flagship controller of kube-toolkit.
//!
//! * `demo` (the default): the whole story on an embedded kube-testserver, or on the cluster
//!   of `--kubeconfig PATH` / the current kubeconfig when it answers; exits 1 on any failure.
//! * `run`: one replica of the controller against the current cluster, until Ctrl-C.
//! * `bench`: reconcile figures on an embedded server (run it with `--release`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use podset_controller::bench::{self, BenchOptions};
use podset_controller::demo::{self, DemoOptions};
use podset_controller::replica::{Replica, ReplicaOptions};
use podset_controller::target::{Choice, connect};

const USAGE: &str = "usage:
  podset-controller [demo] [--kubeconfig PATH | --embedded] [--image IMAGE]
  podset-controller run [--kubeconfig PATH] [--namespace NS] [--lease-namespace NS]
                        [--identity ID] [--metrics-address ADDR] [--workers N] [--qps Q --burst B]
  podset-controller bench [--podsets N] [--pods-per-set N] [--workers N] [--changes N]
                          [--noop-rounds N]";

fn value(args: &mut impl Iterator<Item = String>, flag: &str) -> Result<String, String> {
    args.next()
        .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
}

fn number<T: std::str::FromStr>(text: &str, flag: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: not a number: {text:?}"))
}

enum Command {
    Demo(DemoOptions),
    Run(Box<RunOptions>),
    Bench(BenchOptions),
}

struct RunOptions {
    target: Choice,
    replica: ReplicaOptions,
    qps: f32,
    burst: usize,
}

fn parse() -> Result<Command, String> {
    let mut args = std::env::args().skip(1).peekable();
    let command = match args.peek().map(String::as_str) {
        Some("demo") | Some("run") | Some("bench") => args.next(),
        _ => None,
    };
    match command.as_deref() {
        None | Some("demo") => {
            let mut options = DemoOptions::default();
            while let Some(arg) = args.next() {
                match arg.as_str() {
                    "--kubeconfig" => {
                        options.target = Choice::Kubeconfig(PathBuf::from(value(&mut args, &arg)?))
                    }
                    "--embedded" => options.target = Choice::Embedded,
                    "--image" => options.image = value(&mut args, &arg)?,
                    "--step-timeout" => {
                        options.step_timeout =
                            Duration::from_secs(number(&value(&mut args, &arg)?, &arg)?)
                    }
                    "-h" | "--help" => return Err(USAGE.into()),
                    other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
                }
            }
            Ok(Command::Demo(options))
        }
        Some("run") => {
            let mut options = RunOptions {
                target: Choice::Auto,
                replica: ReplicaOptions::default(),
                qps: 20.0,
                burst: 30,
            };
            while let Some(arg) = args.next() {
                match arg.as_str() {
                    "--kubeconfig" => {
                        options.target = Choice::Kubeconfig(PathBuf::from(value(&mut args, &arg)?))
                    }
                    "--embedded" => options.target = Choice::Embedded,
                    "--namespace" => options.replica.namespace = Some(value(&mut args, &arg)?),
                    "--lease-namespace" => {
                        options.replica.lease_namespace = value(&mut args, &arg)?
                    }
                    "--identity" => options.replica.identity = value(&mut args, &arg)?,
                    "--metrics-address" => {
                        options.replica.metrics_address =
                            number::<SocketAddr>(&value(&mut args, &arg)?, &arg)?
                    }
                    "--workers" => {
                        options.replica.controller.workers = number(&value(&mut args, &arg)?, &arg)?
                    }
                    "--qps" => options.qps = number(&value(&mut args, &arg)?, &arg)?,
                    "--burst" => options.burst = number(&value(&mut args, &arg)?, &arg)?,
                    "-h" | "--help" => return Err(USAGE.into()),
                    other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
                }
            }
            Ok(Command::Run(Box::new(options)))
        }
        Some(_) => {
            let mut options = BenchOptions::default();
            while let Some(arg) = args.next() {
                match arg.as_str() {
                    "--podsets" => options.podsets = number(&value(&mut args, &arg)?, &arg)?,
                    "--pods-per-set" => {
                        options.pods_per_set = number(&value(&mut args, &arg)?, &arg)?
                    }
                    "--workers" => options.workers = number(&value(&mut args, &arg)?, &arg)?,
                    "--changes" => options.changes = number(&value(&mut args, &arg)?, &arg)?,
                    "--noop-rounds" => {
                        options.noop_rounds = number(&value(&mut args, &arg)?, &arg)?
                    }
                    "-h" | "--help" => return Err(USAGE.into()),
                    other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
                }
            }
            Ok(Command::Bench(options))
        }
    }
}

fn init_tracing(level: tracing::Level) {
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn run(options: RunOptions) -> Result<(), String> {
    let target = connect(&options.target, Duration::from_millis(500))
        .await
        .map_err(|e| e.to_string())?;
    println!("{}", target.description);
    let client = target
        .client(options.qps, options.burst)
        .map_err(|e| e.to_string())?;
    let replica = Replica::start(client, options.replica, None)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "replica {} started; /healthz and /metrics on http://{}; Ctrl-C to stop",
        replica.identity(),
        replica.address()
    );
    let lost = tokio::select! {
        _ = tokio::signal::ctrl_c() => false,
        _ = replica.wait_lost() => true,
    };
    replica.stop().await;
    if lost {
        // client-go's controllers exit when they lose the lease: a restart starts clean.
        Err("leader election lost".into())
    } else {
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let command = match parse() {
        Ok(command) => command,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let result = match command {
        Command::Demo(options) => {
            init_tracing(tracing::Level::ERROR);
            demo::run(options).await.map_err(|e| e.to_string())
        }
        Command::Run(options) => {
            init_tracing(tracing::Level::INFO);
            run(*options).await
        }
        Command::Bench(options) => {
            // No log lines: the event bursts overflow the recorder's queue on purpose (the
            // drops are counted and printed at the end).
            bench::run(options).await.map_err(|e| e.to_string())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
