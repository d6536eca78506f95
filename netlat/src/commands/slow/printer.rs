//! The lines `netlat slow` prints: records drained from the ring buffer in
//! bounded batches, their entry stacks named, a failed stdout remembered.

use std::{
    io::{BufWriter, Write as _},
    time::Instant,
};

use anyhow::Result;
use netlat_common::SlowRecord;

use super::{BATCH, End, SLICE, STOP_GRACE, SlowArgs};
use crate::{
    commands::stop::Stop,
    model::slow_call::{Clock, SlowCall},
    render::slow::{self as render, Zone},
    system::kallsyms::{self, Symbols},
    tracing::slow_records::Records,
};

/// Turns records into lines on stdout, flushed after each batch so `tee`
/// and `grep` see them as they happen.
pub(super) struct Printer<'a> {
    args: &'a SlowArgs,
    clock: Clock,
    symbols: Option<&'a Symbols>,
    zone: Zone,
    out: BufWriter<std::io::StdoutLock<'static>>,
    pub(super) printed: u64,
    /// The first write error; nothing is printed after it.
    pub(super) failed: Option<std::io::Error>,
}

impl<'a> Printer<'a> {
    pub(super) fn new(args: &'a SlowArgs, clock: Clock, symbols: Option<&'a Symbols>) -> Self {
        Printer {
            args,
            clock,
            symbols,
            zone: if args.utc { Zone::Utc } else { Zone::Local },
            out: BufWriter::with_capacity(1 << 16, std::io::stdout().lock()),
            printed: 0,
            failed: None,
        }
    }

    /// Prints batches of records until the buffer is empty (false) or
    /// `until` has passed (true: more may be waiting).
    pub(super) fn drain(&mut self, records: &mut Records, until: Instant) -> Result<bool> {
        loop {
            let mut batch = Vec::with_capacity(BATCH);
            let more = records.drain(BATCH, |r| {
                batch.push(*r);
                Ok(())
            })?;
            self.print_batch(&batch, records);
            if !more {
                return Ok(false);
            }
            if Instant::now() >= until {
                return Ok(true);
            }
        }
    }

    /// With the programs detached: prints what the buffer still holds, all
    /// of it at the end of SECONDS, for at most [`STOP_GRACE`] after a
    /// signal (a signal during the drain starts that grace). What is left
    /// stays unread, counted from the kernel's figures.
    pub(super) async fn finish(
        &mut self,
        records: &mut Records,
        end: End,
        stop: &mut Stop,
    ) -> Result<()> {
        let mut grace = match end {
            End::Time => None,
            End::Signal => Some(Instant::now() + STOP_GRACE),
            End::Output => Some(Instant::now()),
        };
        loop {
            let until = grace.unwrap_or_else(|| Instant::now() + SLICE);
            if !self.drain(records, until)? {
                return Ok(());
            }
            if grace.is_some_and(|g| Instant::now() >= g) || self.failed.is_some() {
                return Ok(());
            }
            if grace.is_none() && stop.due(None).await.is_some() {
                grace = Some(Instant::now() + STOP_GRACE);
            }
        }
    }

    /// Prints a batch and flushes it, then lets go of its records' entry
    /// stacks.
    fn print_batch(&mut self, batch: &[SlowRecord], records: &mut Records) {
        if self.failed.is_some() {
            return;
        }
        let mut lines = 0;
        for r in batch {
            if self.args.cpu.is_some_and(|cpu| cpu != r.exit_cpu) {
                continue;
            }
            let mut call = SlowCall::from_record(r, &self.clock);
            if let (Some(symbols), Some(id)) = (self.symbols, SlowCall::stack_id(r)) {
                call.stack = records
                    .stack(id)
                    .map(|ips| kallsyms::name_stack(&ips, symbols));
            }
            let line = if self.args.json {
                render::json_line(&call, self.zone)
            } else {
                render::text_line(&call, self.zone)
            };
            if let Err(e) = self.out.write_all(line.as_bytes()) {
                self.failed = Some(e);
                break;
            }
            lines += 1;
        }
        if self.failed.is_none()
            && let Err(e) = self.out.flush()
        {
            self.failed = Some(e);
        }
        if self.failed.is_none() {
            self.printed += lines;
        }
        // Every record's stack, printed or not (another CPU's, or after a
        // failed write): each is held for its own record only.
        records.forget_stacks(batch.iter().filter_map(SlowCall::stack_id));
    }
}
