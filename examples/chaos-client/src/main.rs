//! The client side of `cargo xtask chaos`: one scenario per process, against a
//! kube-testserver that runs a seeded fault schedule.
//!
//! ```text
//! chaos-client load      --kubeconfig K --seed S --duration D [--namespaces N]
//! chaos-client informers --kubeconfig K
//! chaos-client recorder  --kubeconfig K --seed S
//! chaos-client leader    --kubeconfig K
//! chaos-client flagship  --kubeconfig K --seed S --metrics ADDR,ADDR
//! ```
//!
//! Every scenario prints JSON lines on standard output: `{"ready":true}` once it runs, then,
//! after the runner writes `check` on its standard input (the faults and the writes are
//! over), `{"report":{"checks":N,"passed":N,"violations":[...],"stats":{...}}}`, and exits.
//! `load` writes for its duration and prints `{"writes":{...}}`.

mod common;
mod flagship;
mod informers;
mod leader;
mod load;
mod recorder;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing_subscriber::filter::LevelFilter::INFO)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((scenario, rest)) = args.split_first() else {
        eprintln!(
            "usage: chaos-client load|informers|recorder|leader|flagship --kubeconfig PATH [...]"
        );
        return ExitCode::from(2);
    };
    let options = match common::Options::parse(rest) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("chaos-client: {message}");
            return ExitCode::from(2);
        }
    };
    let result = match scenario.as_str() {
        "load" => load::run(&options).await,
        "informers" => informers::run(&options).await,
        "recorder" => recorder::run(&options).await,
        "leader" => leader::run(&options).await,
        "flagship" => flagship::run(&options).await,
        other => Err(format!("unknown scenario {other}").into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chaos-client {scenario}: {error}");
            ExitCode::FAILURE
        }
    }
}
