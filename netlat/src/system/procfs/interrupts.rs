//! /proc/interrupts: a header of online CPUs (`CPU0 CPU1 ...`), then one
//! line per interrupt: `NAME: count per CPU, then a description` (chip,
//! hardware IRQ and trigger, then the handlers, e.g. `eth0-TxRx-3`). Lines
//! such as `ERR:` carry one count only (kernel/irq/proc.c, and
//! arch_show_interrupts for the named rows).

use serde::{Deserialize, Serialize};

use super::{ProcError, Root, read_text};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interrupts {
    /// Online CPUs in column order; offline CPUs have no column.
    pub cpus: Vec<u32>,
    pub lines: Vec<IrqLine>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrqLine {
    /// `34` for device interrupts, `NMI`, `LOC`, ... for the named rows.
    pub irq: String,
    /// One count per entry of [`Interrupts::cpus`] (fewer on `ERR:`-like rows).
    pub counts: Vec<u64>,
    /// The rest of the line with runs of spaces collapsed.
    pub description: String,
}

impl IrqLine {
    /// Device interrupts have numbers; `NMI`, `LOC`, ... are per-CPU events.
    pub fn is_device(&self) -> bool {
        !self.irq.is_empty() && self.irq.bytes().all(|b| b.is_ascii_digit())
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}

pub fn parse(text: &str) -> Result<Interrupts, ProcError> {
    let mut lines = text.lines().enumerate();
    let cpus = loop {
        let Some((n, header)) = lines.next() else {
            return Ok(Interrupts::default());
        };
        if header.trim().is_empty() {
            continue;
        }
        break header
            .split_whitespace()
            .map(|c| {
                c.strip_prefix("CPU")
                    .and_then(|id| id.parse().ok())
                    .ok_or_else(|| {
                        ProcError::parse("interrupts", n + 1, format!("bad CPU column {c:?}"))
                    })
            })
            .collect::<Result<Vec<u32>, _>>()?;
    };
    let mut out = Vec::new();
    for (n, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let Some((irq, rest)) = line.split_once(':') else {
            return Err(ProcError::parse("interrupts", n + 1, "no 'IRQ:' prefix"));
        };
        let mut words = rest.split_whitespace().peekable();
        let mut counts = Vec::with_capacity(cpus.len());
        while counts.len() < cpus.len() {
            match words.peek().and_then(|w| w.parse::<u64>().ok()) {
                Some(c) => {
                    counts.push(c);
                    words.next();
                }
                None => break,
            }
        }
        out.push(IrqLine {
            irq: irq.trim().to_owned(),
            counts,
            description: words.collect::<Vec<_>>().join(" "),
        });
    }
    Ok(Interrupts { cpus, lines: out })
}

pub fn read(root: &Root) -> Result<Interrupts, ProcError> {
    parse(&read_text(&root.proc.join("interrupts"))?)
}

/// How a network device shows up in interrupt names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NicNames {
    /// Interface name, e.g. `eth0`: drivers name queue IRQs `eth0-TxRx-0`,
    /// `eth0-rx-1`, or `i40e-eth0-TxRx-2`.
    pub interface: String,
    /// Bus ids of its device, e.g. `0000:3b:00.0` (mlx5 names IRQs
    /// `mlx5_comp0@pci:0000:3b:00.0`, and MSI chips carry the address) or
    /// `virtio2` (virtio_net's `virtio2-input.0`).
    pub bus_ids: Vec<String>,
}

impl Interrupts {
    /// The device interrupts that belong to `nic`.
    pub fn of_nic<'a>(&'a self, nic: &'a NicNames) -> impl Iterator<Item = &'a IrqLine> + 'a {
        self.lines
            .iter()
            .filter(|l| l.is_device() && names_nic(&l.description, nic))
    }

    /// Column of `cpu` in the counts, if online.
    pub fn column(&self, cpu: u32) -> Option<usize> {
        self.cpus.iter().position(|&c| c == cpu)
    }
}

fn names_nic(description: &str, nic: &NicNames) -> bool {
    let by_name = description
        .split(|c: char| c.is_whitespace() || c == ',')
        .any(|word| {
            let name = nic.interface.as_str();
            !name.is_empty()
                && (word == name
                    || [b'-', b'@', b':', b'.'].iter().any(|&sep| {
                        word.strip_prefix(name)
                            .is_some_and(|rest| rest.as_bytes().first() == Some(&sep))
                    })
                    || word.contains(&format!("-{name}-")))
        });
    by_name
        || nic
            .bus_ids
            .iter()
            .any(|id| !id.is_empty() && contains_word(description, id))
}

/// `needle` in `haystack` with no letter or digit touching it, so
/// `virtio2` does not match `virtio21-input.0`.
fn contains_word(haystack: &str, needle: &str) -> bool {
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    haystack.match_indices(needle).any(|(at, _)| {
        !alnum(haystack[..at].chars().next_back())
            && !alnum(haystack[at + needle.len()..].chars().next())
    })
}

