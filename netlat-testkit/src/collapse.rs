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
const SHRUNK_RCVBUF: libc::c_int = 64 * 1024;

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

fn tiny_segments(fd: i32) {
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_MAXSEG, MSS);
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
}

/// Runs the generator for about `duration` (at least ~3.5 s: the receiver
/// stalls 2.5 s first). Returns the bytes the receiver drained.
pub fn run_for(duration: Duration) -> u64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    tiny_segments(listener.as_raw_fd());
    let addr = listener.local_addr().expect("addr");
    let done = Arc::new(AtomicBool::new(false));
    let receiver = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let (mut conn, _) = listener.accept().expect("accept");
            tiny_segments(conn.as_raw_fd());
            thread::sleep(Duration::from_millis(1000));
            setsockopt(
                conn.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                SHRUNK_RCVBUF,
            );
            thread::sleep(Duration::from_millis(1500));
            conn.set_nonblocking(true).expect("nonblocking");
            let mut buf = [0u8; 4096];
            let mut drained = 0u64;
            while !done.load(Ordering::Relaxed) {
                match conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => drained += n as u64,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(1))
                    }
                    Err(_) => break,
                }
            }
            drained
        })
    };
    let mut sender = TcpStream::connect(addr).expect("connect");
    tiny_segments(sender.as_raw_fd());
    sender.set_nonblocking(true).expect("nonblocking");
    let deadline = Instant::now() + duration.max(Duration::from_millis(3500));
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
        let next = Instant::now() + Duration::from_micros(2);
        while Instant::now() < next {
            std::hint::spin_loop();
        }
    }
    done.store(true, Ordering::Relaxed);
    drop(sender);
    receiver.join().expect("receiver")
}
