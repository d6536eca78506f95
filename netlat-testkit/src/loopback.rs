//! TCP ping-pong over 127.0.0.1: every round trip sends a segment each way,
//! and each delivery over loopback raises a NET_RX softirq (one
//! net_rx_action call) on the sending CPU.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    thread,
    time::{Duration, Instant},
};

/// Runs ping-pong for `duration`; returns the number of round trips.
pub fn run_for(duration: Duration) -> u64 {
    run(duration, None)
}

/// As [`run_for`], at most `per_second` round trips a second: a load of a
/// known rate, for a test that judges whether userspace keeps up with it
/// (flat out, loopback's rate is the machine's and the build's, not the
/// test's).
pub fn run_paced(duration: Duration, per_second: u32) -> u64 {
    run(duration, Some(Duration::from_secs(1) / per_second.max(1)))
}

fn run(duration: Duration, gap: Option<Duration>) -> u64 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let addr = listener.local_addr().expect("local address");
    let server = thread::spawn(move || {
        let (mut conn, _) = listener.accept().expect("accept");
        conn.set_nodelay(true).expect("TCP_NODELAY");
        let mut byte = [0u8; 1];
        // Echo until the client closes.
        while conn.read_exact(&mut byte).is_ok() {
            if conn.write_all(&byte).is_err() {
                break;
            }
        }
    });
    let mut client = TcpStream::connect(addr).expect("connect over loopback");
    client.set_nodelay(true).expect("TCP_NODELAY");
    let deadline = Instant::now() + duration;
    let mut round_trips = 0;
    let mut byte = [7u8; 1];
    let mut next = Instant::now();
    while Instant::now() < deadline {
        if let Some(gap) = gap {
            // On a schedule, so a late wake-up is made up, not carried on.
            next += gap;
            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                thread::sleep(wait);
            }
        }
        client.write_all(&byte).expect("ping");
        client.read_exact(&mut byte).expect("pong");
        round_trips += 1;
    }
    drop(client);
    server.join().expect("echo server thread");
    round_trips
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_happen() {
        assert!(run_for(Duration::from_millis(200)) > 10);
    }

    #[test]
    fn paced_round_trips_keep_to_their_rate() {
        let n = run_paced(Duration::from_millis(500), 1000);
        assert!(
            (300..=501).contains(&n),
            "{n} round trips in 0.5 s at 1000/s"
        );
    }
}
