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
    while Instant::now() < deadline {
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
}
