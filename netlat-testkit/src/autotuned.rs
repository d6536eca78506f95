//! tcp_collapse with the kernel's own buffer sizing: no SO_RCVBUF anywhere,
//! so the collapsed queue scales with `net.ipv4.tcp_rmem` (the mechanism
//! of "The story of one latency spike").
//!
//! Each cycle is one loopback connection: a bulk transfer read at full
//! speed lets receive-buffer autotuning grow `sk_rcvbuf` toward
//! `tcp_rmem[2]`; then the reader stalls and the sender trickles 10-byte
//! TCP_NODELAY writes. Each tiny segment costs far more memory (truesize)
//! than window, so the queue outgrows `sk_rcvbuf` long before the window
//! closes, and the kernel prunes and collapses a queue about as long as
//! `sk_rcvbuf` allows. The caller turns `net.ipv4.tcp_autocorking` off,
//! or the kernel merges the trickle into full segments.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use crate::netstat::tcp_ext;

const RMEM: &str = "/proc/sys/net/ipv4/tcp_rmem";

/// Knobs of one cycle.
#[derive(Clone, Copy, Debug)]
pub struct Knobs {
    /// How long the bulk transfer runs (autotuning needs a few round trips
    /// of growing reads).
    pub bulk: Duration,
    /// The longest the trickle waits for a prune before giving up.
    pub trickle: Duration,
    /// Gap between two trickle writes, so even with autocorking on they
    /// would not merge.
    pub pace: Duration,
    /// Bytes per trickle write. Each becomes one skb whose truesize is
    /// ~1 KiB of overhead plus the payload; below ~800 bytes that is
    /// more than twice the payload, which is what makes it collapsible.
    pub chunk: usize,
    /// Run the connection's threads (so its loopback receive path, and the
    /// timers it arms) on this CPU only, as a NIC's RSS keeps a flow on one
    /// queue. Unpinned, a zero-window probe handled on the other CPU during
    /// a 100 ms collapse spins on the socket lock the collapse holds, and
    /// that wait outweighs the collapse in the slow calls' samples (seen
    /// on 5.10: native_queued_spin_lock_slowpath 42% against tcp_collapse
    /// 22%).
    pub pin_cpu: Option<usize>,
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            bulk: Duration::from_millis(300),
            trickle: Duration::from_secs(8),
            pace: Duration::from_micros(2),
            chunk: 10,
            pin_cpu: None,
        }
    }
}

/// What the cycles did, summed.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub cycles: u64,
    /// Cycles whose receive queue the kernel collapsed.
    pub collapsed_cycles: u64,
    /// Cycles dropped because `tcp_rmem` changed under them: their queue
    /// would have been sized by the old setting.
    pub abandoned: u64,
    /// Largest `sk_rcvbuf` the receiver reached after its bulk phase
    /// (`getsockopt(SO_RCVBUF)`).
    pub max_rcvbuf: i64,
    /// The longest trickle before a collapse.
    pub max_until_collapse: Duration,
    /// Every cycle's receiving socket, as getsockname/getpeername say.
    pub connections: Vec<Connection>,
}

/// A receiving socket: its own address and its peer's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Connection {
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// `sk_rcvbuf` (getsockopt SO_RCVBUF) once the kernel had collapsed
    /// the queue, -1 for a cycle without a collapse. The prunes before a
    /// collapse raise it past the bulk phase's value (tcp_clamp_window,
    /// up to tcp_rmem[2]); a collapse runs only once it can rise no more,
    /// so this is the buffer the collapse saw.
    pub rcvbuf_at_collapse: i64,
}

fn rmem() -> String {
    std::fs::read_to_string(RMEM).unwrap_or_default()
}

fn nodelay(s: &TcpStream) {
    s.set_nodelay(true).expect("TCP_NODELAY");
}

fn rcvbuf(s: &TcpStream) -> i64 {
    crate::collapse::try_getsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF)
        .map_or(-1, i64::from)
}

fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is empty; CPU_SET stays within it for a
    // cpu below CPU_SETSIZE, and the call reads `size_of` bytes of it.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set)
    };
    assert_eq!(
        rc,
        0,
        "sched_setaffinity(CPU {cpu}): {}",
        std::io::Error::last_os_error()
    );
}

/// The receive queue's memory (`sk_rmem_alloc`, truesize), from
/// SO_MEMINFO; -1 when the kernel does not say.
fn rmem_alloc(s: &TcpStream) -> i64 {
    let mut info = [0u32; libc::SK_MEMINFO_DROPS as usize + 1];
    let mut len = size_of_val(&info) as libc::socklen_t;
    // SAFETY: a valid socket fd and an out buffer of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc == 0 {
        info[libc::SK_MEMINFO_RMEM_ALLOC as usize] as i64
    } else {
        -1
    }
}

/// tcp_rmem[2] of a `tcp_rmem` setting: the ceiling sk_rcvbuf may grow to.
fn ceiling(setting: &str) -> i64 {
    setting
        .split_whitespace()
        .nth(2)
        .and_then(|v| v.parse().ok())
        .unwrap_or(i64::MAX)
}

/// Holds the first cycle's trickle once its queue nears the collapse, until
/// released: a caller can attach slow tooling (a sampler) around just the
/// collapse instead of slowing the whole cycle down.
#[derive(Default)]
pub struct Hold {
    /// Fraction of tcp_rmem[2] the queue's memory must reach; 0: no hold.
    fraction: f64,
    reached: AtomicBool,
    released: AtomicBool,
}

impl Hold {
    fn holding(&self, queue: i64, setting: &str) -> bool {
        if self.fraction == 0.0 || self.released.load(Ordering::Relaxed) {
            return false;
        }
        if queue as f64 >= self.fraction * ceiling(setting) as f64 {
            self.reached.store(true, Ordering::Relaxed);
        }
        self.reached.load(Ordering::Relaxed)
    }
}

/// Repeats cycles until `stop` is set (a cycle in progress finishes or is
/// abandoned first).
pub fn run_until(stop: &AtomicBool, knobs: Knobs, hold: &Hold) -> Summary {
    let mut summary = Summary::default();
    while !stop.load(Ordering::Relaxed) {
        let cycle = cycle(stop, knobs, hold);
        summary.cycles += 1;
        summary.collapsed_cycles += cycle.collapsed as u64;
        summary.abandoned += cycle.abandoned as u64;
        summary.max_rcvbuf = summary.max_rcvbuf.max(cycle.rcvbuf);
        summary.max_until_collapse = summary.max_until_collapse.max(cycle.until_collapse);
        summary.connections.push(cycle.connection);
    }
    summary
}

/// Runs cycles in the background until stopped; the first cycle holds its
/// trickle once the queue's memory reaches `fraction` of tcp_rmem[2] (see
/// [`Running::held`]).
pub fn spawn_held(knobs: Knobs, fraction: f64) -> Running {
    spawn_with(
        knobs,
        Hold {
            fraction,
            ..Hold::default()
        },
    )
}

fn spawn_with(knobs: Knobs, hold: Hold) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let hold = Arc::new(hold);
    let thread = {
        let (stop, hold) = (Arc::clone(&stop), Arc::clone(&hold));
        thread::spawn(move || {
            // Threads the cycles start inherit this.
            if let Some(cpu) = knobs.pin_cpu {
                pin_to(cpu);
            }
            run_until(&stop, knobs, &hold)
        })
    };
    Running { stop, hold, thread }
}

pub struct Running {
    stop: Arc<AtomicBool>,
    hold: Arc<Hold>,
    thread: thread::JoinHandle<Summary>,
}