/// Per-CPU growth of the interrupts of `nic` from `before` to `after`,
/// summed over its IRQs, as `(cpu, count)` in `after`'s column order.
/// IRQs are matched by number; an IRQ that appeared meanwhile counts from 0.
pub fn nic_growth(before: &Interrupts, after: &Interrupts, nic: &NicNames) -> Vec<(u32, u64)> {
    let mut per_cpu: Vec<(u32, u64)> = after.cpus.iter().map(|&c| (c, 0)).collect();
    for line in after.of_nic(nic) {
        let old = before.lines.iter().find(|l| l.irq == line.irq);
        for ((cpu, sum), &count) in per_cpu.iter_mut().zip(&line.counts) {
            let was = old
                .and_then(|o| o.counts.get(before.column(*cpu)?).copied())
                .unwrap_or(0);
            *sum += count.saturating_sub(was);
        }
    }
    per_cpu
}

#[cfg(test)]
mod tests {
    use super::*;

    const MULTIQUEUE: &str = include_str!("../../../tests/fixtures/proc/interrupts-multiqueue");
    const HOST: &str = include_str!("../../../tests/fixtures/proc/linux-6.18-vm/interrupts");

    #[test]
    fn parses_the_host_file() {
        let i = parse(HOST).unwrap();
        assert_eq!(i.cpus, [0, 1]);
        let l = i.lines.iter().find(|l| l.irq == "38").unwrap();
        assert_eq!(l.counts, [0, 6752]);
        assert_eq!(
            l.description,
            "PCI-MSIX-0000:00:03.0 1-edge virtio2-input.0"
        );
        let loc = i.lines.iter().find(|l| l.irq == "LOC").unwrap();
        assert!(!loc.is_device());
        assert_eq!(loc.description, "Local timer interrupts");
        let err = i.lines.iter().find(|l| l.irq == "ERR").unwrap();
        assert_eq!(err.counts.len(), 1);
    }

    #[test]
    fn finds_virtio_net_queues_by_device_and_pci_address() {
        let i = parse(HOST).unwrap();
        let eth0 = NicNames {
            interface: "eth0".into(),
            bus_ids: vec!["virtio2".into(), "0000:00:03.0".into()],
        };
        let irqs: Vec<&str> = i.of_nic(&eth0).map(|l| l.irq.as_str()).collect();
        assert_eq!(irqs, ["37", "38", "39"]);
    }

    #[test]
    fn multi_queue_nics_with_offline_cpu() {
        let i = parse(MULTIQUEUE).unwrap();
        // CPU 2 is offline: no column.
        assert_eq!(i.cpus, [0, 1, 3]);
        let ens = NicNames {
            interface: "ens5".into(),
            bus_ids: vec!["0000:00:05.0".into()],
        };
        let irqs: Vec<&str> = i.of_nic(&ens).map(|l| l.irq.as_str()).collect();
        assert_eq!(irqs, ["26", "27", "28", "29", "30"]);
        let mlx = NicNames {
            interface: "enp59s0f0".into(),
            bus_ids: vec!["0000:3b:00.0".into()],
        };
        let irqs: Vec<&str> = i.of_nic(&mlx).map(|l| l.irq.as_str()).collect();
        assert_eq!(irqs, ["40", "41", "42", "43"]);
        // i40e puts the interface inside the name.
        let i40e = NicNames {
            interface: "eno1".into(),
            bus_ids: vec![],
        };
        assert_eq!(i.of_nic(&i40e).count(), 2);
        // `eth1` is not `eth10`.
        let eth1 = NicNames {
            interface: "eth1".into(),
            bus_ids: vec![],
        };
        assert_eq!(
            i.of_nic(&eth1).map(|l| l.irq.as_str()).collect::<Vec<_>>(),
            ["60"]
        );
    }

    #[test]
    fn growth_per_cpu_over_a_window() {
        let before = parse(MULTIQUEUE).unwrap();
        let after_text = MULTIQUEUE.replace(
            " 28:   10498282          0          0",
            " 28:   10499282          0         50",
        );
        let after = parse(&after_text).unwrap();
        let ens = NicNames {
            interface: "ens5".into(),
            bus_ids: vec![],
        };
        assert_eq!(
            nic_growth(&before, &after, &ens),
            [(0, 1000), (1, 0), (3, 50)]
        );
        // Fewer CPUs later (one went offline): matched by id, no panic.
        let fewer = parse("CPU0\n 28: 10498300 IR-PCI-MSI ens5-Tx-Rx-0\n").unwrap();
        assert_eq!(nic_growth(&before, &fewer, &ens), [(0, 18)]);
    }

    #[test]
    fn odd_input_is_an_error_or_empty_never_a_panic() {
        assert_eq!(parse("").unwrap(), Interrupts::default());
        assert!(parse("CPU0 GPU1\n").is_err());
        assert!(parse("CPU0\n 12 3 no colon\n").is_err());
        let short = parse("CPU0 CPU1\n 5: 7\n").unwrap();
        assert_eq!(short.lines[0].counts, [7]);
    }
}
