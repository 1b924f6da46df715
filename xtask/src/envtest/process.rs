//! The processes of an envtest control plane: starting them with their output in a log,
//! waiting until they answer, and stopping them (when dropped, and on SIGINT, SIGTERM or
//! SIGHUP, so neither etcd nor kube-apiserver outlives xtask).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::Instant;

use super::POLL;

/// The processes and directory of a started control plane. Dropping it kills the apiserver,
/// then etcd, waits for both and removes the directory.
pub struct Running {
    pub etcd: Option<Child>,
    pub apiserver: Option<Child>,
    pub dir: PathBuf,
}

impl Drop for Running {
    fn drop(&mut self) {
        for child in [self.apiserver.take(), self.etcd.take()]
            .into_iter()
            .flatten()
        {
            stop(child);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills a child (it holds nothing worth a graceful stop: etcd's data is thrown away) and reaps
/// it, so no zombie or orphan is left.
fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub type Shared = Arc<Mutex<Option<Running>>>;

/// Every running control plane of this process, for the signal handler.
static LIVE: Mutex<Vec<Weak<Mutex<Option<Running>>>>> = Mutex::new(Vec::new());
static SIGNALS: Once = Once::new();

/// Set once a signal arrived: the signal thread stops everything and ends the process.
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Stops every live control plane (the signal handler's job). Each is stopped under its lock,
/// so a [`ControlPlane`](super::ControlPlane) dropped meanwhile waits for the cleanup.
fn stop_all() {
    let live = std::mem::take(&mut *LIVE.lock().unwrap_or_else(|e| e.into_inner()));
    for shared in live.iter().filter_map(Weak::upgrade) {
        let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
        drop(guard.take());
        drop(guard);
    }
}

/// Takes a control plane out and stops it; if a signal is being handled, waits for the signal
/// thread to end the process instead of racing it to the exit (with the signal's exit code).
pub fn stop_shared(running: &Shared) {
    let taken = running.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(taken);
    if STOPPING.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

/// Installs (once) a thread that, on SIGINT, SIGTERM or SIGHUP, stops every control plane and
/// exits with 128 + the signal number. Returns once the handlers are in place, so no process
/// is started before a signal could be caught.
pub fn install_signal_handler() -> Result<(), String> {
    let mut result = Ok(());
    SIGNALS.call_once(|| {
        let (ready, installed) = std::sync::mpsc::channel::<Result<(), String>>();
        let spawned = std::thread::Builder::new()
            .name("envtest-signals".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = ready.send(Err(format!("cannot start a signal runtime: {e}")));
                        return;
                    }
                };
                let code = runtime.block_on(wait_for_signal(ready));
                if let Some(code) = code {
                    STOPPING.store(true, Ordering::SeqCst);
                    eprintln!("envtest: signal received, stopping kube-apiserver and etcd");
                    stop_all();
                    std::process::exit(code);
                }
            });
        result = match spawned {
            Ok(_) => installed
                .recv()
                .unwrap_or_else(|_| Err("the signal thread ended".to_string())),
            Err(e) => Err(format!("cannot start the signal thread: {e}")),
        };
    });
    result
}

/// Registers the handlers, reports it through `ready`, and returns the exit code for the first
/// signal (None if the handlers could not be registered).
#[cfg(unix)]
async fn wait_for_signal(ready: std::sync::mpsc::Sender<Result<(), String>>) -> Option<i32> {
    use tokio::signal::unix::{SignalKind, signal};
    let registered = (|| {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
            signal(SignalKind::hangup())?,
        ))
    })();
    let (mut interrupt, mut terminate, mut hangup) = match registered {
        Ok(signals) => signals,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot handle signals: {e}")));
            return None;
        }
    };
    let _ = ready.send(Ok(()));
    tokio::select! {
        _ = interrupt.recv() => Some(130),
        _ = terminate.recv() => Some(143),
        _ = hangup.recv() => Some(129),
    }
}

#[cfg(not(unix))]
async fn wait_for_signal(ready: std::sync::mpsc::Sender<Result<(), String>>) -> Option<i32> {
    let _ = ready.send(Ok(()));
    tokio::signal::ctrl_c().await.ok().map(|()| 130)
}

/// The last lines of a log, to show why a process did not come up.
fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Whether the binary's `--help` mentions a flag (envtest's `CheckFlag`).
pub fn has_flag(binary: &Path, flag: &str) -> bool {
    Command::new(binary)
        .arg("--help")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout).contains(flag)
                || String::from_utf8_lossy(&o.stderr).contains(flag)
        })
}

/// Which process of a [`Running`] control plane.
pub type Slot = fn(&mut Running) -> &mut Option<Child>;

/// Starts `binary` with its output in `log` and stores it in `slot`, under the lock: a signal
/// arriving meanwhile waits, then finds the child to stop. Fails if the control plane was
/// stopped already.
pub fn spawn(
    running: &Shared,
    slot: Slot,
    binary: &Path,
    args: &[String],
    log: &Path,
) -> Result<(), String> {
    let out = File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let err = out
        .try_clone()
        .map_err(|e| format!("cannot share {}: {e}", log.display()))?;
    let mut guard = running.lock().unwrap_or_else(|e| e.into_inner());
    let running = guard.as_mut().ok_or("the control plane was stopped")?;
    let child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    *slot(running) = Some(child);
    Ok(())
}

/// Shares a control plane with the signal handler, which stops it on a signal.
pub fn track(running: Running) -> Shared {
    let shared = Arc::new(Mutex::new(Some(running)));
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::downgrade(&shared));
    shared
}

/// Polls `probe` until it returns Some, the child exits, or the deadline passes.
pub fn wait_until<T>(
    what: &str,
    running: &Shared,
    slot: Slot,
    log: &Path,
    deadline: Instant,
    mut probe: impl FnMut() -> Result<Option<T>, String>,
) -> Result<T, String> {
    let mut last = String::from("no answer yet");
    loop {
        match probe() {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(e) => last = e,
        }
        let exited = {
            let mut guard = running.lock().unwrap_or_else(|e| e.into_inner());
            match guard.as_mut().and_then(|r| slot(r).as_mut()) {
                Some(child) => child.try_wait().ok().flatten().map(|s| s.to_string()),
                None => Some("stopped".to_string()),
            }
        };
        if let Some(status) = exited {
            return Err(format!(
                "{what} exited ({status}); the end of {}:\n{}",
                log.display(),
                tail(log, 30)
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "{what} not ready in time ({last}); raise KUBEBUILDER_CONTROLPLANE_START_TIMEOUT \
                 if the machine is slow. The end of {}:\n{}",
                log.display(),
                tail(log, 30)
            ));
        }
        std::thread::sleep(POLL);
    }
}
