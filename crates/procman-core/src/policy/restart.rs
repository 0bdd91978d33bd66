//! Whether a run that ended should be followed by another.

use crate::config::{Profile, RestartStrategy};
use crate::outcome::ProcessEnd;

/// What a run's end means for the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exited with one of the success codes.
    Success,
    /// Any other exit, a signal death we did not send, a failed health
    /// check, a resource violation, a startup timeout.
    Failure,
}

/// Classifies an exit against the configured success codes. A signal
/// death is always a failure (the caller never asks about a signal it sent
/// itself: a requested stop is handled before the policy is consulted).
pub fn classify(end: ProcessEnd, success_codes: &[i32]) -> Outcome {
    match end {
        ProcessEnd::Exited(code) if success_codes.contains(&code) => Outcome::Success,
        _ => Outcome::Failure,
    }
}

/// The strategy table. A batch job that succeeded is finished whatever the
/// strategy; a long-running service that exits, even with 0, is restarted
/// by `always`.
pub fn should_restart(strategy: RestartStrategy, profile: Profile, outcome: Outcome) -> bool {
    match (strategy, profile, outcome) {
        (_, Profile::Batch, Outcome::Success) => false,
        (RestartStrategy::Never, _, _) => false,
        (RestartStrategy::OnFailure, _, outcome) => outcome == Outcome::Failure,
        (RestartStrategy::Always, _, _) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Signal;
    use Outcome::*;
    use Profile::*;
    use RestartStrategy::*;

    #[test]
    fn exits_are_classified_by_success_codes_and_signals_always_fail() {
        let cases = [
            (ProcessEnd::Exited(0), &[0][..], Success),
            (ProcessEnd::Exited(1), &[0][..], Failure),
            (ProcessEnd::Exited(3), &[0, 3][..], Success),
            (ProcessEnd::Exited(0), &[3][..], Failure),
            (
                ProcessEnd::Signaled {
                    signal: Signal::KILL,
                    core: false,
                },
                &[0][..],
                Failure,
            ),
            (ProcessEnd::Exited(137), &[0][..], Failure),
        ];
        for (end, codes, want) in cases {
            assert_eq!(classify(end, codes), want, "{end} with {codes:?}");
        }
    }

    #[test]
    fn strategy_table() {
        let cases = [
            (Never, LongRunning, Success, false),
            (Never, LongRunning, Failure, false),
            (Never, Batch, Failure, false),
            (OnFailure, LongRunning, Success, false),
            (OnFailure, LongRunning, Failure, true),
            (OnFailure, Batch, Success, false),
            (OnFailure, Batch, Failure, true),
            (Always, LongRunning, Success, true),
            (Always, LongRunning, Failure, true),
            (Always, Batch, Success, false),
            (Always, Batch, Failure, true),
        ];
        for (strategy, profile, outcome, want) in cases {
            assert_eq!(
                should_restart(strategy, profile, outcome),
                want,
                "{strategy:?} {profile:?} {outcome:?}"
            );
        }
    }
}
