/// Learning-rate schedules: the factor applied to a group's base learning rate at a step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    Constant,
    /// Factor 1 until `start`, then linearly down to `final_factor` at `end`, constant after.
    LinearDecay {
        start: u64,
        end: u64,
        final_factor: f64,
    },
    /// Multiply by `gamma` every `every` steps.
    Step {
        every: u64,
        gamma: f64,
    },
}

impl Schedule {
    pub fn factor(&self, step: u64) -> f64 {
        match *self {
            Schedule::Constant => 1.0,
            Schedule::LinearDecay {
                start,
                end,
                final_factor,
            } => {
                if step <= start {
                    1.0
                } else if step >= end {
                    final_factor
                } else {
                    let t = (step - start) as f64 / (end - start) as f64;
                    1.0 + t * (final_factor - 1.0)
                }
            }
            Schedule::Step { every, gamma } => gamma.powi((step / every.max(1)) as i32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors() {
        let lin = Schedule::LinearDecay {
            start: 10,
            end: 20,
            final_factor: 0.0,
        };
        assert_eq!(
            [
                lin.factor(0),
                lin.factor(10),
                lin.factor(15),
                lin.factor(20),
                lin.factor(99)
            ],
            [1.0, 1.0, 0.5, 0.0, 0.0]
        );
        let st = Schedule::Step {
            every: 5,
            gamma: 0.5,
        };
        assert_eq!(
            [st.factor(4), st.factor(5), st.factor(12)],
            [1.0, 0.5, 0.25]
        );
        assert_eq!(Schedule::Constant.factor(7), 1.0);
    }
}
