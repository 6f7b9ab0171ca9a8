/// Learning-rate schedules: the factor applied to a group's base learning rate at a step.
///
/// ```
/// use saddle_nn::optim::Schedule;
///
/// let decay = Schedule::LinearDecay { start: 100, end: 200, final_factor: 0.0 };
/// assert_eq!([decay.factor(50), decay.factor(150), decay.factor(300)], [1.0, 0.5, 0.0]);
/// let halve = Schedule::Step { every: 10, gamma: 0.5 };
/// assert_eq!(halve.factor(25), 0.25);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// Factor 1 throughout.
    Constant,
    /// Factor 1 until `start`, then linearly down to `final_factor` at `end`, constant after.
    LinearDecay {
        /// The last step at full rate.
        start: u64,
        /// The first step at `final_factor`.
        end: u64,
        /// The factor from `end` on.
        final_factor: f64,
    },
    /// Multiply by `gamma` every `every` steps.
    Step {
        /// Steps between multiplications (0 counts as 1).
        every: u64,
        /// The factor applied each time.
        gamma: f64,
    },
}

impl Schedule {
    /// The factor at step `step` (multiply the base learning rate by it).
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
