//! Sample-quality metrics. Parzen, FID/KID and classifier scores arrive with the reproduction
//! issue.

mod mode_coverage;

pub use mode_coverage::{mode_coverage, ModeCoverage};
