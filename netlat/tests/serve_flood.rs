//! `netlat serve`'s HTTP side under abusive clients, on loopback: a client
//! that holds more idle connections than serve has slots and reconnects
//! whenever one is dropped, and slowloris (many half-sent requests). A
//! scrape must still get through within about a second. No kernel needed:
//! the server runs in-process with a fixed page.

use std::{
    io::{ErrorKind, Read as _, Write as _},
    net::{SocketAddr, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use netlat::serve::{
    http::{self, MAX_CONNECTIONS, Pages},
    metrics::Format,
};
use netlat_testkit::scrape::get;

/// More connections than serve has slots.
const FLOOD: usize = MAX_CONNECTIONS + 64;
const SCRAPES: usize = 20;

struct Page;

impl Pages for Page {
    fn metrics(&self, _: Format) -> String {
        "netlat_up 1\n".to_owned()
    }
}

/// The server on an ephemeral loopback port, in its own thread.
fn start_server() -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            http::serve(listener, Arc::new(Page)).await;
        });
    });
    rx.recv().unwrap()
}

/// What each flood connection sends once connected, then (for slowloris)
/// one more header byte every `trickle`.
struct Attack {
    opening: &'static [u8],
    trickle: Option<Duration>,
}

/// Holds `FLOOD` connections open until `stop`, reconnecting any the server
/// drops; returns how many reconnects it made.
fn flood(addr: SocketAddr, attack: Attack, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let open = || -> Option<TcpStream> {
            let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
            s.write_all(attack.opening).ok()?;
            s.set_nonblocking(true).ok()?;
            Some(s)
        };
        let mut conns: Vec<Option<TcpStream>> = (0..FLOOD).map(|_| open()).collect();
        let mut reconnects = 0;
        let mut last_trickle = Instant::now();
        while !stop.load(Ordering::Relaxed) {
            let trickle = attack.trickle.is_some_and(|t| last_trickle.elapsed() >= t);
            if trickle {
                last_trickle = Instant::now();
            }
            for c in conns.iter_mut() {
                let mut byte = [0u8; 1];
                let alive = match c {
                    Some(s) => {
                        let readable = match s.read(&mut byte) {
                            Ok(0) => false,
                            Ok(_) => true,
                            Err(e) => e.kind() == ErrorKind::WouldBlock,
                        };
                        readable && (!trickle || s.write_all(b"a").is_ok())
                    }
                    None => false,
                };
                if !alive {
                    *c = open();
                    reconnects += 1;
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
        reconnects
    })
}

/// Scrapes every 200 ms; (successes, slowest successful scrape).
fn scrapes(addr: SocketAddr) -> (usize, Duration, Vec<String>) {
    let mut ok = 0;
    let mut slowest = Duration::ZERO;
    let mut failures = Vec::new();
    for i in 0..SCRAPES {
        let t = Instant::now();
        let (status, body) = get(addr, "/metrics");
        let took = t.elapsed();
        if status == 200 && body == "netlat_up 1\n" && took < Duration::from_millis(1500) {
            ok += 1;
            slowest = slowest.max(took);
        } else {
            failures.push(format!("scrape {i}: status {status} after {took:?}"));
        }
        thread::sleep(Duration::from_millis(200));
    }
    (ok, slowest, failures)
}

fn scrape_under(attack: Attack, what: &str) {
    let addr = start_server();
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood(addr, attack, Arc::clone(&stop));
    // Let the flood take every slot first.
    thread::sleep(Duration::from_millis(500));
    let (ok, slowest, failures) = scrapes(addr);
    stop.store(true, Ordering::Relaxed);
    let reconnects = flooder.join().unwrap();
    println!(
        "{what}: {ok}/{SCRAPES} scrapes answered within 1.5 s, slowest {slowest:?}; the flood reconnected {reconnects} times"
    );
    assert_eq!(ok, SCRAPES, "{what}: {failures:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "{what}: slowest {slowest:?}"
    );
}

#[test]
fn scrapes_get_through_a_sustained_idle_connection_flood() {
    scrape_under(
        Attack {
            opening: b"",
            trickle: None,
        },
        "idle flood",
    );
}

#[test]
fn scrapes_get_through_slowloris() {
    scrape_under(
        Attack {
            opening: b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ",
            trickle: Some(Duration::from_millis(500)),
        },
        "slowloris",
    );
}

/// A keep-alive client that completed a request (Prometheus between
/// scrapes) is the last to lose its slot.
#[test]
fn a_served_keep_alive_connection_outlives_the_flood() {
    let addr = start_server();
    let mut kept = TcpStream::connect(addr).unwrap();
    kept.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut reply = [0u8; 4096];
    kept.write_all(request).unwrap();
    let n = kept.read(&mut reply).unwrap();
    assert!(reply[..n].starts_with(b"HTTP/1.1 200"));

    let stop = Arc::new(AtomicBool::new(false));
    let flooder = flood(
        addr,
        Attack {
            opening: b"",
            trickle: None,
        },
        Arc::clone(&stop),
    );
    thread::sleep(Duration::from_secs(2));
    kept.write_all(request).unwrap();
    let answered = kept.read(&mut reply);
    stop.store(true, Ordering::Relaxed);
    let reconnects = flooder.join().unwrap();
    println!("keep-alive client answered after the flood reconnected {reconnects} times");
    let n = answered.expect("the served connection is still open");
    assert!(reply[..n].starts_with(b"HTTP/1.1 200"), "{n} bytes");
}
