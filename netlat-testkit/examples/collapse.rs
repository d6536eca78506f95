//! Runs the tcp_collapse generator and prints the kernel's counters around it.
//! `cargo run -p netlat-testkit --example collapse [SO_RCVBUF]`
fn main() {
    use netlat_testkit::{collapse, netstat::tcp_ext};
    let mut recipe = collapse::Recipe::default();
    if let Some(bytes) = std::env::args().nth(1) {
        recipe.shrunk_rcvbuf = bytes.parse().expect("SO_RCVBUF in bytes");
    }
    let (p0, c0) = (tcp_ext("PruneCalled"), tcp_ext("TCPRcvCollapsed"));
    let run = collapse::run_recipe(std::time::Duration::from_secs(4), recipe);
    let (p1, c1) = (tcp_ext("PruneCalled"), tcp_ext("TCPRcvCollapsed"));
    println!(
        "drained {} B, sk_rcvbuf {}, PruneCalled +{}, TCPRcvCollapsed +{}",
        run.drained,
        run.rcvbuf,
        p1 - p0,
        c1 - c0
    );
}
