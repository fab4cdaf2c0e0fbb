//! The engine's steps after each outcome of the edge's operations: the
//! source side (pause, export, freeze, transfer, address given up) and
//! the destination side (thaw, pause, address taken, import, resume), with
//! their undo paths.

use std::net::IpAddr;

use super::{
    abort_step, act, destination_end, destination_to, next_abort, source_end, source_to,
    undo_start, Action, AppOp, Destination, Outcome, Output, Process, Side, Source,
};
use crate::migration::wire::Body;

pub(super) fn source_done(p: &mut Process, outcome: Outcome) -> Vec<Output> {
    let source = p.source.clone();
    match (source, outcome) {
        (Source::Pausing, Outcome::App(Err(e))) => {
            source_end(p, Body::Error { reason: e }, "pause failed")
        }
        (Source::Pausing, Outcome::App(Ok(_))) => {
            let mut out = vec![source_to(p, Source::Exporting, "paused")];
            out.push(act(
                p,
                Side::Source,
                Action::App {
                    op: AppOp::Export,
                    state: None,
                },
            ));
            out
        }
        (Source::Exporting, Outcome::App(Err(e))) => undo_start(p, e),
        (Source::Exporting, Outcome::App(Ok((state, answered)))) => {
            // The application backend needs the process to answer
            // `export`; from here on it is held still.
            if p.config.freeze {
                let mut out = vec![source_to(p, Source::Freezing { state }, "exported")];
                out.push(act(p, Side::Source, Action::Freeze { pid: answered }));
                out
            } else {
                transfer(p, state, "exported")
            }
        }
        (Source::Freezing { state }, Outcome::Frozen(Ok(f))) => {
            p.freezing = None;
            if !p.frozen.contains(&f) {
                p.frozen.push(f);
            }
            transfer(p, state, "frozen")
        }
        (Source::Freezing { .. }, Outcome::Frozen(Err(e))) => {
            // Not frozen (a freeze that did not take is undone at once).
            if let Some(f) = p.freezing.take() {
                p.frozen.retain(|g| *g != f);
            }
            undo_start(p, e)
        }
        (Source::Transferring, Outcome::Transfer(answer)) => {
            let to = p
                .start
                .as_ref()
                .map(|(t, _)| t.name.clone())
                .unwrap_or_default();
            match answer {
                Ok(Body::Ok) => {
                    // The service address now lives on the destination
                    // (claim 5); an Abort puts it back. If it cannot be
                    // given up, the move fails (it must not answer from
                    // two servers); the coordinator's rollback then has
                    // the destination drop its copy.
                    let address = p
                        .start
                        .as_ref()
                        .map(|(_, s)| *s)
                        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
                    let dev = p.config.service_dev.clone();
                    let mut out = vec![source_to(
                        p,
                        Source::GivingUpAddress,
                        &format!("server {to} took the checkpoint"),
                    )];
                    out.push(act(p, Side::Source, Action::DelAddress { address, dev }));
                    out
                }
                Ok(Body::Error { reason }) | Err(reason) => undo_start(
                    p,
                    format!("server {to} did not take the checkpoint: {reason}"),
                ),
                Ok(other) => undo_start(p, format!("unexpected answer {other:?}")),
            }
        }
        (Source::GivingUpAddress, Outcome::Address(Err(e))) => {
            undo_start(p, format!("giving up the service address: {e}"))
        }
        (Source::GivingUpAddress, Outcome::Address(Ok(()))) => {
            if let Some((_, s)) = p.start.take() {
                p.moved.push(s);
            }
            let process = p.config.name.clone();
            source_end(p, Body::MigrationComplete { process }, "address given up")
        }
        (Source::Undoing { .. }, Outcome::Thawed) => {
            p.frozen.clear();
            vec![act(
                p,
                Side::Source,
                Action::App {
                    op: AppOp::Resume,
                    state: None,
                },
            )]
        }
        (Source::Undoing { reason }, Outcome::App(_)) => {
            source_end(p, Body::Error { reason }, "resumed after a failed start")
        }
        (Source::Restoring, outcome) => {
            if let Some(last) = p.abort_last.take() {
                abort_step(p, Side::Source, outcome, &last);
            }
            next_abort(p, Side::Source)
        }
        (s, o) => source_end(
            p,
            Body::Error {
                reason: format!("internal: {o:?} in source state {s:?}"),
            },
            "unexpected outcome",
        ),
    }
}

