//! The report of a device allocation that could not be served. Plain data, outside the `cuda`
//! module, so that the engine's error type carries it the same way in every build.

use std::fmt;

/// A device allocation that failed even after the caching allocator gave its cached blocks back
/// to the driver and tried again, with the allocator's accounting at that moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutOfMemory {
    /// The device's ordinal (`cuda:N`).
    pub device: usize,
    /// Bytes asked for.
    pub requested: usize,
    /// Bytes in blocks the allocator had handed out and not had back (tensors alive).
    pub in_use: usize,
    /// Bytes of cached blocks returned to the driver before the retry (0: the cache was empty).
    pub released: usize,
    /// The device's free and total memory after the failure, where the driver could tell.
    pub device_memory: Option<(usize, usize)>,
}

impl fmt::Display for OutOfMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "out of GPU memory on cuda:{}: {} asked, {} in use by saddle",
            self.device,
            Bytes(self.requested),
            Bytes(self.in_use)
        )?;
        if self.released > 0 {
            write!(
                f,
                " ({} of cached blocks returned to the driver before retrying)",
                Bytes(self.released)
            )?;
        }
        if let Some((free, total)) = self.device_memory {
            write!(f, ", {} free of the device's {}", Bytes(free), Bytes(total))?;
        }
        write!(
            f,
            "; a smaller batch or model needs less (other processes on the GPU count too)"
        )
    }
}

/// A byte count for people: exact below 1 KiB, else in the largest binary unit with two
/// decimals.
struct Bytes(usize);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        if self.0 < 1024 {
            return write!(f, "{} B", self.0);
        }
        let mut value = self.0 as f64 / 1024.0;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        write!(f, "{value:.2} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_read_in_binary_units() {
        let shown = |n| Bytes(n).to_string();
        assert_eq!(shown(0), "0 B");
        assert_eq!(shown(1023), "1023 B");
        assert_eq!(shown(1024), "1.00 KiB");
        assert_eq!(shown(3 << 29), "1.50 GiB");
        assert_eq!(shown(usize::MAX), "16.00 EiB");
    }

    #[test]
    fn the_report_gives_the_request_and_the_accounting() {
        let mut oom = OutOfMemory {
            device: 1,
            requested: 3 << 29,
            in_use: 5 << 30,
            released: 0,
            device_memory: None,
        };
        assert_eq!(
            oom.to_string(),
            "out of GPU memory on cuda:1: 1.50 GiB asked, 5.00 GiB in use by saddle; a smaller \
             batch or model needs less (other processes on the GPU count too)"
        );
        oom.released = 1 << 20;
        oom.device_memory = Some((512 << 20, 80 << 30));
        let text = oom.to_string();
        assert!(
            text.contains(
                "5.00 GiB in use by saddle (1.00 MiB of cached blocks returned to the driver \
                 before retrying), 512.00 MiB free of the device's 80.00 GiB;"
            ),
            "{text}"
        );
    }
}