impl Running {
    /// Waits up to `timeout` for the held cycle to reach its hold.
    pub fn held(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while !self.hold.reached.load(Ordering::Relaxed) {
            if Instant::now() >= deadline || self.thread.is_finished() {
                return false;
            }
            thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Lets the held cycle trickle on to its collapse.
    pub fn release(&self) {
        self.hold.released.store(true, Ordering::Relaxed);
    }

    pub fn stop(self) -> Summary {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("generator")
    }
}

/// One connection's run.
#[derive(Clone, Copy, Debug)]
pub struct Cycle {
    pub collapsed: bool,
    /// How long the trickle ran before the collapse.
    pub until_collapse: Duration,
    pub abandoned: bool,
    /// `sk_rcvbuf` after the bulk phase.
    pub rcvbuf: i64,
    pub connection: Connection,
}

/// One cycle, in the caller's thread.
pub fn one_cycle(knobs: Knobs) -> Cycle {
    cycle(&AtomicBool::new(false), knobs, &Hold::default())
}

fn cycle(stop: &AtomicBool, knobs: Knobs, hold: &Hold) -> Cycle {
    let setting = rmem();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let bulk_done = Arc::new(AtomicBool::new(false));
    let receiver = {
        let bulk_done = Arc::clone(&bulk_done);
        thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let connection = Connection {
                local: conn.local_addr().expect("getsockname"),
                peer: conn.peer_addr().expect("getpeername"),
                rcvbuf_at_collapse: -1,
            };
            // Reads as big as the kernel grows its buffer to, so autotuning
            // sees the application keep up.
            let mut buf = vec![0u8; 1 << 20];
            while !bulk_done.load(Ordering::Relaxed) {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            // Empty the queue of bulk data, so the whole budget is left
            // for the trickle (a queue of full-sized skbs has nothing to
            // collapse, and it would hold the machine's TCP memory).
            conn.set_nonblocking(true).expect("nonblocking");
            let quiet = Instant::now() + Duration::from_millis(50);
            while Instant::now() < quiet {
                match conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => break,
                }
            }
            // Stall: the trickle piles up behind this until the caller
            // drops the connection.
            let grown = rcvbuf(&conn);
            (conn, grown, connection)
        })
    };
    let mut sender = TcpStream::connect(addr).expect("connect");
    nodelay(&sender);
    let block = vec![b'x'; 64 * 1024];
    let started = Instant::now();
    while started.elapsed() < knobs.bulk {
        if sender.write_all(&block).is_err() {
            break;
        }
    }
    bulk_done.store(true, Ordering::Relaxed);
    // One more write so a reader blocked in read() wakes and sees the flag.
    let _ = sender.write_all(&block);
    let (conn, grown, connection) = receiver.join().expect("receiver");
    let trickle_started = Instant::now();
    sender.set_nonblocking(true).expect("nonblocking");
    let collapsed0 = tcp_ext("TCPRcvCollapsed");
    let mut deadline = Instant::now() + knobs.trickle;
    let mut next_check = Instant::now();
    let mut outcome = Cycle {
        collapsed: false,
        until_collapse: Duration::ZERO,
        abandoned: false,
        rcvbuf: grown,
        connection,
    };
    let chunk = vec![b'y'; knobs.chunk.max(1)];
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        match sender.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_micros(200))
            }
            Err(_) => break,
        }
        if Instant::now() >= next_check {
            next_check = Instant::now() + Duration::from_millis(10);
            if rmem() != setting {
                outcome.abandoned = true;
                break;
            }
            // Held time does not count against the trickle's deadline.
            let held = Instant::now();
            while hold.holding(rmem_alloc(&conn), &setting) && !stop.load(Ordering::Relaxed) {
                thread::sleep(Duration::from_millis(10));
            }
            deadline += held.elapsed();
            // The first prunes only grow sk_rcvbuf toward tcp_rmem[2]
            // (tcp_clamp_window); the one after that collapses the queue,
            // and more trickle would only add small collapses.
            if tcp_ext("TCPRcvCollapsed") > collapsed0 {
                outcome.collapsed = true;
                outcome.until_collapse = trickle_started.elapsed();
                outcome.connection.rcvbuf_at_collapse = rcvbuf(&conn);
                break;
            }
        }
        let next = Instant::now() + knobs.pace;
        while Instant::now() < next {
            std::hint::spin_loop();
        }
    }
    drop(sender);
    drop(conn);
    outcome
}
