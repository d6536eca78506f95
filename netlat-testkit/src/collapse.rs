//! Forces tcp_collapse on loopback (recipe in shared/notes/platform.md):
//! many tiny skbs queued on a socket whose receive budget then shrinks, so
//! the kernel prunes the queue and collapses skbs into larger ones.
//!
//! Plain loopback traffic to a stalled reader does not do it: the receiver
//! coalesces segments and the advertised window holds the sender back.

use std::{
    io::{ErrorKind, Read, Write},
    net::{TcpListener, TcpStream},
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

const MSS: libc::c_int = 88;
/// The platform notes' 64 KiB made Debian's kernels under QEMU/TCG prune
/// 0-8 times per run; 16 KiB gave 16 (6.1) and 28 (6.12), and more on the
/// host (`cargo xtask vm-test --append netlat_experiment` compares them).
const SHRUNK_RCVBUF: libc::c_int = 16 * 1024;

fn setsockopt(fd: i32, level: i32, opt: i32, value: libc::c_int) {
    // SAFETY: a valid socket fd and a c_int option value.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            (&value as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(
        rc,
        0,
        "setsockopt({level}, {opt}): {}",
        std::io::Error::last_os_error()
    );
}

/// An int-valued socket option (the other generator reads SO_RCVBUF too).
pub(crate) fn try_getsockopt(fd: i32, level: i32, opt: i32) -> std::io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: a valid socket fd and a c_int-sized out buffer.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            level,
            opt,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn getsockopt(fd: i32, level: i32, opt: i32) -> libc::c_int {
    try_getsockopt(fd, level, opt).unwrap_or_else(|e| panic!("getsockopt({level}, {opt}): {e}"))
}

fn tiny_segments(fd: i32) {
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_MAXSEG, MSS);
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
}

/// Knobs of the recipe; `Default` is the one from the platform notes.
#[derive(Clone, Copy, Debug)]
pub struct Recipe {
    pub first_stall: Duration,
    pub second_stall: Duration,
    pub shrunk_rcvbuf: libc::c_int,
    pub pace: Duration,
    /// After the stalls, read at most this much per read, napping 1 ms
    /// between reads: a slow drain keeps the queue over its budget while the
    /// window reopens, so arriving segments keep triggering prunes.
    pub read_size: usize,
}

impl Default for Recipe {
    fn default() -> Self {
        Recipe {
            first_stall: Duration::from_millis(1000),
            second_stall: Duration::from_millis(1500),
            shrunk_rcvbuf: SHRUNK_RCVBUF,
            pace: Duration::from_micros(2),
            read_size: 4096,
        }
    }
}

/// Runs the generator for about `duration` (at least ~3.5 s: the receiver
/// stalls 2.5 s first). Returns the bytes the receiver drained.
pub fn run_for(duration: Duration) -> u64 {
    run_recipe(duration, Recipe::default()).drained
}

/// What one generator run did.
#[derive(Clone, Copy, Debug)]
pub struct Generated {
    /// Bytes the receiver read.
    pub drained: u64,
    /// The receiver's buffer after shrinking, as `getsockopt(SO_RCVBUF)`
    /// reports it: the kernel's `sk_rcvbuf`, twice what was asked for.
    pub rcvbuf: libc::c_int,
    /// The receiving socket (the one the kernel prunes and collapses):
    /// its own address and its peer's, as getsockname/getpeername say.
    pub local: std::net::SocketAddr,
    pub peer: std::net::SocketAddr,
}

pub fn run_recipe(duration: Duration, recipe: Recipe) -> Generated {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    tiny_segments(listener.as_raw_fd());
    let addr = listener.local_addr().expect("addr");
    let done = Arc::new(AtomicBool::new(false));
    let receiver = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            let local = conn.local_addr().expect("getsockname");
            let peer = conn.peer_addr().expect("getpeername");
            tiny_segments(conn.as_raw_fd());
            thread::sleep(recipe.first_stall);
            setsockopt(
                conn.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                recipe.shrunk_rcvbuf,
            );
            let rcvbuf = getsockopt(conn.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF);
            thread::sleep(recipe.second_stall);
            conn.set_nonblocking(true).expect("nonblocking");
            let mut buf = vec![0u8; recipe.read_size.max(1)];
            let mut drained = 0u64;
            while !done.load(Ordering::Relaxed) {
                match conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        drained += n as u64;
                        if n < 4096 {
                            thread::sleep(Duration::from_millis(1));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(1))
                    }
                    Err(_) => break,
                }
            }
            Generated {
                drained,
                rcvbuf,
                local,
                peer,
            }
        })
    };
    let mut sender = TcpStream::connect(addr).expect("connect");
    tiny_segments(sender.as_raw_fd());
    sender.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now()
        + duration.max(recipe.first_stall + recipe.second_stall + Duration::from_secs(1));
    let chunk = [b'x'; 10];
    while Instant::now() < deadline {
        match sender.write(&chunk) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_micros(200))
            }
            Err(_) => break,
        }
        // Paced writes, or autocorking merges them into full segments.
        let next = Instant::now() + recipe.pace;
        while Instant::now() < next {
            std::hint::spin_loop();
        }
    }
    done.store(true, Ordering::Relaxed);
    drop(sender);
    receiver.join().expect("receiver")
}
