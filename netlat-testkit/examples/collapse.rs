//! Runs the tcp_collapse generator and prints the kernel's counters around it.
fn main() {
    use netlat_testkit::{collapse, netstat::tcp_ext};
    let (p0, c0) = (tcp_ext("PruneCalled"), tcp_ext("TCPRcvCollapsed"));
    let drained = collapse::run_for(std::time::Duration::from_secs(4));
    let (p1, c1) = (tcp_ext("PruneCalled"), tcp_ext("TCPRcvCollapsed"));
    println!(
        "drained {drained} B, PruneCalled +{}, TCPRcvCollapsed +{}",
        p1 - p0,
        c1 - c0
    );
}