/// Exported (and frozen): stream the checkpoint, then ask for the import.
fn transfer(p: &mut Process, state: String, cause: &str) -> Vec<Output> {
    let (to, service) = p.start.clone().expect("a start is being handled");
    let mut out = vec![source_to(p, Source::Transferring, cause)];
    out.push(act(
        p,
        Side::Source,
        Action::Transfer { to, service, state },
    ));
    out
}

pub(super) fn destination_done(p: &mut Process, outcome: Outcome) -> Vec<Output> {
    let destination = p.destination.clone();
    let dev = p.config.service_dev.clone();
    match (destination, outcome) {
        (Destination::Thawing, Outcome::Thawed) => {
            p.frozen.clear();
            let mut out = vec![destination_to(p, Destination::Pausing, "thawed")];
            out.push(act(
                p,
                Side::Destination,
                Action::App {
                    op: AppOp::Pause,
                    state: None,
                },
            ));
            out
        }
        (Destination::Pausing, Outcome::App(Err(e))) => {
            destination_end(p, Body::Error { reason: e }, "pause failed")
        }
        (Destination::Pausing, Outcome::App(Ok(_))) => {
            // The address first: restored TCP connections speak from it.
            let address = p
                .import
                .as_ref()
                .map(|(a, _)| *a)
                .unwrap_or(IpAddr::from([0, 0, 0, 0]));
            let mut out = vec![destination_to(p, Destination::TakingAddress, "paused")];
            out.push(act(
                p,
                Side::Destination,
                Action::AddAddress { address, dev },
            ));
            out
        }
        (Destination::TakingAddress, Outcome::Address(Err(e))) => {
            destination_end(p, Body::Error { reason: e }, "taking the address failed")
        }
        (Destination::TakingAddress, Outcome::Address(Ok(()))) => {
            let state = p.import.as_ref().map(|(_, s)| s.clone());
            let mut out = vec![destination_to(p, Destination::Importing, "address taken")];
            out.push(act(
                p,
                Side::Destination,
                Action::App {
                    op: AppOp::Import,
                    state,
                },
            ));
            out
        }
        (Destination::Importing, Outcome::App(Err(e))) => {
            let address = p
                .import
                .as_ref()
                .map(|(a, _)| *a)
                .unwrap_or(IpAddr::from([0, 0, 0, 0]));
            let mut out = vec![destination_to(
                p,
                Destination::DroppingAddress { reason: e.clone() },
                &e,
            )];
            out.push(act(
                p,
                Side::Destination,
                Action::DelAddress { address, dev },
            ));
            out
        }
        (Destination::DroppingAddress { reason }, Outcome::Address(_)) => destination_end(
            p,
            Body::Error { reason },
            "address dropped after a failed import",
        ),
        (Destination::Importing, Outcome::App(Ok(_))) => {
            if let Some((a, _)) = p.import.take() {
                p.imported.push(a);
            }
            destination_end(p, Body::Ok, "imported")
        }
        (Destination::Resuming, Outcome::App(Err(e))) => {
            destination_end(p, Body::Error { reason: e }, "resume failed")
        }
        (Destination::Resuming, Outcome::App(Ok(_))) => {
            // A completed move: the source's address is not coming back,
            // and the import here is for good.
            p.moved.clear();
            p.imported.clear();
            let mut out = Vec::new();
            if p.source == Source::Moved {
                out.push(source_to(p, Source::Running, "the move ended here"));
            }
            out.extend(destination_end(p, Body::Ok, "resumed"));
            out
        }
        (Destination::Discarding, outcome) => {
            if let Some(last) = p.abort_last.take() {
                abort_step(p, Side::Destination, outcome, &last);
            }
            next_abort(p, Side::Destination)
        }
        (d, o) => destination_end(
            p,
            Body::Error {
                reason: format!("internal: {o:?} in destination state {d:?}"),
            },
            "unexpected outcome",
        ),
    }
}
